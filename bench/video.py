"""Live video benchmark: N RTSP cameras restreamed to M viewers, the H.264 remux (fMP4 over the live
route) against today's JPEG path (decode, JPEG-encode, MJPEG route) in the same run.

The cameras are real RTSP streams (rtsp-server-perl fed by ffmpeg -c copy, vision/rtsp_demo.py) of
the set-up's vtest_main.mp4 (768x576, 10 fps, H.264). For each path a server process runs what the
stack runs for it: PyAV sources (one connection per camera), the Redis relay and the web routes of
dashboard/video.py under waitress. The viewers (this process) read every camera's stream over HTTP.
Server CPU is that process's CPU time over the measured window, per viewed stream (N*M streams).
Analytics (detection) is left out of both: it is the same work whichever way the video leaves.

    latency = delivery time at the viewer - the segment's source time (when the server received the
              frame from the camera), the live path only (MJPEG parts carry no source time). The
              browser's own buffering and decoding come on top (docs/performance.md).
    fps     = media segments (live) or JPEG parts (JPEG) per second per viewed stream.

Last line:
    video streams=<n> cpu_pct_per_stream=<x> jpeg_cpu_pct_per_stream=<x> ratio=<x> latency_p50_ms=<n>
          latency_p99_ms=<n> fps=<n>

    python bench/video.py [--quick] [--cams N] [--viewers M] [--seconds S]
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


def measure(mode: str, cams: list[tuple[str, str]], viewers: int, seconds: float, redis_url: str,
            workdir: Path) -> dict:
    port = free_port()
    args = [sys.executable, __file__, "--serve", mode, "--port", str(port), "--redis", redis_url,
            "--workdir", str(workdir), "--cams-json", json.dumps(cams)]
    proc = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port)
        cookie = login(port)
        time.sleep(4.0)  # the sources connect and the relay fills
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="2 cameras x 2 viewers, 8 s per path (under a minute)")
    ap.add_argument("--cams", type=int, default=4)
    ap.add_argument("--viewers", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"))
    ap.add_argument("--serve", choices=("live", "jpeg"), help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    ap.add_argument("--cams-json", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        run_server(a.serve, [tuple(c) for c in json.loads(a.cams_json)], a.redis, a.port, Path(a.workdir))
        return
    if a.quick:
        a.cams, a.viewers, a.seconds = 2, 2, 8.0
    if not CLIP.exists():
        sys.exit(f"{CLIP} missing: run scripts/setup_vision.sh")
    from vision.rtsp_demo import DemoRtspServer

    names = [f"bench{i}" for i in range(a.cams)]
    rtsp = DemoRtspServer({n: CLIP for n in names}, client_port=free_port(), source_port=free_port(),
                          rtp_start_port=random.randrange(30000, 60000, 100)).start()
    try:
        time.sleep(1.0)
        cams = [(n, rtsp.url(n)) for n in names]
        with tempfile.TemporaryDirectory() as tmp:
            live = measure("live", cams, a.viewers, a.seconds, a.redis, Path(tmp) / "live")
            jpeg = measure("jpeg", cams, a.viewers, a.seconds, a.redis, Path(tmp) / "jpeg")
    finally:
        rtsp.stop()
    for r in (live, jpeg):
        print(f"{r['mode']:5s} streams={r['streams']} server_cpu={r['cpu_pct']:.1f}% "
              f"per_stream={r['cpu_pct_per_stream']:.2f}% fps={r['fps']:.1f} "
              f"latency_p50={r['lat_p50']:.0f}ms p99={r['lat_p99']:.0f}ms errors={r['errors']}")
    ratio = jpeg["cpu_pct_per_stream"] / live["cpu_pct_per_stream"] if live["cpu_pct_per_stream"] else 0.0
    print(f"video streams={live['streams']} cpu_pct_per_stream={live['cpu_pct_per_stream']:.2f} "
          f"jpeg_cpu_pct_per_stream={jpeg['cpu_pct_per_stream']:.2f} ratio={ratio:.1f} "
          f"latency_p50_ms={live['lat_p50']:.0f} latency_p99_ms={live['lat_p99']:.0f} fps={live['fps']:.1f}")


if __name__ == "__main__":
    main()
