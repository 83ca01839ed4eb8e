/* Layer renderers: one Leaflet marker per entity, moved and restyled in place. Colours come from
 * the registry; strings from data reach the DOM only as text (badges, the drone icon). Every size
 * (radius, line width, icon) is a reference size times the screen's scale (map.js viewScale), so a
 * mark subtends the same angle on a 4K wall as on a 1080p one; sensor and air markers take the
 * shape of their level too (widgets/city_map.py LEVEL_SHAPES), not only its colour. */
import { cc } from './state.js';
import { el, num } from './dom.js';
import { ui, layerColor, sensorLevelColor, isAlarmLevel, airGradeColor, cameraTypeColor,
  cameraStatusColor, cameraActive, thresholds } from './registry.js';
import { bindPopup } from './popups.js';
import { t } from './i18n.js';

const TRAIL_POINTS = 120;

function activeCamera(p) { return cameraActive(p, Date.now()); }

/* A bus silent for the transit adapter's `fade_s` is drawn faded even when no `stale` update comes
 * (its feed stopped). The value is configuration, so the map widget puts it on the page
 * (data-cc-bus-fade-s); without it only the adapter's own `stale` flag fades a bus. */
let busFadeMs = null;
function fadeAfterMs() {
  if (busFadeMs === null) {
    const node = document.querySelector('[data-cc-bus-fade-s]');
    const s = node ? Number(node.getAttribute('data-cc-bus-fade-s')) : NaN;
    if (!node) { return Infinity; }  // map not built yet: ask again next time
    busFadeMs = Number.isFinite(s) && s > 0 ? s * 1000 : Infinity;
  }
  return busFadeMs;
}

/* The level -> shape tables, from the map widget (data-cc-shapes); a code without one is a circle. */
let shapes = null;
function shapeOf(layer, code) {
  if (shapes === null) {
    const node = document.querySelector('[data-cc-shapes]');
    if (!node) { return 'circle'; }  // map not built yet: ask again next time
    try { shapes = JSON.parse(node.getAttribute('data-cc-shapes')) || {}; } catch (e) { shapes = {}; }
  }
  const table = shapes[layer];
  return table && typeof code === 'string' && Object.prototype.hasOwnProperty.call(table, code) ? table[code] : 'circle';
}

function scale() { return cc.scale || 1; }

/* Sizes in reference px (scale 1); `stroke` marks an alarm or an active camera with an outline. */
export function styleFor(u) {
  const p = u.props || {};
  const k = scale();
  switch (u.layer) {
    case 'bus': {
      const old = p.stale || (Date.now() - u.ts > fadeAfterMs());
      return { radius: 4 * k, color: old ? ui.bus_faded : layerColor('bus'), key: old ? 'bo' : 'b' };
    }
    case 'camera': {
      const active = activeCamera(p);
      const c = cameraStatusColor(p.status) || cameraTypeColor(p.type) || layerColor('camera');
      return { radius: (active ? 7 : 4.5) * k, color: c, stroke: active, key: c + active };
    }
    case 'sensor': {
      const c = sensorLevelColor(p.level) || layerColor('sensor');
      const shape = shapeOf('sensor', p.level);
      return { radius: 7 * k, color: c, stroke: isAlarmLevel(p.level), shape, key: c + shape };
    }
    case 'air': {
      const c = airGradeColor(p.grade) || layerColor('air');
      const shape = shapeOf('air', p.grade);
      return { radius: 9 * k, color: c, shape, key: c + shape };
    }
    default: return { radius: 8 * k, color: layerColor(u.layer), key: 'd' };
  }
}

/* The drone's icon: an arrow rotated by its heading, built as DOM (a heading is a number or 0). */
function droneIcon(u) {
  const arrow = el('div', { text: '\u27A4' });
  arrow.style.transform = 'rotate(' + num(u.props && u.props.heading, 0) + 'deg)';
  const size = Math.round(34 * scale());  // the glyph's font size follows --cc-scale (controlroom.css)
  return window.L.divIcon({ className: 'cc-drone-icon', iconSize: [size, size], iconAnchor: [size / 2, size / 2],
    html: arrow });
}

function cone(m, u) {
  const p = u.props || {};
  const heading = num(p.heading, null), fov = num(p.fov, null);
  if (heading === null || fov === null || fov <= 0) { return; }
  const key = heading + '/' + fov + '/' + u.lat + '/' + u.lon;
  if (m.ccConeKey === key) { return; }
  m.ccConeKey = key;
  const pts = [[u.lat, u.lon]], cosLat = Math.cos(u.lat * Math.PI / 180), reach = thresholds.camera_cone_m;
  for (let a = heading - fov / 2; a <= heading + fov / 2 + 0.01; a += Math.max(fov / 8, 1)) {
    const r = a * Math.PI / 180;
    pts.push([u.lat + reach * Math.cos(r) / 111320, u.lon + reach * Math.sin(r) / (111320 * cosLat)]);
  }
  if (!m.ccCone) {
    m.ccCone = window.L.polygon(pts, { color: ui.camera_cone, weight: scale(), opacity: 0.5, fillOpacity: 0.12,
      pane: 'cc-base', interactive: false });
    cc.groups[u.layer].addLayer(m.ccCone);
  } else {
    m.ccCone.setLatLngs(pts);
  }
}

/* Analytics cameras carry a badge with what they see now (few cameras, so DOM tooltips are fine).
 * The tooltip gets a text node: Leaflet would parse a string as HTML. */
function badge(m, u) {
  const p = u.props || {};
  if (!p.video) { return; }
  const active = activeCamera(p);
  // A status the registry colours (offline) is a catalogue word; t() falls back to the code itself.
  const text = cameraStatusColor(p.status) ? t(String(p.status)).toLocaleUpperCase()
    : t('{people} people \u00b7 {vehicles} vehicles', { people: num(p.people, 0), vehicles: num(p.vehicles, 0) });
  if (!m.ccBadge) {
    m.ccBadge = document.createTextNode(text);
    m.bindTooltip(m.ccBadge, { permanent: true, direction: 'right', offset: [8 * scale(), 0],
      className: 'cc-cam-badge' + (active ? ' cc-cam-active' : '') });
  } else {
    m.ccBadge.textContent = text;
    const tip = m.getTooltip() && m.getTooltip().getElement();
    if (tip) { tip.classList.toggle('cc-cam-active', active); }
  }
}

function footprint(m, u) {
  const fp = u.props && u.props.footprint;
  if (!Array.isArray(fp) || fp.length < 3) { return; }
  if (!m.ccFootprint) {
    const k = scale();
    m.ccFootprint = window.L.polygon(fp, { color: ui.drone_footprint, weight: 1.5 * k, dashArray: (2 * k) + ' ' + (4 * k),
      fillOpacity: 0.08, interactive: false });
    cc.groups[u.layer].addLayer(m.ccFootprint);
  } else {
    m.ccFootprint.setLatLngs(fp);
  }
}

function remove(group, markers, id) {
  const m = markers.get(id);
  if (!m) { return; }
  group.removeLayer(m);
  markers.delete(id);
  ['ccTrail', 'ccFootprint', 'ccCone'].forEach((k) => { if (m[k]) { group.removeLayer(m[k]); } });
}

function placeDrone(group, markers, m, u, ll) {
  const L = window.L;
  if (!m) {
    m = L.marker(ll, { icon: droneIcon(u), keyboard: false });
    const k = scale();
    m.ccTrail = L.polyline([ll], { color: ui.drone_trail, weight: 2 * k, opacity: 0.6, dashArray: (4 * k) + ' ' + (6 * k) });
    group.addLayer(m.ccTrail);
    bindPopup(m, u);
    group.addLayer(m);
    markers.set(u.id, m);
  } else {
    m.setLatLng(ll);
    m.setIcon(droneIcon(u));
    const pts = m.ccTrail.getLatLngs();
    pts.push(L.latLng(ll));
    if (pts.length > TRAIL_POINTS) { pts.shift(); }
    m.ccTrail.setLatLngs(pts);
  }
  footprint(m, u);
}

/* Draw (or move, or remove) the marker of one update. */
export function place(u) {
  const group = cc.groups[u.layer];
  if (!group) { return; }
  const markers = cc.markers[u.layer];
  let m = markers.get(u.id);
  if (u.gone) { remove(group, markers, u.id); return; }
  const ll = [u.lat, u.lon];
  if (u.layer === 'drone') { placeDrone(group, markers, m, u, ll); return; }
  const s = styleFor(u);
  const heading = num(u.props && u.props.heading, null);
  if (!m) {
    const opts = { radius: s.radius, color: ui.marker_stroke, weight: s.stroke ? 2 * scale() : 0, stroke: !!s.stroke,
      fillColor: s.color, fillOpacity: 0.9, heading: heading, shape: s.shape };
    m = (u.layer === 'bus' && heading !== null) ? new cc.ArrowMarker(ll, opts)
      : s.shape ? new cc.ShapeMarker(ll, opts) : window.L.circleMarker(ll, opts);
    m.ccKey = s.key;
    bindPopup(m, u);
    group.addLayer(m);
    markers.set(u.id, m);
  } else {
    if (heading !== null) { m.options.heading = heading; }
    m.setLatLng(ll);
    if (m.ccKey !== s.key) {
      m.ccKey = s.key;
      m.options.shape = s.shape;
      m.setStyle({ fillColor: s.color, stroke: !!s.stroke, weight: s.stroke ? 2 * scale() : 0 });
      m.setRadius(s.radius);
    }
  }
  if (u.layer === 'camera') { cone(m, u); badge(m, u); }
}

/* Buses that went quiet fade without any new message, so restyle by age now and then. */
export function fadeSweep() {
  const markers = cc.markers.bus;
  if (!markers) { return; }
  cc.entities.bus.forEach((u, id) => {
    const m = markers.get(id);
    if (!m) { return; }
    const s = styleFor(u);
    if (m.ccKey !== s.key) { m.ccKey = s.key; m.setStyle({ fillColor: s.color }); }
  });
}

/* Static route lines from the transit adapter's GTFS shapes, under the live canvas. */
export function loadRoutes(group) {
  fetch('/api/transit/shapes', { credentials: 'same-origin' })
    .then((r) => (r.ok ? r.json() : {}))
    .then((shapes) => {
      Object.keys(shapes).forEach((k) => {
        const sh = shapes[k];
        const hex = typeof sh.color === 'string' && /^#?[0-9a-fA-F]{6}$/.test(sh.color)
          ? '#' + sh.color.replace('#', '') : ui.route_default;
        group.addLayer(window.L.polyline(sh.coords, { color: hex, weight: 2 * scale(), opacity: 0.35, pane: 'cc-base',
          interactive: false }));
      });
    })
    .catch(() => { /* no transit feed configured: the overlay stays empty */ });
}
