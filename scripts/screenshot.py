"""Screenshot of a page of the running demo, for the README: python scripts/screenshot.py /wall/1 out.png"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]


def main(path: str, out: str, base: str = "http://127.0.0.1:8050") -> None:
    sys.path.insert(0, str(ROOT))
    from config.settings import DATA_DIR  # honours CC_DATA_DIR

    password = (DATA_DIR / "initial-admin-password").read_text().strip()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(base + path)
        page.fill("#username", "admin")
        page.fill("#password", password)
        page.click("#login-button")
        # A function, not an expression string: the page's CSP forbids Playwright's eval of strings.
        page.wait_for_function("() => document.getElementById('cc-live-status')?.textContent === 'LIVE'")
        page.wait_for_timeout(3000)
        page.screenshot(path=out)
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
