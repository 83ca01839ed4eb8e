/* A 24 h trend in a sensor's or an air station's popup: /api/history/series (min/avg/max per bucket,
 * computed in SQL) drawn as SVG nodes, with the thresholds the API returns (a sensor's rules from
 * config/feeds.yaml, an air pollutant's grade bands) in the registry's colours. On /replay the
 * 24 h end at the moment shown, not now. */
import { cc } from './state.js';
import { svg, num } from './dom.js';
import { getJson } from './http.js';
import { t } from './i18n.js';
import { ui, severityColor, airGradeColor } from './registry.js';

const DAY_MS = 24 * 3600 * 1000;
const BUCKETS = 96;  // 15 min each over 24 h
const W = 320, H = 110, LEFT = 34;

/* The lines to draw: [value, colour, label], from the API's threshold list (data: checked here). */
function lines(layer, list) {
  if (!Array.isArray(list)) { return []; }
  return list.filter((r) => r && typeof r === 'object' && num(r.level, null) !== null)
    .filter((r) => layer !== 'sensor' || !r.metric || r.metric === 'value')  // rules on the raw value only
    .map((r) => [r.level, (layer === 'air' ? airGradeColor(r.name) : severityColor(r.severity)) || ui.chart_guide,
      String(r.name || '')]);
}

export function trendChart(layer, id, box) {
  const to = (cc.replay && cc.replay.t) || Date.now();
  const field = layer === 'air' ? 'pm10' : 'value';
  const q = new URLSearchParams({ layer, id, field, from: String(to - DAY_MS), to: String(to), buckets: String(BUCKETS) });
  getJson('/api/history/series?' + q.toString())
    .then((s) => {
      const pts = (Array.isArray(s.points) ? s.points : [])
        .map((p) => ({ t: num(p.t, null), avg: num(p.avg, null), min: num(p.min, null), max: num(p.max, null) }))
        .filter((p) => p.t !== null && p.avg !== null);
      if (!pts.length) { box.textContent = t('no history yet'); return; }
      const lo = Math.min(...pts.map((p) => (p.min === null ? p.avg : p.min)));
      const hi = Math.max(...pts.map((p) => (p.max === null ? p.avg : p.max)));
      const all = lines(layer, s.thresholds);
      // The scale reaches the first threshold above the data, so the chart shows how close it came.
      const next = all.map((l) => l[0]).filter((v) => v > hi).sort((a, b) => a - b)[0];
      const ymax = next !== undefined ? next : hi, ymin = lo;
      const span = Math.max(ymax - ymin, 1e-9);
      const x = (ms) => LEFT + (ms - (to - DAY_MS)) / DAY_MS * (W - LEFT - 4);
      const y = (v) => H - 16 - (v - ymin) / span * (H - 24);
      const chart = svg('svg', { width: W, height: H, role: 'img', class: 'cc-trend-svg',
        'aria-label': t('{name}, last 24 hours', { name: id }) });
      all.filter((l) => l[0] >= ymin && l[0] <= ymax).forEach(([v, color, name]) => {
        const line = svg('line', { x1: LEFT, x2: W, y1: y(v), y2: y(v), stroke: color, 'stroke-dasharray': '4 3' });
        line.append(svg('title', {}, name + ' ' + v));
        chart.append(line);
        chart.append(svg('text', { x: 2, y: y(v) + 4, fill: ui.chart_text, 'font-size': 10 }, v));
      });
      const d = pts.map((p, i) => (i ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.avg).toFixed(1)).join(' ');
      chart.append(svg('path', { d, fill: 'none', stroke: ui.chart_pm10, 'stroke-width': 2, class: 'cc-trend-line' }));
      // Each bucket's min..max as a tick, so a single bucket (a sensor just installed) still shows.
      pts.forEach((p) => chart.append(svg('line', { x1: x(p.t), x2: x(p.t), y1: y(p.min === null ? p.avg : p.min) + 2,
        y2: y(p.max === null ? p.avg : p.max) - 2, stroke: ui.chart_pm10, 'stroke-width': 2, class: 'cc-trend-range' })));
      chart.append(svg('text', { x: LEFT, y: H - 2, fill: ui.chart_text, 'font-size': 10 },
        t('24 h trend: min {min}, max {max}', { min: Number(lo.toFixed(2)), max: Number(hi.toFixed(2)) })));
      box.replaceChildren(chart);
    })
    .catch(() => { box.textContent = t('history unavailable'); });
}
