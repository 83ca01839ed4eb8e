/* The page's live state, shared by every module and exposed as `window.ccLive`.
 *
 * window.ccLive is the documented surface for tests and the benchmark (tests/test_browser.py,
 * bench/live_latency.py). Keep these names stable:
 *   entities[layer]  Map id -> latest update      markers[layer]  Map id -> Leaflet marker
 *   groups[layer]    Leaflet LayerGroup           map             the Leaflet map
 *   n                last frame counter (null while waiting for a snapshot; tests may lower it)
 *   connected, redisUp, sessionEnded, lastFrameAt, lastLayerTs, events (newest first), eventRings
 *   signingOut       the sign-out form was sent: no reconnect, no detour to /login?next=
 *   stats {frames, applied, resyncs, snapshots, reconnects, videoFrames, closeCodes}
 *   bench            set to {lat: []} to collect publish-to-paint latencies (ms)
 *   firstPictureMs   navigation start -> first frame with the snapshot applied and the map's layers built
 *   firstSnapshotMs  navigation start -> first frame after the snapshot was applied (the old definition)
 *   videoImgs        Map <img> -> camera id;  watchVideo(img, cameraId | '')
 *   registry         the layer registry (spine/layers.py) this page draws with
 */
import { LAYERS } from './registry.js';

export const cc = {
  entities: {}, markers: {}, groups: {}, map: null, n: null, ws: null,
  lastFrameAt: 0, lastLayerTs: {}, redisUp: true, events: [], connected: false, sessionEnded: false,
  signingOut: false,
  eventRings: null, firstPictureMs: 0, firstSnapshotMs: 0,
  stats: { frames: 0, applied: 0, resyncs: 0, snapshots: 0, reconnects: 0, videoFrames: 0, closeCodes: {} },
  bench: null,
  videoImgs: new Map(), videoUrls: {}, videoKey: null,
};
LAYERS.forEach((l) => { cc.entities[l] = new Map(); cc.markers[l] = new Map(); });
window.ccLive = cc;
