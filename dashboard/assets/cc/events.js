/* Events: the list beside the map and rings on the map. Built as DOM nodes; the severity badge's
 * colour comes from the registry. Clicking (or tapping) an event flies the map to it. */
import { cc } from './state.js';
import { el, timeKst } from './dom.js';
import { t, eventText } from './i18n.js';
import { severityColor, severityLabel, isAlarmSeverity } from './registry.js';

const MAX_SHOWN = 40;
const MAX_KEPT = 500;
const RING_MS = 30 * 60 * 1000;
const SNAPSHOTS_SHOWN = 6;

function ring(e) {
  if (!cc.eventRings || Date.now() - e.ts > RING_MS || !isAlarmSeverity(e.severity)) { return; }
  const r = window.L.circleMarker([e.lat, e.lon], { radius: 13, color: severityColor(e.severity), weight: 3,
    fill: false, interactive: false });
  r.ccTs = e.ts;
  cc.eventRings.addLayer(r);
}

export function onMapForEvents(map) {
  // Recent events as rings on the map (not a feed layer, so not in the layer control).
  cc.eventRings = window.L.layerGroup().addTo(map);
  cc.events.forEach(ring);
}

export function pruneRings() {
  if (!cc.eventRings) { return; }
  cc.eventRings.eachLayer((r) => { if (Date.now() - r.ccTs > RING_MS) { cc.eventRings.removeLayer(r); } });
}

export function clearEvents() {
  cc.events = [];
  if (cc.eventRings) { cc.eventRings.clearLayers(); }
}

/* Oldest first, as the gateway sends them: the newest ends on top. */
export function addEvents(list) {
  if (!list || !list.length) { return; }
  for (let i = 0; i < list.length; i++) { cc.events.unshift(list[i]); ring(list[i]); }
  if (cc.events.length > MAX_KEPT) { cc.events.length = MAX_KEPT; }
  cc.eventsChanged = true;
}

function item(e, i) {
  const sev = el('span', { className: 'cc-event-sev', text: severityLabel(e.severity).toLocaleUpperCase() });
  sev.style.background = severityColor(e.severity);
  const li = el('li', { className: 'cc-event', 'data-cc-event': i, tabindex: 0, 'data-cc-severity': e.severity },
    [el('span', { className: 'cc-event-time', text: timeKst(e.ts) }), sev,
      el('span', { className: 'cc-event-title', text: eventText(e) })]);
  // Only a name the server can hold (vision/snapshots.py SNAPSHOT_ID): anything else is a sure 404,
  // an error in the console of every page showing the event.
  if (typeof e.snapshot === 'string' && /^[A-Za-z0-9_.-]{1,128}$/.test(e.snapshot) && i < SNAPSHOTS_SHOWN) {
    li.append(el('img', { className: 'cc-event-snap', alt: t('snapshot'), loading: 'lazy',
      src: '/api/snapshots/' + encodeURIComponent(e.snapshot) + '.jpg' }));
  }
  return li;
}

export function renderEvents() {
  const ul = document.getElementById('cc-events');
  if (!ul || (!cc.eventsChanged && ul.ccFilled)) { return; }
  ul.replaceChildren(...cc.events.slice(0, MAX_SHOWN).map(item));
  ul.ccFilled = true;
  cc.eventsChanged = false;
}

export function onEventClick(ev) {
  const li = ev.target.closest && ev.target.closest('[data-cc-event]');
  if (!li || !cc.map) { return false; }
  const e = cc.events[Number(li.dataset.ccEvent)];
  if (e) { cc.map.flyTo([e.lat, e.lon], Math.max(cc.map.getZoom(), 15)); }
  return true;
}
