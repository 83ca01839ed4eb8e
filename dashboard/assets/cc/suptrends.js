/* The supervisor's trend panels (widgets/trends_panel.py): bus delay per route and alarm rate per
 * priority over 1 h .. 30 d, drawn with Plotly (cc/plotly.js) from /api/history/bus-delays and
 * /api/history/alarm-rates (min/avg/max and counts per bucket, computed in SQL).
 * Honest about what is missing: a bucket without samples is a break in the line (never a line drawn
 * across a gap), a range without any is the words "no history", and a recording that starts inside
 * the range says from when. Everything from the API is data: route names go in as text (Plotly
 * escapes trace names), numbers are checked. Loaded and drawn only once the panel is on screen. */
import { cc } from './state.js';
import { t, dateTimeKst } from './i18n.js';
import { num } from './dom.js';
import { getJson } from './http.js';
import { chartSeries, reg, severityColor, severityLabel, ui } from './registry.js';
import { loadPlotly, darkLayout, kstX, PLOT_CONFIG } from './plotly.js';

const RANGES = { '1h': 3600e3, '6h': 6 * 3600e3, '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3, '30d': 30 * 24 * 3600e3 };
// Buckets per range: bus delays in 1 min .. 4 h steps; alarm rates in 5 min .. 4 h, shown per 10 min.
const BUS_BUCKETS = { '1h': 60, '6h': 72, '24h': 96, '7d': 168, '30d': 180 };
const ALARM_BUCKETS = { '1h': 12, '6h': 36, '24h': 144, '7d': 168, '30d': 180 };
const WORST = 6;  // routes drawn: the worst average delay
// Alarm priorities, most severe first: the registry's alarm severities (spine/layers.py).
const PRIORITIES = reg.severities.filter((s) => s.alarm).map((s) => s.code);
const TEN_MIN = 600e3;
const REFRESH_MS = 60e3;
const REPLAY_MS = 24 * 3600e3;  // replay opens within the last 24 h (cc/timeline.js)

// Test surface: range, loads (both charts drawn), bus {route: [{t, avg, min, max}]}, alarms {priority: [{t, per10}]}.
const st = { range: '6h', loads: 0, bus: {}, alarms: {}, busy: false, shown: false, lastLoad: 0, targets: null };

function $(id) { return document.getElementById(id); }


function note(id, text) { const n = $(id); if (n) { n.textContent = text; } }

/* Bucket points checked: finite t and avg, sorted by time. */
function clean(list, fields) {
  if (!Array.isArray(list)) { return []; }
  return list.map((p) => {
    const o = { t: num(p && p.t, null) };
    fields.forEach((f) => { o[f] = num(p && p[f], null); });
    return o;
  }).filter((p) => p.t !== null && p[fields[0]] !== null).sort((a, b) => a.t - b.t);
}

/* Contiguous runs of buckets: a missing bucket (no sample recorded) ends a run. */
function runs(points, size) {
  const out = [];
  points.forEach((p, i) => {
    if (i === 0 || p.t - points[i - 1].t > size) { out.push([]); }
    out[out.length - 1].push(p);
  });
  return out;
}

function since(first, from, size) {
  return first !== null && first > from + size ? t('History recorded from {time}', { time: dateTimeKst(first) }) : '';
}

/* The chart's size from its box (CSS: 180 px in the side panel, 38 vh in the larger view). The box
 * is marked drawn first: an empty one is 0 px high, and Plotly would fall back to 450 px. */
function boxSize(gd) {
  gd.setAttribute('data-cc-state', 'drawn');
  return { width: Math.max(200, gd.clientWidth), height: Math.max(120, gd.clientHeight) };
}

/* Hour:minute ticks, with the date from a day up (no month names in a language the page is not in). */
function timeAxis(extra) {
  const long = RANGES[st.range] > RANGES['24h'];
  return Object.assign(darkLayout().xaxis, { tickformat: long ? '%m-%d %H:%M' : '%H:%M',
    hoverformat: '%Y-%m-%d %H:%M' }, extra || {});
}

/* Plotly reads a few HTML-like tags in trace names (<b>, <a href>...): a route name from a feed is
 * data, so its markup characters go in as entities, which Plotly shows as the characters. */
function plain(text) {
  // replaceAll, not regex literals: pybabel's JavaScript lexer misreads `/>/g` and then loses the
  // messages of the rest of the file.
  return String(text).replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/* The registry's #rrggbb with an alpha channel (#rrggbbaa, which Plotly reads). */
function withAlpha(hex, alpha) {
  return hex + Math.round(alpha * 255).toString(16).padStart(2, '0');
}

function drawBus(Plotly, ans) {
  const box = $('cc-suptrend-bus');
  const size = num(ans.bucket_ms, 60e3), from = num(ans.from, 0);
  const routes = ans.routes && typeof ans.routes === 'object' ? ans.routes : {};
  const scored = Object.keys(routes).map((k) => {
    const pts = clean(routes[k], ['avg', 'min', 'max']);
    const n = pts.length ? pts.reduce((s, p) => s + p.avg, 0) / pts.length : -Infinity;
    return { k: String(k).slice(0, 64), pts, score: n };
  }).filter((r) => r.pts.length).sort((a, b) => b.score - a.score).slice(0, WORST);
  st.bus = {};
  scored.forEach((r) => { st.bus[r.k] = r.pts; });
  if (!scored.length) {
    Plotly.purge(box);
    box.setAttribute('data-cc-state', 'empty');
    note('cc-suptrend-bus-note', t('No bus history in this range'));
    return;
  }
  const traces = [];
  scored.forEach((r, i) => {
    const color = chartSeries[i % chartSeries.length];
    // The min..max band, one closed shape per run, so no band spans a gap either.
    runs(r.pts, size).forEach((run) => {
      const xs = run.map((p) => kstX(p.t)), lo = run.map((p) => (p.min === null ? p.avg : p.min));
      const hi = run.map((p) => (p.max === null ? p.avg : p.max));
      traces.push({ x: xs.concat(xs.slice().reverse()), y: hi.concat(lo.slice().reverse()), type: 'scatter',
        mode: 'lines', fill: 'toself', fillcolor: withAlpha(color, 0.15), line: { width: 0 }, hoverinfo: 'skip',
        showlegend: false, legendgroup: r.k, meta: { band: r.k } });
    });
    // The average: null between runs and connectgaps off, so a gap stays a break in the line.
    const x = [], y = [], cd = [];
    runs(r.pts, size).forEach((run, j) => {
      if (j) { x.push(kstX(run[0].t - size / 2)); y.push(null); cd.push(null); }
      run.forEach((p) => { x.push(kstX(p.t)); y.push(Math.round(p.avg * 10) / 10); cd.push(p.t); });
    });
    traces.push({ x, y, customdata: cd, type: 'scatter', mode: r.pts.length > 1 ? 'lines+markers' : 'markers',
      connectgaps: false, name: plain(r.k), legendgroup: r.k, line: { color, width: 2 }, marker: { size: 4, color },
      hovertemplate: '%{fullData.name}: %{y} s<extra></extra>' });
  });
  const to = num(ans.to, Date.now());  // the whole chosen range: a stretch without samples shows as such
  Plotly.react(box, traces, darkLayout(Object.assign(boxSize(box), { xaxis: timeAxis({ range: [kstX(from), kstX(to)] }),
    yaxis: Object.assign(darkLayout().yaxis, { title: { text: t('delay (s)') } }) })), PLOT_CONFIG);
  const first = Math.min(...scored.map((r) => r.pts[0].t));
  note('cc-suptrend-bus-note', since(first, from, size));
}

function drawAlarms(Plotly, ans) {
  const box = $('cc-suptrend-alarms');
  const size = num(ans.bucket_ms, TEN_MIN);
  const pr = ans.priorities && typeof ans.priorities === 'object' ? ans.priorities : {};
  const per10 = TEN_MIN / size;  // activations in one bucket -> per 10 min
  st.alarms = {};
  let top = 0;
  const sums = new Map();
  const traces = PRIORITIES.filter((p) => Array.isArray(pr[p])).map((p) => {
    const pts = clean(pr[p], ['n']).map((q) => ({ t: q.t, per10: Math.round(q.n * per10 * 100) / 100 }));
    st.alarms[p] = pts;
    pts.forEach((q) => { sums.set(q.t, (sums.get(q.t) || 0) + q.per10); });
    return { x: pts.map((q) => kstX(q.t + size / 2)), y: pts.map((q) => q.per10), customdata: pts.map((q) => q.t),
      type: 'bar', name: severityLabel(p), marker: { color: severityColor(p) }, width: size * 0.9,
      hovertemplate: '%{fullData.name}: %{y} / 10 min<extra></extra>' };
  }).filter((tr) => tr.x.length);
  sums.forEach((v) => { top = Math.max(top, v); });
  const tg = st.targets || { acceptable: 1, manageable: 2, flood: 10 };
  // ISA-18.2 / EEMUA 191 guides per operator: ~1 acceptable, ~2 manageable; the flood line once near it.
  const guides = [[tg.acceptable, t('acceptable')], [tg.manageable, t('manageable')]];
  if (top > tg.manageable) { guides.push([tg.flood, t('flood')]); }
  const shapes = guides.map(([v]) => ({ type: 'line', xref: 'paper', x0: 0, x1: 1, y0: v, y1: v,
    line: { color: ui.chart_text, width: 1, dash: 'dash' } }));
  const annotations = guides.map(([v, label]) => ({ xref: 'paper', x: 1, y: v, xanchor: 'right', yanchor: 'bottom',
    text: label + ' ' + v, showarrow: false, font: { size: 10, color: ui.chart_text } }));
  const from = num(ans.from, 0), to = num(ans.to, Date.now());
  if (!traces.length) {
    Plotly.purge(box);
    box.setAttribute('data-cc-state', 'empty');
    note('cc-suptrend-alarms-note', t('No alarm activations recorded in this range'));
    return;
  }
  Plotly.react(box, traces, darkLayout(Object.assign(boxSize(box), { barmode: 'stack', shapes, annotations,
    xaxis: timeAxis({ range: [kstX(from), kstX(to)] }),
    yaxis: Object.assign(darkLayout().yaxis, { range: [0, Math.max(top, tg.manageable) * 1.15],
      title: { text: t('per 10 min') } }) })), PLOT_CONFIG);
  note('cc-suptrend-alarms-note', t('Guide lines per operator (ISA-18.2): {a} acceptable, {m} manageable',
    { a: tg.acceptable, m: tg.manageable }));
}

/* A click on a point of the last 24 h opens replay at that moment (one action). */
function onPoint(d) {
  const p = d && d.points && d.points[0];
  const ms = p ? num(p.customdata, null) : null;
  if (ms !== null && Date.now() - ms <= REPLAY_MS) { location.assign('/replay?t=' + Math.round(ms)); }
}

function load() {
  if (st.busy || !$('cc-suptrends')) { return; }
  st.busy = true;
  st.lastLoad = Date.now();
  const r = st.range;
  const q = (b) => '?range=' + r + '&buckets=' + b;
  Promise.all([loadPlotly(), getJson('/api/history/bus-delays' + q(BUS_BUCKETS[r])),
    getJson('/api/history/alarm-rates' + q(ALARM_BUCKETS[r]))])
    .then(([Plotly, bus, alarms]) => {
      if (r !== st.range) { return; }  // another range was chosen meanwhile
      drawBus(Plotly, bus);
      drawAlarms(Plotly, alarms);
      ['cc-suptrend-bus', 'cc-suptrend-alarms'].forEach((id) => {
        const gd = $(id);
        // Plotly.purge (an empty range) drops the listeners: set again after every draw, once.
        if (gd && gd.on) { gd.removeAllListeners('plotly_click'); gd.on('plotly_click', onPoint); }
      });
      st.loads += 1;
    })
    .catch(() => {
      note('cc-suptrend-bus-note', t('history unavailable'));
      note('cc-suptrend-alarms-note', t('history unavailable'));
    })
    .finally(() => { st.busy = false; });
}

function showRange() {
  document.querySelectorAll('[data-cc-trend-range]').forEach((b) => {
    b.setAttribute('aria-pressed', b.getAttribute('data-cc-trend-range') === st.range ? 'true' : 'false');
  });
  const root = $('cc-suptrends');
  if (root) { root.setAttribute('data-cc-range', st.range); }
}

function resize() {
  if (!window.Plotly) { return; }
  ['cc-suptrend-bus', 'cc-suptrend-alarms'].forEach((id) => {
    const gd = $(id);
    if (gd && gd.getAttribute('data-cc-state') === 'drawn') { window.Plotly.relayout(gd, boxSize(gd)); }
  });
}

function large(on) {
  const root = $('cc-suptrends'), b = $('cc-suptrends-large');
  if (!root) { return; }
  root.classList.toggle('cc-suptrends-large', on);
  if (b) { b.setAttribute('aria-pressed', on ? 'true' : 'false'); b.textContent = on ? t('Close larger view') : t('Larger view'); }
  requestAnimationFrame(resize);
}

function onClick(ev) {
  const target = ev.target instanceof Element ? ev.target : null;
  const b = target && target.closest('[data-cc-trend-range]');
  if (b) {
    const r = b.getAttribute('data-cc-trend-range');
    if (Object.prototype.hasOwnProperty.call(RANGES, r)) { st.range = r; showRange(); st.busy = false; load(); }
  } else if (target && target.closest('#cc-suptrends-large')) {
    large(!$('cc-suptrends').classList.contains('cc-suptrends-large'));
  }
}

function mount() {
  const root = $('cc-suptrends');
  if (!root) { setTimeout(mount, 200); return; }
  try { st.targets = JSON.parse(root.getAttribute('data-cc-targets') || 'null'); } catch (e) { st.targets = null; }
  const r = root.getAttribute('data-cc-range');
  if (Object.prototype.hasOwnProperty.call(RANGES, r)) { st.range = r; }
  // Plotly (~5 MB) and the queries only once the panel is on screen.
  const io = new IntersectionObserver((entries) => {
    st.shown = entries.some((e) => e.isIntersecting);
    if (st.shown && Date.now() - st.lastLoad > REFRESH_MS) { load(); }
  });
  io.observe(root);
}

export function startSupervisorTrends() {
  cc.suptrends = st;
  document.addEventListener('click', onClick);
  document.addEventListener('keydown', (ev) => {
    const root = $('cc-suptrends');
    if (ev.key === 'Escape' && root && root.classList.contains('cc-suptrends-large')) { large(false); }
  });
  let resizing = 0;
  window.addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(resize, 200); });
  setInterval(() => { if (st.shown && document.visibilityState === 'visible' && Date.now() - st.lastLoad > REFRESH_MS) { load(); } },
    5000);
  mount();
}
