/* The replay page (/replay, layouts/replay.py): the picture at a moment T and play from there. The
 * shared part (load, steps, slider, speeds, lists, link) is cc/timeline.js, which the commander's
 * replay mode (cc/cmdreplay.js) uses too. This page opens no live socket (main.js starts this
 * instead), so no live frame mixes in. The URL /replay?t=<epoch ms> opens the same moment. */
import { cc } from './state.js';
import { startTimeline } from './timeline.js';

/* An incident in the open list: centre the map on it. */
function locate(u) {
  if (u && cc.map && typeof u.lat === 'number' && typeof u.lon === 'number') {
    cc.map.setView([u.lat, u.lon], Math.max(cc.map.getZoom(), 15), { animate: false });
  }
}

export function startReplay() {
  startTimeline('/replay', { locate });
}
