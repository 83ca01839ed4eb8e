/* "As of T": the part of replay both replaying pages share (/replay, layouts/replay.py, and the
 * commander's replay mode, /commander?t=..., cc/cmdreplay.js). The picture at T from
 * /api/history/replay goes into the same store and markers the live pages use; playing asks
 * /api/history/steps every second for the next 1..8 s. The shown moment stays in the REPLAY mark, the
 * slider, the "link to this moment" and the address bar (path?t=<ms>), so a copied URL opens it again.
 * The page shows open alarms, open incidents and the newest event snapshots at T (the camera tiles of
 * replay: recorded video is not kept) in the elements the layout gives (ids cc-replay-*); a page adds
 * its own drawing through `hooks`. Neither page opens a live socket (main.js), so nothing live mixes in. */
import { cc } from './state.js';
import { LAYERS } from './registry.js';
import { applyUpdate, onSnapshot } from './store.js';
import { addEvents, clearEvents } from './events.js';
import { alarmText } from './alarms.js';
import { el } from './dom.js';
import { getJson } from './http.js';
import { t, timeKst, dateTimeKst } from './i18n.js';

const DAY_MS = 24 * 3600 * 1000;
const TICK_MS = 1000;
const SPEEDS = [1, 2, 4, 8];
const MAX_LIST = 200;  // rows drawn per list
const SNAPS = 3;  // snapshot tiles (the commander's "nearest cameras" are three)
const SNAPS_KEPT = 50;
const SNAPSHOT_ID = /^[A-Za-z0-9_.-]{1,128}$/;  // vision/snapshots.py SNAPSHOT_ID: anything else is a sure 404

// Test surface: t (the shown moment), speed (0 = paused), loads, steps, gap (the gaps the latest answer names).
const rp = { t: 0, speed: 0, busy: false, alarms: new Map(), incidents: new Map(), snaps: [], closed: [],
  loads: 0, steps: 0, gap: null, path: '/replay', hooks: {} };

function bounds() { const now = Date.now(); return [now - DAY_MS, now]; }
function clamp(ms) { const [lo, hi] = bounds(); return Math.min(hi, Math.max(lo, Math.round(ms))); }

/* ?t=<epoch ms>; anything else (no t, t=now, junk) opens five minutes ago. */
export function momentFromUrl() {
  const v = Number(new URLSearchParams(location.search).get('t'));
  return Number.isFinite(v) && v > 0 ? clamp(v) : clamp(Date.now() - 5 * 60 * 1000);
}


function status(text) { const s = document.getElementById('cc-replay-status'); if (s) { s.textContent = text; } }

/* The shown moment: mark, slider, link and the address bar (replaceState: no history entry per tick). */
function showTime() {
  const when = document.getElementById('cc-replay-time');
  if (when) {
    when.textContent = t('{date} ({time} KST)', { date: dateTimeKst(rp.t), time: timeKst(rp.t) });
    when.setAttribute('data-cc-t', String(rp.t));
  }
  const href = rp.path + '?t=' + rp.t;
  const link = document.getElementById('cc-replay-link');
  if (link) { link.setAttribute('href', href); }
  const slider = document.getElementById('cc-replay-slider');
  if (slider && document.activeElement !== slider) {
    const [lo, hi] = bounds();
    slider.min = String(lo); slider.max = String(hi); slider.value = String(rp.t);
  }
  history.replaceState(null, '', href);
}

/* Gaps in the recording (history/queries.py gaps_between: stream entries trimmed before the writer
 * read them): the answer's `gaps`, [{stream, from, to, entries}], those containing T (a picture) or
 * overlapping the step just played. Shown beside the time while the latest answer names any. */
const N_ = (x) => x;  // a message id for the catalogue (pybabel extracts N_), translated where shown
const GAP_STREAM = { updates: N_('map updates'), events: N_('events'), alarms: N_('alarm changes') };
const MAX_GAPS_SHOWN = 3;

function gapText(g) {
  const what = t(Object.prototype.hasOwnProperty.call(GAP_STREAM, g.stream) ? GAP_STREAM[g.stream] : N_('data'));
  const n = typeof g.entries === 'number' && isFinite(g.entries) ? g.entries : null;
  return n === null ? t('{what} not recorded from {from} to {to}', { what, from: timeKst(g.from), to: timeKst(g.to) })
    : t('{what} not recorded from {from} to {to} ({n} lost)', { what, from: timeKst(g.from), to: timeKst(g.to), n });
}

function showGap(answer) {
  const list = (answer && Array.isArray(answer.gaps) ? answer.gaps : [])
    .filter((g) => g && typeof g === 'object' && Number.isFinite(g.from) && Number.isFinite(g.to))
    .map((g) => ({ stream: String(g.stream), from: g.from, to: g.to, entries: g.entries }));
  rp.gap = list.length ? list : null;
  const box = document.getElementById('cc-replay-gap');
  if (!box) { return; }
  box.hidden = !list.length;
  box.textContent = !list.length ? '' : t('Gap in the recording: the picture may be incomplete') + ' - '
    + list.slice(0, MAX_GAPS_SHOWN).map(gapText).join('; ') + (list.length > MAX_GAPS_SHOWN ? '; ...' : '');
}

function isOpen(inc) { return !rp.closed.includes((inc.props || {}).status); }

function noteAlarm(a) {
  if (!a || typeof a !== 'object' || typeof a.id !== 'number') { return; }
  const old = rp.alarms.get(a.id);
  if (old && old.updated_ts > a.updated_ts) { return; }
  if (a.state === 'NORM') { rp.alarms.delete(a.id); } else { rp.alarms.set(a.id, a); }
}

function noteIncident(u) {
  if (!u || u.layer !== 'incident' || typeof u.id !== 'string') { return; }
  if (u.gone || !isOpen(u)) { rp.incidents.delete(u.id); } else { rp.incidents.set(u.id, u); }
}

/* Events oldest first: the ones with a snapshot the server can hold, newest first, at most SNAPS_KEPT. */
function noteSnaps(events) {
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (e && typeof e.snapshot === 'string' && SNAPSHOT_ID.test(e.snapshot) && typeof e.ts === 'number') {
      rp.snaps.unshift(e);
    }
  }
  if (rp.snaps.length > SNAPS_KEPT) { rp.snaps.length = SNAPS_KEPT; }
}

function renderSnaps() {
  const box = document.getElementById('cc-replay-snaps');
  if (!box) { return; }
  const shown = rp.snaps.slice(0, SNAPS);
  const sig = shown.map((e) => e.snapshot).join('|');
  if (box.getAttribute('data-cc-sig') === sig) { return; }  // no reload of the same images each tick
  box.setAttribute('data-cc-sig', sig);
  if (!shown.length) {
    box.replaceChildren(el('p', { className: 'cc-replay-none', text: t('No camera snapshots before this moment') }));
    return;
  }
  box.replaceChildren(...shown.map((e) => el('figure', { className: 'cc-replay-snap', 'data-cc-snapshot': e.snapshot }, [
    el('img', { className: 'cc-replay-snap-img', alt: t('snapshot'), loading: 'lazy',
      src: '/api/snapshots/' + encodeURIComponent(e.snapshot) + '.jpg' }),
    el('figcaption', { text: timeKst(e.ts) + ' ' + String(e.title || e.entity || '').slice(0, 120) })])));
}

function renderLists() {
  const al = document.getElementById('cc-replay-alarms');
  if (al) {
    al.replaceChildren(...[...rp.alarms.values()].slice(0, MAX_LIST).map((a) => el('li', { className: 'cc-event' },
      [el('span', { className: 'cc-event-time', text: timeKst(a.active_since || a.updated_ts || rp.t) }),
        el('span', { className: 'cc-event-title', text: String(a.state) + ' ' + alarmText(a) })])));
  }
  const inc = document.getElementById('cc-replay-incidents');
  if (inc) {
    inc.replaceChildren(...[...rp.incidents.values()].slice(0, MAX_LIST).map((u) => {
      const p = u.props || {};
      // A button on the tablet: tapping it centres the map on the incident (data-cc-locate).
      return el('li', { className: 'cc-event cc-replay-incident', 'data-cc-locate': u.id, tabindex: 0 },
        [el('span', { className: 'cc-event-time', text: timeKst(u.ts) }),
          el('span', { className: 'cc-event-title', text: String(p.title || u.id).slice(0, 200) })]);
    }));
  }
  renderSnaps();
  if (rp.hooks.render) { rp.hooks.render(rp); }
}

/* The whole picture at T: replaces every layer, the event list and the lists. */
export function load(ms) {
  rp.t = clamp(ms);
  rp.busy = true;
  showTime();
  status(t('Loading...'));
  const asked = rp.t;
  return getJson('/api/history/replay?t=' + asked).then((pic) => {
    if (asked !== rp.t) { return; }  // the slider moved on meanwhile
    const u = [];
    LAYERS.forEach((layer) => { (((pic.layers || {})[layer]) || []).forEach((x) => u.push(x)); });
    clearEvents();
    const events = Array.isArray(pic.events) ? pic.events.slice().reverse() : [];  // oldest first
    onSnapshot({ layers: LAYERS, u, e: events });
    cc.eventsChanged = true;
    rp.alarms = new Map();
    (pic.alarms || []).forEach(noteAlarm);
    rp.incidents = new Map();
    (pic.incidents || []).forEach(noteIncident);
    rp.snaps = [];
    noteSnaps(events);
    showGap(pic);
    renderLists();
    rp.loads += 1;
    status('');
  }).catch(() => { status(t('history unavailable')); rp.speed = 0; showSpeed(); })
    .finally(() => { rp.busy = false; });
}

/* One play tick: the changes in (t, t + speed s], applied oldest first. */
function step() {
  if (!rp.speed || rp.busy) { return; }
  const from = rp.t, to = Math.min(Date.now(), from + rp.speed * TICK_MS);
  if (to <= from) { rp.speed = 0; showSpeed(); return; }
  rp.busy = true;
  getJson('/api/history/steps?from=' + from + '&to=' + to).then((s) => {
    if (rp.t !== from) { return; }  // a jump happened meanwhile
    (s.updates || []).forEach((u) => { applyUpdate(u); noteIncident(u); });
    const events = Array.isArray(s.events) ? s.events : [];
    addEvents(events);
    noteSnaps(events);
    (s.alarms || []).forEach(noteAlarm);
    showGap(s);
    rp.t = to;
    rp.steps += 1;
    showTime();
    renderLists();
  }).catch(() => { status(t('history unavailable')); rp.speed = 0; showSpeed(); })
    .finally(() => { rp.busy = false; });
}

function showSpeed() {
  document.querySelectorAll('[data-cc-speed]').forEach((b) => {
    b.setAttribute('aria-pressed', Number(b.getAttribute('data-cc-speed')) === rp.speed ? 'true' : 'false');
  });
}

function onClick(ev) {
  const target = ev.target instanceof Element ? ev.target : null;
  const b = target && target.closest('[data-cc-speed]');
  if (b) {
    const s = Number(b.getAttribute('data-cc-speed'));
    rp.speed = SPEEDS.includes(s) ? s : 0;
    showSpeed();
  } else if (target && target.closest('#cc-replay-pause')) {
    rp.speed = 0;
    showSpeed();
  } else if (target && target.closest('[data-cc-locate]') && rp.hooks.locate) {
    rp.hooks.locate(rp.incidents.get(target.closest('[data-cc-locate]').getAttribute('data-cc-locate')));
  }
}

/* Dash draws the layout after the modules run: wait for it, then build the slider and load T. */
function mount() {
  const box = document.getElementById('cc-replay-slider-box');
  if (!box) { setTimeout(mount, 100); return; }
  const [lo, hi] = bounds();
  const slider = el('input', { type: 'range', id: 'cc-replay-slider', min: lo, max: hi, step: 1000,
    value: rp.t, 'aria-label': t('Moment shown (last 24 hours)') });
  slider.addEventListener('change', () => { rp.speed = 0; showSpeed(); load(Number(slider.value)); });
  slider.style.width = '100%';
  box.replaceChildren(slider);
  const root = document.querySelector('[data-cc-closed]');
  try { rp.closed = JSON.parse((root && root.getAttribute('data-cc-closed')) || '[]'); } catch (e) { rp.closed = []; }
  if (!Array.isArray(rp.closed)) { rp.closed = []; }
  if (rp.hooks.mounted) { rp.hooks.mounted(rp); }
  load(rp.t);
}

/* path: where "link to this moment" points (/replay or /commander); hooks: {mounted, render, locate}. */
export function startTimeline(path, hooks) {
  rp.path = path;
  rp.hooks = hooks || {};
  rp.t = momentFromUrl();
  cc.replay = rp;
  document.addEventListener('click', onClick);
  setInterval(step, TICK_MS);
  mount();
  return rp;
}
