"""In a real browser: the pages' Sign out button posts the form token and ends the session on the
server, so the cookies the browser held before are refused afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from tests.webtools import FAST_HASHER, Client, chromium, serve

pytestmark = pytest.mark.browser


@pytest.fixture
def port(tmp_path: Path) -> Iterator[int]:
    store = Store(f"sqlite:///{tmp_path / 'web.db'}", FAST_HASHER)
    store.add_user("sup", "sup-password", "supervisor")
    settings = load_settings()
    settings.redis.url = None  # pages only: no feeds or video routes needed here
    with serve(create_app(settings, store, "browser-signout-secret").server) as p:
        yield p


def test_sign_out_button_ends_the_session_on_the_server(port: int) -> None:
    base = f"http://127.0.0.1:{port}"
    with chromium() as browser:  # its pages fail the test on any page or console error
        # Pages only here: no gateway for the live socket, no transit feed for the route shapes.
        browser.errors.allow(r"WebSocket connection to .* failed|status of 404 .* at .*/api/transit/shapes")
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{base}/supervisor")
        page.fill("#username", "sup")
        page.fill("#password", "sup-password")
        page.click("#login-button")
        page.wait_for_url(f"{base}/supervisor")
        button = page.locator("#cc-sign-out")
        button.wait_for(timeout=15_000)
        held = "; ".join(f"{c['name']}={c['value']}" for c in context.cookies())
        assert Client(port).request("GET", "/api/live/ticket", cookie=held)[0] == 200
        # From here on a poll of the page (incidents, health) that races the sign-out is refused: allowed
        # only after the click, so a refusal while signed in still fails the test.
        browser.errors.allow(r"status of 401 .* at .*/api/")
        button.click()
        page.wait_for_url(f"{base}/login")
        page.goto(f"{base}/supervisor")
        assert page.url.startswith(f"{base}/login")
        browser.errors.assert_clean()
    assert Client(port).request("GET", "/api/live/ticket", cookie=held)[0] == 401
    assert Client(port).request("GET", "/supervisor", cookie=held)[0] == 302
