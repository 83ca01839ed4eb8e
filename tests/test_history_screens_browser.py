"""History on the supervisor and commander pages (issue 13, points 2 and 3) in headless Chromium on
the real web app, with history recorded in SQLite: entity states, events and incidents through the
real writer (Publisher -> streams -> HistoryWriter), bus delays and alarm changes as rows of the
history store (hours back, which the writer would refuse to back-date).

- /supervisor: the trend panels draw the recorded values (bus delay per route, worst first, the gap
  as a break in the line, the min..max band; alarms per 10 min per priority with the ISA-18.2 guide
  lines), "no history" for a range without rows, the larger view, a point opening replay.
- /commander?t=T: the tablet as it was at T (REPLAY mark, open incidents, the event snapshots as the
  camera tiles, no live socket), the slider moving the picture, one touch back to live and one into
  replay again; a recorded gap of the history named while T is in it.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib
from PIL import Image

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.i18n import catalogue
from dashboard.store import Store
from history.config import load_history_config
from history.db import HistoryStore
from history.writer import HistoryWriter
from spine.contract import Event, now_ms
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.history_support import drain
from tests.webtools import FAST_HASHER, CheckedBrowser, chromium, serve

pytestmark = pytest.mark.browser
KST = ZoneInfo("Asia/Seoul")
HOUR = 3_600_000
HOSTILE_ROUTE = '<a href="https://example.org/x">R</a><b>'
NO_LIVE = r"WebSocket connection to .* failed|status of 404 .* at .*/api/transit/shapes"


@dataclass
class World:
    port: int
    t1: int
    t2: int
    now: int


def _jpeg(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, "JPEG")
    return buf.getvalue()


def _bus_rows(route: str, delays: tuple[float, float], t0: int, minutes: int) -> list[dict]:
    """Two buses of `route`, one sample per 10 s for `minutes`, at the two delays."""
    rows = []
    for i, delay in enumerate(delays):
        bus = f"{route}-bus{i}"
        for ts in range(t0, t0 + minutes * 60_000, 10_000):
            doc = {"v": 1, "layer": "bus", "id": bus, "ts": ts, "seq": 1, "lat": 37.45, "lon": 126.70,
                   "props": {"route": route, "delay_s": delay}}
            rows.append({"layer": "bus", "entity_id": bus, "slot": ts, "ts": ts, "lat": 37.45, "lon": 126.70,
                         "gone": False, "k": route, "v": delay, "doc": json.dumps(doc)})
    return rows


def _alarm_rows(priority: str, n: int, first_id: int, at: int) -> list[dict]:
    rows = []
    for i in range(n):
        doc = {"id": first_id + i, "state": "UNACK", "priority": priority, "updated_ts": at + i,
               "active_since": at + i}
        rows.append({"alarm_id": first_id + i, "ts": at + i, "state": "UNACK", "priority": priority,
                     "layer": "sensor", "active_since": at + i, "doc": json.dumps(doc)})
    return rows


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[World]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()  # the streams start empty: only what this module publishes is in history
    client.close()
    tmp: Path = tmp_path_factory.mktemp("history-screens")
    snaps = tmp / "snapshots"
    snaps.mkdir()
    (snaps / "cm-snap-1.jpg").write_bytes(_jpeg("red"))
    (snaps / "cm-snap-2.jpg").write_bytes(_jpeg("blue"))
    url = f"sqlite:///{tmp / 'web.db'}"
    hist = HistoryStore(url, load_history_config())
    writer = HistoryWriter(redis_server.url_for("history"), hist, consumer="screens-browser")
    writer.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    inc = Publisher(connect(redis_server.url_for("incidents")), "incidents")

    def camera_event(eid: str, snap: str, title: str) -> Event:
        return Event(v=1, id=eid, type="person", severity="high", ts=now_ms(), layer="camera",
                     entity="cm-cam-1", lat=37.46, lon=126.70, title=title, snapshot=snap,
                     props={"camera": "cm-cam-1"})

    # Moment 1: three sensors, the flood incident open, a camera event with its snapshot.
    for i in range(3):
        pub.update("sensor", f"cm-s{i}", 37.40 + i / 100, 126.70, {"value": float(i), "unit": "m"})
    inc.update("incident", "cm-inc-1", 37.46, 126.70, {"title": "cm flood", "status": "open"})
    pub.event(camera_event("cm-ev-1", "cm-snap-1", "cm person one"))
    assert pub.flush() and inc.flush()
    drain(writer)
    time.sleep(0.01)
    t1 = now_ms()
    time.sleep(1.1)  # the slider's step is a second: T1 rounded either way is still before moment 2
    # Moment 2: cm-s0 moved north, the flood resolved, a fire opened, a second camera event.
    pub.update("sensor", "cm-s0", 37.55, 126.70, {"value": 9.0, "unit": "m"})
    inc.update("incident", "cm-inc-1", 37.46, 126.70, {"title": "cm flood", "status": "resolved"})
    inc.update("incident", "cm-inc-2", 37.47, 126.71, {"title": "cm fire", "status": "open"})
    pub.event(camera_event("cm-ev-2", "cm-snap-2", "cm person two"))
    assert pub.flush() and inc.flush()
    drain(writer)
    time.sleep(1.1)  # the slider's step is a second: T2 rounded either way is still after moment 2
    t2 = now_ms()

    # A recorded gap in the map updates around T1 (stream entries trimmed before the writer read them).
    hist.write_gap("updates", t1 - 5, t1 + 5, 12, now_ms())

    # Trends, hours back: route R-late (240 and 360 s: avg 300) and R-ok (20 and 40 s: avg 30), each in
    # two 20-minute runs with two hours of nothing between; 2 critical and 3 high activations at -2 h.
    now = now_ms()
    rows = []
    for start in (now - 5 * HOUR, now - 3 * HOUR):
        rows += _bus_rows("R-late", (240.0, 360.0), start, 20) + _bus_rows("R-ok", (20.0, 40.0), start, 20)
        rows += _bus_rows(HOSTILE_ROUTE, (5.0, 5.0), start, 20)  # a route name from a feed is data
    alarms = _alarm_rows("critical", 2, 9001, now - 2 * HOUR) + _alarm_rows("high", 3, 9101, now - 2 * HOUR)
    hist.write(rows, [], alarms)

    store = Store(url, FAST_HASHER)
    store.add_user("sup", "sup-password", "supervisor")
    store.add_user("cmd", "cmd-password", "commander")
    settings = load_settings()
    settings.redis.url = redis_server.url  # the snapshot route is mounted with the video routes
    settings.database.url = url
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CC_VISION__SNAPSHOT_DIR", str(snaps))
        from vision.config import load_vision_config

        assert load_vision_config().vision.snapshots_path() == snaps.resolve()
        app = create_app(settings, store, "screens-browser-secret")
    with serve(app.server) as port:
        yield World(port, t1, t2, now)


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:  # every page it opens is watched for page and console errors
        yield b


def _login(page, base: str, path: str, user: str) -> None:
    page.goto(base + path)
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#login-button")


def _traces(page, box: str) -> list[dict]:
    return page.evaluate("(box) => document.getElementById(box).data.map((d) => ({name: d.name || null,"
                         " type: d.type, y: Array.from(d.y), meta: d.meta || null}))", box)


def test_supervisor_trend_panels_draw_the_recorded_history(world: World, browser: CheckedBrowser) -> None:
    base = f"http://127.0.0.1:{world.port}"
    browser.errors.allow(NO_LIVE)
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    _login(page, base, "/supervisor", "sup")
    page.wait_for_url(f"{base}/supervisor")
    panel = page.locator("#cc-suptrends")
    panel.wait_for(state="attached", timeout=15_000)
    panel.scroll_into_view_if_needed()  # the charts (and Plotly) load once the panel is on screen
    page.wait_for_function("() => window.ccLive.suptrends && window.ccLive.suptrends.loads > 0",
                           timeout=20_000)
    assert page.evaluate("() => window.ccLive.suptrends.range") == "6h"

    # Bus delay: the worst route first; its average is the recorded 300 s in every bucket, with one
    # break in the line for the two hours without samples, and its band spans the recorded 240..360.
    bus = _traces(page, "cc-suptrend-bus")
    lines = [t for t in bus if t["name"]]
    assert [t["name"] for t in lines][:2] == ["R-late", "R-ok"] and len(lines) == 3
    late = lines[0]["y"]
    assert late.count(None) == 1 and {v for v in late if v is not None} == {300}
    assert {v for v in lines[1]["y"] if v is not None} == {30}
    bands = [t for t in bus if t["meta"] and t["meta"]["band"] == "R-late"]
    assert len(bands) == 2  # one band per run: none drawn across the gap
    assert all(min(b["y"]) == 240 and max(b["y"]) == 360 for b in bands)
    # Shown as text, markup and all: no link or bold made of a route's name.
    legend = page.locator("#cc-suptrend-bus .legendtext").all_text_contents()
    assert legend == ["R-late", "R-ok", HOSTILE_ROUTE]
    assert page.locator("#cc-suptrend-bus a, #cc-suptrend-bus .legendtext [style*='bold']").count() == 0

    # Alarm rate per 10 min by priority, with the guide lines per operator (1, 2; flood 10 once above 2).
    st = page.evaluate("() => window.ccLive.suptrends.alarms")
    assert [p["per10"] for p in st["critical"]] == [2] and [p["per10"] for p in st["high"]] == [3]
    bars = [t for t in _traces(page, "cc-suptrend-alarms") if t["type"] == "bar"]
    assert sorted(b["y"][0] for b in bars) == [2, 3]
    guides = page.evaluate("() => document.getElementById('cc-suptrend-alarms').layout.shapes"
                           ".map((s) => s.y0)")
    assert guides == [1, 2, 10]

    # Larger view, then Escape back.
    small = page.locator("#cc-suptrend-bus").bounding_box()["height"]
    page.click("#cc-suptrends-large")
    page.wait_for_function("() => document.querySelector('#cc-suptrend-bus .main-svg')"
                           ".getBoundingClientRect().height > 250")
    assert page.locator("#cc-suptrend-bus").bounding_box()["height"] > small
    page.keyboard.press("Escape")
    assert "cc-suptrends-large" not in (panel.get_attribute("class") or "")

    # The last hour has no rows: no chart, the words instead.
    page.click("[data-cc-trend-range='1h']")
    page.wait_for_function("() => window.ccLive.suptrends.loads > 1 && window.ccLive.suptrends.range === '1h'"
                           " && document.getElementById('cc-suptrend-bus').dataset.ccState === 'empty'")
    ko = catalogue("ko")  # the page's language (the browser's catalogue)
    words = (ko["No bus history in this range"], ko["No alarm activations recorded in this range"])
    assert page.locator("#cc-suptrend-bus-note").inner_text() == words[0]
    assert page.locator("#cc-suptrend-alarms-note").inner_text() == words[1]
    assert page.locator("#cc-suptrend-bus .main-svg").count() == 0

    # A point of the last 24 h opens replay at that moment (one action); back to live is one too.
    page.click("[data-cc-trend-range='6h']")
    page.wait_for_function("() => window.ccLive.suptrends.range === '6h'"
                           " && window.ccLive.suptrends.loads > 2")
    moment = world.now - 3 * HOUR
    page.evaluate(f"() => document.getElementById('cc-suptrend-bus').emit('plotly_click',"
                  f" {{points: [{{customdata: {moment}}}]}})")
    page.wait_for_url(f"{base}/replay?t={moment}")
    page.wait_for_function("() => window.ccLive.replay && window.ccLive.replay.loads > 0", timeout=20_000)
    page.click("#cc-replay-live")
    page.wait_for_url(f"{base}/supervisor")


def test_commander_replay_mode(world: World, browser: CheckedBrowser) -> None:
    base = f"http://127.0.0.1:{world.port}"
    browser.errors.allow(NO_LIVE)
    page = browser.new_page(viewport={"width": 1024, "height": 768})  # the tablet
    _login(page, base, f"/commander?t={world.t1}", "cmd")
    page.wait_for_url(f"{base}/commander?t=*")
    page.wait_for_function("() => window.ccLive && window.ccLive.replay && window.ccLive.replay.loads > 0"
                           " && window.ccLive.markers.sensor.size > 0", timeout=20_000)
    assert page.evaluate("() => window.ccLive.replay.t") == world.t1
    mark = page.locator("#cc-replay-mark")
    assert mark.is_visible() and mark.inner_text() == "재생 중"
    shown = page.locator("#cc-replay-time").inner_text()
    assert datetime.fromtimestamp(world.t1 / 1000, KST).strftime("%H:%M:%S") + " KST" in shown
    assert page.locator("#cc-replay-link").get_attribute("href") == f"/commander?t={world.t1}"
    # The gap T1 falls in is named beside the time (what, when, how many entries were lost).
    gap = page.locator("#cc-replay-gap")
    ko = catalogue("ko")
    assert gap.is_visible() and ko["map updates"] in gap.inner_text() and "(12건 유실)" in gap.inner_text()
    # Not the live page: its incident panel, drone video and connection status are hidden, no socket.
    assert not page.locator("#cc-incidents").is_visible()
    assert not page.locator("#cc-live-status").is_visible()
    assert page.evaluate("() => [window.ccLive.stats.frames, window.ccLive.ws]") == [0, None]
    assert page.evaluate("() => window.ccEarlySocket === undefined")  # not even asked for a ticket
    # The picture at T1: sensors, the open flood incident, the first camera event's snapshot as a tile.
    sensors = "() => [...window.ccLive.entities.sensor.keys()].filter((k) => k.startsWith('cm-')).sort()"
    s0_lat = "() => window.ccLive.markers.sensor.get('cm-s0').getLatLng().lat"
    assert page.evaluate(sensors) == ["cm-s0", "cm-s1", "cm-s2"]
    assert page.evaluate(s0_lat) == pytest.approx(37.40)
    assert page.locator("#cc-replay-incidents").inner_text().count("cm flood") == 1
    assert "cm fire" not in page.locator("#cc-replay-incidents").inner_text()
    snap = "() => [...document.querySelectorAll('#cc-replay-snaps figure')].map((f) => f.dataset.ccSnapshot)"
    assert page.evaluate(snap) == ["cm-snap-1"]
    page.wait_for_function("() => document.querySelector('#cc-replay-snaps img').naturalWidth === 64")
    # Tapping the incident centres the map on it.
    page.click("#cc-replay-incidents [data-cc-locate='cm-inc-1']")
    assert page.evaluate("() => window.ccLive.map.getCenter().lat") == pytest.approx(37.46)

    # The slider moves the picture to T2: cm-s0 moved, the flood resolved, the fire open, the newest
    # snapshot first.
    page.evaluate(f"() => {{ const s = document.getElementById('cc-replay-slider'); s.value = '{world.t2}';"
                  " s.dispatchEvent(new Event('change')); }")
    page.wait_for_function("() => window.ccLive.replay.loads > 1 && !window.ccLive.replay.busy")
    t = page.evaluate("() => window.ccLive.replay.t")
    assert abs(t - world.t2) <= 1000  # the slider's step is a second
    assert page.evaluate(s0_lat) == pytest.approx(37.55)
    incidents = page.locator("#cc-replay-incidents").inner_text()
    assert "cm fire" in incidents and "cm flood" not in incidents
    assert page.evaluate(snap) == ["cm-snap-2", "cm-snap-1"]
    assert not gap.is_visible()  # T2 is after the gap
    assert page.locator("#cc-replay-link").get_attribute("href") == f"/commander?t={t}"
    assert page.url == f"{base}/commander?t={t}"

    # Back to T1 on the slider, then play x8: the steps bring the fire, the flood's end and the second
    # snapshot, as the jump did.
    page.evaluate(f"() => {{ const s = document.getElementById('cc-replay-slider'); s.value = '{world.t1}';"
                  " s.dispatchEvent(new Event('change')); }")
    page.wait_for_function("() => window.ccLive.replay.loads > 2 && !window.ccLive.replay.busy")
    assert "cm fire" not in page.locator("#cc-replay-incidents").inner_text()
    page.click("[data-cc-speed='8']")
    page.wait_for_function(f"() => window.ccLive.replay.t >= {world.t2}", timeout=10_000)
    page.click("#cc-replay-pause")
    incidents = page.locator("#cc-replay-incidents").inner_text()
    assert "cm fire" in incidents and "cm flood" not in incidents
    assert page.evaluate(snap)[0] == "cm-snap-2"
    assert page.evaluate(s0_lat) == pytest.approx(37.55)

    # One touch back to live: the live incident panel again, no REPLAY bar, no replay state.
    page.click("#cc-replay-live")
    page.wait_for_url(f"{base}/commander")
    page.locator("#cc-incidents").wait_for(state="visible", timeout=15_000)
    assert not page.locator("#cc-replay-bar").is_visible()
    assert page.evaluate("() => window.ccLive.replay === undefined || window.ccLive.replay === null")
    # And one touch into replay again (five minutes back).
    page.click("#cc-cmd-replay")
    page.wait_for_url(f"{base}/commander?t=*")
    page.wait_for_function("() => window.ccLive.replay && window.ccLive.replay.loads > 0", timeout=20_000)
    assert page.locator("#cc-replay-mark").is_visible()
    assert abs(page.evaluate("() => window.ccLive.replay.t") - (now_ms() - 300_000)) < 60_000
