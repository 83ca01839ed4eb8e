/* Camera video. Two paths, chosen per <img> that a tile or popup registers for a camera:
 *
 * 1. Live H.264 (the main path): GET /video/<cam>.live?v=sub|main (dashboard/video.py) is read with
 *    fetch() + ReadableStream; its frames (1 byte type, 4 bytes length, payload) carry the init
 *    segment, fMP4 media segments and the analytics overlays. Segments go into a Media Source
 *    Extensions SourceBuffer of a muted <video> laid over the <img>; the overlays (boxes, track ids,
 *    zones, lines) are drawn on a <canvas> over the video at video.currentTime, mapped to the
 *    camera's source time by each segment's (source time, media time) pair. Grid tiles play the
 *    substream, popups (the enlarged view) the main stream. The stream reconnects by itself
 *    (camera restart, network loss) and keeps to the live edge.
 * 2. JPEG frames over the live socket (the fallback): when MediaSource cannot play the codec
 *    (MediaSource.isTypeSupported says no), the camera has no live stream (404) or the per-user
 *    stream cap refuses it (429), or it is not streaming right now (204). The page tells the gateway which cameras it needs JPEGs for
 *    ({op: 'video', cams}); each frame arrives as 0x00, id length, id (UTF-8), JPEG.
 * Overlays are toggled with the "Overlays" button of a tile (remembered per browser).
 *
 * Live streams are capped per user on the server (dashboard/video.py StreamSlots, 429 beyond it), and
 * a browser logs every refused fetch as a failed resource load. So the page first asks
 * /video/live-slots how many it may hold (its cap less what this user's other tabs play) and opens at
 * most that many: the enlarged view (popup) first, then the tiles from the top; the rest show JPEG
 * frames and are granted a slot when one frees (asked again every SLOT_POLL_MS while any waits).
 * Only ids the server can hold (LIVE_ID) of cameras that publish a live stream (props.live) are asked
 * for: a made-up or hostile id is never put in a URL. */
import { cc } from './state.js';
import { t } from './i18n.js';
import { ui } from './registry.js';

const decoder = new TextDecoder();
const PERSON = 'person';  // the detector's class name (vision/config.py classes)
const OVERLAY_KEY = 'ccVideoOverlays';
const MAX_FRAME = 16 * 1024 * 1024;  // a frame longer than this is a broken stream: reconnect
const LIVE_EDGE_S = 1.0;  // further than this behind the newest buffered frame: jump ahead
const RETRY_FALLBACK_MS = 20000;
const NOT_YET_MS = 3000;  // a camera not streaming yet (204): JPEGs meanwhile, ask again this soon
const SLOTS_URL = '/video/live-slots';
const SLOT_POLL_MS = 5000;  // while a tile waits for a live slot, ask again this often
const LOCAL_CHECK_MS = 2000;  // while no view's camera is known to stream live, look again this often
// A camera id the server can hold (config/cameras.py ids; the same rule events.js uses for snapshot names).
const LIVE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const PROBE_CODEC = 'video/mp4; codecs="avc1.42E01E"';  // baseline H.264: none at all means JPEGs only
cc.livePlayers = new Map();  // <img> -> LivePlayer (tests read it: window.ccLive.livePlayers)
cc.stats.liveSegments = 0;
cc.stats.liveMeta = 0;
cc.stats.liveFallbacks = 0;

function overlaysOn() {
  try { return localStorage.getItem(OVERLAY_KEY) !== 'off'; } catch (e) { return true; }
}
function setOverlays(on) {
  try { localStorage.setItem(OVERLAY_KEY, on ? 'on' : 'off'); } catch (e) { /* private mode */ }
  cc.livePlayers.forEach((p) => p.syncToggle());
}

export function mseSupported() {
  if (typeof window.MediaSource !== 'function' || typeof window.ReadableStream !== 'function') { return false; }
  // A browser that cannot play H.264 at all gets JPEGs at once, without asking for streams.
  try { return MediaSource.isTypeSupported(PROBE_CODEC); } catch (e) { return false; }
}

function num(v, lo, hi) { return typeof v === 'number' && Number.isFinite(v) && v >= lo && v <= hi; }
function point(p) { return Array.isArray(p) && p.length === 2 && num(p[0], 0, 1) && num(p[1], 0, 1); }

/* One overlay message, checked field by field: only numbers reach the canvas, text only through fillText. */
function parseMeta(bytes) {
  let m;
  try { m = JSON.parse(decoder.decode(bytes)); } catch (e) { return null; }
  if (!m || typeof m !== 'object' || !num(m.t, 0, 1e11)) { return null; }
  const boxes = (Array.isArray(m.b) ? m.b : []).slice(0, 200).filter((b) => Array.isArray(b) && b.length >= 6
    && num(b[0], 0, 1) && num(b[1], 0, 1) && num(b[2], 0, 1) && num(b[3], 0, 1) && num(b[4], -1, 1e9));
  const zones = (Array.isArray(m.z) ? m.z : []).slice(0, 64).filter((z) => Array.isArray(z) && z.length === 2
    && Array.isArray(z[1]) && z[1].length >= 3 && z[1].length <= 64 && z[1].every(point));
  const lines = (Array.isArray(m.l) ? m.l : []).slice(0, 64).filter((l) => Array.isArray(l) && l.length === 3
    && point(l[1]) && point(l[2]));
  return { t: m.t, boxes, zones, lines };
}

class LivePlayer {
  constructor(img, cam, variant) {
    this.img = img; this.cam = cam; this.variant = variant;
    this.stopped = false; this.backoff = 1000; this.queue = []; this.metas = [];
    this.offset = null; this.gen = 0; this.failed = false; this.playing = false;
    this.segments = 0; this.video = null; this.canvas = null; this.sb = null; this.ms = null; this.url = null;
    this.granted = false;  // holds one of this tab's live slots (schedule())
    this.open = false;  // a request of it is pending or its stream is open: it counts on the server
    this.dead = false;  // MediaSource cannot play its codec: JPEGs for good, no slot needed
    this.build();
  }

  grant() {
    if (this.granted || this.stopped) { return; }
    this.granted = true; this.failed = false; this.backoff = 1000;
    this.connect();
  }

  /* A higher-ranked view needs the slot: back to JPEGs until granted again. */
  revoke() {
    if (!this.granted) { return; }
    this.granted = false; this.open = false;
    clearTimeout(this.timer);
    if (this.abort) { this.abort.abort(); }
    this.teardownMedia();
    this.hide();
    syncVideo();
  }

  build() {
    const parent = this.img.parentNode;
    if (!parent) { return; }
    const v = document.createElement('video');
    v.className = 'cc-live-video';
    v.muted = true; v.autoplay = true; v.playsInline = true; v.disablePictureInPicture = true;
    v.setAttribute('aria-label', this.img.getAttribute('alt') || 'Live video');
    const fill = 'position:absolute;left:0;top:0;width:100%;height:100%;object-fit:contain;';
    v.style.cssText = fill + 'display:none;';
    v.style.background = ui.video_bg;
    const c = document.createElement('canvas');
    c.className = 'cc-live-overlay';
    c.style.cssText = fill + 'pointer-events:none;display:none;';
    const tile = parent.classList && parent.classList.contains('cc-video-tile');
    if (!tile) {  // a popup: the <img> is a block in flow; hold it in a positioned box
      const box = document.createElement('div');
      box.style.cssText = 'position:relative;';
      parent.insertBefore(box, this.img);
      box.appendChild(this.img);
      this.box = box;
    }
    const host = this.img.parentNode;
    host.insertBefore(v, this.img.nextSibling);
    host.insertBefore(c, v.nextSibling);
    if (tile) {
      const b = document.createElement('button');
      b.type = 'button'; b.className = 'cc-live-toggle';
      b.style.cssText = 'position:absolute;left:6px;bottom:6px;min-height:36px;font-size:14px;'
        + 'border:1px solid;border-radius:4px;cursor:pointer;';
      b.style.background = ui.video_button; b.style.color = ui.video_label; b.style.borderColor = ui.video_button_line;
      b.textContent = t('Overlays');
      b.addEventListener('click', () => setOverlays(!overlaysOn()));
      host.appendChild(b);
      this.toggle = b;
    }
    this.video = v; this.canvas = c;
    this.syncToggle();
    this.raf = requestAnimationFrame(() => this.draw());
  }

  syncToggle() {
    if (this.toggle) { this.toggle.setAttribute('aria-pressed', overlaysOn() ? 'true' : 'false'); }
  }

  connect() {
    if (this.stopped || !this.granted || !liveCamera(this.cam)) { return; }
    const abort = new AbortController();
    this.abort = abort;
    this.open = true;
    const url = `/video/${encodeURIComponent(this.cam)}.live?v=${this.variant}`;
    fetch(url, { signal: abort.signal, credentials: 'same-origin', cache: 'no-store' })
      .then((resp) => {
        if (resp.status === 204) { this.fallback(NOT_YET_MS); return null; }  // not streaming yet
        if (!resp.ok || !resp.body) {
          // 404: no live stream now; 429/503: the stream cap (another tab took the slot meanwhile).
          // JPEGs meanwhile, the live path later, and this tab's share asked for again.
          this.fallback(RETRY_FALLBACK_MS);
          if (resp.status === 429 || resp.status === 503) { scheduleSoon(SLOT_POLL_MS); }
          return null;
        }
        this.backoff = 1000;
        return this.read(resp.body.getReader());
      })
      .catch(() => { if (this.abort === abort) { this.retry(); } });
  }

  async read(reader) {
    let buf = new Uint8Array(0);
    for (;;) {
      const { done, value } = await reader.read();
      if (done || this.stopped) { break; }
      const joined = new Uint8Array(buf.length + value.length);
      joined.set(buf); joined.set(value, buf.length);
      buf = joined;
      let off = 0;
      while (buf.length - off >= 5) {
        const dv = new DataView(buf.buffer, buf.byteOffset + off, 5);
        const kind = dv.getUint8(0), len = dv.getUint32(1);
        if (len > MAX_FRAME) { reader.cancel().catch(() => {}); this.retry(); return; }
        if (buf.length - off - 5 < len) { break; }
        this.onFrame(kind, buf.subarray(off + 5, off + 5 + len));
        off += 5 + len;
        if (this.failed) { reader.cancel().catch(() => {}); return; }
      }
      buf = buf.slice(off);
    }
    this.retry();  // the server ended the stream (camera silent, hour cap): open it again
  }

  onFrame(kind, p) {
    if (kind === 1 && p.length > 1) {
      const n = p[0];
      const codec = decoder.decode(p.subarray(1, 1 + n));
      if (!/^avc1\.[0-9a-fA-F]{6}$/.test(codec)) { this.fallback(0); return; }
      this.reset(`video/mp4; codecs="${codec}"`, p.slice(1 + n));
    } else if (kind === 2 && p.length > 16 && this.ms) {
      const dv = new DataView(p.buffer, p.byteOffset, 16);
      const src = dv.getFloat64(0), media = dv.getFloat64(8);
      if (Number.isFinite(src) && Number.isFinite(media)) { this.offset = src - media; }
      this.queue.push(p.slice(16));
      if (this.queue.length > 250) { this.queue.splice(0, this.queue.length - 250); }
      this.pump();
    } else if (kind === 3) {
      const m = parseMeta(p);
      if (m) {
        this.metas.push(m); cc.stats.liveMeta += 1;
        if (this.metas.length > 100) { this.metas.shift(); }
      }
    }
  }

  /* A new init segment (first, or the camera reconnected: its clock restarted): a fresh MediaSource. */
  reset(mime, init) {
    if (!MediaSource.isTypeSupported(mime)) { this.fallback(0); return; }
    this.teardownMedia();
    const ms = new MediaSource();
    const gen = ++this.gen;
    this.ms = ms; this.queue = [init]; this.sb = null;
    this.url = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      if (gen !== this.gen) { return; }
      try {
        this.sb = ms.addSourceBuffer(mime);
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => this.afterAppend());
        this.sb.addEventListener('error', () => this.retry());
      } catch (e) { this.fallback(0); return; }
      this.pump();
    }, { once: true });
    this.video.src = this.url;
  }

  pump() {
    const sb = this.sb;
    if (!sb || sb.updating || !this.queue.length || this.ms.readyState !== 'open') { return; }
    try { sb.appendBuffer(this.queue.shift()); } catch (e) {
      // QuotaExceededError: drop what was played and go on; anything else: start over.
      if (e && e.name === 'QuotaExceededError' && this.video.currentTime > 2) {
        try { sb.remove(0, this.video.currentTime - 1); } catch (e2) { this.retry(); }
      } else { this.retry(); }
    }
  }

  afterAppend() {
    const v = this.video, sb = this.sb;
    this.segments += 1; cc.stats.liveSegments += 1;
    cc.stats.videoFrames += 1;  // one media segment is one frame: the counter means "frames arriving" on both paths
    if (sb && v.buffered.length) {
      const end = v.buffered.end(v.buffered.length - 1), start = v.buffered.start(0);
      if (end - v.currentTime > LIVE_EDGE_S || v.currentTime < start) { v.currentTime = Math.max(start, end - 0.1); }
      if (!this.playing && end > start) {
        this.playing = true;
        v.style.display = 'block'; this.canvas.style.display = 'block';
        this.img.style.visibility = 'hidden';
        const pr = v.play();
        if (pr && pr.catch) { pr.catch(() => { /* muted autoplay refused: the next append tries again */ this.playing = false; }); }
        syncVideo();  // this camera no longer needs JPEGs for this <img>
      }
      if (!sb.updating && v.currentTime - start > 30) {
        try { sb.remove(start, v.currentTime - 10); return; } catch (e) { /* next time */ }
      }
    }
    this.pump();
  }

  /* Overlays at the frame on screen: the newest metadata not after the video's source time. */
  draw() {
    if (this.stopped) { return; }
    this.raf = requestAnimationFrame(() => this.draw());
    const v = this.video, c = this.canvas;
    if (!v || !c || !this.playing) { return; }
    const w = c.clientWidth, h = c.clientHeight;
    if (c.width !== w || c.height !== h) { c.width = w; c.height = h; }
    const g = c.getContext('2d');
    g.clearRect(0, 0, w, h);
    if (!overlaysOn() || this.offset === null || !v.videoWidth) { return; }
    const now = v.currentTime + this.offset;
    let m = null;
    for (let i = this.metas.length - 1; i >= 0; i -= 1) {
      if (this.metas[i].t <= now + 0.05) { m = this.metas[i]; break; }
    }
    if (!m || now - m.t > 1.5) { return; }
    // The picture's box inside the element (object-fit: contain).
    const s = Math.min(w / v.videoWidth, h / v.videoHeight);
    const pw = v.videoWidth * s, ph = v.videoHeight * s, ox = (w - pw) / 2, oy = (h - ph) / 2;
    const X = (x) => ox + x * pw, Y = (y) => oy + y * ph;
    g.lineWidth = 2;
    g.strokeStyle = ui.video_zone;
    m.zones.forEach((z) => {
      g.beginPath();
      z[1].forEach((p, i) => (i ? g.lineTo(X(p[0]), Y(p[1])) : g.moveTo(X(p[0]), Y(p[1]))));
      g.closePath(); g.stroke();
    });
    g.strokeStyle = ui.video_line;
    m.lines.forEach((l) => { g.beginPath(); g.moveTo(X(l[1][0]), Y(l[1][1])); g.lineTo(X(l[2][0]), Y(l[2][1])); g.stroke(); });
    g.font = '13px sans-serif';
    m.boxes.forEach((b) => {
      g.strokeStyle = b[5] === PERSON ? ui.video_person : ui.video_vehicle;
      g.strokeRect(X(b[0]), Y(b[1]), (b[2] - b[0]) * pw, (b[3] - b[1]) * ph);
      const label = `${String(b[5]).slice(0, 32)}${b[4] >= 0 ? ` #${b[4]}` : ''}`;
      g.globalAlpha = 0.65; g.fillStyle = ui.video_label_bg;
      g.fillRect(X(b[0]), Y(b[1]) - 16, g.measureText(label).width + 6, 16);
      g.globalAlpha = 1; g.fillStyle = ui.video_label; g.fillText(label, X(b[0]) + 3, Y(b[1]) - 4);
    });
    this.drawn = (this.drawn || 0) + 1;
  }

  retry() {
    if (this.stopped || this.failed || !this.granted) { return; }
    this.open = false;
    if (this.abort) { this.abort.abort(); }
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, 10000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), wait);
  }

  /* Back to JPEG frames for this <img>; with `later` ms, try the live path again then. */
  fallback(later) {
    if (this.failed) { return; }
    this.failed = true; this.open = false; cc.stats.liveFallbacks += 1;
    if (this.abort) { this.abort.abort(); }
    this.teardownMedia();
    this.hide();
    syncVideo();
    clearTimeout(this.timer);
    if (later) {
      this.timer = setTimeout(() => {
        if (this.stopped || !this.granted) { return; }
        this.failed = false; this.backoff = 1000; this.connect();
      }, later);
    } else {
      // The codec cannot play here: this view needs no slot; give it to the next one.
      this.dead = true; this.granted = false; scheduleSoon(0);
    }
  }

  hide() {
    this.playing = false;
    if (this.video) { this.video.style.display = 'none'; }
    if (this.canvas) { this.canvas.style.display = 'none'; }
    this.img.style.visibility = '';
  }

  teardownMedia() {
    if (this.video) { this.video.removeAttribute('src'); this.video.load(); }
    if (this.url) { URL.revokeObjectURL(this.url); this.url = null; }
    this.ms = null; this.sb = null; this.queue = []; this.playing = false;
  }

  stop() {
    this.stopped = true; this.granted = false; this.open = false;
    clearTimeout(this.timer);
    cancelAnimationFrame(this.raf);
    if (this.abort) { this.abort.abort(); }
    this.teardownMedia();
    this.hide();
    [this.video, this.canvas, this.toggle].forEach((n) => { if (n) { n.remove(); } });
    if (this.box && this.box.parentNode) { this.box.parentNode.insertBefore(this.img, this.box); this.box.remove(); }
  }
}

export function watchVideo(img, cam) {
  if ((cc.videoImgs.get(img) || '') === (cam || '')) { return; }
  const old = cc.livePlayers.get(img);
  if (old) { old.stop(); cc.livePlayers.delete(img); }
  if (cam) {
    cc.videoImgs.set(img, cam);
    if (cc.videoUrls[cam]) { img.src = cc.videoUrls[cam]; }
    if (!mseSupported()) {
      cc.stats.liveFallbacks += 1;  // this view shows JPEG frames: the browser cannot play the live path
    } else if (LIVE_ID.test(cam)) {
      // Grid tiles play the substream; a popup is the enlarged view: the main stream.
      const variant = img.closest('.cc-video-tile') ? 'sub' : 'main';
      cc.livePlayers.set(img, new LivePlayer(img, cam, variant));
    }
  } else {
    cc.videoImgs.delete(img);
    img.removeAttribute('src');
  }
  syncVideo();
  scheduleSoon(0);
}
cc.watchVideo = watchVideo;

/* A camera this page may ask a live stream of: an id the server can hold, of a camera that says it
 * publishes one (vision/live.py: props.live). */
function liveCamera(cam) {
  if (typeof cam !== 'string' || !LIVE_ID.test(cam)) { return false; }
  const e = cc.entities.camera && cc.entities.camera.get(cam);
  return !!(e && e.props && e.props.live === true);
}

/* The views that want a live stream, best first: the enlarged view (popup), then tiles top to bottom. */
function ranked() {
  const list = [];
  cc.livePlayers.forEach((p, img) => {
    if (!p.stopped && !p.dead && img.isConnected && liveCamera(p.cam)) { list.push(p); }
  });
  list.sort((a, b) => {
    if ((a.variant === 'main') !== (b.variant === 'main')) { return a.variant === 'main' ? -1 : 1; }
    const pos = a.img.compareDocumentPosition(b.img);
    if (pos & Node.DOCUMENT_POSITION_FOLLOWING) { return -1; }
    return pos & Node.DOCUMENT_POSITION_PRECEDING ? 1 : 0;
  });
  return list;
}

let scheduleTimer = 0, slotsAsking = false;
cc.liveCap = null;  // the server's per-user cap, once asked (tests read it)

function scheduleSoon(ms) {
  clearTimeout(scheduleTimer);
  scheduleTimer = setTimeout(schedule, ms);
}

/* Grant live slots to the best-ranked views, as many as the server lets this tab hold. */
function schedule() {
  scheduleTimer = 0;
  if (slotsAsking) { return; }
  if (!ranked().length) {
    let waiting = false;
    cc.livePlayers.forEach((p) => {
      if (p.granted && (p.dead || !liveCamera(p.cam))) { p.revoke(); }
      if (!p.stopped && !p.dead) { waiting = true; }
    });
    // A view whose camera has not (yet) said it streams live: look again when its updates arrive
    // (a local check, no request).
    if (waiting) { scheduleSoon(LOCAL_CHECK_MS); }
    return;
  }
  slotsAsking = true;
  fetch(SLOTS_URL, { credentials: 'same-origin', cache: 'no-store' })
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null)
    .then((s) => {
      slotsAsking = false;
      const ok = s && typeof s === 'object' && num(s.per_user, 0, 1000) && num(s.in_use, 0, 1e6);
      const want = ranked();
      let mine = 0;
      cc.livePlayers.forEach((p) => { if (p.open) { mine += 1; } });
      // Slots held by this user's other tabs: what the server counts, less this tab's own.
      const budget = ok ? Math.max(0, s.per_user - Math.max(0, s.in_use - mine)) : 0;
      if (ok) { cc.liveCap = s.per_user; }
      const keep = new Set(want.slice(0, budget));
      cc.livePlayers.forEach((p) => { if (p.granted && !keep.has(p)) { p.revoke(); } });
      keep.forEach((p) => p.grant());
      if (want.length > keep.size) { scheduleSoon(SLOT_POLL_MS); }  // some wait for a slot
    });
}

/* Tell the gateway which cameras need JPEG frames: those on screen that no live player is playing
 * (and after every reconnect). */
export function syncVideo() {
  const cams = {};
  cc.videoImgs.forEach((cam, img) => {
    if (!img.isConnected) {
      cc.videoImgs.delete(img);
      const p = cc.livePlayers.get(img);
      if (p) { p.stop(); cc.livePlayers.delete(img); }
      return;
    }
    const p = cc.livePlayers.get(img);
    if (!p || !p.playing) { cams[cam] = true; }
  });
  const list = Object.keys(cams).sort(), key = list.join('|');
  if (key === cc.videoKey || !cc.ws || cc.ws.readyState !== 1) { return; }
  cc.videoKey = key;
  Object.keys(cc.videoUrls).forEach((c) => {
    if (!cams[c]) { URL.revokeObjectURL(cc.videoUrls[c]); delete cc.videoUrls[c]; }
  });
  cc.ws.send(JSON.stringify({ op: 'video', cams: list }));
}

export function isVideo(data) {
  return typeof data !== 'string' && data.byteLength > 2 && new Uint8Array(data, 0, 1)[0] === 0;
}

export function onVideo(buf) {
  const bytes = new Uint8Array(buf), n = bytes[1];
  const cam = decoder.decode(bytes.subarray(2, 2 + n));
  const url = URL.createObjectURL(new Blob([bytes.subarray(2 + n)], { type: 'image/jpeg' }));
  const old = cc.videoUrls[cam];
  cc.videoUrls[cam] = url;
  cc.videoImgs.forEach((c, img) => { if (c === cam) { img.src = url; } });
  // The old frame stays on screen as a decoded bitmap; its URL can go.
  if (old) { URL.revokeObjectURL(old); }
  cc.stats.videoFrames += 1;
}
