/* Alarms on the screens (docs/alarms.md "Screens"): the banner, the list (unacknowledged first), the
 * shelved list with time left, alarms on the map by priority shape, operator actions by the user's
 * rights, the operator-load panel (GET /api/alarms/kpis) and the audible cue for new critical alarms.
 *
 * Alarms arrive on the live socket: the gateway puts the open-alarm hash in every snapshot (`al`) and
 * changed alarms in numbered batches (`al`; `alr`: the whole list, replace), so a page that misses a
 * frame resyncs like the map does. Text is only ever placed as text (dom.js el), never as markup.
 * The page's config (widgets/alarms.py, config/alarm_screens.yaml) is JSON in data-cc-alarm-config.
 */
import { cc } from './state.js';
import { el, svg, timeKst } from './dom.js';
import { t, eventText } from './i18n.js';
import { severityColor, severityLabel, ui } from './registry.js';
import { shapePoints } from './map.js';

const UNACKED = new Set(['UNACK', 'RTNUN']);
const HIDDEN = new Set(['SHLVD', 'DSUPR', 'OOSRV']);
/* Words as t() calls with literal keys, so the catalogue extraction (babel.cfg) finds them. */
const stateLabel = (s) => ({ UNACK: t('Unacknowledged'), ACKED: t('Acknowledged'), RTNUN: t('Cleared, unacknowledged'),
  SHLVD: t('Shelved'), DSUPR: t('Suppressed'), OOSRV: t('Out of service'), NORM: t('Normal') })[s] || String(s);
const levelLabel = (l) => ({ predictive: t('predictive'), robust: t('robust'), stable: t('stable'),
  reactive: t('reactive'), overloaded: t('overloaded') })[l] || String(l);
const verdictLabel = (v) => ({ acceptable: t('acceptable'), manageable: t('manageable'),
  'over target': t('over target') })[v] || String(v);
const MAX_ROWS = 200;  // rows drawn; the count says how many more there are

cc.alarms = new Map();
cc.alarmMarkers = new Map();
cc.alarmStats = { frames: 0, cues: 0, actions: 0, kpiReads: 0 };
cc.alarmMeta = null;

let cfg = null;
let dirty = true;
let group = null;
let blinkOn = true;
const checked = new Set();

function config() {
  if (cfg) { return cfg; }
  const node = document.querySelector('[data-cc-alarm-config]');
  if (!node) { return null; }
  try { cfg = JSON.parse(node.getAttribute('data-cc-alarm-config')) || {}; } catch (e) { cfg = {}; }
  return cfg;
}

/* Priority codes, lowest first, come with the page config (config/alarms.yaml through
 * widgets/alarms.py), as do the ones that move when unacknowledged and the one that sounds. */
function prios() { const c = config() || {}; return Array.isArray(c.priorities) && c.priorities.length ? c.priorities : ['']; }
function rank(p) { return Math.max(0, prios().indexOf(p)); }
/* A known priority code or the lowest (the gateway checked it; the page still never trusts it). */
function prio(a) { return prios().includes(a.priority) ? a.priority : prios()[0]; }
function moves(a) { return UNACKED.has(a.state) && ((config() || {}).motion || []).includes(prio(a)); }
function sounds(a) { return a.state === 'UNACK' && ((config() || {}).audible || []).includes(prio(a)); }
const prioLabel = (p) => severityLabel(p);  // the priorities are the severity codes (spine/layers.py)

export function alarmText(a) {
  return eventText({ msg: a.msg, params: a.params, title: a.title, type: a.condition });
}

/* From a frame: `replace` (snapshot, or a batch with alr) starts over; otherwise newer wins per id. */
export function applyAlarms(list, replace) {
  if (!Array.isArray(list)) { return; }
  cc.alarmStats.frames += 1;
  const before = cc.alarms;
  if (replace) { cc.alarms = new Map(); }
  const fresh = [];
  for (let i = 0; i < list.length; i++) {
    const a = list[i];
    if (!a || typeof a !== 'object' || typeof a.id !== 'number') { continue; }
    const old = cc.alarms.get(a.id);
    if (old && old.updated_ts > a.updated_ts) { continue; }
    const was = before.get(a.id);  // read before the set: without a replace, `before` is the same map
    if (a.state === 'NORM') { cc.alarms.delete(a.id); continue; }
    cc.alarms.set(a.id, a);
    if (!replace && sounds(a) && !(was && was.state === 'UNACK')) { fresh.push(a); }
  }
  if (fresh.length) { cue(); }
  dirty = true;
  render();
}

/* The desk's own mute switch (kept in this browser), beside the configuration's on/off. */
function muted() { return window.localStorage.getItem('cc-alarm-mute') === '1'; }
function showMute() {
  const b = document.getElementById('cc-alarm-mute');
  if (b) { b.setAttribute('aria-pressed', muted() ? 'true' : 'false'); }
}

/* ---- audible cue: a tone made here (WebAudio), no file; only on the desk page, when configured ---- */
let audio = null;
function cue() {
  const c = config();
  if (!c || c.mode !== 'desk' || !c.audible_critical) { return; }
  if (muted()) { return; }
  cc.alarmStats.cues += 1;
  try {
    audio = audio || new (window.AudioContext || window.webkitAudioContext)();
    const len = Math.max(0.05, (c.beep_ms || 250) / 1000);
    for (let i = 0; i < 3; i++) {
      const osc = audio.createOscillator(), gain = audio.createGain();
      const at = audio.currentTime + i * len * 1.6;
      osc.frequency.value = c.beep_hz || 880;
      gain.gain.setValueAtTime(0.2, at);
      gain.gain.setValueAtTime(0, at + len);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + len);
    }
  } catch (e) { /* no audio device: the banner still says it */ }
}

/* ---- rights, the form token and the shelving choices: GET /api/alarms/meta ---- */
function loadMeta() {
  fetch('/api/alarms/meta', { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .then((m) => { if (m) { cc.alarmMeta = m; applyRights(); } })
    .catch(() => { /* rights stay hidden: nothing to act with */ });
}

function applyRights() {
  const m = cc.alarmMeta;
  if (!m) { return; }
  const may = m.may || {};
  document.querySelectorAll('[data-cc-right]').forEach((n) => {
    const right = n.getAttribute('data-cc-right');
    const ok = right === 'any' ? (may.acknowledge === true || may.shelve === true) : may[right] === true;
    n.hidden = !ok;
    n.disabled = !ok;
  });
  const sel = document.getElementById('cc-alarm-minutes');
  if (sel && !sel.options.length && m.shelving) {
    (m.shelving.quick_minutes || []).forEach((n) => {
      sel.append(el('option', { value: String(n), text: n >= 60 && n % 60 === 0 ? t('{n} h', { n: n / 60 }) : t('{n} min', { n }) }));
    });
    sel.append(el('option', { value: 'oneshot', text: t('Until it clears') }));
  }
  dirty = true;
}

function post(path, body) {
  const m = cc.alarmMeta;
  const result = document.getElementById('cc-alarm-result');
  return fetch(path, { method: 'POST', credentials: 'same-origin', cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': m ? m.csrf : '' }, body: JSON.stringify(body) })
    .then((r) => r.json().then((j) => ({ status: r.status, j }), () => ({ status: r.status, j: {} })))
    .then(({ status, j }) => {
      cc.alarmStats.actions += 1;
      if (status !== 200) {
        if (result) { result.textContent = t('Refused ({status})', { status }); }
        return;
      }
      const done = Array.isArray(j.done) ? j.done.length : 0;
      const refused = j.refused && typeof j.refused === 'object' ? Object.keys(j.refused).length : 0;
      if (result) { result.textContent = t('{done} done, {refused} refused', { done, refused }); }
      if (Array.isArray(j.done)) { applyAlarms(j.done, false); }  // the channel confirms it within ~0.1 s
      checked.clear();
      dirty = true;
      render();
    })
    .catch(() => { if (result) { result.textContent = t('Not sent: no connection'); } });
}

function selected(listId) {
  return [...checked].filter((id) => {
    const a = cc.alarms.get(id);
    return a && (listId === 'shelved' ? a.state === 'SHLVD' : a.state !== 'SHLVD');
  });
}

function onClick(ev) {
  const target = ev.target;
  if (!(target instanceof Element)) { return; }
  const box = target.closest('input[data-cc-alarm-id]');
  if (box) {
    const id = Number(box.getAttribute('data-cc-alarm-id'));
    if (box.checked) { checked.add(id); } else { checked.delete(id); }
    return;
  }
  const val = (id) => { const n = document.getElementById(id); return n ? n.value : ''; };
  const result = document.getElementById('cc-alarm-result');
  switch (target.id) {
    case 'cc-alarm-mute':
      window.localStorage.setItem('cc-alarm-mute', muted() ? '0' : '1');
      showMute();
      return;
    case 'cc-alarm-all': {
      const boxes = [...document.querySelectorAll('#cc-alarm-list input[data-cc-alarm-id]')];
      const on = boxes.some((b) => !b.checked);  // all selected already: the button clears them
      boxes.forEach((b) => {
        b.checked = on;
        const id = Number(b.getAttribute('data-cc-alarm-id'));
        if (on) { checked.add(id); } else { checked.delete(id); }
      });
      return;
    }
    case 'cc-alarm-ack': {
      const ids = selected('open');
      if (!ids.length) { if (result) { result.textContent = t('Select alarms first'); } return; }
      post('/api/alarms/ack', { ids, comment: val('cc-alarm-comment').slice(0, 500) });
      return;
    }
    case 'cc-alarm-shelve': {
      const ids = selected('open');
      const reason = val('cc-alarm-reason').trim().slice(0, 500);
      if (!ids.length) { if (result) { result.textContent = t('Select alarms first'); } return; }
      if (!reason) { if (result) { result.textContent = t('A reason is required to shelve'); } return; }
      const minutes = val('cc-alarm-minutes');
      post('/api/alarms/shelve', minutes === 'oneshot' ? { ids, mode: 'oneshot', reason }
        : { ids, mode: 'timed', minutes: Number(minutes) || 60, reason });
      return;
    }
    case 'cc-alarm-unshelve': {
      const ids = selected('shelved');
      if (!ids.length) { if (result) { result.textContent = t('Select shelved alarms first'); } return; }
      post('/api/alarms/unshelve', { ids, reason: val('cc-alarm-reason').trim().slice(0, 500) });
      return;
    }
    default:
  }
}

/* ---- rendering ---- */
function order(a, b) {
  const ua = UNACKED.has(a.state) ? 1 : 0, ub = UNACKED.has(b.state) ? 1 : 0;
  if (ua !== ub) { return ub - ua; }
  if (rank(prio(a)) !== rank(prio(b))) { return rank(prio(b)) - rank(prio(a)); }
  return (b.last_ts || 0) - (a.last_ts || 0);
}

function glyph(p, size) {
  const c = config() || {};
  const shape = (c.shapes && c.shapes[p]) || 'circle';
  const r = size * 0.3, h = size / 2;
  const node = svg('svg', { width: size, height: size, viewBox: `0 0 ${size} ${size}`, class: 'cc-alarm-glyph',
    'data-shape': shape, 'aria-hidden': 'true' });
  const pts = shapePoints(shape, r);
  const fill = severityColor(p);
  node.append(pts ? svg('polygon', { points: pts.map(([x, y]) => `${(x + h).toFixed(1)},${(y + h).toFixed(1)}`).join(' '), fill })
    : svg('circle', { cx: h, cy: h, r, fill }));
  return node;
}

function row(a, withBox) {
  const p = prio(a);
  const cls = `cc-alarm-row cc-prio-${p}${UNACKED.has(a.state) ? ' cc-alarm-unack' : ''}${moves(a) ? ' cc-alarm-moving' : ''}`;
  const box = withBox ? el('input', { type: 'checkbox', 'data-cc-alarm-id': a.id, 'aria-label': t('Select') }) : null;
  if (box && checked.has(a.id)) { box.checked = true; }
  const extra = [];
  if (a.count > 1) { extra.push(el('span', { className: 'cc-alarm-count', text: t('x{n}', { n: a.count }) })); }
  if (a.chattering) { extra.push(el('span', { className: 'cc-alarm-tag', text: t('chattering') })); }
  let when = el('span', { className: 'cc-alarm-time', text: timeKst(a.last_ts || a.updated_ts) });
  if (a.state === 'SHLVD') {
    const left = a.shelved_until ? Math.max(0, Math.ceil((a.shelved_until - Date.now()) / 60000)) : null;
    when = el('span', { className: 'cc-alarm-left', 'data-cc-left-min': left === null ? '' : left,
      text: left === null ? t('until it clears') : t('{m} min left', { m: left }) });
  }
  const li = el('li', { className: cls, 'data-cc-alarm': a.id, 'data-state': a.state, 'data-priority': p,
    style: `border-left-color: ${severityColor(p)}` }, [
    box, glyph(p, 18),
    el('span', { className: 'cc-alarm-prio', text: prioLabel(p) }),
    when,
    el('span', { className: 'cc-alarm-text', text: alarmText(a) }),
    el('span', { className: 'cc-alarm-source', text: a.source || '' }),
    el('span', { className: 'cc-alarm-state', text: stateLabel(a.state) }),
    ...extra,
  ]);
  if (a.state === 'SHLVD' && a.shelved_by) { li.setAttribute('title', t('Shelved by {who}', { who: a.shelved_by })); }
  return li;
}

function filters() {
  const v = (id) => { const n = document.getElementById(id); return n ? n.value : ''; };
  return { prio: v('cc-alarm-fprio'), states: v('cc-alarm-fstate'), source: v('cc-alarm-fsource').trim().toLowerCase() };
}

function visibleOpen() {
  const f = filters();
  const states = f.states ? new Set(f.states.split(',')) : null;
  return [...cc.alarms.values()].filter((a) => {
    if (states ? !states.has(a.state) : HIDDEN.has(a.state)) { return false; }
    if (f.prio && prio(a) !== f.prio) { return false; }
    return !f.source || String(a.source || '').toLowerCase().includes(f.source);
  }).sort(order);
}

function fill(list, rows, withBox, empty) {
  list.replaceChildren(...rows.slice(0, MAX_ROWS).map((a) => row(a, withBox)));
  if (!rows.length) { list.append(el('li', { className: 'cc-alarm-empty', text: empty })); }
  if (rows.length > MAX_ROWS) { list.append(el('li', { className: 'cc-alarm-more', text: t('{n} more', { n: rows.length - MAX_ROWS }) })); }
}

function renderBanner() {
  const b = document.getElementById('cc-alarm-banner');
  if (!b) { return; }
  const un = [...cc.alarms.values()].filter((a) => UNACKED.has(a.state)).sort(order);
  const counts = {};
  un.forEach((a) => { counts[prio(a)] = (counts[prio(a)] || 0) + 1; });
  const top = un[0];
  b.setAttribute('data-state', top ? prio(top) : 'calm');
  b.setAttribute('data-cc-unack', String(un.length));
  b.classList.toggle('cc-alarm-moving', !!top && moves(top));
  if (!top) { b.replaceChildren(el('span', { text: t('No unacknowledged alarms') })); return; }
  const parts = [...prios()].reverse().filter((p) => counts[p]).map((p) => el('span',
    { className: `cc-alarm-bcount cc-prio-${p}`, 'data-priority': p }, [glyph(p, 22), el('span', { text: `${prioLabel(p)} ${counts[p]}` })]));
  b.replaceChildren(el('span', { className: 'cc-alarm-btitle', text: t('{n} unacknowledged alarms', { n: un.length }) }),
    ...parts, el('span', { className: 'cc-alarm-btop', text: `${timeKst(top.last_ts || top.updated_ts)} ${alarmText(top)}` }));
}

function renderMap() {
  if (!cc.map || !window.L || !cc.ShapeMarker) { return; }
  if (!group) { group = window.L.layerGroup().addTo(cc.map); }
  const k = cc.scale || 1;
  const keep = new Set();
  cc.alarms.forEach((a) => {
    if (HIDDEN.has(a.state) || typeof a.lat !== 'number' || typeof a.lon !== 'number') { return; }
    keep.add(a.id);
    const p = prio(a);
    const shape = ((config() || {}).shapes || {})[p] || 'circle';
    let m = cc.alarmMarkers.get(a.id);
    const opts = { radius: (6 + 2 * rank(p)) * k, shape, fillColor: severityColor(p), fillOpacity: 0.95,
      color: ui.marker_stroke, weight: 2 * k, stroke: true, interactive: false };
    if (!m) {
      m = new cc.ShapeMarker([a.lat, a.lon], opts);
      group.addLayer(m);
      cc.alarmMarkers.set(a.id, m);
    } else {
      m.setLatLng([a.lat, a.lon]);
      m.options.shape = shape;
      m.setRadius(opts.radius);
    }
    m.ccMoving = moves(a);
    m.ccShape = shape;
    m.setStyle({ fillColor: opts.fillColor, fillOpacity: m.ccMoving && !blinkOn ? 0.15 : 0.95 });
  });
  cc.alarmMarkers.forEach((m, id) => { if (!keep.has(id)) { group.removeLayer(m); cc.alarmMarkers.delete(id); } });
}

export function render() {
  if (!config() && !document.getElementById('cc-alarm-banner')) { return; }
  if (!dirty) { return; }
  dirty = false;
  renderBanner();
  const list = document.getElementById('cc-alarm-list');
  const actions = !!(cc.alarmMeta && cc.alarmMeta.may && (cc.alarmMeta.may.acknowledge || cc.alarmMeta.may.shelve));
  if (list) { fill(list, visibleOpen(), actions, t('No open alarms')); }
  const shelved = document.getElementById('cc-alarm-shelved');
  if (shelved) {
    const rows = [...cc.alarms.values()].filter((a) => a.state === 'SHLVD').sort((a, b) => (a.shelved_until || 0) - (b.shelved_until || 0));
    fill(shelved, rows, !!(cc.alarmMeta && cc.alarmMeta.may && cc.alarmMeta.may.shelve), t('No shelved alarms'));
  }
  renderMap();
}

/* Once a second: time left on shelved alarms, and the map's blink for unacknowledged high/critical. */
export function tick() {
  blinkOn = !blinkOn;
  cc.alarmMarkers.forEach((m) => { if (m.ccMoving) { m.setStyle({ fillOpacity: blinkOn ? 0.95 : 0.15 }); } });
  if (document.getElementById('cc-alarm-shelved') && [...cc.alarms.values()].some((a) => a.state === 'SHLVD')) { dirty = true; }
  if (!group && cc.map && cc.alarms.size) { dirty = true; }
  render();
}

/* ---- operator load (ISA-18.2, EEMUA 191) from GET /api/alarms/kpis ---- */
function fig(key, label, value, note) {
  return el('div', { className: 'cc-load-fig', 'data-cc-load': key }, [
    el('span', { className: 'cc-load-value', text: value }), el('span', { className: 'cc-load-label', text: label }),
    note ? el('span', { className: 'cc-load-note', text: note }) : null]);
}

function renderLoad(k) {
  const box = document.getElementById('cc-alarm-load');
  if (!box || !k || typeof k !== 'object' || !k.rate || !k.flood || !k.eemua) { return; }
  const rate = k.rate, flood = k.flood;
  const dist = prios().map((p) => {
    const x = (k.priorities || {})[p] || {};
    return el('li', { 'data-cc-load-prio': p }, [glyph(p, 14),
      el('span', { text: t('{label}: {share} % (target {target} %)', { label: prioLabel(p), share: x.share_pct || 0, target: x.target_pct || 0 }) })]);
  });
  const top = (k.top10 || []).map((x) => el('li', { 'data-cc-load-top': x.key },
    [el('span', { className: 'cc-alarm-source', text: String(x.key) }), el('span', { text: t('{n} ({share} %)', { n: x.count, share: x.share_pct }) })]));
  const words = (arr, empty) => (Array.isArray(arr) && arr.length ? arr.slice(0, 20).map((s) => el('li', { text: String(s) })) : [el('li', { className: 'cc-alarm-empty', text: empty })]);
  box.replaceChildren(
    el('div', { className: 'cc-load-figs' }, [
      fig('avg', t('alarms per 10 min (average)'), String(rate.avg_per_10min),
        t('target {a} acceptable, {m} manageable: {verdict}', { a: rate.target_acceptable, m: rate.target_manageable, verdict: verdictLabel(rate.verdict) })),
      fig('peak', t('peak per 10 min'), String(rate.peak_per_10min)),
      fig('flood', t('time in flood'), `${flood.time_in_flood_pct} %`, t('{n} floods (over {over} in 10 min)', { n: flood.floods, over: flood.threshold_per_10min })),
      fig('eemua', t('EEMUA 191 level'), levelLabel(k.eemua.level), t('{p}% (share of periods over 5)', { p: k.eemua.busy_periods_pct })),
      fig('total', t('alarms in {h} h', { h: Math.round((k.window.end_ms - k.window.start_ms) / 3600000) }), String(k.total)),
    ]),
    el('h3', { text: t('Priority distribution') }), el('ul', { className: 'cc-load-list' }, dist),
    el('h3', { text: t('Top 10: {share}% (share of all alarms)', { share: k.top10_share_pct }) }), el('ol', { className: 'cc-load-list', 'data-cc-load': 'top10' }, top),
    el('h3', { text: t('Chattering') }), el('ul', { className: 'cc-load-list', 'data-cc-load': 'chattering' }, words(k.chattering, t('none'))),
    el('h3', { text: t('Stale (active over 24 h)') }), el('ul', { className: 'cc-load-list', 'data-cc-load': 'stale' }, words(k.stale, t('none'))),
  );
  box.setAttribute('data-cc-load-read', String(Date.now()));
}

export function loadKpis() {
  const c = config();
  if (!c || !document.getElementById('cc-alarm-load')) { return; }
  fetch(`/api/alarms/kpis?hours=${encodeURIComponent(c.kpi_hours || 24)}`, { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .then((k) => { cc.alarmStats.kpiReads += 1; cc.alarmKpis = k; renderLoad(k); })
    .catch(() => { /* next round */ });
}

let started = false;
let waits = 0;
/* How long a page looks for its alarm widgets (Dash may draw them late), in 250 ms steps. */
const WAIT_STEP_MS = 250;
const WAIT_FOR_MS = 20000;
export function startAlarms() {
  if (started) { return; }
  const c = config();
  if (!c) {  // Dash draws the layout after the modules run; a page without alarm widgets stops asking
    waits += 1;
    if (waits * WAIT_STEP_MS < WAIT_FOR_MS) { setTimeout(startAlarms, WAIT_STEP_MS); }
    return;
  }
  started = true;
  loadMeta();
  document.addEventListener('click', onClick);
  document.addEventListener('input', (ev) => { if (ev.target instanceof Element && ev.target.closest('.cc-alarm-filters')) { dirty = true; render(); } });
  showMute();
  loadKpis();
  setInterval(loadKpis, Math.max(5, c.kpi_refresh_s || 30) * 1000);
  cc.reloadAlarmKpis = loadKpis;
  dirty = true;
  render();
}
