"""Send to wall in headless Chromium on the whole stack (issue 11 points 3 and 4): the commander
sends an incident to wall 1 from the incident detail; /wall/1 shows its pane (title as text,
priority, the incident's nearest cameras as live tiles) and drops it when the commander clears it.
Every page fails the test on any page or console error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dashboard.store import Store
from spine.servers.embedded_redis import EmbeddedRedis
from tests.stack import RunningStack, sign_in, start_stack
from tests.webtools import CheckedBrowser, chromium

pytestmark = pytest.mark.browser
POINT = {"lat": 37.4895, "lon": 126.7242}  # beside vis-bupyeong-01 (its PTZ preset covers it)
TITLE = "<img src=x onerror=window.__ccXss=1> 지하보도 비상"


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:
        yield b


@pytest.fixture(autouse=True)
def no_page_errors(browser: CheckedBrowser) -> Iterator[None]:
    browser.errors.take()
    # As tests/test_incident_browser.py: the live path asks /video/<cam>.live first and falls back
    # to JPEG frames on a 404 while a camera's relay is not up yet; Chromium logs each 404.
    browser.errors.allow(r"404 \(NOT FOUND\) at http://127\.0\.0\.1:\d+/video/[\w-]+\.live\?v=(sub|main)$")
    yield
    browser.errors.assert_clean()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: EmbeddedRedis) -> Iterator[RunningStack]:
    import redis

    client = redis.Redis.from_url(redis_server.url)
    client.flushall()  # an earlier module's recent events name snapshots this stack does not have
    client.close()
    s = start_stack(tmp_path_factory.mktemp("wallstack"), {"REDIS_URL": redis_server.url}, timeout=180)
    yield s
    s.stop()




def test_send_to_wall_then_clear(browser: CheckedBrowser, stack: RunningStack) -> None:
    cmd = browser.new_page(viewport={"width": 1024, "height": 768}, has_touch=True)
    sign_in(cmd, stack, "/commander")
    made = cmd.evaluate("""async ([point, title]) => {
        const meta = await (await fetch('/api/incidents/meta')).json();
        const r = await fetch('/api/incidents', { method: 'POST',
          headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': meta.csrf },
          body: JSON.stringify({ type: 'emergency_bell', title, ...point }) });
        return r.json(); }""", [POINT, TITLE])
    iid = made["id"]
    cams = [c["camera_id"] for c in made["cameras"]][:3]
    assert cams and cams[0] == "vis-bupyeong-01"
    wall = browser.new_page(viewport={"width": 1920, "height": 1080})
    sign_in(wall, stack, "/wall/1")
    wall.wait_for_selector("#cc-wall-pane", state="attached", timeout=20_000)
    assert wall.locator("#cc-wall-pane").is_hidden()

    cmd.goto(f"{stack.base}/commander#incident={iid}")
    cmd.wait_for_selector(".cc-inc-wall-send", timeout=20_000)
    cmd.select_option("#cc-inc-wall", "1")
    cmd.tap(".cc-inc-wall-send")
    # The pane appears within a poll (2 s) with the incident's cameras, the title as text.
    wall.wait_for_function(f"() => document.getElementById('cc-wall-pane').dataset.ccIncident === '{iid}'",
                           timeout=10_000)
    assert wall.locator("#cc-wall-pane").is_visible()
    assert wall.get_attribute("#cc-wall-pane", "data-cc-cameras") == " ".join(cams)
    shown = wall.eval_on_selector_all("#cc-wall-pane [data-cc-camera]",
                                      "ts => ts.map(t => t.dataset.ccCamera)")
    assert shown == cams
    assert "지하보도 비상" in wall.inner_text("#cc-wall-pane")
    assert wall.evaluate(
        "window.__ccXss === undefined && !document.querySelector('#cc-wall-pane img[src=x]')")
    # Live: each tile's <img> is registered with the video path (watchVideo), as every tile is.
    wall.wait_for_function("""(n) => Array.from(document.querySelectorAll('#cc-wall-pane img'))
        .filter(i => ccLive.videoImgs.get(i)).length === n""", arg=len(cams), timeout=10_000)
    # The commander's timeline says so; the send is audited.
    cmd.wait_for_function("() => /상황판|wall/i.test(document.getElementById('cc-inc-timeline').textContent)",
                          timeout=10_000)
    cmd.tap(".cc-inc-wall-clear")
    wall.wait_for_function("() => document.getElementById('cc-wall-pane').hidden", timeout=10_000)
    assert wall.eval_on_selector_all("#cc-wall-pane [data-cc-camera]", "ts => ts.length") == 0
    store = Store(f"sqlite:///{stack.data_dir / 'controlroom.db'}")
    assert [e.action for e in store.audit_entries(action="incident_wall")] == ["incident_wall"] * 2
    cmd.close()
    wall.close()
