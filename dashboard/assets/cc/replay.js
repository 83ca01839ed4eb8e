/* The replay page (/replay, layouts/replay.py): the picture at a moment T from /api/history/replay,
 * then the changes from /api/history/steps while playing, fed into the same store and markers the live
 * pages use. This page opens no live socket (main.js starts this instead), so no live frame mixes in.
 * The URL /replay?t=<epoch ms> opens the same moment; the shown time is KST (i18n.js). */
import { cc } from './state.js';
import { LAYERS } from './registry.js';
import { applyUpdate, onSnapshot } from './store.js';
import { addEvents, clearEvents } from './events.js';
import { alarmText } from './alarms.js';
import { el } from './dom.js';
import { t, timeKst, dateTimeKst } from './i18n.js';

const DAY_MS = 24 * 3600 * 1000;
const TICK_MS = 1000;
const SPEEDS = [1, 2, 4, 8];
const MAX_LIST = 200;  // rows drawn per list

const rp = { t: 0, speed: 0, busy: false, alarms: new Map(), incidents: new Map(), closed: [], loads: 0, steps: 0 };
cc.replay = rp;  // test surface: t (the shown moment), speed (0 = paused), loads, steps

function bounds() { const now = Date.now(); return [now - DAY_MS, now]; }
function clamp(ms) { const [lo, hi] = bounds(); return Math.min(hi, Math.max(lo, Math.round(ms))); }

function fromUrl() {
  const v = Number(new URLSearchParams(location.search).get('t'));
  return Number.isFinite(v) && v > 0 ? clamp(v) : clamp(Date.now() - 5 * 60 * 1000);
}

function getJson(url) {
  return fetch(url, { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : Promise.reject(new Error('HTTP ' + r.status))));
}

function status(text) { const s = document.getElementById('cc-replay-status'); if (s) { s.textContent = text; } }

/* The shown moment: mark, slider, link and the address bar (replaceState: no history entry per tick). */
function showTime() {
  const when = document.getElementById('cc-replay-time');
  if (when) {
    when.textContent = t('{date} ({time} KST)', { date: dateTimeKst(rp.t), time: timeKst(rp.t) });
    when.setAttribute('data-cc-t', String(rp.t));
  }
  const href = '/replay?t=' + rp.t;
  const link = document.getElementById('cc-replay-link');
  if (link) { link.setAttribute('href', href); }
  const slider = document.getElementById('cc-replay-slider');
  if (slider && document.activeElement !== slider) {
    const [lo, hi] = bounds();
    slider.min = String(lo); slider.max = String(hi); slider.value = String(rp.t);
  }
  history.replaceState(null, '', href);
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
      return el('li', { className: 'cc-event' }, [el('span', { className: 'cc-event-time', text: timeKst(u.ts) }),
        el('span', { className: 'cc-event-title', text: String(p.title || u.id) })]);
    }));
  }
}

/* The whole picture at T: replaces every layer, the event list and the two lists. */
function load(ms) {
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
    addEvents(s.events || []);
    (s.alarms || []).forEach(noteAlarm);
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
  const root = document.getElementById('cc-replay');
  try { rp.closed = JSON.parse((root && root.getAttribute('data-cc-closed')) || '[]'); } catch (e) { rp.closed = []; }
  if (!Array.isArray(rp.closed)) { rp.closed = []; }
  load(rp.t);
}

export function startReplay() {
  rp.t = fromUrl();
  document.addEventListener('click', onClick);
  setInterval(step, TICK_MS);
  mount();
}
