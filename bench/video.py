"""Live video benchmark: N RTSP cameras restreamed to M viewers, the H.264 remux (fMP4 over the live
route) against today's JPEG path (decode, JPEG-encode, MJPEG route) in the same run, then the glass-to-
glass latency of a 16-tile activity wall in headless Chromium.

Server side. The cameras are real RTSP streams (rtsp-server-perl fed by ffmpeg -c copy,
vision/rtsp_demo.py) of the set-up's vtest_main.mp4 (768x576, 10 fps, H.264). For each path a server
process runs what the stack runs for it: PyAV sources (one connection per camera), the Redis relay and
the web routes of dashboard/video.py under waitress. The viewers (this process) read every camera's
stream over HTTP. Server CPU is that process's CPU time over the measured window, per viewed stream
(N*M streams). Analytics (detection) is left out of both: it is the same work whichever way the video
leaves. The source -> socket latency of the live path (delivery at the viewer's socket minus the
segment's source time) is printed too, as before.

Browser side (the wall). The real web and gateway parts (`app.py --only web|gateway`) on a private
embedded Redis; `--tiles` cameras (16) served by another rtsp-server-perl from a substream clip like
the one grid tiles play (vtest at 384 wide, 10 fps, GOP 10), made at the start without B-frames, as
most cameras send (see no_bframes_clip: with B-frames the page's dating of frames reads low); a relay
process running, per camera, what the
vision worker runs minus the detection (a PyAV source restreaming through the Redis relay, the
camera's status with stream health and live=true on the camera layer every second). One headless
Chromium page (tests/webtools.chromium(), 1920x1080), signed in through the login form as an
operator, opens /wall/activity/<tiles>; the page plays whatever its video.js grants (all tiles over one
tiles stream when the server offers it; with per-camera streams, as many as the per-user cap).

    latency = glass-to-glass: Date.now() when a frame is presented (requestVideoFrameCallback) minus
              its source time (when the camera's frame reached the server's PyAV source), from the
              page's own window.ccLive.stats.liveLatencyMs / livePresented (video.js), or, where the
              page has none, from the bench's own hook (requestVideoFrameCallback on every tile's
              <video>, each frame's exact presentation time read from the fMP4 boxes the page
              appends: APPEND_HOOK_JS, HOOK_JS), printed beside it as a cross-check either way.
              Same clock: one machine. The PyAV source's receipt stands in for capture: the
              camera's own encoding and the RTSP hop (loopback here) come before it.
    fps     = frames presented per second per live tile (livePresented, or the hook's count), over
              the tiles playing when the window opened; the decoded and dropped rates from
              getVideoPlaybackQuality are printed too.

Last line (streams and the CPU figures from the server side; latency and fps from the wall):
    video streams=<n> cpu_pct_per_stream=<x> jpeg_cpu_pct_per_stream=<x> ratio=<x> latency_p50_ms=<n>
          latency_p99_ms=<n> fps=<n>

    python bench/video.py [--quick] [--cams N] [--viewers M] [--seconds S] [--tiles T]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil

from config.settings import REPO_ROOT
from spine.servers.managed import free_port

CLIP = REPO_ROOT / "data" / "media" / "vtest_main.mp4"
CAMERA_FPS = 10.0


# ---- the server side (a subprocess per path) -----------------------------------------------------
def run_server(mode: str, cams: list[tuple[str, str]], redis_url: str, port: int, workdir: Path) -> None:
    import flask
    from flask_login import LoginManager, login_user
    from waitress.server import create_server

    from dashboard.auth import SessionUser
    from dashboard.store import Store
    from spine.publisher import connect
    from vision.annotate import encode_jpeg
    from vision.frames import FrameSink
    from vision.live import LiveSource
    from vision.relay import VideoRelay

    workdir.mkdir(parents=True, exist_ok=True)
    lines = ["cameras:"] + [f"  - {{id: {cid}, name: {cid}, lat: 37.4, lon: 126.6,\n"
                             f"      streams: {{main: '{url}'}}}}" for cid, url in cams]
    (workdir / "cameras.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.environ["CC_CAMERAS_FILE"] = str(workdir / "cameras.yaml")
    from dashboard.video import StreamLimits, install_video_routes

    client = connect(redis_url)
    if mode == "live":
        sources = [LiveSource(cid, url, relay=VideoRelay(client, cid, "sub"), decode=False)
                   for cid, url in cams]
    else:
        sources = [LiveSource(cid, url, decode=True, analytics_fps=CAMERA_FPS) for cid, url in cams]
        sink = FrameSink(client)

        def jpegs(src: LiveSource) -> None:  # today's path: every frame decoded, JPEG-encoded, stored
            last = -1
            while True:
                f = src.latest(last, timeout=1.0)
                if f is None:
                    continue
                last = f.index
                sink.put(src.camera_id, encode_jpeg(f.image, 640, 70))

        for s in sources:
            threading.Thread(target=jpegs, args=(s,), daemon=True).start()
    for s in sources:
        s.start()
    server = flask.Flask("bench")
    server.secret_key = "bench"
    LoginManager(server).user_loader(lambda uid: SessionUser(uid, uid.split(":", 1)[1], "operator"))

    @server.route("/bench-login")
    def _login():
        login_user(SessionUser("user:bench", "bench", "operator"))
        return "ok"

    store = Store(f"sqlite:///{workdir / 'bench.db'}")
    store.active_session = lambda sid: True  # type: ignore[method-assign]  # no session rows here
    install_video_routes(server, store, redis_url, StreamLimits(per_user=10_000, total=10_000),
                         frigate_cfg={})
    create_server(server, host="127.0.0.1", port=port, threads=len(cams) * 64 + 8, ident="bench").run()


def run_relay(cams: list[tuple[str, str]], redis_url: str) -> None:
    """The browser phase's camera side: what the stack's vision worker runs for a camera, without the
    detection: a PyAV source per camera restreaming its substream through the Redis relay, and the
    camera's status on the camera layer (video, live, stream health, last_activity) every second, so
    the activity wall's tiles pick these cameras and ask for their live streams."""
    from spine.publisher import Publisher, connect
    from vision.live import LiveSource
    from vision.relay import VideoRelay

    client = connect(redis_url)
    sources = [LiveSource(cid, url, relay=VideoRelay(client, cid, "sub"), decode=False).start()
               for cid, url in cams]
    pub = Publisher(client, src="bench-video")
    started = int(time.time() * 1000)
    while True:
        for i, s in enumerate(sources):
            # A fixed order of activity: the wall keeps its tiles (no re-assignment mid-measurement).
            props = {"name": s.camera_id, "status": "online", "video": True, "privacy": False,
                     "last_activity": started - i * 1000, **s.health()}
            pub.update("camera", s.camera_id, 37.40 + i * 0.001, 126.60, props)
        pub.flush()
        time.sleep(1.0)


# ---- the viewer side -----------------------------------------------------------------------------
class Viewer(threading.Thread):
    def __init__(self, port: int, cookie: str, path: str, live: bool, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.port, self.cookie, self.path, self.live, self.stop_ev = port, cookie, path, live, stop
        self.frames: list[float] = []  # delivery times
        self.latency: list[float] = []
        self.error = ""

    def run(self) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            conn.request("GET", self.path, headers={"Cookie": self.cookie})
            resp = conn.getresponse()
            if resp.status != 200:
                self.error = f"HTTP {resp.status}"
                return
            buf = b""
            while not self.stop_ev.is_set():
                chunk = resp.read1(65536)
                if not chunk:
                    break
                now = time.time()
                if not self.live:
                    self.frames += [now] * chunk.count(b"Content-Type: image/jpeg")
                    continue
                buf += chunk
                while len(buf) >= 5:
                    kind, size = struct.unpack(">BI", buf[:5])
                    if len(buf) < 5 + size:
                        break
                    if kind == 2:
                        src_ts = struct.unpack(">d", buf[5:13])[0]
                        self.frames.append(now)
                        self.latency.append(now - src_ts)
                    buf = buf[5 + size:]
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            self.error = repr(exc)


def login(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/bench-login")
    resp = conn.getresponse()
    resp.read()
    cookie = resp.getheader("Set-Cookie", "").split(";")[0]
    conn.close()
    return cookie


def wait_http(port: int, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            login(port)
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("bench server did not come up")


def bench_keys(camera_ids: list[str]) -> list[str]:
    from spine.channels import frame_key
    from vision.relay import init_key, meta_key, seg_key

    return [k(cid, v) for cid in camera_ids for k in (init_key, seg_key) for v in ("main", "sub")] + [
        meta_key(cid) for cid in camera_ids] + [frame_key(cid) for cid in camera_ids]


def wait_ready(mode: str, camera_ids: list[str], redis_url: str, timeout: float = 20.0) -> None:
    """Until every camera's init segment (live) or JPEG frame (jpeg) is in Redis: the live route
    answers 204 before that."""
    from spine.channels import frame_key
    from spine.publisher import connect
    from vision.relay import init_key

    client = connect(redis_url)
    keys = [init_key(cid, "sub") if mode == "live" else frame_key(cid) for cid in camera_ids]
    end = time.monotonic() + timeout
    while time.monotonic() < end and client.exists(*keys) < len(keys):
        time.sleep(0.2)
    client.close()


def measure(mode: str, cams: list[tuple[str, str]], viewers: int, seconds: float, redis_url: str,
            workdir: Path, warm_s: float = 4.0) -> dict:
    from spine.publisher import connect

    client = connect(redis_url)
    client.delete(*bench_keys([cid for cid, _ in cams]))  # an earlier run's (30 s TTL) would pass for ready
    client.close()
    port = free_port()
    args = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--redis", redis_url,
            "--workdir", str(workdir), "--cams-json", json.dumps(cams)]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port)
        cookie = login(port)
        wait_ready(mode, [cid for cid, _ in cams], redis_url)
        time.sleep(warm_s)  # a few segments or frames through
        stop = threading.Event()
        ext = "live" if mode == "live" else "mjpg"
        vs = [Viewer(port, cookie, f"/video/{cid}.{ext}", mode == "live", stop) for cid, _ in cams
              for _ in range(viewers)]
        for v in vs:
            v.start()
        time.sleep(2.0)  # joined, first keyframe through
        p = psutil.Process(proc.pid)
        c0, t0 = sum(p.cpu_times()[:2]), time.monotonic()
        w0 = time.time()
        time.sleep(seconds)
        c1, t1 = sum(p.cpu_times()[:2]), time.monotonic()
        w1 = time.time()
        stop.set()
        errors = [v.error for v in vs if v.error]
        cpu_pct = (c1 - c0) / (t1 - t0) * 100
        fps = statistics.mean(sum(1 for t in v.frames if w0 <= t < w1) / (w1 - w0) for v in vs)
        lat = sorted(x for v in vs if v.live for x, t in zip(v.latency, v.frames, strict=True)
                     if w0 <= t < w1)
        return {"mode": mode, "streams": len(vs), "cpu_pct": cpu_pct, "cpu_pct_per_stream": cpu_pct / len(vs),
                "fps": fps, "lat_p50": lat[len(lat) // 2] * 1000 if lat else 0.0,
                "lat_p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else 0.0,
                "errors": errors[:3]}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- the browser phase: glass-to-glass on the activity wall -------------------------------------
CLIP_SUB = REPO_ROOT / "data" / "media" / "vtest_sub.mp4"  # what grid tiles play: the 384-wide substream
CLIP_RAW = REPO_ROOT / "data" / "media" / "vtest.avi"


def no_bframes_clip(out: Path) -> Path:
    """The substream clip as a typical camera sends it: H.264 without B-frames (main profile, GOP 10 =
    1 s at 10 fps, 384 wide), made once per run (a few seconds). Why: the relay dates each segment by
    its decode time (tfdt) and the page maps a presented frame's media time (a presentation time) to
    a source time through those pairs, so with B-frames a frame is dated by a later frame's arrival and
    glass-to-glass reads low by up to the reorder delay. Without B-frames (the set-up's clips too, since
    scripts/setup_vision.sh encodes with -bf 0) decode and presentation times are the same and the
    mapping is exact; `--wall-clip` plays any other clip (one with B-frames) to compare."""
    src = CLIP_RAW if CLIP_RAW.exists() else CLIP_SUB
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-an",
                    "-vf", "scale=384:-2", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
                    "-bf", "0", "-pix_fmt", "yuv420p", "-g", "10", "-keyint_min", "10", "-sc_threshold", "0",
                    "-r", "10", str(out)], check=True, timeout=120)
    return out
BENCH_USER, BENCH_PASSWORD = "bench-operator", "bench-operator-password"

# The bench's own in-page measurement, independent of how video.js dates frames (a cross-check, and
# the figure when the page records none). Before the page's scripts run (an init script),
# SourceBuffer.prototype.appendBuffer is wrapped: each init segment gives the track's timescale (mdhd),
# each media segment (one frame) its decode time (tfdt) and composition offset (the first trun
# sample's), so the frame's presentation time is known exactly, B-frames or not. Then a
# requestVideoFrameCallback loop on every tile's <video>: the presented frame's mediaTime is matched
# to the appended frame with that presentation time (less the shift the browser applies, taken from
# the first frame after each init: its presentation time minus buffered.start(0)); that frame's
# decode time finds its (media time, source time) pair, which the relay sent with the segment and
# the player keeps (LivePlayer.pairs; the newest segment's LivePlayer.offset where it keeps none).
# Shown time: the callback's expectedDisplayTime on the epoch clock (Python's time.time() is the
# same clock on this machine).
APPEND_HOOK_JS = r"""(() => {
  const kids = (u8, start, end) => {
    const out = [];
    let o = start;
    while (o + 8 <= end) {
      const dv = new DataView(u8.buffer, u8.byteOffset + o);
      let size = dv.getUint32(0), hdr = 8;
      if (size === 1) { size = Number(dv.getBigUint64(8)); hdr = 16; }
      if (size === 0) { size = end - o; }
      if (size < hdr || o + size > end) { break; }
      const t = String.fromCharCode(u8[o + 4], u8[o + 5], u8[o + 6], u8[o + 7]);
      out.push({ t, s: o + hdr, e: o + size });
      o += size;
    }
    return out;
  };
  const path = (u8, names) => {
    let box = { s: 0, e: u8.length };
    for (const n of names) {
      box = kids(u8, box.s, box.e).find((k) => k.t === n);
      if (!box) { return null; }
    }
    return box;
  };
  const full = (u8, box) => new DataView(u8.buffer, u8.byteOffset + box.s, box.e - box.s);
  const orig = SourceBuffer.prototype.appendBuffer;
  SourceBuffer.prototype.appendBuffer = function (data) {
    try {
      const u8 = data instanceof Uint8Array ? data : new Uint8Array(data.buffer || data);
      const st = this.__bench || (this.__bench = { ts: 0, frames: [], first: null });
      const mdhd = path(u8, ['moov', 'trak', 'mdia', 'mdhd']);
      if (mdhd) {
        const dv = full(u8, mdhd);
        st.ts = dv.getUint32(dv.getUint8(0) === 1 ? 20 : 12);
        st.frames = []; st.first = null; st.shift = null;
      }
      const tfdt = path(u8, ['moof', 'traf', 'tfdt']), trun = path(u8, ['moof', 'traf', 'trun']);
      if (tfdt && st.ts) {
        const d = full(u8, tfdt);
        const dts = d.getUint8(0) === 1 ? Number(d.getBigUint64(4)) : d.getUint32(4);
        let cto = 0;
        if (trun) {
          const r = full(u8, trun), v = r.getUint8(0), fl = r.getUint32(0) & 0xffffff;
          let o = 8 + (fl & 1 ? 4 : 0) + (fl & 4 ? 4 : 0) + (fl & 0x100 ? 4 : 0) + (fl & 0x200 ? 4 : 0)
            + (fl & 0x400 ? 4 : 0);
          if (fl & 0x800) { cto = v === 1 ? r.getInt32(o) : r.getUint32(o); }
        }
        const f = [(dts + cto) / st.ts, dts / st.ts];
        if (st.first === null) { st.first = f[0]; }
        st.frames.push(f);
        if (st.frames.length > 600) { st.frames.splice(0, st.frames.length - 600); }
      }
    } catch (e) { /* not an ISO BMFF buffer the bench can read: the page goes on as without it */ }
    return orig.call(this, data);
  };
})();"""

HOOK_JS = """() => {
  if (window.ccBench) { return; }
  const B = window.ccBench = { lat: [], frames: {}, noOffset: 0 };
  const seen = new WeakSet();
  const playerOf = (v) => {
    const ps = window.ccLive && window.ccLive.livePlayers;
    if (!ps || typeof ps.values !== 'function') { return null; }
    for (const p of ps.values()) { if (p && p.video === v) { return p; } }
    return null;
  };
  const sourceOf = (p, v, mediaTime) => {
    const st = p.sb && p.sb.__bench;
    if (!st || st.first === null || !v.buffered.length) { return null; }
    if (st.shift === null) { st.shift = st.first - v.buffered.start(0); }
    const f = st.frames.find((x) => Math.abs(x[0] - st.shift - mediaTime) < 0.002);
    if (!f) { return null; }
    if (Array.isArray(p.pairs)) {
      const pr = p.pairs.find((x) => Math.abs(x[0] - f[1]) < 0.002);
      return pr ? pr[1] : null;
    }
    return typeof p.offset === 'number' ? f[1] + p.offset : null;
  };
  const hook = (v) => {
    const cb = (now, md) => {
      const tile = v.closest('.cc-video-tile');
      const p = playerOf(v);
      const cam = (p && p.cam) || (tile && tile.dataset.camera) || '?';
      B.frames[cam] = (B.frames[cam] || 0) + 1;
      const src = p && Number.isFinite(md.mediaTime) ? sourceOf(p, v, md.mediaTime) : null;
      if (typeof src === 'number' && Number.isFinite(src)) {
        const shown = performance.timeOrigin + (md.expectedDisplayTime || now);
        B.lat.push(shown - src * 1000);
        if (B.lat.length > 400000) { B.lat.splice(0, 200000); B.dropped = (B.dropped || 0) + 200000; }
      } else { B.noOffset += 1; }
      v.requestVideoFrameCallback(cb);
    };
    v.requestVideoFrameCallback(cb);
  };
  const scan = () => document.querySelectorAll('.cc-video-tile video').forEach((v) => {
    if (!seen.has(v)) { seen.add(v); hook(v); }
  });
  scan();
  setInterval(scan, 500);
}"""

# Tiles whose <video> plays now (shown, not paused, past its start), by camera. Not by readyState: a
# tile waiting a moment at its live edge (a stall, a catch-up seek) reads 1-2 and still plays.
PLAYING_JS = """() => Array.from(document.querySelectorAll('.cc-video-tile')).filter((t) => {
  const v = t.querySelector('video');
  return !!v && v.style.display !== 'none' && !v.paused && v.currentTime > 0.3;
}).map((t) => t.dataset.camera || '?')"""

# What the page and the bench hook hold now; the page's own stats (video.js: liveLatencyMs, the last
# 1000 presented frames' Date.now() - source time, and livePresented, their count) when it has them.
SAMPLE_JS = """() => {
  const s = (window.ccLive && window.ccLive.stats) || {};
  const b = window.ccBench || { lat: [], frames: {}, noOffset: 0 };
  const q = {}, lag = [], pos = {};
  document.querySelectorAll('.cc-video-tile').forEach((t) => {
    const v = t.querySelector('video');
    if (v && v.style.display !== 'none') { pos[t.dataset.camera || '?'] = v.currentTime; }
    if (v && typeof v.getVideoPlaybackQuality === 'function') {
      const x = v.getVideoPlaybackQuality();
      q[t.dataset.camera || '?'] = [x.totalVideoFrames, x.droppedVideoFrames];
    }
    if (v && v.style.display !== 'none' && !v.paused && v.buffered.length) {
      lag.push((v.buffered.end(v.buffered.length - 1) - v.currentTime) * 1000);
    }
  });
  return { app: Array.isArray(s.liveLatencyMs) ? s.liveLatencyMs.slice(-1000) : null,
           presented: typeof s.livePresented === 'number' ? s.livePresented : null,
           benchN: b.lat.length + (b.dropped || 0), frames: Object.assign({}, b.frames),
           noOffset: b.noOffset, quality: q, lag, pos, now: Date.now() };
}"""


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
        except psutil.Error:
            continue
    return total


def _browser_procs() -> list[psutil.Process]:
    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" in p.name().lower() or "headless_shell" in p.name().lower():
                out.append(p)
        except psutil.Error:
            continue
    return out


def _wait_url(url: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


class BrowserStack:
    """The real web and gateway parts (`app.py --only web|gateway`) on a private embedded Redis, an RTSP
    server with `tiles` cameras of the substream clip, and the relay process (run_relay). Started
    before the server-side phases (they idle meanwhile) so that `--quick` stays under a minute."""

    def __init__(self, tiles: int, tmp: Path, clip: Path | None = None) -> None:
        from dashboard.store import Store
        from spine.servers.embedded_redis import EmbeddedRedis
        from vision.rtsp_demo import DemoRtspServer

        self.tiles, self.tmp = tiles, tmp
        tmp.mkdir(parents=True)
        self.clip = clip or no_bframes_clip(tmp / "wall_nob.mp4")
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis = EmbeddedRedis(tmp / "redis")
        self.redis_url = self.redis.start()
        names = [f"wall{i:02d}" for i in range(tiles)]
        # Its pushers start with the relay (start_relay), not while the server-side phases measure.
        self.rtsp = DemoRtspServer({n: self.clip for n in names}, client_port=free_port(),
                                   source_port=free_port(),
                                   rtp_start_port=random.randrange(30000, 60000, 100))
        self.cams = [(n, self.rtsp.url(n)) for n in names]
        lines = ["cameras:"] + [f"  - {{id: {cid}, name: {cid}, lat: {37.40 + i * 0.001:.3f}, lon: 126.6,\n"
                                f"      streams: {{main: '{url}', sub: '{url}'}}}}"
                                for i, (cid, url) in enumerate(self.cams)]
        # config/walls.yaml names the drone camera (wall 3): listed, last and silent, so the config holds.
        lines.append(f"  - {{id: vis-drone-1, name: Drone, lat: 37.5, lon: 126.7, source: '{self.clip}'}}")
        (tmp / "cameras.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        data = tmp / "data"
        data.mkdir()
        Store(f"sqlite:///{data / 'controlroom.db'}").add_user(BENCH_USER, BENCH_PASSWORD, "operator")
        self.web_port, self.gw_port = free_port(), free_port()
        env = {**os.environ, "REDIS_URL": self.redis_url, "CC_DATA_DIR": str(data),
               "CC_WEB__PORT": str(self.web_port), "CC_GATEWAY__PORT": str(self.gw_port),
               "CC_SECRET_KEY": "bench-video-secret", "CC_LOG_LEVEL": "WARNING",
               "CC_CAMERAS_FILE": str(tmp / "cameras.yaml"), "CC_PROFILE": ""}
        self.logs = (tmp / "parts.log").open("wb")
        for part in ("web", "gateway"):
            self.procs[part] = subprocess.Popen([sys.executable, str(REPO_ROOT / "app.py"), "--only", part],
                                                env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                                stdout=self.logs, stderr=subprocess.STDOUT)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def wait(self) -> None:
        for part in ("web", "gateway"):
            if self.procs[part].poll() is not None:
                raise RuntimeError(f"{part} exited ({self.procs[part].returncode})")
        _wait_url(f"{self.base}/healthz")
        _wait_url(f"http://127.0.0.1:{self.gw_port}/healthz")

    def start_relay(self) -> None:
        self.rtsp.start()
        time.sleep(1.0)  # the pushers announce their mounts before the sources ask for them
        self.procs["relay"] = subprocess.Popen(
            [sys.executable, __file__, "--serve", "relay", "--redis", self.redis_url,
             "--cams-json", json.dumps(self.cams)], cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
            stdout=self.logs, stderr=subprocess.STDOUT)

    def log_tail(self) -> str:
        self.logs.flush()
        return (self.tmp / "parts.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if self.rtsp.server is not None:
            self.rtsp.stop()
        self.redis.stop()
        self.logs.close()


def measure_browser(stack: BrowserStack, seconds: float, settle_s: float, still_s: float) -> dict:
    """One headless Chromium page at 1920x1080, signed in as an operator, on /wall/activity/<tiles>."""
    from tests.webtools import chromium

    t_start = time.monotonic()
    stack.start_relay()
    server = [psutil.Process(stack.procs[k].pid) for k in ("relay", "web", "gateway")]
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.add_init_script(APPEND_HOOK_JS)
        path = f"/wall/activity/{stack.tiles}"
        page.goto(stack.base + path)
        page.fill("#username", BENCH_USER)
        page.fill("#password", BENCH_PASSWORD)
        page.click("#login-button")
        page.wait_for_url(stack.base + path)
        page.evaluate(HOOK_JS)
        # Playback: every tile live, or as many as play once the count has stood still for a while
        # (the per-user stream cap keeps the others on JPEG).
        t_nav = time.monotonic()
        signed_in_s = t_nav - t_start
        best, since = 0, time.monotonic()
        while time.monotonic() - t_nav < settle_s:
            n = len(page.evaluate(PLAYING_JS))
            if n > best:
                best, since = n, time.monotonic()
            if n >= stack.tiles or (best and time.monotonic() - since > still_s):
                break
            time.sleep(0.5)
        first_play_s = time.monotonic() - t_nav
        time.sleep(2.0)  # past the first keyframe's catch-up
        playing = page.evaluate(PLAYING_JS)
        procs = server + _browser_procs()
        c_srv0, c_br0, t0 = _cpu(server), _cpu(procs[len(server):]), time.monotonic()
        s0 = page.evaluate(SAMPLE_JS)
        app_lat: list[float] = []
        edge_lag: list[float] = []  # ms each playing tile's position is behind its newest buffered frame
        app_missed = 0
        tile_s = frozen_s = 0  # tile-samples (about a second each) and those a tile stood still
        last = s0
        end = t0 + seconds
        while time.monotonic() < end:
            time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            s = page.evaluate(SAMPLE_JS)
            edge_lag += s["lag"]
            # A shown tile whose picture moved less than a fifth of the wall-clock time: frozen then
            # (stuck before a gap in its buffer, starved); it presents no frames, so the latency
            # figures cannot see it.
            dt = (s["now"] - last["now"]) / 1000
            for cam, t in s["pos"].items():
                if cam in last["pos"] and dt > 0.5:
                    tile_s += 1
                    frozen_s += (t - last["pos"][cam]) < 0.2 * dt
            if s["app"] is not None and last["presented"] is not None:
                new = s["presented"] - last["presented"]
                take = min(new, len(s["app"]))
                app_lat += s["app"][len(s["app"]) - take:] if take > 0 else []
                app_missed += max(0, new - take)
            last = s
        t1 = time.monotonic()
        c_srv1, c_br1 = _cpu(server), _cpu(procs[len(server):])
        s1 = last
        bench_lat = page.evaluate(f"() => ccBench.lat.slice({s0['benchN']})") if s1["benchN"] else []
        playing_end = page.evaluate(PLAYING_JS)
        errors = browser.errors.take()
        page.close()
    span = t1 - t0
    # Per tile: the tiles that presented frames in the window (some may start or stall inside it).
    frames = {cam: (n - s0["frames"].get(cam, 0)) / span for cam, n in s1["frames"].items()}
    frames = {cam: f for cam, f in frames.items() if f > 0}
    decoded = {cam: ((s1["quality"].get(cam, [0, 0])[0] - s0["quality"].get(cam, [0, 0])[0]) / span,
                     (s1["quality"].get(cam, [0, 0])[1] - s0["quality"].get(cam, [0, 0])[1]) / span)
               for cam in frames}
    app_ok = s1["app"] is not None and s1["presented"] is not None
    app_fps = ((s1["presented"] - s0["presented"]) / span / len(frames)) if app_ok and frames else 0.0
    lat = app_lat if app_ok else bench_lat
    return {"tiles": stack.tiles, "playing": len(playing), "playing_end": len(playing_end),
            "active": len(frames),
            "first_play_s": first_play_s, "signed_in_s": signed_in_s,
            "source": "page (video.js stats)" if app_ok else "bench hook",
            "lat_p50": pct(lat, 50), "lat_p99": pct(lat, 99), "samples": len(lat), "app_missed": app_missed,
            "edge_lag_p50": pct(edge_lag, 50), "edge_lag_max": max(edge_lag, default=float("nan")),
            "unmatched": s1["noOffset"] - s0["noOffset"],
            "frozen_pct": frozen_s / tile_s * 100 if tile_s else 0.0,
            "bench_p50": pct(bench_lat, 50), "bench_p99": pct(bench_lat, 99), "bench_samples": len(bench_lat),
            "fps": app_fps if app_ok else (statistics.mean(frames.values()) if frames else 0.0),
            "hook_fps": statistics.mean(frames.values()) if frames else 0.0,
            "hook_fps_min": min(frames.values()) if frames else 0.0,
            "decoded_fps": statistics.mean(d[0] for d in decoded.values()) if decoded else 0.0,
            "dropped_fps": statistics.mean(d[1] for d in decoded.values()) if decoded else 0.0,
            "server_cpu": (c_srv1 - c_srv0) / span * 100, "browser_cpu": (c_br1 - c_br0) / span * 100,
            "errors": errors[:3], "n_errors": len(errors)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2 cameras x 2 viewers, 5 s per path; the wall's tiles for 6 s (under a minute)")
    ap.add_argument("--cams", type=int, default=4)
    ap.add_argument("--viewers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--tiles", type=int, default=16, help="tiles of the activity wall page (1-16)")
    ap.add_argument("--wall-clip", type=Path,
                    help="H.264 clip the wall's cameras send (default: vtest at 384 wide without B-frames)")
    ap.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--serve", choices=("live", "jpeg", "relay"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--cams-json", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve == "relay":
        run_relay([tuple(c) for c in json.loads(a.cams_json)], a.redis)
        return
    if a.serve:
        run_server(a.serve, [tuple(c) for c in json.loads(a.cams_json)], a.redis, a.port, Path(a.workdir))
        return
    if a.quick:
        a.cams, a.viewers, a.seconds = 2, 2, 5.0
    a.tiles = max(1, min(16, a.tiles))  # the activity wall has at most 16 tiles
    for clip in (CLIP, CLIP_SUB, *([a.wall_clip] if a.wall_clip else [])):
        if not clip.exists():
            sys.exit(f"{clip} missing: run scripts/setup_vision.sh")
    from vision.rtsp_demo import DemoRtspServer

    names = [f"bench{i}" for i in range(a.cams)]
    t_run = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cc-bench-video-") as tmp:
        # The wall's web and gateway start now (a Dash app takes seconds to import) and idle meanwhile.
        wall = BrowserStack(a.tiles, Path(tmp) / "wall", a.wall_clip)
        rtsp = DemoRtspServer({n: CLIP for n in names}, client_port=free_port(), source_port=free_port(),
                              rtp_start_port=random.randrange(30000, 60000, 100)).start()
        try:
            time.sleep(1.0)
            cams = [(n, rtsp.url(n)) for n in names]
            warm = 2.0 if a.quick else 4.0
            t0 = time.monotonic()
            live = measure("live", cams, a.viewers, a.seconds, a.redis, Path(tmp) / "live", warm)
            t1 = time.monotonic()
            jpeg = measure("jpeg", cams, a.viewers, a.seconds, a.redis, Path(tmp) / "jpeg", warm)
            t2 = time.monotonic()
            rtsp.stop()
            wall.wait()
            load0 = os.getloadavg()[0]
            glass = measure_browser(wall, 6.0 if a.quick else a.seconds, 15.0 if a.quick else 45.0,
                                    3.0 if a.quick else 8.0)
            load1 = os.getloadavg()[0]
            print(f"took: start {t0 - t_run:.0f} s, live {t1 - t0:.0f} s, jpeg {t2 - t1:.0f} s, wall "
                  f"{time.monotonic() - t2:.0f} s (signed in after {glass['signed_in_s']:.0f} s, "
                  f"tiles playing {glass['first_play_s']:.0f} s later)", file=sys.stderr)
        except Exception:
            print(wall.log_tail(), file=sys.stderr)
            raise
        finally:
            rtsp.stop()
            wall.close()
    for r in (live, jpeg):
        print(f"{r['mode']:5s} streams={r['streams']} server_cpu={r['cpu_pct']:.1f}% "
              f"per_stream={r['cpu_pct_per_stream']:.2f}% fps={r['fps']:.1f} "
              f"source->socket p50={r['lat_p50']:.0f}ms p99={r['lat_p99']:.0f}ms errors={r['errors']}")
    g = glass
    print(f"wall  tiles={g['tiles']} live={g['active']} (presenting frames in the window; playing at "
          f"its start {g['playing']}, at its end {g['playing_end']}; that many playing "
          f"{g['first_play_s']:.1f} s after sign-in)")
    print(f"wall  glass_to_glass p50={g['lat_p50']:.0f}ms p99={g['lat_p99']:.0f}ms "
          f"from {g['source']} n={g['samples']} (missed {g['app_missed']}); "
          f"bench hook p50={g['bench_p50']:.0f}ms p99={g['bench_p99']:.0f}ms n={g['bench_samples']} "
          f"(frames it could not date {g['unmatched']}); "
          f"behind the buffered edge p50={g['edge_lag_p50']:.0f}ms max={g['edge_lag_max']:.0f}ms; "
          f"frozen {g['frozen_pct']:.1f}% of tile-seconds")
    print(f"wall  presented_fps_per_tile={g['fps']:.1f} (hook {g['hook_fps']:.1f}, slowest tile "
          f"{g['hook_fps_min']:.1f}) decoded_fps={g['decoded_fps']:.1f} dropped_fps={g['dropped_fps']:.1f} "
          f"server_cpu={g['server_cpu']:.1f}% (relay+web+gateway) browser_cpu={g['browser_cpu']:.1f}% "
          f"load_avg={load0:.1f}->{load1:.1f} on {os.cpu_count()} cpus "
          f"page_errors={g['n_errors']} {g['errors']}")
    if g["source"] != "bench hook" and abs(g["lat_p50"] - g["bench_p50"]) > 50:
        print(f"wall  WARNING: the page's glass-to-glass p50 ({g['lat_p50']:.0f} ms) and the bench hook's "
              f"({g['bench_p50']:.0f} ms, exact presentation times) differ by more than 50 ms: B-frames in "
              "the clip? (the page dates frames by decode time)", file=sys.stderr)
    ratio = jpeg["cpu_pct_per_stream"] / live["cpu_pct_per_stream"] if live["cpu_pct_per_stream"] else 0.0
    print(f"video streams={live['streams']} cpu_pct_per_stream={live['cpu_pct_per_stream']:.2f} "
          f"jpeg_cpu_pct_per_stream={jpeg['cpu_pct_per_stream']:.2f} ratio={ratio:.1f} "
          f"latency_p50_ms={g['lat_p50']:.0f} latency_p99_ms={g['lat_p99']:.0f} fps={g['fps']:.1f}")


if __name__ == "__main__":
    main()
