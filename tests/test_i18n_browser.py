"""Languages in a real browser against the real demo stack: a fresh page is Korean, a user switches
to English and back (kept in SQL: a new session sees it), one event shows in Korean on a wall and
in English on a supervisor's desk at the same time, and times read in KST whatever the browser's zone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page

from spine.contract import Event, now_ms
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.stack import LIVE, RunningStack, sign_in, start_stack
from tests.webtools import CheckedBrowser, chromium

pytestmark = pytest.mark.browser
KST = ZoneInfo("Asia/Seoul")


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:  # every page it opens is watched for page and console errors
        yield b


@pytest.fixture(autouse=True)
def no_page_errors(browser: CheckedBrowser) -> Iterator[None]:
    browser.errors.take()
    yield
    browser.errors.assert_clean()


@pytest.fixture(scope="module")
def redis_url(redis_server: EmbeddedRedis) -> str:
    """Emptied once for the module's stack: the session's Redis still holds an earlier module's recent
    events, whose snapshots are in that stack's data folder (this stack's pages would get 404s)."""
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[RunningStack]:
    s = start_stack(tmp_path_factory.mktemp("i18n-stack"), {"REDIS_URL": redis_url})
    yield s
    s.stop()




def lang_of(page: Page) -> str:
    return page.evaluate("() => document.documentElement.lang")


def switch(page: Page, stack: RunningStack, lang: str, path: str) -> None:
    page.click(f"#cc-lang-{lang}")
    page.wait_for_url(stack.base + path)
    page.wait_for_function("(l) => document.documentElement.lang === l", arg=lang, timeout=10_000)
    page.wait_for_function(LIVE, timeout=20_000)


def test_1_a_fresh_page_is_korean(browser: CheckedBrowser, stack: RunningStack) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.base + "/login")
    assert lang_of(page) == "ko" and page.inner_text("#login-button") == "로그인"
    sign_in(page, stack, "/supervisor", live=True)
    assert lang_of(page) == "ko"
    assert page.inner_text("h1") == "인천 통합관제 - 관제 책임자"
    assert page.inner_text("#cc-live-status") == "실시간"
    assert page.title() == "인천 통합관제센터"
    assert "버스" in page.inner_text(".cc-kpis")  # the server-rendered panels
    page.wait_for_function("() => document.querySelector('[data-cc-clock]').textContent.endsWith('KST')")
    page.wait_for_function("() => document.querySelectorAll('#cc-health tbody td[data-cc-state]').length > 0",
                           timeout=15_000)
    states = page.locator("#cc-health tbody td[data-cc-state]").all_inner_texts()
    assert states and not any(re.fullmatch(r"[A-Z]+", s) for s in states), states  # health words in Korean
    # t() itself, through the page's own module: params are text, vocabulary params translated, a
    # placeholder without an own param left as it is, an unknown key shown as it is.
    got = page.evaluate("""async () => { const m = await import('/assets/cc/i18n.js');
      return [m.t('{n} people in {zone}', {n: 1234.5, zone: '<i>x</i>'}),
              m.t('{cls} entered {zone}', {cls: 'person', zone: 'car'}),
              m.t('{cls} entered {zone}', JSON.parse('{"__proto__": {"cls": "evil"}}')),
              m.t('no such key {x}', {x: 1}), m.known('LIVE'), m.known('toString')]; }""")
    assert got == ["<i>x</i> 밀집: 1,234.5명", "car 침입: 사람", "{zone} 침입: {cls}", "no such key 1",
                   True, False]
    context.close()


def test_2_a_user_switches_to_english_and_back_and_the_choice_is_kept(browser: CheckedBrowser,
                                                                      stack: RunningStack) -> None:
    first = browser.new_context().new_page()
    sign_in(first, stack, "/supervisor", live=True)
    switch(first, stack, "en", "/supervisor")
    assert first.inner_text("h1") == "Incheon integrated control - supervisor"
    assert first.inner_text("#cc-live-status") == "LIVE"
    # A new browser session (fresh cookies) signs in: the choice came from SQL, not the old cookie.
    second_context = browser.new_context()
    second = second_context.new_page()
    sign_in(second, stack, "/supervisor", live=True)
    assert lang_of(second) == "en" and second.inner_text("#cc-sign-out") == "Sign out"
    switch(second, stack, "ko", "/supervisor")
    assert second.inner_text("#cc-sign-out") == "로그아웃"
    first.reload()
    first.wait_for_function(LIVE, timeout=20_000)
    assert lang_of(first) == "ko" and first.inner_text("h1") == "인천 통합관제 - 관제 책임자"
    first.context.close()
    second_context.close()


def test_3_one_event_shows_in_each_viewers_language(browser: CheckedBrowser, stack: RunningStack,
                                                    redis_url: str) -> None:
    desk = browser.new_context().new_page()
    sign_in(desk, stack, "/supervisor", live=True)
    switch(desk, stack, "en", "/supervisor")  # the supervisor reads English
    wall = browser.new_context(viewport={"width": 1920, "height": 1080}).new_page()
    sign_in(wall, stack, "/wall/1", live=True)  # the wall keeps config/walls.yaml's language, Korean
    assert lang_of(wall) == "ko" and lang_of(desk) == "en"
    pub = Publisher(connect(redis_url), src="i18n-test")
    pub.event(Event(v=1, id="ev-i18n-1", type="zone_intrusion", severity="high", ts=now_ms(), layer="camera",
                    entity="cam-0001", lat=37.456, lon=126.705, title="person entered <b>Gate 3</b>",
                    msg="{cls} entered {zone}", params={"cls": "person", "zone": "<b>Gate 3</b>"}))
    # An older producer: a title only, shown as it is in both languages.
    pub.event(Event(v=1, id="ev-i18n-2", type="bell", severity="low", ts=now_ms(), layer="camera",
                    entity="cam-0001", lat=37.456, lon=126.705, title="Legacy title only (i18n)",
                    msg="not a catalogue key {x}", params={"x": "y"}))
    assert pub.flush()
    has = "(t) => document.getElementById('cc-events')?.textContent.includes(t)"
    wall.wait_for_function(has, arg="<b>Gate 3</b> 침입: 사람", timeout=15_000)
    desk.wait_for_function(has, arg="person entered <b>Gate 3</b>", timeout=15_000)
    for page in (wall, desk):
        page.wait_for_function(has, arg="Legacy title only (i18n)", timeout=15_000)
        assert page.locator("#cc-events b").count() == 0  # params are text, never markup
    wall_item = wall.locator("#cc-events li", has_text="Gate 3").first.inner_text()
    desk_item = desk.locator("#cc-events li", has_text="Gate 3").first.inner_text()
    assert "높음" in wall_item and "HIGH" in desk_item
    wall.context.close()
    desk.context.close()


def test_4_times_are_korea_time_whatever_the_browsers_zone(browser: CheckedBrowser, stack: RunningStack,
                                                          redis_url: str) -> None:
    page = browser.new_context(timezone_id="America/New_York").new_page()
    sign_in(page, stack, "/supervisor", live=True)
    assert page.evaluate("() => Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
    page.wait_for_function("() => /^\\d\\d:/.test(document.querySelector('[data-cc-clock]').textContent)")
    before = datetime.now(KST)
    clock = page.inner_text("[data-cc-clock]")
    after = datetime.now(KST)
    shown = re.match(r"(\d\d):(\d\d):(\d\d)", clock)
    assert shown, clock
    candidates = {(before + timedelta(seconds=s)).strftime("%H:%M") for s in
                  range(-2, int((after - before).total_seconds()) + 3)}
    assert f"{shown.group(1)}:{shown.group(2)}" in candidates, (clock, before, after)
    # An event's time in the list is KST too (a fixed instant: 2026-01-15 09:30:05 KST).
    ts = int(datetime(2026, 1, 15, 9, 30, 5, tzinfo=KST).timestamp() * 1000)
    pub = Publisher(connect(redis_url), src="i18n-test")
    pub.event(Event(v=1, id="ev-i18n-time", type="bell", severity="low", ts=ts, layer="camera",
                    entity="cam-0001", lat=37.456, lon=126.705, title="time probe (i18n)"))
    assert pub.flush()
    page.wait_for_function("() => document.getElementById('cc-events')?.textContent.includes('time probe')",
                           timeout=15_000)
    item = page.locator("#cc-events li", has_text="time probe").first
    assert item.locator(".cc-event-time").inner_text() == "09:30:05"
    page.context.close()
