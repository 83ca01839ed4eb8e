/* Entry point of the live page code (an ES module, loaded by the page index in
 * dashboard/app_factory.py). Each imported module has one job:
 *   i18n.js      the page's language: message catalogue JSON, t(key, params), KST times
 *   registry.js  the layer registry JSON (colours, vocabularies, popup fields)
 *   state.js     the shared state, exposed as window.ccLive (the test surface)
 *   map.js       Leaflet hooks          markers.js  layer renderers     popups.js  marker popups
 *   store.js     entity store           events.js   event list + rings  panels.js  status, KPIs, health
 *   socket.js    the live socket        video.js    video frames        tiles.js   video tiles
 *   alarms.js    alarm banner, list, actions, map shapes, operator load, audible cue
 *   replay.js    /replay    cmdreplay.js  /commander?t= (both on timeline.js: the picture "as of T")
 *   suptrends.js the supervisor's trend panels (bus delays, alarm rates; Plotly, loaded when shown)
 */
import { cc } from './state.js';
import { hookLeaflet } from './map.js';
import { onGroup } from './store.js';
import { fadeSweep, loadRoutes } from './markers.js';
import { onMapForEvents, pruneRings, renderEvents, onEventClick } from './events.js';
import { renderPanels, renderHealth, onToggleClick } from './panels.js';
import { syncVideo } from './video.js';
import { startTiles } from './tiles.js';
import { connect } from './socket.js';
import { reg } from './registry.js';
import { lang } from './i18n.js';
import { startIncidents } from './incident.js';
import './wallpane.js'; // the incident pane of /wall/<n> (starts itself)
import { startAlarms, tick as alarmTick } from './alarms.js';
import { startReplay } from './replay.js';
import { isCommanderReplay, startCommanderReplay } from './cmdreplay.js';
import { startSupervisorTrends } from './suptrends.js';

cc.registry = reg;
cc.lang = lang;

hookLeaflet(onMapForEvents, (layer, group) => {
  if (layer === 'routes') { loadRoutes(group); } else { onGroup(layer, group); }
});

document.addEventListener('click', (ev) => { if (!onEventClick(ev)) { onToggleClick(ev); } });

// Panels refresh once a second; a page that appears later (navigation) fills at the next tick.
setInterval(() => { renderPanels(); renderEvents(); syncVideo(); }, 1000);
setInterval(fadeSweep, 5000);
setInterval(alarmTick, 1000);
setInterval(pruneRings, 60000);
setInterval(renderHealth, 5000);
setTimeout(renderHealth, 1500);

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', startTiles);
} else {
  startTiles();
}
// /replay and /commander?t= show the past only: no live socket, alarms or incidents there.
if (location.pathname === '/replay') {
  startReplay();
} else if (isCommanderReplay()) {
  startCommanderReplay();
} else if (location.pathname !== '/login') {
  startAlarms(); connect(); startIncidents();
}
if (location.pathname === '/supervisor') { startSupervisorTrends(); }
