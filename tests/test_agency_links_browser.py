"""Agency links on the commander's incident page in headless Chromium, on the real web app and a real
SQLite database: the commander makes a link for 112 (its URL shown once), sees it listed as active
with a revoke button, revokes it, and the 112 user's next request through it is refused (410)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from incidents.db import Actor
from incidents.service import make_store
from tests.webtools import FAST_HASHER, CheckedBrowser, chromium, serve

pytestmark = pytest.mark.browser


@dataclass
class Served:
    base: str
    incident_id: int
    store: Store


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp: Path = tmp_path_factory.mktemp("agency-links")
    url = f"sqlite:///{tmp / 'web.db'}"
    store = Store(url, FAST_HASHER)
    store.add_user("cmd", "cmd-password", "commander")
    store.add_user("police", "police-password", "agency_112")
    settings = load_settings()
    settings.redis.url = None  # the web alone: no live spine, no video routes
    settings.database.url = url
    incidents = make_store(settings.database.resolved_url())
    incidents.migrate()
    inc = incidents.create(next(iter(incidents.cfg.types)), 37.4895, 126.7242, Actor("cmd"), title="links")
    incidents.dispose()
    with serve(create_app(settings, store, "agency-links-browser-secret").server) as port:
        yield Served(f"http://127.0.0.1:{port}", inc["id"], store)


@pytest.fixture(scope="module")
def browser() -> Iterator[CheckedBrowser]:
    with chromium() as b:
        yield b


def _sign_in(page: Page, base: str, path: str, user: str) -> None:
    page.goto(base + path)
    page.fill("#username", user)
    page.fill("#password", f"{user}-password")
    page.click("#login-button")


def test_commander_makes_and_revokes_an_agency_link(served: Served, browser: CheckedBrowser) -> None:
    # The web alone: the live socket and the camera tiles have no server here (by design of this test).
    browser.errors.allow(r"WebSocket|ERR_CONNECTION_REFUSED|/api/live/ticket|/video/")
    page = browser.new_page(viewport={"width": 1024, "height": 768})
    _sign_in(page, served.base, f"/commander#incident={served.incident_id}", "cmd")
    page.wait_for_url(re.compile(r".*/commander.*"))
    page.evaluate(f"() => {{ location.hash = 'incident={served.incident_id}'; }}")
    page.wait_for_selector(".cc-inc-link-make-112", timeout=20_000)
    assert page.locator("#cc-inc-link-list li").count() == 0
    page.click(".cc-inc-link-make-112")
    page.wait_for_function("() => document.querySelectorAll('#cc-inc-link-list li').length === 1")
    url = re.search(r"(/agency/[A-Za-z0-9._-]+)", page.locator("#cc-inc-msg").inner_text()).group(1)
    item = page.locator("#cc-inc-link-list li").first
    assert item.get_attribute("data-cc-status") == "active"
    assert "cmd" in item.inner_text() and "112" in item.inner_text()
    assert url not in page.locator("#cc-inc-link-list").inner_text()  # the list never shows the URL
    button = item.locator(".cc-inc-link-revoke")
    box = button.bounding_box()
    assert box is not None and box["height"] >= 48  # a touch target on the tablet

    police = browser.new_context().new_page()
    _sign_in(police, served.base, url, "police")
    police.wait_for_selector("#ag-incident")
    assert police.request.get(served.base + url).status == 200

    button.click()
    page.wait_for_function("() => { const li = document.querySelector('#cc-inc-link-list li');"
                           " return li && li.dataset.ccStatus === 'revoked'; }")
    assert page.locator("#cc-inc-link-list .cc-inc-link-revoke").count() == 0
    assert police.request.get(served.base + url).status == 410
    actions = {(e.username, e.action) for e in served.store.audit_entries(50)}
    assert {("cmd", "incident_agency_link"), ("cmd", "incident_agency_revoke"),
            ("police", "agency_refused")} <= actions
    police.context.close()
    page.close()
