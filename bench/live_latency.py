"""Publish -> painted in the browser: the live push path against a dcc.Interval(1 s) baseline.

Runs a private Redis, the gateway and web server as `app.py --only ...` processes, a publisher
process, and one headless Chromium wall page. Each entity updates once per second, so N
entities give N updates/s. Latency is measured in the page at the next animation frame after
the marker moved (what an operator sees); the baseline page records when polled data arrives.

    .venv/bin/python bench/live_latency.py            # 30 s per case
    .venv/bin/python bench/live_latency.py --quick    # under a minute

Scale case: the same wall page holding 10,000 buses and 16,000 camera markers while 5,000 of
the buses move each second (each bus every 2 s), as a city-wide wall would.

Ends with: live_latency p50_ms=.. p95_ms=.. p99_ms=.. lost_pct=.. gateway_cpu_pct=..
baseline_p50_ms=.. ratio=.. scale_p99_ms=..   (the first keys for the 5,000 updates/s case)
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dashboard.store import Store  # noqa: E402
from spine.publisher import Publisher, connect  # noqa: E402
from spine.servers.embedded_redis import EmbeddedRedis  # noqa: E402
from spine.servers.managed import free_port  # noqa: E402

FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run"]
TICK_S = 0.01


def publisher(redis_url: str, rate: int, seconds: float, counter: mp.Value, fleet: int = 0) -> None:
    """rate updates a second, spread evenly over 10 ms ticks, round-robin over `fleet` entities
    (default `rate`: each entity once a second)."""
    fleet = fleet or rate
    pub = Publisher(connect(redis_url), src=f"bench-{rate}-{fleet}")
    per_tick = rate * TICK_S
    carry, cursor, sent = 0.0, 0, 0
    start = time.monotonic()
    next_tick = start
    while time.monotonic() - start < seconds:
        carry += per_tick
        n = int(carry)
        carry -= n
        for _ in range(n):
            i = cursor % fleet
            step = cursor // fleet
            pub.update("bus", f"bench-{i:05d}", 37.40 + (i % 100) * 0.002, 126.60 + (i // 100) * 0.003
                       + (step % 10) * 0.0005, {"route": "B"})
            cursor += 1
        pub.flush()
        sent += n
        next_tick += TICK_S
        time.sleep(max(0.0, next_tick - time.monotonic()))
    counter.value = sent


SCALE_BUSES = 10_000
SCALE_CAMERAS = 16_000
SCALE_RATE = 5_000


def publish_cameras(redis_url: str, count: int) -> None:
    """count camera markers on a grid over the city (Incheon has about 16,000 CCTV cameras)."""
    pub = Publisher(connect(redis_url), src="bench-cameras")
    side = int(count ** 0.5) + 1
    for i in range(count):
        lat = 37.38 + (i // side) * (0.24 / side)
        lon = 126.45 + (i % side) * (0.34 / side)
        pub.update("camera", f"bench-cam-{i:05d}", lat, lon, {})
    while not pub.flush():
        time.sleep(0.2)


def idle_clients(port: int, sids: list[str], seconds: float) -> None:
    """One extra live socket per web session in `sids` that reads every frame, as more wall screens
    would (the gateway closes sockets whose session is not valid, so each has a real one)."""
    import asyncio

    from websockets.asyncio.client import connect as ws_connect

    from spine.tickets import issue_ticket

    async def one(i: int) -> None:
        ticket = issue_ticket("bench-secret", "bench", "admin", sid=sids[i])
        async with ws_connect(f"ws://127.0.0.1:{port}/live?ticket={ticket}", max_size=None) as ws:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError):  # quiet second: keep waiting
                    await asyncio.wait_for(ws.recv(), 1)

    async def run() -> None:
        await asyncio.gather(*(one(i) for i in range(len(sids))))

    asyncio.run(run())


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q / 100 * len(s)))]


class Bench:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis = EmbeddedRedis(tmp / "redis")
        self.redis_url = self.redis.start()
        self.web_port, self.gw_port = free_port(), free_port()
        self.env = {**os.environ, "REDIS_URL": self.redis_url, "CC_DATA_DIR": str(tmp / "data"),
                    "CC_WEB__PORT": str(self.web_port), "CC_GATEWAY__PORT": str(self.gw_port),
                    "CC_SECRET_KEY": "bench-secret", "CC_BENCH": "1", "CC_LOG_LEVEL": "WARNING"}
        (tmp / "data").mkdir()
        self.store = Store(f"sqlite:///{tmp / 'data' / 'controlroom.db'}")
        self.store.add_user("bench", "bench-password", "admin")
        self.procs = {part: subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", part],
                                             env=self.env, cwd=ROOT, stdin=subprocess.DEVNULL)
                      for part in ("gateway", "web")}
        self._wait(f"http://127.0.0.1:{self.web_port}/healthz")
        self._wait(f"http://127.0.0.1:{self.gw_port}/healthz")

    @staticmethod
    def _wait(url: str) -> None:
        for _ in range(300):
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{url} did not come up")

    def publish(self, rate: int, seconds: float, fleet: int = 0) -> int:
        counter = mp.Value("q", 0)
        p = mp.Process(target=publisher, args=(self.redis_url, rate, seconds, counter, fleet))
        p.start()
        p.join()
        return counter.value

    def close(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait(10)
        self.redis.stop()


def measure_push(bench: Bench, page, rate: int, seconds: float) -> dict:
    gw = psutil.Process(bench.procs["gateway"].pid)
    bench.publish(rate, 3.0)  # warm-up: markers exist, JIT warm
    time.sleep(1.0)
    page.evaluate("() => { ccLive.bench = {lat: []}; ccLive.stats.resyncs = 0; }")
    cpu0, t0 = gw.cpu_times(), time.monotonic()
    sent = bench.publish(rate, seconds)
    cpu1, t1 = gw.cpu_times(), time.monotonic()
    time.sleep(1.5)  # drain
    lat, resyncs = page.evaluate("() => [ccLive.bench.lat, ccLive.stats.resyncs]")
    page.evaluate("() => { ccLive.bench = null; }")
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100
    return {"rate": rate, "sent": sent, "received": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95),
            "p99": pct(lat, 99), "lost_pct": max(0.0, (sent - len(lat)) / sent * 100) if sent else 0.0,
            "resyncs": resyncs, "gateway_cpu": cpu}


def measure_extra_clients(bench: Bench, rate: int, seconds: float, count: int) -> float:
    """Gateway CPU per extra connected client, in % of one core."""
    gw = psutil.Process(bench.procs["gateway"].pid)
    sids = [bench.store.create_session("bench", "user") for _ in range(count)]
    clients = mp.Process(target=idle_clients, args=(bench.gw_port, sids, seconds + 6))
    clients.start()
    time.sleep(3)  # connected and past their snapshots
    cpu0, t0 = gw.cpu_times(), time.monotonic()
    bench.publish(rate, seconds)
    cpu1, t1 = gw.cpu_times(), time.monotonic()
    clients.join()
    return (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100


def measure_scale(bench: Bench, page, seconds: float) -> dict:
    """One wall page with 10,000 buses and 16,000 cameras, 5,000 bus updates a second."""
    page.goto(f"http://127.0.0.1:{bench.web_port}/wall/1")
    page.wait_for_function("() => document.getElementById('cc-live-status')?.dataset.state === 'live'",
                           timeout=30_000)
    publish_cameras(bench.redis_url, SCALE_CAMERAS)
    # Every bus of the fleet exists before measuring (one full round at 5,000/s takes 2 s).
    bench.publish(SCALE_RATE, 2.0 * SCALE_BUSES / SCALE_RATE + 1.0, fleet=SCALE_BUSES)
    page.wait_for_function(
        f"() => ccLive.entities.camera.size >= {SCALE_CAMERAS} && ccLive.entities.bus.size >= {SCALE_BUSES}",
        timeout=60_000)
    time.sleep(1.0)
    page.evaluate("() => { ccLive.bench = {lat: []}; ccLive.stats.resyncs = 0; }")
    gw = psutil.Process(bench.procs["gateway"].pid)
    cpu0, t0 = gw.cpu_times(), time.monotonic()
    sent = bench.publish(SCALE_RATE, seconds, fleet=SCALE_BUSES)
    cpu1, t1 = gw.cpu_times(), time.monotonic()
    time.sleep(1.5)
    lat, resyncs, buses, cams = page.evaluate(
        "() => [ccLive.bench.lat, ccLive.stats.resyncs, ccLive.entities.bus.size,"
        " ccLive.entities.camera.size]")
    page.evaluate("() => { ccLive.bench = null; }")
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0) * 100
    return {"sent": sent, "received": len(lat), "p50": pct(lat, 50), "p99": pct(lat, 99),
            "lost_pct": max(0.0, (sent - len(lat)) / sent * 100) if sent else 0.0, "resyncs": resyncs,
            "buses": buses, "cameras": cams, "gateway_cpu": cpu}


def measure_baseline(bench: Bench, page, rate: int, seconds: float) -> dict:
    page.goto(f"http://127.0.0.1:{bench.web_port}/bench/interval")
    page.wait_for_function("() => window.ccBaseline && Object.keys(window.ccBaseline.seen).length > 0",
                           timeout=30_000)
    page.evaluate("() => { window.ccBaseline.lat = []; }")
    bench.publish(rate, seconds)
    time.sleep(1.5)
    lat = page.evaluate("() => window.ccBaseline.lat")
    return {"p50": pct(lat, 50), "p99": pct(lat, 99), "received": len(lat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="8 s per case instead of 30 s")
    ap.add_argument("--seconds", type=float)
    args = ap.parse_args()
    seconds = args.seconds or (8.0 if args.quick else 30.0)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="cc-bench-") as tmp:
        bench = Bench(Path(tmp))
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.goto(f"http://127.0.0.1:{bench.web_port}/wall/1")
                page.fill("#username", "bench")
                page.fill("#password", "bench-password")
                page.click("#login-button")
                page.wait_for_function(
                    "() => document.getElementById('cc-live-status')?.dataset.state === 'live'",
                    timeout=30_000)
                page.wait_for_function("() => window.ccLive.firstPictureMs > 0")
                first_ms = page.evaluate("ccLive.firstPictureMs")
                # The pre-2026-12 definition (snapshot applied, map perhaps not built yet), for comparisons.
                first_snapshot_ms = page.evaluate("ccLive.firstSnapshotMs || ccLive.firstPictureMs")
                results = [measure_push(bench, page, rate, seconds) for rate in (1000, 5000)]
                extra_n = 50
                cpu_many = measure_extra_clients(bench, 5000, min(seconds, 15.0), extra_n)
                base = measure_baseline(bench, page, 5000, min(seconds, 15.0))
                scale = measure_scale(bench, page, seconds)
                browser.close()
        finally:
            bench.close()
    print(f"{'updates/s':>10} {'sent':>7} {'recv':>7} {'p50':>6} {'p95':>6} {'p99':>6} {'lost%':>6} "
          f"{'resyncs':>7} {'gw cpu%':>7}")
    for r in results:
        print(f"{r['rate']:>10} {r['sent']:>7} {r['received']:>7} {r['p50']:>6.0f} {r['p95']:>6.0f} "
              f"{r['p99']:>6.0f} {r['lost_pct']:>6.2f} {r['resyncs']:>7} {r['gateway_cpu']:>7.1f}")
    print(f"baseline dcc.Interval(1 s) at 5000/s: p50 {base['p50']:.0f} ms, p99 {base['p99']:.0f} ms, "
          f"{base['received']} updates seen")
    per_client = (cpu_many - results[-1]["gateway_cpu"]) / extra_n
    print(f"gateway with {extra_n} more clients at 5000/s: {cpu_many:.1f} % of a core, "
          f"{per_client:.2f} % per extra client")
    print(f"wall page: first complete picture {first_ms} ms after navigation (login redirect included; "
          f"snapshot applied at {first_snapshot_ms} ms)")
    print(f"scale: {scale['buses']} buses + {scale['cameras']} cameras on one wall page, "
          f"{SCALE_RATE}/s: p50 {scale['p50']:.0f} ms, p99 {scale['p99']:.0f} ms, "
          f"lost {scale['lost_pct']:.2f} %, {scale['resyncs']} resyncs, gateway {scale['gateway_cpu']:.1f} % "
          f"of a core")
    r = results[-1]
    ratio = base["p50"] / r["p50"] if r["p50"] else float("nan")
    print(f"live_latency p50_ms={r['p50']:.0f} p95_ms={r['p95']:.0f} p99_ms={r['p99']:.0f} "
          f"lost_pct={r['lost_pct']:.2f} gateway_cpu_pct={r['gateway_cpu']:.1f} "
          f"baseline_p50_ms={base['p50']:.0f} ratio={ratio:.1f} scale_p99_ms={scale['p99']:.0f}")


if __name__ == "__main__":
    main()
