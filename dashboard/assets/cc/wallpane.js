/* The incident pane of a wall screen (layouts/wall.py #cc-wall-pane, docs/incidents.md "Wall panes"):
 * an incident sent to this wall ("send to wall", or a bell's automatic incident) with its title,
 * priority and its 3 nearest cameras live, until it is cleared or the incident is resolved.
 *
 * The pane is read from GET /api/walls/<n>/pane every 2 s: the wall pages get no incident messages
 * over the live socket (the gateway relays map layers, events and alarms, not the incident channel),
 * and one small read per wall screen every 2 s costs the web nothing.
 * Cameras play through watchVideo (video.js), the same live path as every tile, audited by the gateway
 * per view. The tiles are not .cc-video-tile, so the activity wall's reordering (tiles.js) leaves them.
 * Every text from the server is placed with textContent (dom.js el): titles are user input.
 */
import { el } from './dom.js';
import { t } from './i18n.js';
import { watchVideo } from './video.js';
import { cc } from './state.js';

const N_ = (s) => s;
const POLL_MS = 2000;
const TILES = 3;
const PRIORITY_WORD = { critical: N_('Critical'), high: N_('High'), medium: N_('Medium'), low: N_('Low') };
const ST = { sig: null, last: 0, loading: false, wall: null };

function str(v, max) { return v === null || v === undefined ? '' : String(v).slice(0, max); }
function box() { return document.getElementById('cc-wall-pane'); }

function cameraName(id) {
  const u = cc.entities.camera && cc.entities.camera.get(id);
  return str((u && u.props && u.props.name) || id, 120);
}

function stop(node) { node.querySelectorAll('img').forEach((img) => watchVideo(img, '')); }

function render(node, pane) {
  const sig = pane ? JSON.stringify([pane.incident, pane.title, pane.priority, pane.cameras]) : '';
  if (sig === ST.sig) { return; }
  ST.sig = sig;
  stop(node);
  while (node.firstChild) { node.removeChild(node.firstChild); }
  node.hidden = !pane;
  if (!pane) { delete node.dataset.ccIncident; node.dataset.ccCameras = ''; return; }
  const cams = (Array.isArray(pane.cameras) ? pane.cameras : []).slice(0, TILES)
    .map((c) => str(c && c.camera_id, 64)).filter(Boolean);
  node.dataset.ccIncident = String(Number(pane.incident) || 0);
  node.dataset.ccCameras = cams.join(' ');
  const prio = str(pane.priority, 16);
  node.append(el('h2', { className: 'cc-panel-title cc-wall-pane-title' }, [
    el('span', { className: 'cc-inc-prio cc-prio-' + prio, text: t(PRIORITY_WORD[prio] || 'Medium') }),
    el('span', { text: ' #' + (Number(pane.incident) || 0) + ' ' + str(pane.type_label, 120) + ' · ' + str(pane.title, 200) }),
  ]));
  const grid = el('div', { className: 'cc-inc-cams cc-wall-pane-cams' });
  node.append(grid); // first: video.js forgets an <img> that is not in the document
  cams.forEach((id) => {
    const img = el('img', { className: 'cc-video-img cc-inc-video-img', alt: '' });
    grid.append(el('div', { className: 'cc-inc-cam', 'data-cc-camera': id }, [img, el('div', { className: 'cc-inc-cam-name', text: cameraName(id) })]));
    watchVideo(img, id);
  });
  if (!cams.length) { grid.append(el('div', { className: 'cc-inc-cam-name', text: t('No camera near this incident') })); }
}

async function poll(node, wall) {
  ST.loading = true;
  ST.last = Date.now();
  try {
    const r = await fetch('/api/walls/' + wall + '/pane', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
    if (r.status === 401 || r.status === 403 || r.status === 404) { render(node, null); return; }
    if (!r.ok) { return; } // keep what is shown through a hiccup
    const data = await r.json();
    if (box() === node) { render(node, data && typeof data.pane === 'object' ? data.pane : null); }
  } catch (e) {
    /* no answer: keep the pane; the next poll tries again */
  } finally {
    ST.loading = false;
  }
}

function loop() {
  const node = box();
  if (!node || cc.sessionEnded) { ST.sig = null; return; }
  const screen = node.closest('[data-cc-screen]');
  const wall = screen ? Number(screen.dataset.ccScreen) : 0;
  if (!(wall >= 1 && wall <= 9999)) { return; }
  if (wall !== ST.wall) { ST.wall = wall; ST.sig = null; ST.last = 0; }
  if (!ST.loading && Date.now() - ST.last >= POLL_MS) { poll(node, wall); }
}

if (location.pathname !== '/login') { setInterval(loop, 250); }
