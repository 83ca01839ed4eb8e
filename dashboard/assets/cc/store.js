/* The entity store: the latest update per (layer, id), applied from snapshots and batches. */
import { cc } from './state.js';
import { place } from './markers.js';
import { addEvents, clearEvents } from './events.js';
import { applyAlarms } from './alarms.js';

export function applyUpdate(u) {
  const known = cc.entities[u.layer];
  if (!known) { return false; }
  if (!u.props || typeof u.props !== 'object') { u.props = {}; }  // empty props are left out on the wire
  const old = known.get(u.id);
  if (old && old.ts > u.ts) { return false; }  // an older value than the one shown
  if (u.gone) { known.delete(u.id); } else { known.set(u.id, u); }
  if (u.ts > (cc.lastLayerTs[u.layer] || 0)) { cc.lastLayerTs[u.layer] = u.ts; }
  place(u);
  cc.stats.applied += 1;
  return true;
}

/* A snapshot replaces the listed layers (and the event list when it carries events). */
export function onSnapshot(f) {
  cc.stats.snapshots += 1;
  (f.layers || []).forEach((layer) => {
    if (!cc.entities[layer]) { return; }
    const group = cc.groups[layer];
    if (group) { group.clearLayers(); }
    cc.markers[layer] = new Map();
    cc.entities[layer] = new Map();
  });
  for (let i = 0; i < f.u.length; i++) { applyUpdate(f.u[i]); }
  if (f.e && f.e.length) { clearEvents(); addEvents(f.e); }
  if (Array.isArray(f.al)) { applyAlarms(f.al, true); }  // the open alarms (gateway/alarms.py)
  if (typeof f.redis === 'boolean') { cc.redisUp = f.redis; }
  if (!cc.firstSnapshotMs) {
    // What the old live.js reported as the first picture: the snapshot applied, map built or not.
    requestAnimationFrame(() => { if (!cc.firstSnapshotMs) { cc.firstSnapshotMs = Math.round(performance.now()); } });
  }
  firstPicture();
}

/* Time from navigation start to the first complete picture (budget: 2 s on a wall): the frame
 * painted once a snapshot is applied and the map's live layers exist (either may come first). */
function firstPicture() {
  if (cc.firstPictureMs || !cc.stats.snapshots || !cc.map || !Object.keys(cc.groups).length) { return; }
  requestAnimationFrame(() => { if (!cc.firstPictureMs) { cc.firstPictureMs = Math.round(performance.now()); } });
}

export function onBatch(f) {
  const applied = [];
  for (let i = 0; i < f.u.length; i++) { if (applyUpdate(f.u[i])) { applied.push(f.u[i].ts); } }
  addEvents(f.e);
  if (Array.isArray(f.al)) { applyAlarms(f.al, f.alr === true); }
  if (cc.bench && applied.length) {
    // Latency to the next painted frame, which is what an operator actually sees.
    requestAnimationFrame(() => {
      const now = Date.now();
      for (let j = 0; j < applied.length; j++) { cc.bench.lat.push(now - applied[j]); }
    });
  }
}

/* When Leaflet creates a live layer group, draw what the store already holds. */
export function onGroup(layer, group) {
  if (!cc.entities[layer]) { return; }
  cc.groups[layer] = group;
  cc.markers[layer] = new Map();
  cc.entities[layer].forEach(place);
  firstPicture();
}
