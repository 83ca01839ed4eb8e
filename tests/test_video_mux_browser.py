"""A 16-tile activity wall plays every tile live over ONE connection, in real headless Chromium through
the real stack; an enlarged view (the map's camera popup) plays the main stream.

The cameras: 17 configured with `streams:` (so the web part serves them live), fed by relaying a real
H.264 clip into Redis through the worker's own relay (tests/video_feed.py), their camera-layer entities
(video, live, last activity) published by this test as the worker would. No RTSP and no decoding on
the server: a 16-camera wall on a 2-core machine. Any page or console error fails a test
(tests/webtools.py), so a refused stream (429) or a CSP violation would too."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dashboard.store import Store
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.stack import RunningStack, sign_in, start_stack
from tests.video_feed import Clip, ClipFeeder, make_clip
from tests.webtools import CheckedBrowser, chromium

pytestmark = pytest.mark.browser

CAMS = [f"wall-{i:02d}" for i in range(17)]  # 16 on the wall, the 17th promoted later
WALL = CAMS[:16]


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:
        yield b


@pytest.fixture(autouse=True)
def no_page_errors(browser: CheckedBrowser) -> Iterator[None]:
    browser.errors.take()
    yield
    browser.errors.assert_clean()


def cameras_file(path: Path) -> Path:
    # Disabled for the vision worker (this test feeds them), live for the web part. One enabled
    # camera that never answers keeps the worker up without decoding anything.
    lines = ["cameras:\n"]
    for i, cam in enumerate(CAMS):
        lines.append(f"  - {{id: {cam}, name: Wall {i}, lat: {37.45 + i * 0.002}, lon: 126.70,"
                     f" enabled: false, streams: {{main: 'rtsp://127.0.0.1:9/{cam}'}}}}\n")
    # The commander wall names vis-drone-1 (config/walls.yaml): enabled, at a dead URL.
    lines.append("  - {id: vis-drone-1, name: Drone, lat: 37.55, lon: 126.71, fps: 1,"
                 " streams: {main: 'rtsp://127.0.0.1:9/drone'}}\n")
    path.write_text("".join(lines), encoding="utf-8")
    return path


class Cameras:
    """The camera layer as the worker publishes it: video and live, with a last activity each."""

    def __init__(self, redis_url: str) -> None:
        self.pub = Publisher(connect(redis_url), src="mux-browser-test")
        base = int(time.time() * 1000)
        # wall-00 the most recent ... wall-15 the least; wall-16 older still (not on a 16-tile wall).
        self.activity = {cam: base - 1000 * i for i, cam in enumerate(CAMS)}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def publish(self) -> None:
        for i, cam in enumerate(CAMS):
            self.pub.update("camera", cam, 37.45 + i * 0.002, 126.70,
                            {"name": f"Wall {i}", "video": True, "live": True,
                             "last_activity": self.activity[cam], "status": "online"})
        self.pub.flush()

    def start(self) -> Cameras:
        self.publish()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.pub.flush()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        # Gone from the camera layer: a later module's wall (the same Redis) must not rank them.
        for i, cam in enumerate(CAMS):
            self.pub.update("camera", cam, 37.45 + i * 0.002, 126.70, gone=True)
        self.pub.flush()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> tuple[Clip, Clip]:
    sub = make_clip(tmp_path_factory.mktemp("wallsub"), seconds=120, size="320x240")
    main = make_clip(tmp_path_factory.mktemp("wallmain"), seconds=120, size="640x480")
    return sub, main


@pytest.fixture(scope="module")
def feeder(redis_server: EmbeddedRedis, clips: tuple[Clip, Clip]) -> Iterator[ClipFeeder]:
    client = redis.Redis.from_url(redis_server.url)
    # The session's Redis as the function-scoped fixture leaves it: empty. Cameras an earlier module's
    # stack published (with a recent activity) would take tiles of this wall.
    client.flushall()
    sub = ClipFeeder(client, CAMS, clips[0]).start()
    main = ClipFeeder(client, [CAMS[0]], clips[1], meta=False, variant="main").start()
    yield sub
    sub.stop()
    main.stop()


@pytest.fixture(scope="module")
def layer(redis_server: EmbeddedRedis, feeder: ClipFeeder) -> Iterator[Cameras]:
    cams = Cameras(redis_server.url).start()
    yield cams
    cams.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis,
          layer: Cameras) -> Iterator[RunningStack]:
    tmp = tmp_path_factory.mktemp("muxstack")
    cams = cameras_file(tmp / "cameras.yaml")
    s = start_stack(tmp, {"REDIS_URL": redis_server.url, "CC_CAMERAS_FILE": str(cams)})
    yield s
    s.stop()




TILE_TIMES = """() => Array.from(document.querySelectorAll('.cc-video-tile')).map(t => {
    const v = t.querySelector('video.cc-live-video');
    return [t.dataset.camera, v && v.style.display !== 'none' && !v.paused ? v.currentTime : -1]; })"""


def test_a_16_tile_wall_plays_every_tile_live_over_one_stream(browser: CheckedBrowser, stack: RunningStack,
                                                               layer: Cameras) -> None:
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if "/video/" in r.url else None)
    sign_in(page, stack, "/wall/activity/16")
    page.wait_for_function(f"""() => {{ const tiles = ({TILE_TIMES})();
        return tiles.length === 16 && tiles.every(([cam, t]) => cam && t > 0.5); }}""", timeout=60_000)
    tiles = dict(page.evaluate(TILE_TIMES))
    assert sorted(tiles) == WALL
    # Every tile's video advances (frames decoded and presented), none on JPEGs.
    page.wait_for_timeout(3000)
    later = dict(page.evaluate(TILE_TIMES))
    slow = {cam: later[cam] - tiles[cam] for cam in WALL if later[cam] - tiles[cam] < 1.5}
    assert not slow, f"tiles not advancing at the camera's rate: {slow}"
    assert page.evaluate("ccLive.videoKey") == "", "no tile asked the gateway for JPEG frames"
    assert page.evaluate("Array.from(ccLive.livePlayers.values()).every(p => p.playing && p.muxed)")
    # One stream for the wall: one request to the tiles route, one slot on the server.
    tiles_requests = [u for u in requests if "/video/live-tiles?" in u]
    assert len(tiles_requests) == 1, tiles_requests
    assert not [u for u in requests if ".live" in u or ".mjpg" in u]
    assert sorted(tiles_requests[0].split("c=", 1)[1].split("%2C" if "%2C" in tiles_requests[0] else ",")) \
        == WALL
    slots = page.evaluate("fetch('/video/live-slots').then(r => r.json())")
    assert slots == {"per_user": 4, "in_use": 1, "tiles": 16}
    # Glass-to-glass latency from the presented frames' source times.
    stats = page.evaluate("({lat: ccLive.stats.liveLatencyMs.slice(), n: ccLive.stats.livePresented})")
    assert stats["n"] > 16 * 10 and len(stats["lat"]) > 100
    lat = sorted(stats["lat"])
    assert 0 < lat[len(lat) // 2] < 3000, lat[len(lat) // 2]
    # Every tile is a view of its camera: an audit row each.
    store = Store(f"sqlite:///{stack.data_dir / 'controlroom.db'}")
    viewed = {e.target for e in store.audit_entries(action="view_camera") if e.username == "admin"}
    assert set(WALL) <= viewed

    # A promotion: the 17th camera becomes the most active; it takes the least active one's tile. The
    # stream reopens once with the new set; the 15 tiles that stay play on in the same MediaSource.
    before = page.evaluate("""() => Object.fromEntries(Array.from(ccLive.livePlayers.values())
        .map(p => [p.cam, p.gen]))""")
    opens = page.evaluate("ccLive.stats.liveTileOpens")
    layer.activity[CAMS[16]] = int(time.time() * 1000)
    layer.publish()
    page.wait_for_function(f"""() => {{ const tiles = ({TILE_TIMES})();
        return tiles.some(([cam, t]) => cam === '{CAMS[16]}' && t > 0.5)
            && tiles.every(([cam, t]) => t > 0); }}""", timeout=30_000)
    after = page.evaluate("""() => Object.fromEntries(Array.from(ccLive.livePlayers.values())
        .map(p => [p.cam, p.gen]))""")
    assert CAMS[15] not in after and CAMS[16] in after
    kept = {cam: after[cam] for cam in WALL[:15]}
    assert kept == {cam: before[cam] for cam in WALL[:15]}, "unchanged tiles kept their MediaSource"
    assert page.evaluate("ccLive.stats.liveTileOpens") == opens + 1
    assert page.evaluate("ccLive.videoKey") == ""
    page.close()


def test_a_camera_that_stops_falls_back_to_jpeg_alone_and_comes_back_live(browser: CheckedBrowser,
                                                                          stack: RunningStack,
                                                                          feeder: ClipFeeder) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    sign_in(page, stack, "/wall/activity/4")
    cam = "wall-01"
    page.wait_for_function(f"""() => {{ const tiles = ({TILE_TIMES})();
        return tiles.length === 4 && tiles.every(([c, t]) => c && t > 0.5); }}""", timeout=60_000)
    gen = page.evaluate(f"Array.from(ccLive.livePlayers.values()).find(p => p.cam === '{cam}').gen")
    feeder.pause(cam)
    # Reported in-band by the tiles stream: that tile alone goes to JPEG frames (the gateway is asked
    # for its camera), the other three play on in the same stream.
    page.wait_for_function(f"() => ccLive.videoKey === '{cam}'", timeout=15_000)
    times = dict(page.evaluate(TILE_TIMES))
    others = sorted(c for c in times if c != cam)
    assert page.evaluate("""Array.from(ccLive.livePlayers.values()).filter(p => p.playing)
        .map(p => p.cam).sort()""") == others
    page.wait_for_timeout(1500)
    later = dict(page.evaluate(TILE_TIMES))
    assert all(later[c] > times[c] + 0.7 for c in others), (times, later)
    opens = page.evaluate("ccLive.stats.liveTileOpens")
    # The camera reconnects (a new generation): the same stream brings its init; the tile plays again.
    feeder.restart(cam)
    page.wait_for_function(f"""() => {{ const p = Array.from(ccLive.livePlayers.values())
        .find(p => p.cam === '{cam}'); return p.playing && p.gen > {gen} && p.video.currentTime > 0.3; }}""",
                           timeout=15_000)
    assert page.evaluate("ccLive.stats.liveTileOpens") == opens, "picked up without reopening the stream"
    page.wait_for_function("() => ccLive.videoKey === ''", timeout=5000)
    page.close()


def test_the_enlarged_view_plays_the_main_stream(browser: CheckedBrowser, stack: RunningStack) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    sign_in(page, stack, "/supervisor")
    cam = CAMS[0]
    page.wait_for_function(f"() => ccLive.entities.camera.get('{cam}')?.props.live === true"
                           f" && !!ccLive.markers.camera.get('{cam}') && !!ccLive.map", timeout=60_000)
    page.evaluate(f"() => {{ const m = ccLive.markers.camera.get('{cam}');"
                  " ccLive.map.setView(m.getLatLng(), 17, {animate: false}); m.openPopup(); }")
    page.wait_for_function("""() => { const v = document.querySelector('.leaflet-popup video.cc-live-video');
        return !!v && v.style.display !== 'none' && v.currentTime > 0.5; }""", timeout=30_000)
    got = page.evaluate("""() => { const p = Array.from(ccLive.livePlayers.values()).find(p => !p.muxed);
        return [p.cam, p.variant, p.variantServed, p.video.videoWidth]; }""")
    assert got == [cam, "main", "main", 640]  # the 640-wide main stream, not the 320-wide substream
    t0 = page.evaluate("document.querySelector('.leaflet-popup video.cc-live-video').currentTime")
    # It plays on (the supervisor page's map, 300 buses, on a loaded 2-core machine: only "advances").
    page.wait_for_function(f"() => document.querySelector('.leaflet-popup video.cc-live-video').currentTime"
                           f" > {t0} + 1", timeout=10_000)
    page.locator(".leaflet-popup-close-button").click()
    page.wait_for_function("() => Array.from(ccLive.livePlayers.values()).every(p => p.muxed)", timeout=5000)
    page.close()
