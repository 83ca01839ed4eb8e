/* The live socket: a ticket from /api/live/ticket, then frames from the gateway.
 *
 * Frames carry a counter `n`; a gap asks for a snapshot ({op: 'resync'}) rather than show a wrong
 * picture. Close codes: 4401 = the session ended on the server (logout, revoked, disabled): say so
 * and go to the login page; 1013 = the gateway is full or restarting: retry after a longer wait.
 * Anything else: retry with jittered exponential back-off (0.5 s .. 10 s).
 */
import { cc } from './state.js';
import { onSnapshot, onBatch } from './store.js';
import { isVideo, onVideo, syncVideo } from './video.js';
import { updateStatus } from './panels.js';

export const CLOSE_SESSION_ENDED = 4401;
export const CLOSE_TRY_AGAIN_LATER = 1013;
const MIN_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 10000;
const BUSY_BACKOFF_MS = 3000;

let backoff = MIN_BACKOFF_MS;
const decoder = new TextDecoder();

export function send(obj) {
  if (cc.ws && cc.ws.readyState === 1) { cc.ws.send(JSON.stringify(obj)); }
}

// A sign-out in progress: the form's own navigation to /login must win over a poll that sees the
// session end first (it would send the browser to /login?next=... and sign the next user in there).
document.addEventListener('submit', (e) => {
  const form = e.target;
  if (form instanceof HTMLFormElement && form.classList.contains('cc-sign-out')) { cc.signingOut = true; }
}, true);

function toLogin() {
  if (cc.signingOut) { return; }
  window.location.href = '/login?next=' + encodeURIComponent(location.pathname);
}

function scheduleReconnect() {
  cc.connected = false;
  updateStatus();
  const wait = Math.min(backoff, MAX_BACKOFF_MS) * (0.75 + Math.random() * 0.5);
  backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
  setTimeout(connect, wait);
}

function onFrame(f) {
  cc.lastFrameAt = Date.now();
  if (f.t === 'hb') { cc.redisUp = f.redis !== false; updateStatus(); return; }
  cc.stats.frames += 1;
  if (f.t === 'snapshot') {
    cc.n = f.n;
    onSnapshot(f);
  } else if (f.t === 'batch') {
    if (cc.n !== null && f.n !== cc.n + 1) {
      // Missed a frame: ask for the whole picture rather than show a wrong one.
      cc.stats.resyncs += 1;
      cc.n = null;
      send({ op: 'resync' });
      return;
    }
    if (cc.n === null) { return; }  // waiting for the snapshot we asked for
    cc.n = f.n;
    onBatch(f);
  }
  updateStatus();
}

function onClose(ws, ev) {
  if (cc.ws !== ws) { return; }
  cc.ws = null;
  cc.connected = false;
  cc.stats.closeCodes[ev.code] = (cc.stats.closeCodes[ev.code] || 0) + 1;
  if (ev.code === CLOSE_SESSION_ENDED) {
    cc.sessionEnded = true;
    updateStatus();
    setTimeout(toLogin, 1500);  // long enough to read "SESSION ENDED"
    return;
  }
  if (ev.code === CLOSE_TRY_AGAIN_LATER) { backoff = Math.max(backoff, BUSY_BACKOFF_MS); }
  cc.stats.reconnects += 1;
  scheduleReconnect();
}

/* Wire a socket to the page: frames, video, close codes. `early` replays what arrived before. */
function attach(ws, early) {
  cc.ws = ws;
  cc.n = null;
  const opened = () => { cc.connected = true; backoff = MIN_BACKOFF_MS; cc.videoKey = null; syncVideo(); updateStatus(); };
  const message = (ev) => {
    if (isVideo(ev.data)) { onVideo(ev.data); return; }
    let f;
    try { f = JSON.parse(typeof ev.data === 'string' ? ev.data : decoder.decode(ev.data)); } catch (e) { return; }
    if (f && typeof f === 'object') { onFrame(f); }
  };
  ws.onopen = opened;
  ws.onmessage = message;
  ws.onclose = (ev) => onClose(ws, ev);
  ws.onerror = () => { try { ws.close(); } catch (e) { /* closing anyway */ } };
  if (early) {
    if (early.opened || ws.readyState === 1) { opened(); }
    early.queue.splice(0).forEach(message);
    if (early.closed) { onClose(ws, early.closed); }
  }
}

function openSocket(t) {
  const base = t.url || ((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.hostname + ':' + t.port + '/live');
  const ws = new WebSocket(base + '?ticket=' + encodeURIComponent(t.ticket));
  ws.binaryType = 'arraybuffer';
  attach(ws, null);
}

export function connect() {
  if (cc.sessionEnded || cc.signingOut) { return; }
  // The first socket was opened by assets/early_socket.js while the page loaded.
  const early = window.ccEarlySocket;
  window.ccEarlySocket = null;
  if (early) {
    early.then((e) => attach(e.ws, e), (status) => {
      if (status === 401) { toLogin(); } else { scheduleReconnect(); }
    });
    return;
  }
  fetch('/api/live/ticket', { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => {
      if (r.status === 401) { toLogin(); throw new Error('login'); }
      if (!r.ok) { throw new Error('ticket ' + r.status); }
      return r.json();
    })
    .then(openSocket)
    .catch((e) => { if (String(e.message) !== 'login') { scheduleReconnect(); } });
}
