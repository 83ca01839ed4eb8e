/* Video tiles (layouts/activity_wall.py, widgets/video_tile.py).
 *
 * - Streams only what is on screen: a visible tile (IntersectionObserver) registers its <img> with
 *   watchVideo, which asks the live socket for that camera's frames; a hidden one stops them.
 * - Re-orders the activity wall: every second, the unpinned tiles show the cameras with video
 *   (props.video) whose props.last_activity is most recent. A tile keeps its camera while that
 *   camera is still in the top set, so streams are not reopened needlessly.
 * - Pin: the button keeps a tile's camera (remembered per browser in localStorage).
 */
import { cc } from './state.js';
import { ageText } from './dom.js';
import { watchVideo } from './video.js';
import { t } from './i18n.js';

const PIN_KEY = 'ccVideoPins';
const visible = new WeakMap();
let observer = null;

function loadPins() {
  try {
    const p = JSON.parse(localStorage.getItem(PIN_KEY) || '{}');
    return p && typeof p === 'object' ? p : {};
  } catch (e) { return {}; }
}
function savePins(p) { try { localStorage.setItem(PIN_KEY, JSON.stringify(p)); } catch (e) { /* private mode */ } }

function syncSrc(tile) {
  const img = tile.querySelector('.cc-video-img');
  if (img) { watchVideo(img, visible.get(tile) && tile.dataset.camera ? tile.dataset.camera : ''); }
}

function assign(tile, id, name) {
  if (tile.dataset.camera === id) { return; }
  tile.dataset.camera = id || '';
  tile.dataset.name = name || '';
  const label = tile.querySelector('.cc-video-name');
  if (label) { label.textContent = name || id || '-'; }
  syncSrc(tile);
}

function setPinned(tile, on) {
  tile.dataset.pinned = on ? 'true' : 'false';
  tile.classList.toggle('cc-pinned', on);
  const btn = tile.querySelector('.cc-video-pin');
  if (btn) { btn.setAttribute('aria-pressed', on ? 'true' : 'false'); btn.textContent = on ? t('Pinned') : t('Pin'); }
}

function setupTile(tile, pins) {
  if (tile.dataset.ccReady) { return; }
  tile.dataset.ccReady = '1';
  const idx = tile.id;
  const pin = pins[idx];
  if (pin && typeof pin.id === 'string') { assign(tile, pin.id, String(pin.name || '')); setPinned(tile, true); }
  const btn = tile.querySelector('.cc-video-pin');
  if (btn) {
    btn.addEventListener('click', () => {
      const p = loadPins();
      const on = tile.dataset.pinned !== 'true';
      setPinned(tile, on);
      if (on && tile.dataset.camera) { p[idx] = { id: tile.dataset.camera, name: tile.dataset.name }; } else { delete p[idx]; }
      savePins(p);
    });
  }
  if (observer) { observer.observe(tile); } else { visible.set(tile, true); syncSrc(tile); }
}

function ranked() {
  const list = [];
  cc.entities.camera.forEach((u, id) => {
    const p = (u && u.props) || {};
    if (p.video) { list.push({ id, name: String(p.name || id), t: p.last_activity || 0 }); }
  });
  list.sort((a, b) => b.t - a.t);
  return list;
}

function reorder() {
  const grid = document.getElementById('cc-activity-grid');
  const pins = loadPins();
  document.querySelectorAll('.cc-video-tile').forEach((t) => setupTile(t, pins));
  const tiles = grid ? Array.from(grid.querySelectorAll('.cc-video-tile')) : [];
  const list = ranked();
  if (!grid || !list.length) { return; }
  const byId = new Map(list.map((c) => [c.id, c]));
  const free = tiles.filter((t) => t.dataset.pinned !== 'true');
  const pinnedIds = tiles.filter((t) => t.dataset.pinned === 'true').map((t) => t.dataset.camera);
  const want = list.filter((c) => pinnedIds.indexOf(c.id) < 0).slice(0, free.length);
  const wantIds = want.map((c) => c.id);
  // Tiles already showing a wanted camera keep it; the others take the remaining cameras in order.
  const kept = new Map();
  free.forEach((t) => { if (wantIds.indexOf(t.dataset.camera) >= 0) { kept.set(t.dataset.camera, t); } });
  const rest = want.filter((c) => !kept.has(c.id));
  free.forEach((t) => {
    if (kept.get(t.dataset.camera) === t) { return; }
    const c = rest.shift();
    assign(t, c ? c.id : '', c ? c.name : '');
  });
  tiles.forEach((t) => {
    const c = byId.get(t.dataset.camera);
    const age = t.querySelector('.cc-video-age');
    if (age) { age.textContent = c && c.t ? ageText(c.t) : ''; }
  });
  // Most recent activity first in the grid order.
  const order = tiles.slice().sort((a, b) => ((byId.get(b.dataset.camera) || {}).t || 0) -
    ((byId.get(a.dataset.camera) || {}).t || 0));
  order.forEach((t, i) => { t.style.order = String(i); });
}

export function startTiles() {
  if ('IntersectionObserver' in window) {
    observer = new IntersectionObserver((entries) => {
      entries.forEach((e) => { visible.set(e.target, e.isIntersecting); syncSrc(e.target); });
    });
  }
  reorder();
  setInterval(reorder, 1000);
  // Dash renders pages after load: pick up tiles as they appear.
  new MutationObserver(() => {
    const pins = loadPins();
    document.querySelectorAll('.cc-video-tile').forEach((t) => setupTile(t, pins));
  }).observe(document.body, { childList: true, subtree: true });
}
