"""The README's screenshots, taken from a running demo in headless Chromium (issue 9, point 4).

    .venv/bin/python scripts/screenshots.py                 # starts a demo stack of its own, then stops it
    .venv/bin/python scripts/screenshots.py --base http://127.0.0.1:8050   # the demo you started

Writes docs/screenshots/wall1-1080p.png (1920x1080), wall1-4k.png (3840x2160) and
commander-1024x768.png. The 4K shot is a 3840x2160 viewport at device scale 1, as a 4K wall's browser
sees it, so the page's own scaling (cc/map.js viewScale, the vh type) is what is photographed. Pages
speak their own language: the walls are Korean by config/walls.yaml, the admin's desk pages Korean by
default. A PNG over MAX_BYTES is re-saved with a 256-colour palette (the pages are flat colours).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
MAX_BYTES = 1_500_000
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--lang=ko-KR"]
# (file, path, viewport width, height)
SHOTS: tuple[tuple[str, str, int, int], ...] = (
    ("wall1-1080p.png", "/wall/1", 1920, 1080),
    ("wall1-4k.png", "/wall/1", 3840, 2160),
    ("commander-1024x768.png", "/commander", 1024, 768),
)
# Functions, not expression strings: the pages' CSP forbids Playwright's eval of strings.
LIVE = "() => document.getElementById('cc-live-status')?.dataset.state === 'live'"
FILLED = ("() => window.ccLive && ccLive.markers.bus.size > 0 && ccLive.markers.camera.size > 0"
          " && ccLive.markers.air.size > 0")
# The analytics worker loads its model after the rest of the demo is up: a shot taken before it runs shows
# every camera offline and no events. Wait for what it brings, up to READY_MS, then shoot anyway.
READY = {
    "/wall/1": "() => document.querySelectorAll('#cc-events li').length > 0",
    "/commander": "() => document.querySelectorAll('#cc-events li').length > 0",
}
READY_MS = 120_000


def shoot(page: Page, base: str, path: str, password: str, out: Path) -> None:
    page.goto(base + path)
    if "/login" in page.url:
        page.fill("#username", "admin")
        page.fill("#password", password)
        page.click("#login-button")
        page.wait_for_url(base + path)
    page.wait_for_function(LIVE, timeout=30_000)
    page.wait_for_function(FILLED, timeout=60_000)
    if path in READY:
        try:
            page.wait_for_function(READY[path], timeout=READY_MS)
        except PlaywrightTimeout:
            print(f"{path}: the analytics had not shown up after {READY_MS // 1000} s", file=sys.stderr)
    # Long enough for the simulator's buses to move, events to arrive, the panels' 1 s tick and the
    # labels' declutter pass to have run a few times.
    page.wait_for_timeout(6000)
    page.screenshot(path=str(out))
    shrink(out)


def shrink(png: Path) -> None:
    if png.stat().st_size <= MAX_BYTES:
        return
    with Image.open(png) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                           dither=Image.Dither.NONE)
    small.save(png, optimize=True)


def run(base: str, password: str) -> list[Path]:
    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        context = browser.new_context(locale="ko-KR", timezone_id="Asia/Seoul")
        for name, path, w, h in SHOTS:
            page = context.new_page()
            page.set_viewport_size({"width": w, "height": h})
            shoot(page, base, path, password, OUT / name)
            page.close()
            written.append(OUT / name)
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="a running demo's web address; without it a demo stack is started")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.base:
        from config.settings import DATA_DIR  # honours CC_DATA_DIR

        written = run(args.base.rstrip("/"), (DATA_DIR / "initial-admin-password").read_text().strip())
    else:
        from tests.stack import start_stack  # the demo as a person starts it, on free ports

        with tempfile.TemporaryDirectory(prefix="cc-shots-") as tmp:
            stack = start_stack(Path(tmp), timeout=120)
            try:
                written = run(stack.base, stack.admin_password())
            finally:
                stack.stop()
    for png in written:
        with Image.open(png) as im:
            print(f"{png.relative_to(ROOT)}: {im.width}x{im.height}, {png.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
