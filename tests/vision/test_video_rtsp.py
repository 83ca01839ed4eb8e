"""Live video from a real RTSP server (rtsp-server-perl fed by ffmpeg -c copy, vision/rtsp_demo.py):
PyAV ingest, H.264 remuxed to fMP4 through Redis, the authenticated live route, reconnection after a
camera restart, the masked stream of a privacy camera, and the fMP4 box parser."""

from __future__ import annotations

import io
import itertools
import random
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.servers.managed import free_port
from vision.fmp4 import BoxError, Splitter, boxes, codec_string, media_info, timescale
from vision.live import LiveSource
from vision.relay import VideoRelay, init_key, meta_key, seg_key
from vision.rtsp_demo import DemoRtspServer

FPS = 10


def wait_for(cond, timeout: float, what: str, step: float = 0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real H.264 clip made with Debian's ffmpeg/libx264: 320x240, 10 fps, a keyframe a second."""
    if DemoRtspServer.available():
        pytest.fail(f"{DemoRtspServer.available()} missing: run scripts/setup_vision.sh")
    path = tmp_path_factory.mktemp("clip") / "cam.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc=size=320x240:rate={FPS}", "-t", "6", "-c:v", "libx264", "-preset", "veryfast",
                    "-g", str(FPS), "-pix_fmt", "yuv420p", str(path)], check=True, timeout=60)
    return path


@pytest.fixture
def rtsp(clip: Path) -> Iterator[DemoRtspServer]:
    server = DemoRtspServer({"cam1": clip}, client_port=free_port(), source_port=free_port(),
                            rtp_start_port=random.randrange(30000, 60000, 100)).start()
    try:
        time.sleep(0.5)  # the pusher announces the stream
        yield server
    finally:
        server.stop()


def read_relay(r: redis.Redis, cam: str, variant: str = "sub") -> tuple[dict, list]:
    return r.hgetall(init_key(cam, variant)), r.xrange(seg_key(cam, variant))


def test_rtsp_ingest_remuxes_h264_to_fmp4_and_decodes_for_analytics(rtsp: DemoRtspServer,
                                                                     redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    src = LiveSource("cam-a", rtsp.url("cam1"), relay=VideoRelay(r, "cam-a", "sub"), analytics_fps=5).start()
    try:
        frame = src.latest(timeout=15) or wait_for(lambda: src.latest(), 15, "a decoded frame")
        assert frame.image.shape == (240, 320, 3) and frame.image.dtype == np.uint8
        wait_for(lambda: r.xlen(seg_key("cam-a", "sub")) >= 3 * FPS, 15, "3 s of segments")
        # The server sends a burst on connecting; then the rate settles at the camera's.
        health = wait_for(lambda: (h := src.health()) and 8 <= h["stream_fps"] <= 12 and h, 15, "10 fps")
        assert health["kbps"] > 0 and health["keyframe_at"] and health["stream_errors"] == 0
        assert src.stats.status == "online"
        # Analytics frames are converted at their own rate (5/s), not at the camera's 10.
        first = src.latest()
        time.sleep(2.0)
        assert 6 <= src.latest().index - first.index <= 14
    finally:
        src.stop()
    init, segs = read_relay(r, "cam-a")
    data = init[b"data"]
    assert [b[0] for b in boxes(data)] == ["ftyp", "moov"]
    assert codec_string(data) == init[b"codec"].decode() and init[b"codec"].startswith(b"avc1.")
    assert timescale(data) > 0
    # The stream starts at a keyframe; a keyframe a second (GOP 10) follows; media time rises one frame
    # at a time; every segment is one moof+mdat of this generation.
    fields = [f for _, f in segs]
    assert fields[0][b"k"] == b"1"
    assert {f[b"g"] for f in fields} == {init[b"gen"]}
    keys = [i for i, f in enumerate(fields) if f[b"k"] == b"1"]
    assert all(b - a == FPS for a, b in itertools.pairwise(keys)) and len(keys) >= 3
    # The init hash names the newest keyframe's entry: where a viewer joins, without a search.
    assert init[b"kid"] == segs[keys[-1]][0]
    media = [float(f[b"m"]) for f in fields]
    steps = np.diff(media)
    # (The muxer may start its clock a frame later, as B-frames shift the first decode time.)
    assert (steps > 0).all() and np.median(steps) == pytest.approx(1 / FPS, abs=0.002)
    assert np.isclose(steps, 1 / FPS, atol=0.002).mean() > 0.9
    for f in fields[:12]:
        assert [b[0] for b in boxes(f[b"d"])] == ["moof", "mdat"]
        assert media_info(f[b"d"])[0] == (f[b"k"] == b"1")
    # The source time stamps are wall-clock receive times, 0.1 s apart on average.
    src_ts = [float(f[b"t"]) for f in fields]
    assert abs(time.time() - src_ts[-1]) < 10 and 0.05 < (src_ts[-1] - src_ts[0]) / (len(src_ts) - 1) < 0.2
    # What a browser gets is playable: init + segments decode with FFmpeg to the camera's frames.
    blob = data + b"".join(f[b"d"] for f in fields)
    with av.open(io.BytesIO(blob), format="mp4") as c:
        decoded = sum(1 for _ in c.decode(video=0))
    assert decoded == len(fields)


def test_a_camera_restart_recovers_by_itself_with_a_new_init_segment(rtsp: DemoRtspServer,
                                                                      redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    src = LiveSource("cam-r", rtsp.url("cam1"), relay=VideoRelay(r, "cam-r", "sub"), analytics_fps=5,
                     max_backoff_s=2).start()
    try:
        wait_for(lambda: r.xlen(seg_key("cam-r", "sub")) > 10, 15, "segments before the restart")
        gen1 = r.hget(init_key("cam-r", "sub"), "gen")
        rtsp.kill_server()
        wait_for(lambda: src.stats.status == "reconnecting", 20, "the source to notice the loss")
        assert src.health()["stream_fps"] == 0.0 or src.stats.reconnects >= 1
        rtsp.restart_server()
        wait_for(lambda: src.stats.status == "online" and r.hget(init_key("cam-r", "sub"), "gen") != gen1,
                 30, "a new generation after the restart")
        before = src.latest().index
        wait_for(lambda: src.latest().index > before + 5, 15, "frames again")
        gen2 = r.hget(init_key("cam-r", "sub"), "gen")
        assert int(gen2) > int(gen1)
        newest = [f for _, f in r.xrange(seg_key("cam-r", "sub")) if f[b"g"] == gen2]
        assert newest and newest[0][b"k"] == b"1"  # the new generation starts at a keyframe
        assert src.stats.reconnects >= 1
    finally:
        src.stop()


# ---- the live route ---------------------------------------------------------------------------------
@pytest.fixture
def app(redis_url: str, sqlite_url: str, tmp_path, monkeypatch, rtsp: DemoRtspServer):
    import flask
    from flask_login import LoginManager, login_user

    from dashboard.auth import SessionUser
    from dashboard.store import Store
    from dashboard.video import StreamLimits, install_video_routes

    cams = tmp_path / "cameras.yaml"
    cams.write_text(f"vision:\n  snapshot_dir: {tmp_path / 'snaps'}\n"
                    "cameras:\n"
                    f"  - {{id: cam-l, name: L, lat: 37.4, lon: 126.6,\n"
                    f"      streams: {{main: '{rtsp.url('cam1')}'}}}}\n"
                    "  - {id: cam-file, name: F, lat: 37.4, lon: 126.6, source: x.avi}\n", encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(cams))
    server = flask.Flask("t")
    server.secret_key = "test"
    LoginManager(server).user_loader(lambda uid: SessionUser(uid, uid.split(":", 1)[1], "operator"))

    @server.route("/test-login")
    def _login():
        login_user(SessionUser("user:kim", "kim", "operator"))
        return "ok"

    store = Store(sqlite_url)
    server.config["slots"] = install_video_routes(server, store, redis_url, StreamLimits(per_user=1, total=4))
    server.config["store"] = store
    return server


def frames_of(chunks: Iterator[bytes], n: int) -> list[tuple[int, bytes]]:
    buf, out = b"", []
    for chunk in chunks:
        buf += chunk
        while len(buf) >= 5:
            kind, size = struct.unpack(">BI", buf[:5])
            if len(buf) < 5 + size:
                break
            out.append((kind, buf[5:5 + size]))
            buf = buf[5 + size:]
        if len(out) >= n:
            return out
    return out


def test_live_route_serves_fmp4_from_a_keyframe_with_overlays_audited_and_capped(app, redis_url: str,
                                                                                  rtsp) -> None:
    from vision.relay import publish_meta

    r = redis.Redis.from_url(redis_url)
    src = LiveSource("cam-l", rtsp.url("cam1"), relay=VideoRelay(r, "cam-l", "sub"), decode=False).start()
    try:
        c = app.test_client()
        assert c.get("/video/cam-l.live").status_code == 401  # login first
        c.get("/test-login")
        assert c.get("/video/cam-file.live").status_code == 404  # a camera without live streams
        assert c.get("/video/nope.live").status_code == 404
        assert c.get("/video/cam-l.live?v=<script>").status_code == 400
        wait_for(lambda: r.xlen(seg_key("cam-l", "sub")) > 15, 15, "segments")
        resp = c.get("/video/cam-l.live?v=main", buffered=False, environ_base={"REMOTE_ADDR": "10.9.8.7"})
        assert resp.status_code == 200 and resp.headers["X-Video-Variant"] == "sub"  # no main: sub
        # A second stream for the same user is over the cap of 1.
        assert c.get("/video/cam-l.live").status_code == 429
        publish_meta(r, "cam-l", b'{"t": 1, "b": [[0.1, 0.1, 0.2, 0.3, 4, "person"]], "z": [], "l": []}')
        got = frames_of(iter(resp.response), 25)
        resp.close()
    finally:
        src.stop()
    kinds = [k for k, _ in got]
    assert kinds[0] == 1, "the init segment comes first"
    codec_len = got[0][1][0]
    assert got[0][1][1:1 + codec_len].startswith(b"avc1.")
    media = [p for k, p in got if k == 2]
    assert media and media_info(media[0][16:])[0], "media start at a keyframe"
    src_ts, mt = struct.unpack(">dd", media[0][:16])
    assert abs(time.time() - src_ts) < 30 and mt >= 0
    assert any(k == 3 and b'"person"' in p for k, p in got), "overlay metadata travels with the video"
    entries = app.config["store"].audit_entries(action="view_camera")
    assert [(e.username, e.target, e.remote_addr) for e in entries] == [("kim", "cam-l", "10.9.8.7")]
    assert app.config["slots"].playing == 0  # the slot is free again after the close


# ---- privacy: only the masked re-encode leaves ---------------------------------------------------------
def test_privacy_camera_publishes_only_a_masked_stream(redis_url: str, onnx_detector, vision_settings,
                                                       vtest_frames) -> None:
    from vision.config import Camera
    from vision.liveout import LiveOutputs
    from vision.pipeline import CameraPipeline

    r = redis.Redis.from_url(redis_url)
    cam = Camera(id="cam-p", name="P", lat=37.4, lon=126.6, fps=10, streams={"main": "rtsp://127.0.0.1:1/x"},
                 privacy={"enabled": True, "polygons": [[[0.0, 0.0], [0.3, 0.0], [0.3, 0.3], [0.0, 0.3]]]})
    pipe = CameraPipeline(cam, vision_settings, onnx_detector)
    pipe.live = LiveOutputs(r, cam, 640)
    t0 = time.time()
    persons = None
    for i, img in enumerate(vtest_frames):
        res = pipe.process(img, t0 + i / 10)
        if len(res.tracks.of_class("person")):
            persons = res.tracks.of_class("person")
    assert persons is not None, "the clip has people"
    init, segs = read_relay(r, "cam-p", "sub")
    assert init and len(segs) >= len(vtest_frames) - 2  # one frame's delay in the muxer
    assert not r.exists(init_key("cam-p", "main"))  # nothing else is published for it
    blob = init[b"data"] + b"".join(f[b"d"] for _, f in segs)
    with av.open(io.BytesIO(blob), format="mp4") as c:
        out = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
    last_in, last_out = vtest_frames[len(out) - 1], out[-1]
    assert last_out.shape[1] == 640  # reduced to frame_max_width

    def sharp(img: np.ndarray, box) -> float:
        import cv2

        x1, y1, x2, y2 = (int(v) for v in box)
        return float(cv2.Laplacian(cv2.cvtColor(img[y1:y2, x1:x2], cv2.COLOR_BGR2GRAY), cv2.CV_64F).var())

    scale = 640 / last_in.shape[1]
    box = pipe.tracks.of_class("person").xyxy[0]
    assert sharp(last_out, box * scale) < 0.25 * sharp(cv2_resize(last_in, scale), box * scale)
    # The fixed polygon (top-left 30 %) is flat too.
    poly = (0, 0, 0.3 * 640, 0.3 * last_out.shape[0])
    assert sharp(last_out, poly) < 0.25 * sharp(cv2_resize(last_in, scale), poly)
    # Overlays for every processed frame, boxes as fractions.
    metas = r.xrange(meta_key("cam-p"))
    assert len(metas) == len(vtest_frames)


def cv2_resize(img: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    return cv2.resize(img, (int(img.shape[1] * scale) // 2 * 2, int(img.shape[0] * scale) // 2 * 2))


# ---- the box parser --------------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_splitter_never_fails_but_with_a_box_error(data: bytes) -> None:
    sp = Splitter()
    try:
        for seg in sp.feed(data):
            assert seg.kind in ("init", "media")
    except BoxError:
        pass
    except (struct.error, IndexError) as exc:  # a malformed moof inside an otherwise whole box
        raise AssertionError(f"unbounded parse error {exc!r}") from exc


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=50))
def test_splitter_cuts_the_same_segments_whatever_the_chunking(fmp4_sample: bytes, cuts: list[int]) -> None:
    whole = Splitter().feed(fmp4_sample)
    sp, got, i = Splitter(), [], 0
    for n in cuts * (len(fmp4_sample) // max(1, sum(cuts)) + 1):
        if i >= len(fmp4_sample):
            break
        got += sp.feed(fmp4_sample[i:i + n])
        i += n
    got += sp.feed(fmp4_sample[i:])
    assert [(s.kind, s.data, s.key, s.decode_time) for s in got] == \
        [(s.kind, s.data, s.key, s.decode_time) for s in whole]
    assert whole[0].kind == "init" and whole[1].key and len(whole) > 10


@pytest.fixture(scope="module")
def fmp4_sample(clip: Path) -> bytes:
    from vision.live import MOVFLAGS, _Sink

    sink = _Sink()
    with av.open(str(clip)) as inp:
        vin = inp.streams.video[0]
        out = av.open(sink, "w", format="mp4", options={"movflags": MOVFLAGS})
        vout = out.add_stream_from_template(vin)
        for i, pkt in enumerate(inp.demux(vin)):
            if pkt.dts is None or i > 30:
                continue
            pkt.stream = vout
            out.mux(pkt)
        out.close()
    return sink.take()
