/* Incidents on the commander's tablet (layouts/commander.py) and the supervisor's board
 * (layouts/supervisor.py): fills #cc-incidents from the incidents API (docs/incidents.md).
 *
 * - The list of open incidents (queue order from the server); tapping one opens it (#incident=<id>).
 * - One incident: the map zoomed to it with its cameras, the first three nearest cameras live (the
 *   video tiles' socket path, audited by the gateway per view), the SOP checklist with step timers,
 *   the timeline, and the actions (status, assign, drone, share to 112/119, comment) as POSTs with
 *   the session's form token.
 * - Agency links (the `share` right): the incident's links to 112/119 with their status and a revoke
 *   button each (a revoked link is refused at once, its streams end within seconds), and a button to
 *   make one (its URL shown once, in the message line: the list never shows it).
 * - Freshness: the "incident" map layer arrives over the live socket; a change there (checked every
 *   100 ms, cheap) re-reads the API at once, and a slow poll covers the rest.
 * Every text from the server is placed with textContent (dom.js el): titles and comments are user input.
 */
import { cc } from './state.js';
import { el, num } from './dom.js';
import { t, timeKst } from './i18n.js';
import { watchVideo } from './video.js';
import { layerColor } from './registry.js';

/* A message id for the catalogue (pybabel extracts N_ and t), translated where it is shown. */
const N_ = (s) => s;
const POLL_MS = 3000;
const MAX_ITEMS = 200;
/* Display caps on server text, set at the server's own limits so nothing valid is cut: a name or
 * label (incidents/config.py Label, 120) and a longer text (a step's detail, incidents/sop.py, 1000). */
const LINE_CHARS = 120;
const TEXT_CHARS = 1000;
const ST = { meta: null, list: [], id: null, doc: null, sig: '', lastPoll: 0, busy: false, overlay: null, mode: '' };

const PRIORITY_WORD = { critical: N_('Critical'), high: N_('High'), medium: N_('Medium'), low: N_('Low') };
const NEXT = {
  new: ['in_progress', 'on_hold', 'resolved'], in_progress: ['on_hold', 'resolved'],
  on_hold: ['in_progress', 'resolved'], resolved: ['closed', 'in_progress'], closed: [],
};
const STATE_WORD = { new: N_('New'), in_progress: N_('In progress'), on_hold: N_('On hold'), resolved: N_('Resolved'), closed: N_('Closed') };
const STEP_WORD = { waiting: N_('Waiting'), open: N_('Open'), done: N_('Done'), skipped: N_('Skipped'), 'n/a': N_('Not applicable') };

const LINK_WORD = { active: N_('Active'), expired: N_('Expired'), revoked: N_('Revoked') };
const MAX_LINKS = 50;
const LINKS_POLL_MS = 20000; // a link's expiry is shown from its time; the list is re-read on each change
const LINKS = { sig: '', at: 0, list: [] };

function root() { return document.getElementById('cc-incidents'); }
function $(id) { return document.getElementById(id); }
function str(v, max) { return v === null || v === undefined ? '' : String(v).slice(0, max || TEXT_CHARS); }
function clear(node) { while (node && node.firstChild) { node.removeChild(node.firstChild); } }

async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-CSRF-Token'] = (ST.meta && ST.meta.csrf) || '';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  if (r.status === 401) { ST.signedOut = true; }
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  return { ok: r.ok, status: r.status, data: data || {} };
}

function say(text, bad) {
  const m = $('cc-inc-msg');
  if (m) { m.textContent = text; m.classList.toggle('cc-inc-bad', !!bad); }
}

async function post(path, body, doneText) {
  if (ST.busy) { return; }
  ST.busy = true;
  try {
    const r = await api(path, body);
    if (r.ok) {
      say(doneText || t('Done'));
      if (r.data && r.data.id === ST.id) { ST.doc = null; }
      await refresh(true);
    } else {
      say(t('Refused: {why}', { why: str(r.data.error || r.status) }), true);
    }
  } catch (e) {
    say(t('No answer from the server'), true);
  } finally {
    ST.busy = false;
  }
}

/* ---- the list ---------------------------------------------------------------------------------- */
function typeLabel(inc) { return str(inc.type_label || inc.type, LINE_CHARS); }

function renderList() {
  const ul = $('cc-inc-list');
  if (!ul) { return; }
  clear(ul);
  const items = ST.list.slice(0, MAX_ITEMS);
  const none = $('cc-inc-none');
  if (none) { none.hidden = items.length > 0; }
  items.forEach((inc) => {
    const id = num(inc.id, 0);
    const btn = el('button', { type: 'button', className: 'cc-inc-item cc-inc-btn', 'data-cc-incident': id }, [
      el('span', { className: 'cc-inc-prio cc-prio-' + str(inc.priority, 16), text: t(PRIORITY_WORD[inc.priority] || 'Medium') }),
      el('span', { className: 'cc-inc-item-title', text: '#' + id + ' ' + typeLabel(inc) + ' · ' + str(inc.title, 120) }),
      el('span', { className: 'cc-inc-item-meta',
        text: [t(STATE_WORD[inc.state] || 'New'), str(inc.district_name || inc.district, 40),
          inc.opened_ts ? timeKst(inc.opened_ts) : ''].filter(Boolean).join(' · ') }),
    ]);
    // The nearest cameras at a glance (a bell's three), before the incident is opened.
    const cams = (Array.isArray(inc.cameras) ? inc.cameras : []).slice(0, 3).map((c) => str(c.camera_id, 64));
    btn.dataset.ccCameras = cams.join(' ');
    if (cams.length) { btn.append(el('span', { className: 'cc-inc-item-cams', text: t('Cameras') + ': ' + cams.map(cameraName).join(', ') })); }
    if (num(inc.level, 0) > 0) { btn.classList.add('cc-inc-overdue'); }
    ul.append(el('li', null, [btn]));
  });
  // The supervisor's board: the same incidents by state.
  document.querySelectorAll('#cc-inc-board [data-cc-board]').forEach((col) => {
    clear(col);
    items.filter((inc) => inc.state === col.dataset.ccBoard).forEach((inc) => {
      col.append(el('li', { className: 'cc-inc-board-item' + (num(inc.level, 0) > 0 ? ' cc-inc-overdue' : ''),
        text: '#' + num(inc.id, 0) + ' ' + typeLabel(inc) + ' · ' + str(inc.owner || t('no owner'), LINE_CHARS) }));
    });
  });
}

/* ---- one incident ------------------------------------------------------------------------------ */
function actionButton(label, fn, extra) {
  const b = el('button', { type: 'button', className: 'cc-inc-btn cc-inc-act' + (extra ? ' ' + extra : ''), text: label });
  b.addEventListener('click', fn);
  return b;
}

function renderActions(inc) {
  const box = $('cc-inc-actions');
  if (document.activeElement && document.activeElement.id === 'cc-inc-wall') { return; } // a wall being chosen
  clear(box);
  const may = (ST.meta && ST.meta.may) || {};
  const base = '/api/incidents/' + inc.id;
  if (may.work) {
    (NEXT[inc.state] || []).forEach((s) => {
      const body = { state: s };
      if (s === 'on_hold') { body.hold_minutes = 15; }
      box.append(actionButton(t(STATE_WORD[s]), () => post(base + '/state', body), 'cc-inc-state-' + s));
    });
  }
  if (may.command && inc.state !== 'closed' && ST.meta.user) {
    box.append(actionButton(t('Assign to me'), () => post(base + '/assign', { owner: ST.meta.user })));
  }
  if (may.work && inc.state !== 'closed') {
    box.append(actionButton(t('Request drone'), () => post(base + '/drone', {}, t('Drone requested'))));
  }
  if (may.command && NEXT[inc.state] && inc.state !== 'resolved' && inc.state !== 'closed') { wallControl(box, base); }
  if (may.share && inc.state !== 'closed') {
    box.append(actionButton(t('Share with 112'), () => post(base + '/shares', { agency: '112', send: true }, t('Shared'))));
    box.append(actionButton(t('Share with 119'), () => post(base + '/shares', { agency: '119', send: true }, t('Shared'))));
  }
}

/* "Send to wall": a wall screen of config/walls.yaml (meta.walls), the pane with this incident's
 * nearest cameras goes there (wallpane.js); "Clear wall" takes it off that screen. */
function wallControl(box, base) {
  const walls = (ST.meta && ST.meta.walls && typeof ST.meta.walls === 'object') ? ST.meta.walls : {};
  const nums = Object.keys(walls).filter((k) => /^\d{1,4}$/.test(k)).slice(0, 64);
  if (!nums.length) { return; }
  if (!nums.includes(ST.wall)) { ST.wall = nums[0]; }
  const sel = el('select', { id: 'cc-inc-wall', className: 'cc-inc-btn', 'aria-label': t('Wall screen') },
    nums.map((k) => el('option', { value: k, text: k + ' · ' + str(walls[k], LINE_CHARS) })));
  sel.value = ST.wall;
  sel.addEventListener('change', () => { ST.wall = sel.value; });
  box.append(sel);
  box.append(actionButton(t('Send to wall'), () => post(base + '/wall', { wall: Number(ST.wall) }, t('Sent to wall {n}', { n: ST.wall })), 'cc-inc-wall-send'));
  box.append(actionButton(t('Clear wall'), () => post(base + '/wall', { wall: Number(ST.wall), on: false }, t('Wall cleared')), 'cc-inc-wall-clear'));
}

function renderCameras(inc) {
  const cams = Array.isArray(inc.cameras) ? inc.cameras.slice(0, 32) : [];
  for (let i = 0; i < 3; i++) {
    const tile = $('cc-inc-cam-' + i);
    if (!tile) { continue; }
    const c = cams[i];
    const id = c ? str(c.camera_id, 64) : '';
    tile.dataset.camera = id;
    const img = tile.querySelector('img');
    if (img) { watchVideo(img, id); }
    const name = tile.querySelector('.cc-inc-cam-name');
    if (name) { name.textContent = c ? (cameraName(id) + ' · ' + Math.round(num(c.distance_m, 0)) + ' m') : '-'; }
  }
  const ul = $('cc-inc-cam-list');
  clear(ul);
  cams.forEach((c) => {
    const id = str(c.camera_id, 64);
    const bits = [cameraName(id), Math.round(num(c.distance_m, 0)) + ' m'];
    if (c.in_view) { bits.push(t('in view')); }
    if (c.preset !== null && c.preset !== undefined) { bits.push(t('preset {p}', { p: str(c.preset, 64) })); }
    ul.append(el('li', { 'data-cc-camera': id, text: '#' + num(c.rank, 0) + ' ' + bits.join(' · ') }));
  });
}

function cameraName(id) {
  const u = cc.entities.camera && cc.entities.camera.get(id);
  return str((u && u.props && u.props.name) || id, LINE_CHARS);
}

function timerText(step) {
  if (step.status !== 'open' || !step.due_ts) { return ''; }
  const left = Math.round((step.due_ts - Date.now()) / 1000);
  return left >= 0 ? t('{n} s left', { n: left }) : t('overdue {n} s', { n: -left });
}

function renderSop(inc) {
  const ol = $('cc-inc-sop');
  clear(ol);
  const view = inc.sop_view;
  if (!view || !Array.isArray(view.steps)) {
    ol.append(el('li', { text: t('No SOP for this incident') }));
    return;
  }
  const may = (ST.meta && ST.meta.may) || {};
  const base = '/api/incidents/' + inc.id + '/steps/';
  view.steps.slice(0, 64).forEach((s) => {
    const li = el('li', { className: 'cc-inc-step cc-step-' + str(s.status, 16).replace('/', ''), 'data-cc-step': str(s.id, 48) }, [
      el('div', { className: 'cc-inc-step-title', text: str(s.title, 200) + (s.required ? '' : ' (' + t('optional') + ')') }),
      el('div', { className: 'cc-inc-step-state' }, [
        el('span', { text: t(STEP_WORD[s.status] || 'Waiting') }),
        el('span', { className: 'cc-inc-timer', 'data-cc-due': num(s.due_ts, 0), 'data-cc-open': s.status === 'open' ? '1' : '', text: timerText(s) }),
        s.answer ? el('span', { text: ' · ' + str(answerLabel(s), 120) }) : null,
      ]),
    ]);
    if (s.overdue) { li.classList.add('cc-inc-overdue'); }
    if (s.status === 'open' && may.work && inc.state !== 'closed') {
      const row = el('div', { className: 'cc-inc-step-actions' });
      if (s.kind === 'question') {
        if (s.question) { li.append(el('div', { className: 'cc-inc-question', text: str(s.question, TEXT_CHARS) })); }
        (Array.isArray(s.answers) ? s.answers : []).slice(0, 12).forEach((a) => {
          row.append(actionButton(str(a.label || a.value, 120), () => post(base + encodeURIComponent(s.id), { verb: 'done', answer: str(a.value, 64) })));
        });
      } else {
        row.append(actionButton(t('Done'), () => post(base + encodeURIComponent(s.id), { verb: 'done' }), 'cc-inc-step-done'));
        if (!s.required) { row.append(actionButton(t('Skip'), () => post(base + encodeURIComponent(s.id), { verb: 'skipped' }))); }
      }
      li.append(row);
    }
    ol.append(li);
  });
}

function answerLabel(s) {
  const a = (Array.isArray(s.answers) ? s.answers : []).find((x) => x && x.value === s.answer);
  return a ? a.label : s.answer;
}

const KIND_WORD = {
  created: N_('Created'), alarm_linked: N_('Alarm linked'), cameras: N_('Cameras'), state: N_('Status'), force_resolve: N_('Force-resolved'),
  assign: N_('Assigned'), priority: N_('Priority'), comment: N_('Comment'), step: N_('SOP step'), camera_added: N_('Camera added'),
  camera_removed: N_('Camera removed'), step_overdue: N_('Step overdue'), escalated: N_('Escalated'), drone_request: N_('Drone requested'),
  notify: N_('Notified'), wall: N_('Sent to wall'), wall_cleared: N_('Wall cleared'), share: N_('Share prepared'), share_sent: N_('Shared'), merged: N_('Merged'), merged_in: N_('Merged in'), sub_incident: N_('Sub-incident'),
};

function timelineText(row) {
  const d = row.data && typeof row.data === 'object' ? row.data : {};
  if (row.kind === 'step') { return str(d.title, 200) + (d.answer_label ? ' → ' + str(d.answer_label, 120) : ''); }
  if (row.kind === 'wall' || row.kind === 'wall_cleared') { return t('Wall screen') + ' ' + num(d.wall, 0); }
  if (row.kind === 'state') { return str(d.to || d.state || '', 40) + (row.text ? ' · ' + str(row.text, 500) : ''); }
  return str(row.text, 500);
}

function renderTimeline(inc) {
  const ol = $('cc-inc-timeline');
  clear(ol);
  const rows = Array.isArray(inc.timeline) ? inc.timeline.slice(-MAX_ITEMS).reverse() : [];
  rows.forEach((r) => {
    ol.append(el('li', { className: 'cc-inc-tl-' + str(r.kind, 24) }, [
      el('span', { className: 'cc-inc-tl-time', text: r.ts ? timeKst(r.ts) : '' }),
      el('span', { className: 'cc-inc-tl-kind', text: t(KIND_WORD[r.kind] || 'Note') }),
      el('span', { className: 'cc-inc-tl-actor', text: str(r.actor, LINE_CHARS) }),
      el('span', { className: 'cc-inc-tl-text', text: timelineText(r) }),
    ]));
  });
}

function drawOnMap(inc) {
  const L = window.L;
  if (!cc.map || !L) { return; }
  const lat = num(inc.lat, null), lon = num(inc.lon, null);
  if (lat === null || lon === null) { return; }
  if (ST.overlay) { cc.map.removeLayer(ST.overlay); }
  const g = L.layerGroup();
  L.circleMarker([lat, lon], { radius: 14, color: layerColor('incident'), weight: 3, fill: false, className: 'cc-inc-focus' }).addTo(g);
  (Array.isArray(inc.cameras) ? inc.cameras.slice(0, 32) : []).forEach((c) => {
    const u = cc.entities.camera && cc.entities.camera.get(str(c.camera_id, 64));
    const clat = num(c.lat, u ? u.lat : null), clon = num(c.lon, u ? u.lon : null);
    if (clat === null || clon === null) { return; }
    L.polyline([[lat, lon], [clat, clon]], { color: layerColor('camera'), weight: 2, dashArray: '4 4', interactive: false }).addTo(g);
    L.circleMarker([clat, clon], { radius: 8, color: layerColor('camera'), weight: 3, fill: false, interactive: false }).addTo(g);
  });
  g.addTo(cc.map);
  ST.overlay = g;
  if (ST.zoomedTo !== inc.id) {
    ST.zoomedTo = inc.id;
    cc.map.setView([lat, lon], 17, { animate: false });
  }
}

function renderDetail() {
  const inc = ST.doc;
  const detail = $('cc-inc-detail'), index = $('cc-inc-index');
  if (!detail || !index) { return; }
  detail.hidden = !inc;
  index.hidden = !!inc && ST.mode === 'commander';
  if (!inc) { return; }
  $('cc-inc-title').textContent = '#' + inc.id + ' ' + typeLabel(inc) + ' · ' + str(inc.title, 200);
  $('cc-inc-meta').textContent = [t(STATE_WORD[inc.state] || 'New'), t(PRIORITY_WORD[inc.priority] || 'Medium'),
    inc.owner ? t('owner {name}', { name: str(inc.owner, LINE_CHARS) }) : t('no owner'),
    str(inc.district_name || inc.district, 60), inc.opened_ts ? timeKst(inc.opened_ts) : ''].filter(Boolean).join(' · ');
  renderActions(inc);
  renderCameras(inc);
  renderSop(inc);
  renderTimeline(inc);
  renderLinks(inc);
  drawOnMap(inc);
  const r = root();
  if (r) { r.dataset.ccShown = String(inc.id); r.dataset.ccCameras = (inc.cameras || []).map((c) => str(c.camera_id, 64)).join(' '); }
}

/* ---- agency links ------------------------------------------------------------------------------- */
/* The section is made here (before the timeline's heading) so the layouts stay as they are. */
function linksBox() {
  let box = $('cc-inc-links');
  if (box) { return box; }
  const list = $('cc-inc-timeline');
  if (!list || !list.parentNode) { return null; }
  box = el('section', { id: 'cc-inc-links', className: 'cc-inc-links' }, [
    el('h3', { className: 'cc-panel-title', text: t('Agency links') }),
    el('div', { id: 'cc-inc-link-make', className: 'cc-inc-actions' }),
    el('ul', { id: 'cc-inc-link-list', className: 'cc-inc-cam-list' }),
  ]);
  const heading = list.previousElementSibling;
  list.parentNode.insertBefore(box, heading && heading.tagName === 'H3' ? heading : list);
  return box;
}

function linkStatus(link) {
  if (link.revoked_ts !== null && link.revoked_ts !== undefined) { return 'revoked'; }
  return num(link.expires_ts, 0) <= Date.now() ? 'expired' : 'active';
}

function renderLinks(inc) {
  const may = (ST.meta && ST.meta.may) || {};
  const box = may.share && inc ? linksBox() : $('cc-inc-links');
  if (!box) { return; }
  box.hidden = !(may.share && inc);
  if (box.hidden) { return; }
  const make = $('cc-inc-link-make'), ul = $('cc-inc-link-list');
  clear(make);
  if (inc.state !== 'resolved' && inc.state !== 'closed') {
    ['112', '119'].forEach((agency) => {
      make.append(actionButton(t('Link for {agency}', { agency }), () => makeLink(inc.id, agency), 'cc-inc-link-make-' + agency));
    });
  }
  clear(ul);
  LINKS.list.slice(0, MAX_LINKS).forEach((link) => {
    const key = str(link.key, 32);
    const status = linkStatus(link);
    const li = el('li', { className: 'cc-inc-link cc-inc-link-' + status, 'data-cc-link': key, 'data-cc-status': status }, [
      el('span', { text: t('{agency} · until {time} · by {name}', { agency: str(link.agency, 8),
        time: link.expires_ts ? timeKst(num(link.expires_ts, 0)) : '-', name: str(link.created_by, LINE_CHARS) }) }),
      el('span', { className: 'cc-inc-link-status', text: ' · ' + t(LINK_WORD[status]) }),
    ]);
    if (status === 'active') {
      li.append(actionButton(t('Revoke'), () => revokeLink(inc.id, key), 'cc-inc-link-revoke'));
    }
    ul.append(li);
  });
}

async function loadLinks(inc, force) {
  const may = (ST.meta && ST.meta.may) || {};
  if (!inc || !may.share) { LINKS.sig = ''; LINKS.list = []; return; }
  // Re-read when the incident changed (a link made or revoked writes its timeline), else now and then.
  const sig = inc.id + ':' + inc.updated_ts;
  if (!force && sig === LINKS.sig && Date.now() - LINKS.at < LINKS_POLL_MS) { return; }
  const r = await api('/api/incidents/' + inc.id + '/agency-links');
  if (r.ok && Array.isArray(r.data.links)) {
    LINKS.sig = sig;
    LINKS.at = Date.now();
    LINKS.list = r.data.links;
  } else if (r.status === 403 || r.status === 404) {
    LINKS.list = [];
  }
}

async function revokeLink(id, key) {
  LINKS.sig = '';
  await post('/api/incidents/' + id + '/agency-links/' + encodeURIComponent(key) + '/revoke', {}, t('Link revoked'));
}

async function makeLink(id, agency) {
  if (ST.busy) { return; }
  ST.busy = true;
  try {
    const r = await api('/api/incidents/' + id + '/agency-link', { agency });
    if (r.ok && typeof r.data.url === 'string' && r.data.url.startsWith('/agency/')) {
      LINKS.sig = '';
      await refresh(true);
      say(t('Link made (shown once): {url}', { url: location.origin + r.data.url }));
    } else {
      say(t('Refused: {why}', { why: str(r.data.error || r.status) }), true);
    }
  } catch (e) {
    say(t('No answer from the server'), true);
  } finally {
    ST.busy = false;
  }
}

/* ---- loading ----------------------------------------------------------------------------------- */
function wantedId() {
  const m = /(?:^#|&)incident=(\d{1,12})/.exec(location.hash || '');
  return m ? Number(m[1]) : null;
}

async function refresh(force) {
  const r = root();
  if (!r) { return; }
  ST.mode = r.dataset.ccIncidents || 'commander';
  if (!ST.meta) {
    const m = await api('/api/incidents/meta');
    if (!m.ok) { return; }
    ST.meta = m.data;
    ST.meta.user = r.dataset.ccUser || ST.meta.user || '';
  }
  ST.lastPoll = Date.now();
  const l = await api('/api/incidents');
  if (l.ok && Array.isArray(l.data.incidents)) { ST.list = l.data.incidents; renderList(); }
  const id = wantedId();
  ST.id = id;
  if (id === null) { ST.doc = null; renderDetail(); return; }
  const d = await api('/api/incidents/' + id);
  if (d.ok && d.data && d.data.id === id) { ST.doc = d.data; } else if (force || d.status === 404) { ST.doc = null; }
  await loadLinks(ST.doc, force);
  renderDetail();
}

function layerSig() {
  const m = cc.entities.incident;
  if (!m) { return ''; }
  let s = String(m.size);
  m.forEach((u, id) => { s += '|' + id + ':' + (u && u.ts) + ':' + (u && u.props && u.props.status); });
  return s;
}

function tickTimers() {
  document.querySelectorAll('#cc-inc-sop .cc-inc-timer').forEach((e) => {
    const due = Number(e.dataset.ccDue || 0);
    if (!due || !e.dataset.ccOpen) { return; }
    const left = Math.round((due - Date.now()) / 1000);
    e.textContent = left >= 0 ? t('{n} s left', { n: left }) : t('overdue {n} s', { n: -left });
    e.classList.toggle('cc-inc-late', left < 0);
  });
}

let started = false;
let loading = false;
function loop() {
  if (!root()) { ST.meta = null; ST.zoomedTo = null; return; }
  if (cc.sessionEnded || ST.signedOut) { return; } // nothing to read once the session has ended
  const sig = layerSig();
  if (!loading && (sig !== ST.sig || Date.now() - ST.lastPoll > POLL_MS)) {
    ST.sig = sig;
    loading = true;
    refresh(false).catch(() => {}).finally(() => { loading = false; });
  }
}

function onClick(ev) {
  const item = ev.target.closest && ev.target.closest('[data-cc-incident]');
  if (item && root() && root().contains(item)) {
    location.hash = 'incident=' + Number(item.dataset.ccIncident);
    return;
  }
  if (ev.target.id === 'cc-inc-back') {
    history.replaceState(null, '', location.pathname + location.search);
    ST.doc = null; ST.id = null; ST.zoomedTo = null;
    if (ST.overlay && cc.map) { cc.map.removeLayer(ST.overlay); ST.overlay = null; }
    renderDetail();
    refresh(false);
  }
}

function onSubmit(ev) {
  if (!ev.target || ev.target.id !== 'cc-inc-comment-form') { return; }
  ev.preventDefault();
  const box = $('cc-inc-comment');
  const text = box ? box.value.trim().slice(0, 2000) : '';
  if (!text || !ST.doc) { return; }
  post('/api/incidents/' + ST.doc.id + '/comment', { text }, t('Comment added')).then(() => { if (box) { box.value = ''; } });
}

export function startIncidents() {
  if (started) { return; }
  started = true;
  document.addEventListener('click', onClick);
  document.addEventListener('submit', onSubmit, true);
  window.addEventListener('hashchange', () => { ST.doc = null; refresh(true); });
  setInterval(loop, 100);
  setInterval(tickTimers, 1000);
  cc.incidents = ST; // the test surface (tests/test_incident_browser.py)
}
