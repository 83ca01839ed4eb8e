"""The replay page (/replay) in headless Chromium on the real web app: history seeded through the real
writer (Publisher -> streams -> HistoryWriter -> SQLite), the page opened at a moment T shows the map,
open incidents and events as they were at T, with the REPLAY mark and T in KST; play applies the
steps after T; the page opens no live socket; back to live goes to /supervisor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import redis as redis_lib

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from history.config import load_history_config
from history.db import HistoryStore
from history.writer import HistoryWriter
from spine.contract import Event, now_ms
from spine.layers import registry
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.history_support import drain
from tests.webtools import FAST_HASHER, CheckedBrowser, Client, chromium, serve

pytestmark = pytest.mark.browser
KST = ZoneInfo("Asia/Seoul")
N = 5  # sensors at T1
FLOOD = "sen-water_level-01"  # flood stages 2.3 / 3.0 / 3.5 / 4.0 (low .. critical) in config/feeds.yaml


@dataclass
class Seeded:
    port: int
    t1: int
    t2: int


def _sensor_ids(page) -> list[str]:
    return page.evaluate("() => [...window.ccLive.entities.sensor.keys()]"
                         ".filter((k) => k.startsWith('rp-')).sort()")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[Seeded]:
    client = redis_lib.Redis.from_url(redis_server.url)
    client.flushall()  # the streams start empty: only what this module publishes is in history
    client.close()
    tmp: Path = tmp_path_factory.mktemp("replay")
    url = f"sqlite:///{tmp / 'web.db'}"
    hist = HistoryStore(url, load_history_config())
    writer = HistoryWriter(redis_server.url_for("history"), hist, consumer="replay-browser")
    writer.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    inc = Publisher(connect(redis_server.url_for("incidents")), "incidents")
    # Moment 1: five sensors, one open incident, an event.
    for i in range(N):
        pub.update("sensor", f"rp-s{i}", 37.40 + i / 100, 126.70, {"value": float(i), "unit": "m"})
    pub.update("sensor", FLOOD, 37.47, 126.72, {"value": 2.0, "unit": "m"})
    inc.update("incident", "rp-inc-1", 37.46, 126.70, {"title": "rp flood", "status": "open"})
    pub.event(Event(v=1, id="rp-ev-1", type="threshold", severity="high", ts=now_ms(), layer="sensor",
                    entity="rp-s0", lat=37.40, lon=126.70, title="rp event one", props={"rule": "warn"}))
    assert pub.flush() and inc.flush()
    drain(writer)
    time.sleep(0.01)
    t1 = now_ms()
    time.sleep(0.01)
    # Moment 2: rp-s0 moves north, rp-s4 leaves the map, two more sensors appear.
    pub.update("sensor", "rp-s0", 37.55, 126.70, {"value": 9.0, "unit": "m"})
    pub.update("sensor", "rp-s4", 37.44, 126.70, gone=True)
    pub.update("sensor", FLOOD, 37.47, 126.72, {"value": 2.8, "unit": "m"})
    for i in (5, 6):
        pub.update("sensor", f"rp-s{i}", 37.40 + i / 100, 126.70, {"value": float(i), "unit": "m"})
    assert pub.flush()
    drain(writer)
    t2 = now_ms()

    store = Store(url, FAST_HASHER)
    store.add_user("sup", "sup-password", "supervisor")
    store.add_user("op", "op-password", "operator")  # wall only
    settings = load_settings()
    settings.redis.url = None  # pages only: this page must not need the live spine at all
    settings.database.url = url
    with serve(create_app(settings, store, "replay-browser-secret").server) as port:
        yield Seeded(port, t1, t2)


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:  # every page it opens is watched for page and console errors
        yield b


def test_replay_page_shows_t_plays_and_goes_back_to_live(seeded: Seeded, browser: CheckedBrowser) -> None:
    base = f"http://127.0.0.1:{seeded.port}"
    page = browser.new_page()
    page.goto(f"{base}/replay?t={seeded.t1}")
    page.fill("#username", "sup")
    page.fill("#password", "sup-password")
    page.click("#login-button")
    page.wait_for_url(f"{base}/replay*")
    page.wait_for_function("() => window.ccLive && window.ccLive.replay && window.ccLive.replay.loads > 0"
                           " && window.ccLive.markers.sensor.size > 0", timeout=20_000)

    # The map as it was at T1: five sensors, rp-s0 at its first position, and markers drawn for them.
    assert _sensor_ids(page) == [f"rp-s{i}" for i in range(N)]
    lat = page.evaluate("() => window.ccLive.markers.sensor.get('rp-s0').getLatLng().lat")
    assert lat == pytest.approx(37.40)
    assert page.evaluate("() => window.ccLive.replay.t") == seeded.t1
    # The REPLAY mark (Korean page: 재생 중) and the shown time in KST; the link opens this moment.
    mark = page.locator("#cc-replay-mark")
    assert mark.is_visible() and mark.inner_text() == "재생 중"
    shown = page.locator("#cc-replay-time").inner_text()
    assert datetime.fromtimestamp(seeded.t1 / 1000, KST).strftime("%H:%M:%S") + " KST" in shown
    assert page.locator("#cc-replay-link").get_attribute("href") == f"/replay?t={seeded.t1}"
    # Open incident and event list at T1.
    page.wait_for_function("() => document.querySelectorAll('#cc-events li').length > 0")
    assert "rp event one" in page.locator("#cc-events").inner_text()
    assert "rp flood" in page.locator("#cc-replay-incidents").inner_text()
    # No live socket on this page: no frames, no early socket, no socket module connected.
    live = page.evaluate("() => [window.ccLive.stats.frames, window.ccLive.ws, 'ccEarlySocket' in window]")
    assert live == [0, None, False]

    # Play x8: the time advances and moment 2's steps are applied to the same markers.
    page.click("[data-cc-speed='8']")
    page.wait_for_function(f"() => window.ccLive.replay.t >= {seeded.t2}", timeout=10_000)
    assert _sensor_ids(page) == ["rp-s0", "rp-s1", "rp-s2", "rp-s3", "rp-s5", "rp-s6"]
    lat = page.evaluate("() => window.ccLive.markers.sensor.get('rp-s0').getLatLng().lat")
    assert lat == pytest.approx(37.55)
    assert page.evaluate("() => window.ccLive.markers.sensor.has('rp-s4')") is False
    page.click("#cc-replay-pause")
    assert page.evaluate("() => window.ccLive.replay.speed") == 0
    assert page.evaluate("() => window.ccLive.stats.frames") == 0

    # The flood sensor's popup: its 24 h trend (ending at the moment shown) with the stages around
    # its values (2.0 .. 2.8 m: 2.3 inside, 3.0 the next above) in the registry's severity colours.
    page.evaluate(f"() => {{ const m = window.ccLive.markers.sensor.get('{FLOOD}');"
                  " window.ccLive.map.setView(m.getLatLng(), 15, {animate: false}); m.openPopup(); }")
    page.locator(".cc-trend svg line.cc-trend-range").first.wait_for(state="attached", timeout=10_000)
    assert page.locator(".cc-trend svg").is_visible()
    strokes = page.evaluate("() => [...document.querySelectorAll('.cc-trend svg line:not(.cc-trend-range)')]"
                            ".map((l) => [Number(l.nextSibling.textContent), l.getAttribute('stroke')])")
    sev = {e["code"]: e["color"] for e in registry()["severities"]}
    assert strokes == [[2.3, sev["low"]], [3, sev["medium"]]]

    # Back to live: the supervisor page (which opens the live socket; no gateway in this test).
    browser.errors.allow(r"WebSocket connection to .* failed|status of 404 .* at .*/api/transit/shapes")
    page.click("#cc-replay-live")
    page.wait_for_url(f"{base}/supervisor")


def test_supervisor_header_links_to_replay(seeded: Seeded, browser: CheckedBrowser) -> None:
    base = f"http://127.0.0.1:{seeded.port}"
    browser.errors.allow(r"WebSocket connection to .* failed|status of 404 .* at .*/api/transit/shapes")
    page = browser.new_page()
    page.goto(f"{base}/supervisor")
    page.fill("#username", "sup")
    page.fill("#password", "sup-password")
    page.click("#login-button")
    page.wait_for_url(f"{base}/supervisor")
    link = page.locator("a[href='/replay']")
    link.wait_for(timeout=15_000)
    link.click()
    page.wait_for_url(f"{base}/replay*")
    page.wait_for_function("() => window.ccLive && window.ccLive.replay && window.ccLive.replay.loads > 0",
                           timeout=20_000)


def test_replay_needs_the_supervisor_permission(seeded: Seeded) -> None:
    op = Client(seeded.port)
    op.login("op", "op-password")
    assert op.request("GET", "/replay")[0] == 403
    sup = Client(seeded.port)
    sup.login("sup", "sup-password")
    assert sup.request("GET", "/replay")[0] == 200
