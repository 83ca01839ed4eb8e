/* Marker popups, built as DOM from the registry's popup fields (order, labels, formats). Only the
 * fields the registry lists are shown; every value goes in as text. */
import { cc } from './state.js';
import { el, svg, num, timeKst } from './dom.js';
import { t } from './i18n.js';
import { popupFields, labelOf, codeLabel, ui, airGuides } from './registry.js';
import { watchVideo } from './video.js';
import { trendChart } from './trends.js';

function formatValue(format, v) {
  if (v === null || v === undefined) { return null; }
  switch (format) {
    case 'time': return typeof v === 'number' ? timeKst(v) : String(v);
    case 'bool': return v ? t('yes') : t('no');
    case 'list': return Array.isArray(v) ? (v.length ? v.map(String).join(', ') : null) : String(v);
    case 'json': return typeof v === 'object' ? JSON.stringify(v) : String(v);
    case 'level': case 'grade': case 'severity': return labelOf(format, v);
    default: return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
}

function rows(layer, u) {
  const p = u.props || {};
  const out = [];
  popupFields(layer).forEach((f) => {
    const v = Object.prototype.hasOwnProperty.call(p, f.key) ? p[f.key] : null;
    const text = codeLabel(layer, f.key, v) || formatValue(f.format, v);
    if (text !== null) { out.push(el('tr', null, [el('th', { text: f.label }), el('td', { text })])); }
  });
  const aqi = p.aqi_us;
  if (aqi && typeof aqi === 'object' && aqi.value !== null && aqi.value !== undefined) {
    out.push(el('tr', null, [el('th', { text: String(aqi.scale || t('US EPA AQI')) }),
      el('td', { text: aqi.value + ' ' + (aqi.category || '') })]));
  }
  out.push(el('tr', null, [el('th', { text: t('updated') }), el('td', { text: timeKst(u.ts) })]));
  return out;
}

export function popupContent(layer, id) {
  const u = cc.entities[layer].get(id);
  if (!u) { return el('div', { className: 'cc-popup', text: t('gone') }); }
  const p = u.props || {};
  const parts = [el('h3', { text: id })];
  if (layer === 'camera' && p.video) {
    parts.push(el('img', { className: 'cc-popup-video', alt: t('live video of {name}', { name: p.name || id }) }));
  }
  if (layer === 'air') { parts.push(el('div', { className: 'cc-chart', text: t('loading 24 h...') })); }
  if (layer === 'sensor' || layer === 'air') { parts.push(el('div', { className: 'cc-trend', text: t('loading 24 h...') })); }
  parts.push(el('table', null, rows(layer, u)));
  return el('div', { className: 'cc-popup' }, parts);
}

/* A 24 h PM10 / PM2.5 chart for an air station, drawn as SVG nodes when its popup opens. */
function airChart(id, box) {
  fetch('/api/air/' + encodeURIComponent(id) + '/history', { credentials: 'same-origin' })
    .then((r) => (r.ok ? r.json() : Promise.reject(r.status)))
    .then((h) => {
      const pts = (Array.isArray(h.points) ? h.points : [])
        .map((p) => ({ t: num(p.t, null), pm10: num(p.pm10, null), pm25: num(p.pm25, null) }))
        .filter((p) => p.t !== null && (p.pm10 !== null || p.pm25 !== null));
      if (!pts.length) { box.textContent = t('no history yet'); return; }
      const W = 320, H = 110, t0 = pts[0].t, t1 = pts[pts.length - 1].t || t0 + 1;
      // PM10's grade edges (spine/layers.py AIR_BREAKPOINTS) as faint guides; the scale reaches at
      // least the second edge, so a clean day still reads against the first.
      const guides = Array.isArray(airGuides.pm10) ? airGuides.pm10.map((v) => num(v, 0)) : [];
      const ymax = Math.max(guides.length > 1 ? guides[1] : 1,
        ...pts.map((p) => Math.max(p.pm10 || 0, p.pm25 || 0)));
      const x = (t) => 30 + (t - t0) / Math.max(1, t1 - t0) * (W - 36);
      const y = (v) => H - 16 - v / ymax * (H - 24);
      const chart = svg('svg', { width: W, height: H, role: 'img', 'aria-label': t('PM10 and PM2.5, last 24 hours') });
      guides.filter((v) => v < ymax).forEach((v) => {
        chart.append(svg('line', { x1: 30, x2: W, y1: y(v), y2: y(v), stroke: ui.chart_guide, 'stroke-dasharray': '3 3' }));
        chart.append(svg('text', { x: 2, y: y(v) + 4, fill: ui.chart_text, 'font-size': 10 }, v));
      });
      [['pm10', ui.chart_pm10], ['pm25', ui.chart_pm25]].forEach(([key, color]) => {
        const d = pts.filter((p) => p[key] !== null)
          .map((p, i) => (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p[key]).toFixed(1)).join(' ');
        if (d) { chart.append(svg('path', { d, fill: 'none', stroke: color, 'stroke-width': 2 })); }
      });
      chart.append(svg('text', { x: 30, y: H - 2, fill: ui.chart_text, 'font-size': 10 },
        t('24 h: PM10 (blue) PM2.5 (violet) \u00b5g/m\u00b3')));
      box.replaceChildren(chart);
    })
    .catch(() => { box.textContent = t('history unavailable'); });
}

export function bindPopup(m, u) {
  const layer = u.layer, id = u.id;
  const wide = layer === 'air' || layer === 'sensor' || (layer === 'camera' && u.props && u.props.video);
  m.bindPopup(() => popupContent(layer, id), { maxWidth: 480, minWidth: wide ? 340 : 0 });
  if (layer === 'camera') {
    // The popup's video plays only while it is open.
    m.on('popupopen', (e) => {
      const img = e.popup.getElement().querySelector('img.cc-popup-video');
      if (img) { watchVideo(img, id); }
    });
    m.on('popupclose', (e) => {
      const node = e.popup.getElement();
      const img = node && node.querySelector('img.cc-popup-video');
      if (img) { watchVideo(img, ''); }
    });
  }
  if (layer === 'air') {
    m.on('popupopen', (e) => {
      const box = e.popup.getElement().querySelector('.cc-chart');
      if (box) { airChart(id, box); }
    });
  }
  if (layer === 'sensor' || layer === 'air') {  // the 24 h trend with its thresholds (trends.js)
    m.on('popupopen', (e) => {
      const box = e.popup.getElement().querySelector('.cc-trend');
      if (box) { trendChart(layer, id, box); }
    });
  }
}
