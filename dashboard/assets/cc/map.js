/* Finds the Leaflet map and the live layer groups as Leaflet creates them (dash-leaflet renders
 * them; the live layers are not Dash props, see widgets/city_map.py), defines the bus dart and the
 * level shapes, sizes map marks for the screen (viewScale) and keeps district labels off badges. */
import { cc } from './state.js';

/* onMap(map) once per map, onGroup(layer, group) for each `cc-layer-<layer>` group: first for what
 * assets/leaflet_hooks.js queued before this module ran, then as Leaflet creates them. */
export function hookLeaflet(onMap, onGroup) {
  const q = window.ccLeaflet;
  if (!window.L || !q) { setTimeout(() => hookLeaflet(onMap, onGroup), 10); return; }
  defineArrowMarker();
  defineShapeMarker();
  q.onMap = (map) => { cc.map = map; setScale(map); watchLabels(map); onMap(map); };
  q.onGroup = onGroup;
  q.maps.splice(0).forEach(q.onMap);
  q.groups.splice(0).forEach(([layer, group]) => onGroup(layer, group));
}

function wrapData(map, name) {
  const wrap = map.getContainer().closest('.cc-map-wrap');
  const raw = wrap && wrap.getAttribute(name);
  if (!raw) { return null; }
  try { return JSON.parse(raw); } catch (e) { return null; }
}

/* The one scale computation (issue 9): map marks are sized for the reference screen (the page's
 * data-cc-view, from config/walls.yaml: 1920 px across 1.21 m at 5 m = 1) and grow so they subtend
 * the same visual angle on this screen. A page without a wall view (desk, tablet) keeps 1. */
export function viewScale(view, pxAcross) {
  if (!view || typeof view !== 'object' || !view.reference) { return 1; }
  const ref = view.reference;
  let s;
  if (typeof view.scale === 'number' && view.scale > 0) {
    s = view.scale;
  } else if (typeof view.width_m === 'number' && view.width_m > 0) {
    s = (pxAcross / ref.px) * (ref.width_m / view.width_m) * (view.distance_m / ref.distance_m);
  } else {
    s = pxAcross / ref.px;  // a wall of unknown size: taken to be the reference panel
  }
  return Number.isFinite(s) ? Math.min(Math.max(s, 0.5), 10) : 1;
}

function setScale(map) {
  cc.scale = viewScale(wrapData(map, 'data-cc-view'), window.innerWidth);
  document.documentElement.style.setProperty('--cc-scale', String(cc.scale));
}

/* District names are placed at fixed points; a camera's activity badge can land on one. Each label
 * moves up or down by whole label heights to the nearest free place, or hides if there is none. */
function hits(a, b) { return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom; }

export function declutterLabels() {
  const map = cc.map;
  if (!map) { return; }
  const root = map.getContainer();
  const badges = Array.from(root.querySelectorAll('.cc-cam-badge')).map((e) => e.getBoundingClientRect());
  const placed = [];
  root.querySelectorAll('.cc-district-label').forEach((el) => {
    const shift = Number(el.dataset.ccShift || 0);
    const r = el.getBoundingClientRect();
    const h = r.height || 1;
    const base = { left: r.left, right: r.right, top: r.top - shift, bottom: r.bottom - shift };
    const free = [0, -1, 1, -2, 2, -3, 3].map((k) => k * h).find((dy) => {
      const at = { left: base.left, right: base.right, top: base.top + dy, bottom: base.bottom + dy };
      return !badges.some((b) => hits(at, b)) && !placed.some((p) => hits(at, p));
    });
    if (free === undefined) {
      el.style.visibility = 'hidden';
      return;
    }
    el.style.visibility = '';
    placed.push({ left: base.left, right: base.right, top: base.top + free, bottom: base.bottom + free });
    if (free !== shift) { el.dataset.ccShift = String(free); el.style.marginTop = free + 'px'; }
  });
}

function watchLabels(map) {
  map.on('zoomend moveend', declutterLabels);
  setInterval(declutterLabels, 1000);  // badges appear and change with the live updates
}

/* A canvas marker shaped as a dart pointing along `heading` (degrees from north). Drawn by the same
 * canvas renderer as circles, so thousands of moving buses still cost one redraw a frame. */
function defineArrowMarker() {
  const L = window.L;
  L.Canvas.include({
    _ccUpdateArrow(layer) {
      if (!this._drawing || layer._empty()) { return; }
      const p = layer._point, ctx = this._ctx, r = Math.max(layer._radius, 1);
      const a = (layer.options.heading || 0) * Math.PI / 180;
      const dx = Math.sin(a), dy = -Math.cos(a);  // forward, screen y grows downwards
      const nx = -dy, ny = dx;                    // to the right of forward
      ctx.beginPath();
      ctx.moveTo(p.x + dx * 1.9 * r, p.y + dy * 1.9 * r);
      ctx.lineTo(p.x - dx * r + nx * r, p.y - dy * r + ny * r);
      ctx.lineTo(p.x - dx * 0.4 * r, p.y - dy * 0.4 * r);
      ctx.lineTo(p.x - dx * r - nx * r, p.y - dy * r - ny * r);
      ctx.closePath();
      this._fillStroke(ctx, layer);
    },
  });
  cc.ArrowMarker = L.CircleMarker.extend({ _updatePath() { this._renderer._ccUpdateArrow(this); } });
}

/* A canvas marker whose outline tells its level (options.shape: circle, square, diamond, triangle,
 * star; widgets/city_map.py LEVEL_SHAPES), so severity is not told by colour alone. Sizes are chosen
 * so each shape covers about the area of the circle of the same radius. */
function polygon(ctx, p, pts) {
  ctx.moveTo(p.x + pts[0][0], p.y + pts[0][1]);
  pts.slice(1).forEach(([x, y]) => ctx.lineTo(p.x + x, p.y + y));
  ctx.closePath();
}

export function shapePoints(shape, r) {
  switch (shape) {
    case 'square': { const s = r * 0.89; return [[-s, -s], [s, -s], [s, s], [-s, s]]; }
    case 'diamond': { const s = r * 1.25; return [[0, -s], [s, 0], [0, s], [-s, 0]]; }
    case 'triangle': { const s = r * 1.55; return [[0, -s], [s * 0.866, s * 0.5], [-s * 0.866, s * 0.5]]; }
    case 'star': {
      const pts = [];
      for (let i = 0; i < 10; i += 1) {
        const a = i * Math.PI / 5, k = (i % 2 ? 0.62 : 1.5) * r;
        pts.push([k * Math.sin(a), -k * Math.cos(a)]);
      }
      return pts;
    }
    default: return null;
  }
}

function defineShapeMarker() {
  const L = window.L;
  L.Canvas.include({
    _ccUpdateShape(layer) {
      if (!this._drawing || layer._empty()) { return; }
      const p = layer._point, ctx = this._ctx, r = Math.max(layer._radius, 1);
      const pts = shapePoints(layer.options.shape, r);
      ctx.beginPath();
      if (pts) { polygon(ctx, p, pts); } else { ctx.arc(p.x, p.y, r, 0, Math.PI * 2, false); }
      this._fillStroke(ctx, layer);
    },
  });
  cc.ShapeMarker = L.CircleMarker.extend({
    _updatePath() {
      if (this._renderer._ccUpdateShape) { this._renderer._ccUpdateShape(this); } else { L.CircleMarker.prototype._updatePath.call(this); }
    },
  });
}
