/* The commander's replay mode: /commander?t=<epoch ms> (layouts/commander.py). The tablet page as it
 * was at T: map, open incidents, open alarms, event list and the event snapshots at T (camera tiles of
 * replay), through the shared cc/timeline.js (the /replay page uses the same). The live incident
 * panel, drone video and connection status are hidden, the REPLAY bar shown; main.js opens no live
 * socket, alarm or incident polling on this page. "Back to live" is a plain link to /commander: a
 * full page load, so no replayed entity survives into the live picture. */
import { cc } from './state.js';
import { startTimeline } from './timeline.js';

export function isCommanderReplay() {
  return location.pathname === '/commander' && new URLSearchParams(location.search).has('t');
}

function showReplayParts() {
  const root = document.getElementById('cc-commander');
  if (root) { root.classList.add('cc-replaying'); }
  document.querySelectorAll('.cc-replay-only').forEach((n) => { n.hidden = false; });
  document.querySelectorAll('.cc-live-only, #cc-live-status').forEach((n) => { n.hidden = true; });
}

/* Tapping an incident of the list at T: the map centred on it, close enough to see its cameras. */
function locate(u) {
  if (u && cc.map && typeof u.lat === 'number' && typeof u.lon === 'number') {
    cc.map.setView([u.lat, u.lon], Math.max(cc.map.getZoom(), 16), { animate: false });
  }
}

export function startCommanderReplay() {
  startTimeline('/commander', { mounted: showReplayParts, locate });
}
