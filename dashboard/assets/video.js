/* Activity wall and video tiles (layouts/activity_wall.py, widgets/video_tile.py).
 *
 * - Streams only what is on screen: a visible tile (IntersectionObserver) registers its <img> with
 *   ccLive.watchVideo, which asks the live socket for that camera's frames; a hidden one stops them.
 * - Re-orders the activity wall: every second, the unpinned tiles show the cameras with video
 *   (props.video) whose props.last_activity is most recent, read from window.ccLive.entities.camera
 *   (kept by live.js). A tile keeps its camera when that camera is still in the top set, so
 *   streams are not reopened needlessly.
 * - Pin: the button keeps a tile's camera (remembered per browser in localStorage).
 */
(function () {
  'use strict';

  var CSS = [
    '.cc-activity-grid{gap:6px;height:calc(100vh - 8vh);padding:6px;box-sizing:border-box}',
    '.cc-video-tile{position:relative;background:#05080d;border:1px solid #2b3645;overflow:hidden;min-height:120px}',
    '.cc-video-tile.cc-pinned{border-color:#f0883e}',
    '.cc-video-img{width:100%;height:100%;object-fit:contain;display:block}',
    '.cc-video-overlay{position:absolute;left:0;right:0;top:0;padding:4px 8px;font-size:2.2vh;color:#e6edf3;',
    ' background:linear-gradient(#000a,#0000);display:flex;justify-content:space-between;pointer-events:none}',
    '.cc-video-pin{position:absolute;right:6px;bottom:6px;min-height:36px;min-width:56px;font-size:16px;',
    ' background:#141c27cc;color:#e6edf3;border:1px solid #3d4b5e;border-radius:4px;cursor:pointer}',
    '.cc-video-tile.cc-pinned .cc-video-pin{background:#f0883e;color:#0b111a}'
  ].join('\n');
  var PIN_KEY = 'ccVideoPins';
  var visible = new WeakMap();
  var observer = null;

  function injectCss() {
    if (document.getElementById('cc-video-css')) { return; }
    var el = document.createElement('style');
    el.id = 'cc-video-css';
    el.textContent = CSS;
    document.head.appendChild(el);
  }

  function loadPins() {
    try { return JSON.parse(localStorage.getItem(PIN_KEY) || '{}'); } catch (e) { return {}; }
  }
  function savePins(p) { try { localStorage.setItem(PIN_KEY, JSON.stringify(p)); } catch (e) { /* private mode */ } }

  // A tile's frames come over the live socket only while the tile is on screen.
  function syncSrc(tile) {
    var img = tile.querySelector('.cc-video-img');
    if (!img || !window.ccLive || !window.ccLive.watchVideo) { return; }
    window.ccLive.watchVideo(img, visible.get(tile) && tile.dataset.camera ? tile.dataset.camera : '');
  }

  function assign(tile, id, name) {
    if (tile.dataset.camera === id) { return; }
    tile.dataset.camera = id || '';
    tile.dataset.name = name || '';
    var label = tile.querySelector('.cc-video-name');
    if (label) { label.textContent = name || id || '-'; }
    syncSrc(tile);
  }

  function setupTile(tile, pins) {
    if (tile.dataset.ccReady) { return; }
    tile.dataset.ccReady = '1';
    var idx = tile.id;
    if (pins[idx]) { assign(tile, pins[idx].id, pins[idx].name); setPinned(tile, true); }
    var btn = tile.querySelector('.cc-video-pin');
    if (btn) {
      btn.addEventListener('click', function () {
        var p = loadPins();
        var on = tile.dataset.pinned !== 'true';
        setPinned(tile, on);
        if (on && tile.dataset.camera) { p[idx] = { id: tile.dataset.camera, name: tile.dataset.name }; }
        else { delete p[idx]; }
        savePins(p);
      });
    }
    if (observer) { observer.observe(tile); } else { visible.set(tile, true); syncSrc(tile); }
  }

  function setPinned(tile, on) {
    tile.dataset.pinned = on ? 'true' : 'false';
    tile.classList.toggle('cc-pinned', on);
    var btn = tile.querySelector('.cc-video-pin');
    if (btn) { btn.setAttribute('aria-pressed', on ? 'true' : 'false'); btn.textContent = on ? 'Pinned' : 'Pin'; }
  }

  function ranked() {
    var live = window.ccLive && window.ccLive.entities && window.ccLive.entities.camera;
    if (!live || typeof live.forEach !== 'function') { return null; }
    var list = [];
    live.forEach(function (u, id) {
      var p = (u && u.props) || {};
      if (p.video) { list.push({ id: id, name: p.name || id, t: p.last_activity || 0 }); }
    });
    list.sort(function (a, b) { return b.t - a.t; });
    return list;
  }

  function ageText(t) {
    if (!t) { return ''; }
    var s = Math.max(0, Math.round((Date.now() - t) / 1000));
    return s < 60 ? s + ' s ago' : Math.round(s / 60) + ' min ago';
  }

  function reorder() {
    var grid = document.getElementById('cc-activity-grid');
    var tiles = grid ? Array.prototype.slice.call(grid.querySelectorAll('.cc-video-tile')) : [];
    var pins = loadPins();
    document.querySelectorAll('.cc-video-tile').forEach(function (t) { setupTile(t, pins); });
    var list = ranked();
    if (!grid || !list || !list.length) { return; }
    var byId = {};
    list.forEach(function (c) { byId[c.id] = c; });
    var free = tiles.filter(function (t) { return t.dataset.pinned !== 'true'; });
    var pinnedIds = tiles.filter(function (t) { return t.dataset.pinned === 'true'; })
      .map(function (t) { return t.dataset.camera; });
    var want = list.filter(function (c) { return pinnedIds.indexOf(c.id) < 0; }).slice(0, free.length);
    var wantIds = want.map(function (c) { return c.id; });
    // Tiles already showing a wanted camera keep it; the others take the remaining cameras in order.
    var kept = {};
    free.forEach(function (t) { if (wantIds.indexOf(t.dataset.camera) >= 0) { kept[t.dataset.camera] = t; } });
    var rest = want.filter(function (c) { return !kept[c.id]; });
    free.forEach(function (t) {
      if (kept[t.dataset.camera] === t) { return; }
      var c = rest.shift();
      assign(t, c ? c.id : '', c ? c.name : '');
    });
    tiles.forEach(function (t) {
      var c = byId[t.dataset.camera];
      var age = t.querySelector('.cc-video-age');
      if (age) { age.textContent = c ? ageText(c.t) : ''; }
    });
    // Most recent activity first in the grid order (pinned tiles keep their place in the ranking).
    var order = tiles.slice().sort(function (a, b) {
      var ta = (byId[a.dataset.camera] || {}).t || 0, tb = (byId[b.dataset.camera] || {}).t || 0;
      return tb - ta;
    });
    order.forEach(function (t, i) { t.style.order = String(i); });
  }

  function start() {
    injectCss();
    if ('IntersectionObserver' in window) {
      observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (e) { visible.set(e.target, e.isIntersecting); syncSrc(e.target); });
      });
    }
    reorder();
    setInterval(reorder, 1000);
    // Dash renders pages after load: pick up tiles as they appear.
    new MutationObserver(function () {
      var pins = loadPins();
      document.querySelectorAll('.cc-video-tile').forEach(function (t) { setupTile(t, pins); });
    }).observe(document.body, { childList: true, subtree: true });
  }

  if (document.readyState === 'loading') { document.addEventListener('DOMContentLoaded', start); } else { start(); }
})();
