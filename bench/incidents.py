"""Bell press -> the nearest cameras on the commander's tablet, through the whole stack.

Starts `python app.py --demo` (tests/stack.py: its own Redis, the private Mosquitto with passwords and
ACLs, feeds, alarms, incidents, gateway, web, vision) with a bench registry of bells placed around
the two configured cameras (CC_FEEDS__BELLS__BELLS), signs a headless Chromium in on /commander at
1024x768, and then, one bell at a time, publishes a press over MQTT as a bell box would (the `sensors`
user, QoS 1) and times until the page shows that bell's incident with its nearest cameras
(`[data-cc-cameras]` of its list item non-empty). Path: MQTT -> bells adapter -> Redis event stream ->
alarm service (SQL, critical alarm) -> incident service (SQL incident, SOP's camera step, outbox ->
hash + "incident" map layer) -> gateway -> page -> API read -> DOM.

    .venv/bin/python bench/incidents.py                 # 20 presses
    .venv/bin/python bench/incidents.py --quick         # 5 presses, under a minute after start-up
    .venv/bin/python bench/incidents.py --cap-out alert.xml   # also the CAP Alert of one bench incident

Last line: incidents bell_to_screen_p50_ms=<n> bell_to_screen_p99_ms=<n>   (target p99 <= 1000 ms)
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from spine.servers.embedded_redis import EmbeddedRedis  # noqa: E402
from tests.stack import start_stack  # noqa: E402
from tests.test_incident_browser import bell_box, press  # noqa: E402
from tests.webtools import chromium  # noqa: E402

# Around the configured cameras (config/cameras.yaml), so each incident has cameras to show.
ANCHORS = (("vis-bupyeong-01", 37.4893, 126.7240, "부평구"), ("vis-songdo-01", 37.3925, 126.6393, "연수구"))
SHOWN = """([name]) => Array.from(document.querySelectorAll('#cc-inc-list [data-cc-incident]'))
  .some(b => b.textContent.includes(name) && (b.dataset.ccCameras || '') !== '')"""


def bench_bells(n: int, seed: int = 7) -> dict[str, dict]:
    rng = random.Random(seed)
    bells = {}
    for i in range(n):
        cam, lat, lon, district = ANCHORS[i % len(ANCHORS)]
        d, a = rng.uniform(10, 60), rng.uniform(0, 2 * math.pi)
        bells[f"bench-bell-{i:03d}"] = {
            "name": f"벤치 비상벨 {i:03d}", "district": district, "camera": cam, "preset": i + 1,
            "lat": round(lat + d * math.cos(a) / 111_000, 6),
            "lon": round(lon + d * math.sin(a) / (111_000 * math.cos(math.radians(lat))), 6)}
    return bells


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="5 presses")
    ap.add_argument("--presses", type=int, default=20)
    ap.add_argument("--cap-out", type=Path,
                    help="write the CAP 1.2 Alert (to 112) of one bench incident here")
    args = ap.parse_args()
    n = 5 if args.quick else max(1, min(args.presses, 200))
    bells = bench_bells(n)
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-incidents-"))
    redis = EmbeddedRedis(tmp / "redis")
    redis.start()
    t_start = time.monotonic()
    env = {"REDIS_URL": redis.url, "CC_FEEDS__BELLS__BELLS": json.dumps(bells, ensure_ascii=False)}
    stack = start_stack(tmp, env, timeout=240)
    lat_ms: list[float] = []
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1024, "height": 768}, has_touch=True)
            page.goto(stack.base + "/commander")
            page.fill("#username", "admin")
            page.fill("#password", stack.admin_password())
            page.click("#login-button")
            page.wait_for_url(stack.base + "/commander")
            page.wait_for_function(
                "() => document.getElementById('cc-live-status')?.dataset.state === 'live'", timeout=60_000)
            box = bell_box(stack)
            # Warm-up: the feeds part may still be subscribing; a press before that is lost (boxes repeat).
            warm = next(iter(bells))
            deadline = time.monotonic() + 60
            while True:
                press(box, warm)
                try:
                    page.wait_for_function(SHOWN, arg=[bells[warm]["name"]], timeout=3_000, polling=10)
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
            print(f"stack up and first bell shown after {time.monotonic() - t_start:.0f} s", file=sys.stderr)
            for bid, b in list(bells.items())[1:]:
                t0 = time.perf_counter()
                press(box, bid)
                page.wait_for_function(SHOWN, arg=[b["name"]], timeout=15_000, polling=10)
                lat_ms.append((time.perf_counter() - t0) * 1000)
                print(f"{bid}: {lat_ms[-1]:.0f} ms", file=sys.stderr)
                time.sleep(0.5)
            if args.cap_out:
                iid = page.evaluate("""([name]) => { const b = Array.from(document.querySelectorAll(
                    '#cc-inc-list [data-cc-incident]')).find(x => x.textContent.includes(name));
                    return b ? Number(b.dataset.ccIncident) : null; }""", [bells[warm]["name"]])
                xml = page.evaluate("""async ([id]) => { const r = await fetch('/api/incidents/' + id +
                    '/cap?agency=112&type=Alert', {credentials: 'same-origin'});
                    return [r.status, await r.text()]; }""", [iid])
                if xml[0] != 200:
                    print(f"CAP preview refused: {xml[0]} {xml[1][:300]}", file=sys.stderr)
                    return 1
                args.cap_out.write_text(xml[1], encoding="utf-8")
                print(f"CAP Alert of incident {iid} written to {args.cap_out}", file=sys.stderr)
            box.loop_stop()
            page.close()
    finally:
        stack.stop()
        redis.stop()
    if not lat_ms:
        lat_ms = [float("nan")]
    print(f"presses measured: {len(lat_ms)}; min {min(lat_ms):.0f} ms, max {max(lat_ms):.0f} ms",
          file=sys.stderr)
    p50, p99 = pct(lat_ms, 50), pct(lat_ms, 99)
    print(f"incidents bell_to_screen_p50_ms={p50:.0f} bell_to_screen_p99_ms={p99:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
