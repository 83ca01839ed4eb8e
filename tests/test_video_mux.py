"""The tiles' multiplexed live stream (GET /video/live-tiles?c=...): the substreams of many cameras in
one response over one blocking XREAD, against a real Redis fed with a real H.264 clip through the
worker's own relay (tests/video_feed.py), a real SQLite store with real sessions.

Framing (6-byte header: type, tile, length) with every tile starting at a keyframe, one audit row per
camera, bounded and counted refusals of bad lists, one stream slot for the whole wall, a camera not
streaming reported in-band and picked up when it starts, a camera restart giving a new init, the end
of the stream at a logout and when every camera falls silent."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import flask
import pytest
import redis
from flask_login import LoginManager, login_user

from dashboard.auth import SessionUser
from dashboard.store import Store
from dashboard.video import StreamLimits, install_video_routes, mux_stream
from tests.video_feed import Clip, ClipFeeder, make_clip
from tests.webtools import FAST_HASHER
from vision.fmp4 import boxes, media_info
from vision.relay import init_key

CAMS = [f"mux-{i}" for i in range(6)]


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    return make_clip(tmp_path_factory.mktemp("muxclip"), seconds=40)


@pytest.fixture
def app(redis_url: str, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> flask.Flask:
    lines = [f"vision:\n  snapshot_dir: {tmp_path / 'snaps'}\n", "cameras:\n"]
    for cam in [*CAMS, "mux-idle"]:
        lines.append(f"  - {{id: {cam}, name: {cam}, lat: 37.4, lon: 126.6,"
                     f" streams: {{main: 'rtsp://127.0.0.1:9/{cam}'}}}}\n")
    lines.append("  - {id: mux-file, name: F, lat: 37.4, lon: 126.6, source: x.avi}\n")
    (tmp_path / "cameras.yaml").write_text("".join(lines), encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(tmp_path / "cameras.yaml"))
    store = Store(sqlite_url, FAST_HASHER)
    store.add_user("kim", "kim-password-1", "operator")
    server = flask.Flask("t")
    server.secret_key = "test"
    LoginManager(server).user_loader(lambda sid: SessionUser(sid, "kim", "operator"))

    @server.route("/test-login")
    def _login() -> str:
        sid = store.create_session("kim", "user")
        login_user(SessionUser(sid, "kim", "operator"))
        server.config["sid"] = sid
        return "ok"

    server.config["store"] = store
    server.config["slots"] = install_video_routes(server, store, redis_url,
                                                  StreamLimits(per_user=2, total=4, tiles=6), frigate_cfg={})
    return server


@pytest.fixture
def feeder(redis_url: str, clip: Clip) -> Iterator[ClipFeeder]:
    f = ClipFeeder(redis.Redis.from_url(redis_url), CAMS, clip).start()
    yield f
    f.stop()


class Reader:
    """Reads the framed response in a thread, so a test can wait for frames with a timeout."""

    def __init__(self, resp) -> None:
        self.frames: list[tuple[int, int, bytes]] = []
        self.ended = threading.Event()
        self._resp = resp
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def close(self) -> None:
        """As a browser leaving: the server closes the body (and frees the slot) in its own thread."""
        self._stop.set()
        assert self.ended.wait(10)
        self._resp.close()

    def _run(self) -> None:
        buf = b""
        try:
            for chunk in iter(self._resp.response):
                if self._stop.is_set():
                    break
                buf += chunk
                while len(buf) >= 6:
                    kind, tile, size = struct.unpack(">BBI", buf[:6])
                    if len(buf) < 6 + size:
                        break
                    self.frames.append((kind, tile, buf[6:6 + size]))
                    buf = buf[6 + size:]
        finally:
            self.ended.set()

    def wait(self, cond, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            got = cond(list(self.frames))
            if got:
                return got
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}")


def media_of(frames: list[tuple[int, int, bytes]], tile: int) -> list[bytes]:
    return [p for k, t, p in frames if k == 2 and t == tile]


def test_one_response_carries_every_camera_from_a_keyframe_audited_in_one_slot(app, feeder) -> None:
    c = app.test_client()
    assert c.get("/video/live-tiles?c=mux-0").status_code == 401  # login first
    c.get("/test-login")
    time.sleep(1.5)  # past the first keyframe: the join must go back to one, not wait for the next
    asked_at = time.time()
    resp = c.get("/video/live-tiles?c=" + ",".join(CAMS), buffered=False,
                 environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert resp.status_code == 200 and resp.headers["X-Video-Variant"] == "sub"
    slots = app.config["slots"]
    assert slots.playing == 1 and slots.held("user:kim") == 1  # six cameras, one slot
    r = Reader(resp)
    r.wait(lambda fs: all(len(media_of(fs, i)) >= 12 for i in range(len(CAMS))), 20, "media of every tile")
    r.close()
    frames = r.frames
    for i in range(len(CAMS)):
        mine = [(k, p) for k, t, p in frames if t == i]
        assert mine[0][0] == 1, "a tile's init comes before its media"
        gen = struct.unpack(">d", mine[0][1][:8])[0]
        assert gen == float(feeder.client.hget(init_key(CAMS[i], "sub"), "gen"))  # the relay's generation
        n = mine[0][1][8]
        assert mine[0][1][9:9 + n].startswith(b"avc1.")
        assert [b[0] for b in boxes(mine[0][1][9 + n:])] == ["ftyp", "moov"]
        media = media_of(frames, i)
        assert media_info(media[0][16:])[0], f"tile {i} starts at a keyframe"
        src_ts, mt = struct.unpack(">dd", media[0][:16])
        # Joined at the newest keyframe already stored (within the last GOP of a second; the relay names
        # it in the init hash), not at the stream's start, nor at the next keyframe.
        assert asked_at - 1.3 < src_ts <= asked_at and mt >= 0.9
        times = [struct.unpack(">d", p[8:16])[0] for p in media]
        assert times == sorted(times) and len(set(times)) == len(times)  # no frame twice, none back
    assert any(k == 3 and b'"person"' in p for k, _, p in frames), "overlays travel with the tiles"
    entries = app.config["store"].audit_entries(action="view_camera")
    assert sorted((e.username, e.target, e.remote_addr) for e in entries) == \
        sorted(("kim", cam, "10.9.8.7") for cam in CAMS)
    assert slots.playing == 0  # freed at the close


def test_bad_lists_are_refused_before_any_slot_row_or_read_and_counted(app, feeder) -> None:
    c = app.test_client()
    c.get("/test-login")
    slots = app.config["slots"]
    assert c.get("/video/live-tiles").status_code == 400
    assert c.get("/video/live-tiles?c=").status_code == 400
    assert c.get("/video/live-tiles?c=mux-0,mux-0").status_code == 400
    assert c.get("/video/live-tiles?c=" + ",".join([*CAMS, "mux-idle"])).status_code == 400  # over 6
    assert c.get("/video/live-tiles?c=" + "x" * 5000).status_code == 400
    assert c.get("/video/live-tiles?c=nope").status_code == 404
    assert c.get("/video/live-tiles?c=mux-file").status_code == 404  # no live stream configured
    assert c.get("/video/live-tiles?c=%3Cscript%3E,nope").status_code == 404
    assert dict(slots.refused_request) == {"empty": 2, "duplicate": 1, "tiles": 2, "unknown": 3}
    assert app.config["store"].audit_entries(action="view_camera") == []
    assert slots.playing == 0
    # A list of cameras none of which streams now: 204 (JPEGs meanwhile), no slot, no row.
    assert c.get("/video/live-tiles?c=mux-idle").status_code == 204
    # Past the user's cap (2 here), whatever the number of tiles: 429.
    a = c.get("/video/live-tiles?c=mux-0", buffered=False)
    b = c.get("/video/live-tiles?c=mux-1,mux-2", buffered=False)
    assert (a.status_code, b.status_code) == (200, 200)
    assert c.get("/video/live-tiles?c=mux-3").status_code == 429 and slots.refused_user == 1
    a.close()
    b.close()
    assert slots.playing == 0


def test_an_id_this_server_lacks_is_one_tile_off_not_the_whole_wall(app, feeder) -> None:
    # The camera layer can name a camera this web's configuration does not hold (another worker's,
    # a configuration being rolled out): its tile goes to JPEG, the others stay live.
    c = app.test_client()
    c.get("/test-login")
    slots = app.config["slots"]
    resp = c.get("/video/live-tiles?c=mux-0,nope,mux-file,mux-1", buffered=False)
    assert resp.status_code == 200
    r = Reader(resp)
    r.wait(lambda fs: len(media_of(fs, 0)) >= 3 and len(media_of(fs, 3)) >= 3, 10, "tiles 0 and 3 playing")
    assert (4, 1, b"\x00") in r.frames and (4, 2, b"\x00") in r.frames
    assert not [f for f in r.frames if f[1] in (1, 2) and f[0] != 4]
    r.close()
    viewed = sorted(e.target for e in app.config["store"].audit_entries(action="view_camera"))
    assert viewed == ["mux-0", "mux-1"]  # no row for an id it does not hold
    assert slots.refused_request["unknown"] == 1


def test_a_camera_not_streaming_is_reported_and_picked_up_when_it_starts(app, feeder, clip,
                                                                          redis_url: str) -> None:
    c = app.test_client()
    c.get("/test-login")
    resp = c.get("/video/live-tiles?c=mux-0,mux-idle", buffered=False)
    assert resp.status_code == 200
    r = Reader(resp)
    r.wait(lambda fs: len(media_of(fs, 0)) >= 5, 10, "tile 0 playing")
    assert (4, 1, b"\x00") in r.frames, "the idle tile is reported at once (the page shows its JPEGs)"
    assert not [f for f in r.frames if f[1] == 1 and f[0] != 4]
    # The camera comes up: its init, then its media from a keyframe, in the same response.
    late = ClipFeeder(redis.Redis.from_url(redis_url), ["mux-idle"], clip).start()
    try:
        r.wait(lambda fs: len(media_of(fs, 1)) >= 5, 10, "the late camera's media")
    finally:
        late.stop()
    mine = [(k, p) for k, t, p in r.frames if t == 1 and k != 4]
    assert mine[0][0] == 1 and media_info(mine[1][1][16:])[0]
    # It falls silent again: reported once more; the other tile plays on.
    r.wait(lambda fs: [f for f in fs if f[1] == 1][-1][0] == 4, 10, "the silent camera reported")
    n0 = len(media_of(r.frames, 0))
    r.wait(lambda fs: len(media_of(fs, 0)) > n0 + 5, 5, "tile 0 still playing")
    r.close()


def test_a_camera_restart_sends_a_new_init_for_its_tile_only(app, feeder) -> None:
    c = app.test_client()
    c.get("/test-login")
    resp = c.get("/video/live-tiles?c=mux-0,mux-1", buffered=False)
    r = Reader(resp)
    r.wait(lambda fs: len(media_of(fs, 0)) >= 5 and len(media_of(fs, 1)) >= 5, 10, "both tiles")
    time.sleep(0.01)  # a new generation is a new millisecond
    feeder.restart("mux-1")
    r.wait(lambda fs: sum(1 for k, t, _ in fs if k == 1 and t == 1) == 2
           and media_of(fs, 1)[-1] != media_of(fs, 1)[-2], 10, "a new init for tile 1")
    r.close()
    inits = [(t, struct.unpack(">d", p[:8])[0]) for k, t, p in r.frames if k == 1]
    assert sorted(t for t, _ in inits) == [0, 1, 1]  # tile 0 untouched
    g1, g2 = (g for t, g in inits if t == 1)
    assert g2 > g1
    after = [p for k, t, p in r.frames[[i for i, f in enumerate(r.frames) if f[0] == 1 and f[1] == 1][1]:]
             if k == 2 and t == 1]
    assert after and media_info(after[0][16:])[0] and struct.unpack(">d", after[0][8:16])[0] == 0.0


def test_the_stream_ends_at_logout_and_when_every_camera_is_silent(app, feeder, redis_url: str) -> None:
    store = app.config["store"]
    c = app.test_client()
    c.get("/test-login")
    resp = c.get("/video/live-tiles?c=mux-0,mux-1", buffered=False)
    r = Reader(resp)
    r.wait(lambda fs: len(media_of(fs, 0)) >= 3, 10, "media")
    store.revoke_session(app.config["sid"])
    t0 = time.monotonic()
    assert r.ended.wait(5), "the stream ends within the session check"
    assert time.monotonic() - t0 < 4.5
    r.close()
    # Silence: the generator itself (short limits), every camera paused.
    sid = store.create_session("kim", "user")
    client = redis.Redis.from_url(redis_url, socket_timeout=10)
    stream = mux_stream(client, ["mux-0", "mux-1"], lambda: store.active_session(sid) is not None,
                        no_data_s=2.0, tile_silent_s=1.0)
    got = next(stream)
    assert got
    feeder.pause("mux-0")
    feeder.pause("mux-1")
    t0 = time.monotonic()
    rest = b"".join(stream)  # ends by itself
    assert time.monotonic() - t0 < 6
    states = {(tile, rest[i + 6]) for i, tile in _frames_at(rest) if rest[i] == 4}
    assert states == {(0, 0), (1, 0)}, "both tiles reported silent before the end"


def _frames_at(buf: bytes) -> Iterator[tuple[int, int]]:
    i = 0
    while i + 6 <= len(buf):
        _kind, tile, size = struct.unpack(">BBI", buf[i:i + 6])
        yield i, tile
        i += 6 + size
