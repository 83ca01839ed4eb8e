"""Alarms on the screens (issue 10 points 5 and 6): the gateway relays the alarm channel and the
open-alarm hash; in headless Chromium a supervisor acknowledges and shelves an alarm and the wall
shows it live; an operator sees no shelve button and the API refuses; the load panel shows what the
KPI API computes; a new critical alarm sounds on the supervisor desk.

The browser tests run the deployment stack (app.py, no simulator) so only the seeded events raise
alarms: producer (Publisher) -> event stream -> alarm service -> SQL -> alarm channel -> gateway ->
page, every part real.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from dashboard.store import Store
from gateway.batcher import Batcher
from spine import channels
from spine.contract import Event, now_ms
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.gateway_support import next_frame, start_gateway, stop_gateway, ws_url
from tests.stack import RunningStack, start_stack
from tests.stack import sign_in as stack_sign_in
from tests.webtools import FAST_HASHER, CheckedBrowser, chromium


def alarm_doc(i: int, state: str = "UNACK", priority: str = "high", **kw: object) -> dict:
    return {"id": i, "key": f"sen-{i}|threshold:x", "source": f"sen-{i}", "condition": "threshold:x",
            "rule": "sensor threshold", "kind": "threshold", "layer": "sensor", "priority": priority,
            "state": state, "active": True, "acked": False, "shelve": None, "shelved_until": None,
            "shelved_by": None, "suppressed": False, "suppress_reason": None, "oos": False,
            "chattering": False, "count": 1, "total": 1, "first_ts": 1, "last_ts": 2, "active_since": 1,
            "updated_ts": 3, "title": "<img src=x onerror=alert(1)>", "lat": 37.4, "lon": 126.6, **kw}


# ---- the gateway's part (in-process gateway, real Redis) ---------------------------------------
async def test_gateway_relays_alarms_in_batches_and_the_hash_in_snapshots(redis_url: str) -> None:
    from redis import Redis
    from websockets.asyncio.client import connect as ws_connect

    r = Redis.from_url(redis_url)
    r.hset(channels.ALARMS_OPEN_KEY, mapping={"1": json.dumps(alarm_doc(1)), "2": b"{not json",
                                             "3": json.dumps(alarm_doc(3, priority="urgent"))})
    gw, task = await start_gateway(redis_url)
    try:
        async with ws_connect(ws_url(gw)) as ws:
            snap = await next_frame(ws, "snapshot")
            assert [a["id"] for a in snap["al"]] == [1]  # the bad entries are counted, not sent
            assert gw.rejects.counts.get("invalid_alarm") == 2
            r.publish(channels.ALARM_CHANNEL, json.dumps({"t": "alarms", "n": 7, "ts": 1, "ev": ["e"],
                                                         "a": [alarm_doc(1, state="ACKED")]}))
            batch = await next_frame(ws, "batch")
            assert batch["n"] == snap["n"] + 1 and [a["state"] for a in batch["al"]] == ["ACKED"]
            assert "alr" not in batch
            r.publish(channels.ALARM_CHANNEL, b'{"t": "alarms", "a": [{"id": "x"}]}')  # refused, counted
            r.hset(channels.ALARMS_OPEN_KEY, "4", json.dumps(alarm_doc(4)))
            r.publish(channels.ALARM_CHANNEL, json.dumps({"t": "resync", "ts": 1}))
            whole = await next_frame(ws, "batch")
            assert whole["alr"] is True and sorted(a["id"] for a in whole["al"]) == [1, 4]
            assert gw.rejects.counts.get("invalid_alarm") == 3
    finally:
        await stop_gateway(task)
        r.delete(channels.ALARMS_OPEN_KEY)


def test_batcher_keeps_the_latest_change_per_alarm_and_resends_the_hash_past_its_cap() -> None:
    from gateway.alarms import AlarmView

    b = Batcher(["bus"], max_events=2)
    view = lambda i, s: AlarmView(id=i, key="k", source="s", condition="c", priority="low",  # noqa: E731
                                  state=s, updated_ts=1)
    b.add_alarms([view(1, "UNACK"), view(1, "ACKED"), view(2, "UNACK")])
    plan = b.take(0.0)
    assert plan is not None and [(a.id, a.state) for a in plan.alarms] == [(1, "ACKED"), (2, "UNACK")]
    b.add_alarms([view(i, "UNACK") for i in range(1, 4)])  # one over the cap
    plan = b.take(1.0)
    assert plan.alarm_resync and plan.alarms == [] and b.counts.alarms_dropped == 1
    assert b.take(2.0) is None


def test_the_audible_cue_follows_the_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from widgets import alarms as widget

    off = tmp_path / "screens.yaml"
    off.write_text("alarm_screens: {audible_critical: false}\n")
    monkeypatch.setenv("CC_ALARM_SCREENS", str(off))
    cfg = json.loads(widget.alarm_list("desk").to_plotly_json()["props"]["data-cc-alarm-config"])
    assert cfg["audible"] == [] and cfg["motion"] == ["high", "critical"]
    monkeypatch.delenv("CC_ALARM_SCREENS")
    cfg = json.loads(widget.alarm_list("desk").to_plotly_json()["props"]["data-cc-alarm-config"])
    assert cfg["audible"] == ["critical"] and cfg["shapes"]["critical"] == "star"
    off.write_text("alarm_screens: {beep_hz: 1e9}\n")
    widget._load.cache_clear()
    monkeypatch.setenv("CC_ALARM_SCREENS", str(off))
    with pytest.raises(ValueError):
        widget.screens_config()


# ---- the pages, on the real stack -------------------------------------------------------------
USERS = {"sup": "supervisor", "op": "operator"}


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:
        yield b


@pytest.fixture
def checked(browser: CheckedBrowser) -> Iterator[CheckedBrowser]:
    browser.errors.take()
    yield browser
    browser.errors.assert_clean()


@pytest.fixture(scope="module")
def module_redis(redis_server: EmbeddedRedis) -> str:
    return redis_server.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, module_redis: str) -> Iterator[RunningStack]:
    from redis import Redis

    Redis.from_url(module_redis).delete(channels.ALARMS_OPEN_KEY, channels.EVENTS_STREAM,
                                        channels.ALARMS_CURSOR_KEY)
    s = start_stack(tmp_path_factory.mktemp("alarm-stack"), {"REDIS_URL": module_redis, "CC_PROFILE": ""})
    store = Store(f"sqlite:///{s.data_dir / 'controlroom.db'}", FAST_HASHER)
    for name, role in USERS.items():
        store.add_user(name, f"{name}-password-1", role)
    yield s
    s.stop()


def sign_in(page: Page, stack: RunningStack, path: str, user: str | None = None) -> None:
    """As tests/stack.py, as `user` (made with the password "<user>-password-1") or the admin, and
    until the page has the alarm metadata."""
    stack_sign_in(page, stack, path, user or "admin", f"{user}-password-1" if user else None, live=True)
    page.wait_for_function("() => window.ccLive.alarmMeta !== null", timeout=10_000)


def raise_alarms(redis_url: str, tag: str, n: int = 1, severity: str = "high",
                 typ: str = "threshold") -> list[str]:
    """n events of distinct sensors, each one alarm (config/alarms.yaml "sensor threshold")."""
    pub = Publisher(connect(redis_url), src="alarm-browser-test")
    sources = [f"{tag}-{i}" for i in range(n)]
    for i, source in enumerate(sources):
        pub.event(Event(v=1, id=f"{tag}-ev-{i}-{now_ms()}", type=typ, severity=severity, ts=now_ms(),
                        layer="sensor", entity=source, lat=37.45 + i * 0.001, lon=126.70,
                        title=f"<b>{source}</b> over", props={"rule": "warn"}))
    assert pub.flush()
    return sources


def alarm_id(page: Page, source: str, timeout: float = 15_000) -> int:
    page.wait_for_function("(s) => [...ccLive.alarms.values()].some((a) => a.source === s)", arg=source,
                           timeout=timeout)
    return page.evaluate("(s) => [...ccLive.alarms.values()].find((a) => a.source === s).id", source)


STATE = "([id]) => ccLive.alarms.get(id)?.state ?? 'gone'"


@pytest.mark.browser
def test_supervisor_acknowledges_and_shelves_and_the_wall_follows(checked: CheckedBrowser,
                                                                  stack: RunningStack,
                                                                  module_redis: str) -> None:
    wall = checked.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(wall, stack, "/wall/1")
    desk = checked.new_page(viewport={"width": 1600, "height": 1000})
    sign_in(desk, stack, "/supervisor", "sup")
    a_src, b_src = raise_alarms(module_redis, "ack-shelve", 2)
    a, b = alarm_id(wall, a_src), alarm_id(wall, b_src)
    # The wall: unacknowledged high alarms move (list row and banner), sit on the map as triangles,
    # and the producer's title is text, not markup.
    row = wall.locator(f'#cc-alarm-list li[data-cc-alarm="{a}"]')
    row.wait_for(timeout=5_000)
    assert "cc-alarm-moving" in row.get_attribute("class")
    assert "<b>" in row.inner_text() and wall.locator("#cc-alarm-list b").count() == 0
    assert wall.evaluate("([id]) => ccLive.alarmMarkers.get(id)?.ccShape", [a]) == "triangle"
    assert int(wall.get_attribute("#cc-alarm-banner", "data-cc-unack")) >= 2
    # The supervisor acknowledges A with a comment.
    desk.locator(f'#cc-alarm-list input[data-cc-alarm-id="{a}"]').wait_for(timeout=10_000)
    desk.check(f'#cc-alarm-list input[data-cc-alarm-id="{a}"]')
    desk.fill("#cc-alarm-comment", "crew sent")
    t0 = time.monotonic()
    desk.click("#cc-alarm-ack")
    desk.wait_for_function(f"() => ({STATE})([{a}]) === 'ACKED'", timeout=10_000)
    t1 = time.monotonic()
    wall.wait_for_function(f"() => ({STATE})([{a}]) === 'ACKED'", timeout=10_000)
    print(f"desk (POST answer): {1000 * (t1 - t0):.0f} ms; ", end="")
    print(f"ack click on the desk -> wall shows ACKED: {1000 * (time.monotonic() - t0):.0f} ms")
    wall.wait_for_function(f"""() => !document.querySelector('#cc-alarm-list li[data-cc-alarm="{a}"]')
                               ?.classList.contains('cc-alarm-moving')""", timeout=5_000)
    # ... and shelves B for 15 minutes with a reason: gone from the wall, in the desk's shelved list.
    desk.check(f'#cc-alarm-list input[data-cc-alarm-id="{b}"]')
    desk.fill("#cc-alarm-reason", "sensor maintenance")
    desk.select_option("#cc-alarm-minutes", "15")
    desk.click("#cc-alarm-shelve")
    wall.wait_for_function(f"() => ({STATE})([{b}]) === 'SHLVD'", timeout=10_000)
    wall.wait_for_function(f"""() => !document.querySelector('#cc-alarm-list li[data-cc-alarm="{b}"]')""",
                           timeout=5_000)
    assert wall.evaluate("([id]) => ccLive.alarmMarkers.has(id)", [b]) is False
    left = desk.locator(f'#cc-alarm-shelved li[data-cc-alarm="{b}"] .cc-alarm-left')
    left.wait_for(timeout=5_000)
    assert int(left.get_attribute("data-cc-left-min")) in (14, 15)
    # The history says who and why.
    hist = desk.evaluate(f"() => fetch('/api/alarms/{a}').then((r) => r.json())")["history"]
    ack = next(h for h in hist if h["kind"] == "ack")
    assert (ack["actor"], ack["reason"]) == ("sup", "crew sent")
    # Unshelve from the shelved list: back on the wall, unacknowledged.
    desk.check(f'#cc-alarm-shelved input[data-cc-alarm-id="{b}"]')
    desk.click("#cc-alarm-unshelve")
    wall.wait_for_function(f"() => ({STATE})([{b}]) === 'UNACK'", timeout=10_000)
    wall.locator(f'#cc-alarm-list li[data-cc-alarm="{b}"]').wait_for(timeout=5_000)
    wall.close()
    desk.close()


@pytest.mark.browser
def test_an_operator_sees_no_shelve_button_and_the_api_refuses(checked: CheckedBrowser, stack: RunningStack,
                                                              module_redis: str) -> None:
    checked.errors.allow(r"status of 403 .*/api/alarms/shelve")  # the refusal this test provokes
    page = checked.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(page, stack, "/wall/1", "op")
    (src,) = raise_alarms(module_redis, "operator")
    aid = alarm_id(page, src)
    assert page.locator("#cc-alarm-ack").is_visible()  # operators acknowledge
    for sel in ("#cc-alarm-shelve", "#cc-alarm-unshelve", "#cc-alarm-reason", "#cc-alarm-minutes"):
        assert not page.locator(sel).is_visible(), sel
    status = page.evaluate("""([id]) => fetch('/api/alarms/shelve', {
        method: 'POST', credentials: 'same-origin',
        headers: {'Content-Type': 'application/json', 'X-CSRF-Token': ccLive.alarmMeta.csrf},
        body: JSON.stringify({ids: [id], mode: 'timed', minutes: 15, reason: 'try'}),
      }).then((r) => r.status)""", [aid])
    assert status == 403
    assert page.evaluate(f"() => ({STATE})([{aid}])") == "UNACK"
    page.close()


@pytest.mark.browser
def test_the_load_panel_shows_what_the_kpi_api_computes(checked: CheckedBrowser, stack: RunningStack,
                                                       module_redis: str) -> None:
    page = checked.new_page(viewport={"width": 1600, "height": 1000})
    sign_in(page, stack, "/supervisor", "sup")
    before = page.evaluate("() => fetch('/api/alarms/kpis?hours=24').then((r) => r.json())")["total"]
    sources = raise_alarms(module_redis, "flood", 12, severity="low")  # 12 in one period: a flood (> 10)
    alarm_id(page, sources[-1])
    page.wait_for_function(
        "(n) => fetch('/api/alarms/kpis?hours=24').then((r) => r.json()).then((k) => k.total >= n)",
        arg=before + 12, timeout=10_000)
    read = page.get_attribute("#cc-alarm-load", "data-cc-load-read") or "0"
    page.evaluate("() => ccLive.reloadAlarmKpis()")
    page.wait_for_function(
        "(r) => (document.getElementById('cc-alarm-load').dataset.ccLoadRead || '0') !== r",
        arg=read, timeout=10_000)
    k = page.evaluate("() => ccLive.alarmKpis")
    api = page.evaluate("() => fetch('/api/alarms/kpis?hours=24').then((r) => r.json())")
    assert api["total"] == k["total"] >= before + 12  # nothing raised meanwhile: the same figures
    assert api["flood"]["floods"] >= 1 and api["rate"]["peak_per_10min"] >= 12

    def fig(key: str) -> str:
        return page.inner_text(f'[data-cc-load="{key}"] .cc-load-value')

    assert fig("total") == str(api["total"])
    assert float(fig("avg")) == api["rate"]["avg_per_10min"]
    assert fig("peak") == str(api["rate"]["peak_per_10min"])
    assert fig("flood") == f"{api['flood']['time_in_flood_pct']} %"
    level = {"predictive": "예측", "robust": "견고", "stable": "안정", "reactive": "대응",
             "overloaded": "과부하"}
    assert fig("eemua") == level[api["eemua"]["level"]]  # Korean page
    shown = page.eval_on_selector_all('[data-cc-load="top10"] li',
                                      "els => els.map((e) => e.dataset.ccLoadTop)")
    assert shown == [x["key"] for x in api["top10"]]
    # Low alarms are listed without motion (only unacknowledged high and critical ones move).
    low_row = page.locator(f'#cc-alarm-list li[data-cc-alarm="{alarm_id(page, sources[0])}"]')
    assert low_row.get_attribute("data-priority") == "low"
    assert "cc-alarm-moving" not in low_row.get_attribute("class")
    low = page.inner_text('[data-cc-load-prio="low"]')
    assert re.search(rf"{api['priorities']['low']['share_pct']:g}\s*%", low) and "80" in low
    page.close()


@pytest.mark.browser
def test_a_new_critical_alarm_sounds_on_the_supervisor_desk_unless_muted(checked: CheckedBrowser,
                                                                        stack: RunningStack,
                                                                        module_redis: str) -> None:
    page = checked.new_page(viewport={"width": 1600, "height": 1000})
    sign_in(page, stack, "/supervisor", "sup")
    cues = page.evaluate("() => ccLive.alarmStats.cues")
    (src,) = raise_alarms(module_redis, "bell", typ="bell", severity="critical")
    aid = alarm_id(page, src)
    page.wait_for_function("(n) => ccLive.alarmStats.cues === n + 1", arg=cues, timeout=5_000)
    assert page.evaluate("([id]) => ccLive.alarmMarkers.get(id)?.ccShape", [aid]) == "star"
    # A repeat of the same alarm is no new alarm; a muted desk stays silent.
    page.click("#cc-alarm-mute")
    assert page.get_attribute("#cc-alarm-mute", "aria-pressed") == "true"
    raise_alarms(module_redis, "bell2", typ="bell", severity="critical")
    alarm_id(page, "bell2-0")
    time.sleep(0.3)
    assert page.evaluate("() => ccLive.alarmStats.cues") == cues + 1
    page.close()
