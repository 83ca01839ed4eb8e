"""Helpers for the web tests: cheap password hashing, a real waitress server, a small cookie client,
headless Chromium whose pages fail the test on any page or console error.

The client speaks plain HTTP through http.client and keeps cookies the simple way a browser
does, and it can replay a cookie copied earlier: that is how a stolen or left-behind session
cookie is tried after logout, a password change, disabling or token revocation.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, sync_playwright
from waitress.server import create_server

from dashboard.store import password_hasher

# Argon2 at its lowest cost: the web tests hash and verify dozens of passwords; production keeps
# the defaults (WebSettings.argon2_*). The same through the environment for CLI subprocesses.
FAST_HASHER = password_hasher(time_cost=1, memory_kib=8, parallelism=1)
FAST_HASH_ENV = {"CC_WEB__ARGON2_TIME_COST": "1", "CC_WEB__ARGON2_MEMORY_KIB": "8",
                 "CC_WEB__ARGON2_PARALLELISM": "1"}


@contextmanager
def serve(wsgi_app: object, threads: int = 8) -> Iterator[int]:
    """Serve a WSGI app with waitress on a free port (what `app.py --only web` runs); yields it."""
    server = create_server(wsgi_app, host="127.0.0.1", port=0, threads=threads, ident="test")
    stopping = threading.Event()

    def run() -> None:
        try:
            server.run()
        except (OSError, ValueError):  # its sockets closed under select() while stopping
            if not stopping.is_set():
                raise

    thread = threading.Thread(target=run, name="waitress-test", daemon=True)
    thread.start()
    try:
        yield server.effective_port
    finally:
        stopping.set()
        server.task_dispatcher.shutdown(cancel_pending=True, timeout=1)
        server.asyncore.close_all(server._map)  # an empty socket map ends waitress's loop
        thread.join(timeout=5)


class Client:
    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}

    def cookie_header(self) -> str:
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def request(self, method: str, path: str, form: dict | None = None,
                cookie: str | None = None) -> tuple[int, http.client.HTTPMessage, str]:
        """One request; `cookie` replaces the client's own cookies (a replayed copy)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        headers = {"Cookie": self.cookie_header() if cookie is None else cookie}
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            text = resp.read().decode("utf-8", "replace")
        finally:
            conn.close()
        if cookie is None:
            for line in resp.headers.get_all("Set-Cookie") or []:
                name, _, rest = line.partition("=")
                value = rest.split(";", 1)[0]
                expired = "expires=thu, 01 jan 1970" in line.lower() or "max-age=0" in line.lower()
                if expired or not value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = value
        return resp.status, resp.headers, text

    def csrf(self, path: str = "/login") -> str:
        status, _, page = self.request("GET", path)
        match = re.search(r'name="csrf" value="([^"]+)"', page)
        assert match, f"no form token on {path} ({status})"
        return match.group(1)

    def login(self, name: str, password: str) -> int:
        status, _, _ = self.request("POST", "/login", {"username": name, "password": password,
                                                      "csrf": self.csrf()})
        return status


# ---- headless Chromium with a page-error check (issue 9 point 3) -----------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


def need_chromium() -> None:
    """Skip without Chromium, except in CI, where scripts/setup.sh installs it and a skip would hide a gap."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI: scripts/setup.sh should have installed it")
        pytest.skip("chromium not installed")


class PageErrors:
    """Collects every uncaught page error and every console error of the pages it watches.

    A page error that nobody reads is how the dash-leaflet `equals` TypeError went unnoticed: each
    browser test ends with `assert_clean()` (the `no_page_errors` fixtures), so any such error fails it.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._pages: list[Page] = []
        self._allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        """An error this test provokes on purpose (a killed gateway, a refused request), by regex;
        it holds until the next take(), so for the rest of one test only."""
        self._allowed.append(re.compile(pattern))

    def _add(self, text: str) -> None:
        if not any(p.search(text) for p in self._allowed):
            self.errors.append(text[:1000])

    def watch(self, page: Page) -> Page:
        if any(p is page for p in self._pages):
            return page
        self._pages.append(page)
        page.on("pageerror", lambda e: self._add(f"pageerror on {page.url}: {e} {e.stack}"))
        page.on("console", lambda m: self._console(page, m))
        return page

    def _console(self, page: Page, message: ConsoleMessage) -> None:
        if message.type == "error":
            self._add(f"console.error on {page.url}: {message.text} at {message.location.get('url')}")

    def take(self) -> list[str]:
        out, self.errors = self.errors, []
        self._allowed = []
        self._pages = [p for p in self._pages if not p.is_closed()]
        return out

    def assert_clean(self) -> None:
        errors = self.take()
        assert errors == [], "page or console errors:\n" + "\n".join(errors)


class CheckedBrowser:
    """A playwright Browser whose every page (browser.new_page, and pages of browser.new_context)
    reports to one PageErrors; everything else is the Browser's own."""

    def __init__(self, browser: Browser) -> None:
        self._browser = browser
        self.errors = PageErrors()

    def new_page(self, **kw: object) -> Page:
        page = self._browser.new_page(**kw)
        page.context.on("page", self.errors.watch)  # popups the page opens
        return self.errors.watch(page)

    def new_context(self, **kw: object) -> BrowserContext:
        context = self._browser.new_context(**kw)
        context.on("page", self.errors.watch)
        return context

    def __getattr__(self, name: str) -> object:
        return getattr(self._browser, name)


@contextmanager
def chromium() -> Iterator[CheckedBrowser]:
    """Debian's headless Chromium (each launch a fresh temporary profile), pages watched for errors."""
    need_chromium()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            yield CheckedBrowser(browser)
        finally:
            browser.close()
