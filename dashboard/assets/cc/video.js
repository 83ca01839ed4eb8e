/* Camera video. Two paths, chosen per <img> that a tile or popup registers for a camera:
 *
 * 1. Live H.264 (the main path), fMP4 segments appended to a Media Source Extensions SourceBuffer of a
 *    muted <video> laid over the <img>, with the analytics overlays (boxes, track ids, zones, lines)
 *    drawn on a <canvas> over the video at video.currentTime, mapped to the camera's source time by
 *    each segment's (source time, media time) pair. Two transports, both read with fetch():
 *    - the grid tiles of the page (img inside .cc-video-tile) share ONE stream,
 *      GET /video/live-tiles?c=<cam>,<cam>,... (dashboard/video.py mux_stream): the substreams of all
 *      its tiles' cameras, frames of 1 byte type, 1 byte tile, 4 bytes length, payload. One HTTP
 *      connection and one server slot for a 16-tile wall (HTTP/1.1 allows 6 connections per origin;
 *      a stream per tile could play 4). It is reopened when the set of tiles on screen changes (a
 *      promotion on the activity wall): a tile whose camera's generation the page already plays keeps
 *      its MediaSource and skips the segments it already has, so it does not flicker.
 *    - an enlarged view (popup) plays the MAIN stream on its own: GET /video/<cam>.live?v=main,
 *      frames of 1 byte type, 4 bytes length, payload.
 *    Types: 1 init segment, 2 media segment (source time, media time, moof+mdat), 3 overlay JSON,
 *    4 (tiles stream) this tile's camera is not streaming now: JPEGs for it until its next init.
 *    The streams reconnect by themselves (camera restart, network loss) and keep to the live edge.
 * 2. JPEG frames over the live socket (the fallback): when MediaSource cannot play the codec
 *    (MediaSource.isTypeSupported says no), the camera has no live stream (404) or is not streaming
 *    (204, type 4), or the per-user stream cap refuses (429). The page tells the gateway which
 *    cameras it needs JPEGs for ({op: 'video', cams}); each frame arrives as 0x00, id length, id, JPEG.
 * Overlays are toggled with the "Overlays" button of a tile (remembered per browser).
 *
 * Live streams are capped per user on the server (dashboard/video.py StreamSlots, 429 beyond it), and
 * a browser logs every refused fetch as a failed resource load. So the page first asks
 * /video/live-slots how many it may hold (its cap less what this user's other tabs play, and how many
 * cameras one tiles stream carries) and opens at most that many: the enlarged views first, then the
 * tiles' stream (its first `tiles` cameras from the top); the rest show JPEG frames and are granted a
 * slot when one frees (asked again every SLOT_POLL_MS while any waits). Only ids the server can hold
 * (LIVE_ID) of cameras that publish a live stream (props.live) are asked for: a made-up or hostile id
 * is never put in a URL.
 *
 * Glass-to-glass latency: requestVideoFrameCallback on every live <video> maps each presented frame's
 * mediaTime to the camera's source time and pushes Date.now() - source time into
 * cc.stats.liveLatencyMs (the last 1000), and counts presented frames in cc.stats.livePresented
 * (bench/video.py reads both through window.ccLive.stats). */
import { cc } from './state.js';
import { t } from './i18n.js';
import { ui } from './registry.js';

const decoder = new TextDecoder();
const PERSON = 'person';  // the detector's class name (vision/config.py classes)
const OVERLAY_KEY = 'ccVideoOverlays';
const MAX_FRAME = 16 * 1024 * 1024;  // a frame longer than this is a broken stream: reconnect
const LIVE_EDGE_S = 1.0;  // further than this behind the newest buffered frame: jump ahead
// Between these, play faster until near the edge again: a stream joins at its last keyframe (up to a
// GOP, a second, old) and would otherwise stay that far behind; a jump would show a frozen decode.
const CATCH_UP_S = 0.35, AT_EDGE_S = 0.15, CATCH_UP_RATE = 1.5;
const RETRY_FALLBACK_MS = 20000;
const NOT_YET_MS = 3000;  // a camera not streaming yet (204): JPEGs meanwhile, ask again this soon
const SLOTS_URL = '/video/live-slots';
const TILES_URL = '/video/live-tiles';
const SLOT_POLL_MS = 5000;  // while a view waits for a live slot, ask again this often
const LOCAL_CHECK_MS = 2000;  // while no view's camera is known to stream live, look again this often
const REOPEN_MS = 200;  // the tiles stream is reopened this long after the last change of the set
const CONTINUE_MS = 2000;
const MAX_BREAKS = 3;  // media errors a tile may cause before it stays on JPEGs  // a tile whose last segment is younger than this plays on across a reopen  // the tiles' stream reopens this long after its set changed (changes come in bursts)
const LATENCY_KEEP = 1000;  // cc.stats.liveLatencyMs keeps this many samples
const PAIRS_KEEP = 400;  // (media time, source time) pairs a player keeps to date its presented frames
// A camera id the server can hold (config/cameras.py ids; the same rule events.js uses for snapshot names).
const LIVE_ID = /^[A-Za-z0-9_.-]{1,64}$/;
const CODEC = /^avc1\.[0-9a-fA-F]{6}$/;
const PROBE_CODEC = 'video/mp4; codecs="avc1.42E01E"';  // baseline H.264: none at all means JPEGs only
cc.livePlayers = new Map();  // <img> -> LivePlayer (tests read it: window.ccLive.livePlayers)
cc.stats.liveSegments = 0;
cc.stats.liveMeta = 0;
cc.stats.liveFallbacks = 0;
cc.stats.liveLatencyMs = [];  // glass-to-glass, ms (bench/video.py reads it; keep the name)
cc.stats.livePresented = 0;  // frames presented by live <video>s (bench/video.py reads it; keep the name)
cc.stats.liveTileOpens = 0;  // tiles streams opened (tests: a promotion reopens it once, not per tile)

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

/* Frames of a fetch() body: `head` bytes of header (type, [tile,] length), then the payload. Calls
 * onFrame(kind, tile, payload) while alive() holds; resolves true when the server ended the stream,
 * false when it was broken (a frame too long) or abandoned. */
async function readFrames(reader, head, onFrame, alive) {
  let buf = new Uint8Array(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) { return true; }
    if (!alive()) { reader.cancel().catch(() => {}); return false; }
    const joined = new Uint8Array(buf.length + value.length);
    joined.set(buf); joined.set(value, buf.length);
    buf = joined;
    let off = 0;
    while (buf.length - off >= head) {
      const dv = new DataView(buf.buffer, buf.byteOffset + off, head);
      const kind = dv.getUint8(0), tile = head === 6 ? dv.getUint8(1) : 0, len = dv.getUint32(head - 4);
      if (len > MAX_FRAME) { reader.cancel().catch(() => {}); return false; }
      if (buf.length - off - head < len) { break; }
      onFrame(kind, tile, buf.subarray(off + head, off + head + len));
      off += head + len;
      if (!alive()) { reader.cancel().catch(() => {}); return false; }
    }
    buf = buf.slice(off);
  }
}

function pushLatency(ms) {
  const a = cc.stats.liveLatencyMs;
  a.push(ms);
  if (a.length > LATENCY_KEEP) { a.splice(0, a.length - LATENCY_KEEP); }
}

class LivePlayer {
  constructor(img, cam, variant) {
    this.img = img; this.cam = cam; this.variant = variant;
    // Grid tiles ride the page's one tiles stream (TileMux); an enlarged view has its own fetch.
    this.muxed = variant === 'sub';
    this.stopped = false; this.backoff = 1000; this.queue = []; this.metas = [];
    this.offset = null; this.gen = 0; this.failed = false; this.playing = false;
    this.segments = 0; this.video = null; this.canvas = null; this.sb = null; this.ms = null; this.url = null;
    this.mime = ''; this.srcGen = null; this.lastMedia = -1; this.lastSegAt = 0; this.pairs = [];
    this.granted = false;  // holds one of this tab's live slots (schedule()); popups only
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
    if (typeof v.requestVideoFrameCallback === 'function') {
      const onPresented = (now, md) => {
        if (this.stopped) { return; }
        if (this.playing && md && Number.isFinite(md.mediaTime)) {
          cc.stats.livePresented += 1;
          const src = this.sourceTime(md.mediaTime);
          if (src !== null) { pushLatency(Date.now() - src * 1000); }
        }
        v.requestVideoFrameCallback(onPresented);
      };
      v.requestVideoFrameCallback(onPresented);
    }
  }

  /* The camera's source time (s) of the frame at `mediaTime`: the newest segment pair not after it
   * (segments are one frame each, so it is that frame's own pair), else null. */
  sourceTime(mediaTime) {
    const pairs = this.pairs;
    for (let i = pairs.length - 1; i >= 0; i -= 1) {
      if (pairs[i][0] <= mediaTime + 0.001) { return pairs[i][1] + (mediaTime - pairs[i][0]); }
    }
    return null;
  }

  syncToggle() {
    if (this.toggle) { this.toggle.setAttribute('aria-pressed', overlaysOn() ? 'true' : 'false'); }
  }

  /* The enlarged view's own stream (the tiles' is TileMux's). */
  connect() {
    if (this.muxed || this.stopped || !this.granted || !liveCamera(this.cam)) { return; }
    const abort = new AbortController();
    this.abort = abort;
    this.open = true;
    const url = `/video/${encodeURIComponent(this.cam)}.live?v=${this.variant}`;
    const alive = () => this.abort === abort && !this.stopped && !this.failed;
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
        this.variantServed = resp.headers.get('X-Video-Variant') || '';
        this.backoff = 1000;
        return readFrames(resp.body.getReader(), 5, (kind, tile, p) => this.onFrame(kind, p), alive)
          .then(() => { if (alive()) { this.retry(); } });  // ended (camera silent, hour cap): again
      })
      .catch(() => { if (this.abort === abort) { this.retry(); } });
  }

  /* A frame of its own stream, or of the tiles' stream for its tile (`gen`: the camera's generation
   * the tiles stream names in each init). */
  onFrame(kind, p, gen) {
    if (kind === 1 && p.length > 1) {
      const n = p[0];
      const codec = decoder.decode(p.subarray(1, 1 + n));
      if (!CODEC.test(codec)) { this.fallback(0); return; }
      const mime = `video/mp4; codecs="${codec}"`;
      if (gen !== undefined && gen === this.srcGen && mime === this.mime && this.ms && !this.waiting
          && performance.now() - this.lastSegAt < CONTINUE_MS) {
        // The tiles stream reopened (another set of tiles): this generation plays on, the segments it
        // already has are skipped. After a longer gap a fresh start: a frame after a hole would be
        // decoded against frames that never came.
        return;
      }
      this.waiting = false; this.srcGen = gen === undefined ? null : gen;
      this.reset(mime, p.slice(1 + n));
    } else if (kind === 2 && p.length > 16 && this.ms) {
      const dv = new DataView(p.buffer, p.byteOffset, 16);
      const src = dv.getFloat64(0), media = dv.getFloat64(8);
      if (!Number.isFinite(src) || !Number.isFinite(media)) { return; }
      if (media <= this.lastMedia) { return; }  // already appended (a reopened stream starts a GOP back)
      this.lastMedia = media; this.lastSegAt = performance.now();
      this.offset = src - media;
      this.pairs.push([media, src]);
      if (this.pairs.length > PAIRS_KEEP) { this.pairs.splice(0, this.pairs.length - PAIRS_KEEP); }
      this.queue.push(p.slice(16));
      if (this.queue.length > 250) { this.queue.splice(0, this.queue.length - 250); }
      this.pump();
    } else if (kind === 3) {
      const m = parseMeta(p);
      if (m) {
        this.metas.push(m); cc.stats.liveMeta += 1;
        if (this.metas.length > 100) { this.metas.shift(); }
      }
    } else if (kind === 4 && this.muxed) {
      this.notStreaming();
    }
  }

  /* The tiles stream says this camera sends nothing now: its JPEGs until its next init segment. */
  notStreaming() {
    this.waiting = true; this.srcGen = null;
    this.teardownMedia();
    this.hide();
    syncVideo();
  }

  /* A new init segment (first, or the camera reconnected: its clock restarted): a fresh MediaSource. */
  reset(mime, init) {
    if (!MediaSource.isTypeSupported(mime)) { this.fallback(0); return; }
    this.teardownMedia();
    const ms = new MediaSource();
    const gen = ++this.gen;
    this.ms = ms; this.queue = [init]; this.sb = null; this.mime = mime; this.lastMedia = -1; this.pairs = [];
    this.url = URL.createObjectURL(ms);
    ms.addEventListener('sourceopen', () => {
      if (gen !== this.gen) { return; }
      try {
        this.sb = ms.addSourceBuffer(mime);
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => this.afterAppend());
        this.sb.addEventListener('error', () => this.broken());
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
        try { sb.remove(0, this.video.currentTime - 1); } catch (e2) { this.broken(); }
      } else { this.broken(); }
    }
  }

  /* The media pipeline failed (a decode error): start this view over from a fresh init. */
  broken() {
    if (!this.muxed) { this.retry(); return; }
    // A tile that keeps breaking would reopen its neighbours' stream again and again: JPEGs for it.
    this.breaks = (this.breaks || 0) + 1;
    if (this.breaks > MAX_BREAKS) { this.fallback(0); return; }
    this.srcGen = null;
    this.teardownMedia();
    this.hide();
    syncVideo();
    mux.restart();  // the tiles stream sends every tile's init again; healthy tiles play on
  }

  afterAppend() {
    const v = this.video, sb = this.sb;
    this.segments += 1; cc.stats.liveSegments += 1;
    cc.stats.videoFrames += 1;  // one media segment is one frame: the counter means "frames arriving" on both paths
    if (sb && v.buffered.length) {
      const end = v.buffered.end(v.buffered.length - 1), start = v.buffered.start(0);
      const behind = end - v.currentTime;
      if (behind > LIVE_EDGE_S || v.currentTime < start) {
        v.currentTime = Math.max(start, end - 0.1);
      } else {
        const rate = behind > CATCH_UP_S ? CATCH_UP_RATE : (behind < AT_EDGE_S ? 1 : v.playbackRate);
        if (v.playbackRate !== rate) { v.playbackRate = rate; }
      }
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
    if (this.muxed && later) { this.notStreaming(); return; }  // the tiles stream asks again by itself
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

/* The views that want a live stream, best first: enlarged views (popups), then tiles top to bottom. */
function ranked() {
  const list = [];
  cc.livePlayers.forEach((p, img) => {
    if (!p.stopped && !p.dead && img.isConnected && liveCamera(p.cam)) { list.push(p); }
  });
  list.sort((a, b) => {
    if (a.muxed !== b.muxed) { return a.muxed ? 1 : -1; }
    const pos = a.img.compareDocumentPosition(b.img);
    if (pos & Node.DOCUMENT_POSITION_FOLLOWING) { return -1; }
    return pos & Node.DOCUMENT_POSITION_PRECEDING ? 1 : 0;
  });
  return list;
}

/* The page's one tiles stream: GET /video/live-tiles?c=... carrying every grid tile's camera. */
class TileMux {
  constructor() {
    this.cams = [];  // the cameras of the open (or opening) stream, in tile order
    this.wanted = [];  // the cameras schedule() granted, in tile order
    this.open = false;  // a request is pending or the stream is open: it counts on the server
    this.conn = null; this.timer = 0; this.backoff = 1000; this.blockedUntil = 0;
    this.last = new Map();  // cam -> {gen, p: its init} on the open stream, or null: not streaming
  }

  /* Carry these cameras (none: close). A set already carried is left alone; a changed one reopens. */
  want(cams) {
    this.wanted = cams;
    const same = cams.length === this.cams.length && cams.every((c, i) => c === this.cams[i]);
    if (same && this.open) {
      clearTimeout(this.timer); this.timer = 0;  // a change undone before it was sent (a tile hidden and shown)
      this.adopt();
      return;
    }
    if (same && this.timer) { return; }
    if (!cams.length) { this.close(); this.cams = []; return; }
    if (Date.now() < this.blockedUntil && same) { return; }  // refused lately: its timer comes back
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), REOPEN_MS);
  }

  /* Open the same set again (a tile's media broke: every tile gets its init again). */
  restart() {
    if (!this.wanted.length || this.timer) { return; }
    this.close();
    this.timer = setTimeout(() => this.connect(), this.backoff);
    this.backoff = Math.min(this.backoff * 2, 10000);
  }

  /* A player that came after its camera's init went by on the open stream (a tile shown again, a
   * second tile of the same camera): that init from the cache; MSE drops its frames up to the next
   * keyframe (at most a GOP, a second). */
  adopt() {
    this.last.forEach((init, cam) => this.players(cam).forEach((p) => {
      if (p.ms || p.waiting || p.dead) { return; }
      if (init) { p.onFrame(1, init.p, init.gen); } else { p.notStreaming(); }
    }));
  }

  close() {
    clearTimeout(this.timer); this.timer = 0;
    if (this.conn) { this.conn.abort(); this.conn = null; }
    this.open = false;
  }

  players(cam) {
    const out = [];
    cc.livePlayers.forEach((p, img) => { if (p.muxed && !p.stopped && p.cam === cam && img.isConnected) { out.push(p); } });
    return out;
  }

  /* Every tile of the stream back to JPEGs (the stream is refused, or ended); `ms`: open it again then. */
  lost(cams, ms) {
    cams.forEach((cam) => this.players(cam).forEach((p) => { if (p.playing || p.ms) { p.notStreaming(); } }));
    if (ms) {
      this.blockedUntil = Date.now() + ms;
      clearTimeout(this.timer);
      this.timer = setTimeout(() => { this.timer = 0; this.cams = []; this.want(this.wanted); }, ms);
    }
  }

  connect() {
    this.timer = 0;
    const cams = this.wanted.slice();
    if (!cams.length) { return; }
    if (this.conn) { this.conn.abort(); }
    const conn = new AbortController();
    this.conn = conn; this.cams = cams; this.open = true; this.last = new Map();
    cc.stats.liveTileOpens += 1;
    const alive = () => this.conn === conn;
    const url = `${TILES_URL}?c=${cams.map(encodeURIComponent).join(',')}`;
    fetch(url, { signal: conn.signal, credentials: 'same-origin', cache: 'no-store' })
      .then((resp) => {
        if (!alive()) { return null; }
        if (!resp.ok || resp.status === 204 || !resp.body) {
          // 204: none of them streams yet; 404: a camera lost its stream; 429/503: the stream cap (another
          // tab took the slot meanwhile). JPEGs meanwhile, the live path later.
          this.open = false; this.conn = null;
          this.lost(cams, resp.status === 204 ? NOT_YET_MS : RETRY_FALLBACK_MS);
          if (resp.status === 429 || resp.status === 503) { scheduleSoon(SLOT_POLL_MS); }
          return null;
        }
        return readFrames(resp.body.getReader(), 6, (kind, tile, p) => {
          const cam = cams[tile];
          if (cam === undefined) { return; }
          let gen;
          if (kind === 1) {
            if (p.length < 9) { return; }
            gen = new DataView(p.buffer, p.byteOffset, 8).getFloat64(0);
            p = p.slice(8);
            this.backoff = 1000;
            this.last.set(cam, { gen, p });
          } else if (kind === 4) {
            this.last.set(cam, null);
          }
          this.players(cam).forEach((pl) => pl.onFrame(kind, p, gen));
        }, alive).then((ended) => {
          if (!alive()) { return; }
          // Ended by the server (the hour cap; every camera silent, each already reported): open it
          // again soon, the tiles that played go on. Broken (a frame too long): JPEGs meanwhile.
          this.open = false; this.conn = null;
          if (!ended) { this.lost(cams, 0); }
          this.restart();
        });
      })
      .catch(() => {
        if (!alive()) { return; }
        this.open = false; this.conn = null;
        this.lost(cams, 0);
        this.restart();
      });
  }
}
const mux = new TileMux();
cc.liveMux = mux;  // tests read it (window.ccLive.liveMux)

let scheduleTimer = 0, slotsAsking = false;
cc.liveCap = null;  // the server's per-user cap, once asked (tests read it)
cc.liveTilesCap = null;  // cameras per tiles stream, once asked

function scheduleSoon(ms) {
  clearTimeout(scheduleTimer);
  scheduleTimer = setTimeout(schedule, ms);
}

/* Grant live slots as the server lets this tab hold them: each enlarged view one, then the tiles'
 * one stream, which carries the first `tiles` grid cameras from the top (the rest stay on JPEGs). */
function schedule() {
  scheduleTimer = 0;
  if (slotsAsking) { return; }
  if (!ranked().length) {
    let waiting = false;
    cc.livePlayers.forEach((p) => {
      if (p.granted && (p.dead || !liveCamera(p.cam))) { p.revoke(); }
      if (!p.stopped && !p.dead) { waiting = true; }
    });
    mux.want([]);
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
      const tilesCap = ok && num(s.tiles, 1, 255) ? Math.floor(s.tiles) : 16;
      const want = ranked();
      const popups = want.filter((p) => !p.muxed);
      const tiles = want.filter((p) => p.muxed);
      let mine = mux.open ? 1 : 0;
      cc.livePlayers.forEach((p) => { if (!p.muxed && p.open) { mine += 1; } });
      // Slots held by this user's other tabs: what the server counts, less this tab's own.
      let budget = ok ? Math.max(0, s.per_user - Math.max(0, s.in_use - mine)) : 0;
      if (ok) { cc.liveCap = s.per_user; cc.liveTilesCap = tilesCap; }
      const keep = new Set(popups.slice(0, budget));
      budget -= keep.size;
      cc.livePlayers.forEach((p) => { if (p.granted && !keep.has(p)) { p.revoke(); } });
      keep.forEach((p) => p.grant());
      const cams = [];
      if (budget > 0) {
        tiles.forEach((p) => { if (cams.length < tilesCap && cams.indexOf(p.cam) < 0) { cams.push(p.cam); } });
      }
      // Tiles left out (no slot, or beyond the stream's cap) show JPEGs: hide what they played.
      tiles.forEach((p) => { if (cams.indexOf(p.cam) < 0 && (p.playing || p.ms)) { p.notStreaming(); } });
      mux.want(cams);
      if (popups.length > keep.size || (tiles.length && budget <= 0)) { scheduleSoon(SLOT_POLL_MS); }
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
