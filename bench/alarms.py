"""Alarm path end to end, with a kill -9 of an alarm service in the middle of the run.

    .venv/bin/python bench/alarms.py [--quick] [--rate N] [--seconds N] [--db URL]

The real stack: a private Redis (its ACL users), producers writing events through spine's Publisher
(LPUSH + PUBLISH + XADD to the stream), two alarm services (`app.py --only alarms`, instances a and b,
one consumer group) writing SQL (SQLite in a temporary folder, or --db), and the live channel
cc:v1:alarm. The page is not built yet, so a Redis subscriber as the web user stands in for the live
socket and the page (the gateway's forwarding of the channel is the screens' step).

Events: sensor threshold crossings over 500 sources (repeats raise counts) and camera detections over
300 cameras x 3 zones (grouped). Half-way, service a is killed with SIGKILL and started again at once
(as the stack's supervisor does); b goes on, and whichever is first takes a's pending entries.

Measured: events_per_s = events / (first send -> last event seen on the channel); e2e latency per event
= seen on the channel - sent (the event's ts, set at send); lost = events never in SQL or never on the
channel; duplicated = events counted twice in SQL (sum of alarm totals - distinct events) plus events
seen twice on the channel. Ends with one summary line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from alarms.config import load_alarm_config  # noqa: E402
from alarms.db import AlarmStore  # noqa: E402
from alarms.schema import alarm_events, alarms  # noqa: E402
from spine import channels  # noqa: E402
from spine.contract import Event  # noqa: E402
from spine.publisher import Publisher, connect  # noqa: E402
from spine.servers.embedded_redis import EmbeddedRedis  # noqa: E402


def spawn(redis: EmbeddedRedis, db: str, tmp: Path, instance: str) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis.url_for("alarms"), "DATABASE_URL": db,
           "CC_DATA_DIR": str(tmp / "data"), "CC_LOG_LEVEL": "WARNING", "CC_ALARMS_INSTANCE": instance}
    log = open(tmp / f"alarms-{instance}.log", "ab")  # noqa: SIM115
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", "alarms"], cwd=ROOT, env=env,
                            stdout=log, stderr=log)


def make_event(i: int, now: int) -> Event:
    if i % 3:
        k = i % 500
        return Event(v=1, id=f"b-{i}", type="threshold", severity=("low", "medium", "high")[k % 3], ts=now,
                     layer="sensor", entity=f"sen-{k}", lat=37.45, lon=126.7, title=f"sensor {k}",
                     props={"rule": "warn"})
    k = i % 900
    return Event(v=1, id=f"b-{i}", type="zone_intrusion", severity="medium", ts=now, layer="camera",
                 entity=f"cam-{k // 3}", lat=37.45, lon=126.7, title=f"person in zone {k % 3}",
                 props={"zone": f"z{k % 3}"})


def cpu_of(proc: subprocess.Popen) -> float:
    try:
        t = psutil.Process(proc.pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="about 30 s in all")
    ap.add_argument("--rate", type=int, default=1500, help="events per second offered")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL of an empty database (default: SQLite in a "
                    "temporary folder); events of an earlier run would count as already seen")
    args = ap.parse_args()
    seconds = args.seconds or (12.0 if args.quick else 60.0)
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-alarms-"))
    redis = EmbeddedRedis(tmp / "redis")
    redis.start()
    db = args.db or f"sqlite:///{tmp / 'alarms.db'}"
    store = AlarmStore(db, load_alarm_config())
    store.migrate()
    procs = {name: spawn(redis, db, tmp, name) for name in ("a", "b")}

    seen: dict[str, float] = {}
    dup: Counter[str] = Counter()
    stop = threading.Event()
    sub = connect(redis.url_for("web")).pubsub()
    sub.subscribe(channels.ALARM_CHANNEL)

    def listen() -> None:
        while not stop.is_set():
            m = sub.get_message(timeout=0.1)
            if not m or m["type"] != "message":
                continue
            t = time.time() * 1000
            for eid in json.loads(m["data"]).get("ev", []):
                if eid in seen:
                    dup[eid] += 1
                else:
                    seen[eid] = t

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    # Wait until both services consume (migrations done, group made).
    admin = connect(redis.url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if admin.exists(channels.EVENTS_STREAM) and len(admin.hkeys(channels.ALARMS_STATS_KEY)) >= 2:
            break
        time.sleep(0.1)
    pub = Publisher(connect(redis.url_for("feeds")), "bench")
    sent: dict[str, int] = {}
    n_total = int(args.rate * seconds)
    tick = 0.01
    per_tick = max(1, int(args.rate * tick))
    t_start = time.time()
    kill_at = n_total // 2
    killed = None
    cpu_s = 0.0  # CPU time of the alarm services (user + system), start-up included
    i = 0
    while i < n_total:
        now = int(time.time() * 1000)
        for _ in range(min(per_tick, n_total - i)):
            ev = make_event(i, now)
            pub.event(ev)
            sent[ev.id] = now
            i += 1
        pub.flush()
        if killed is None and i >= kill_at:
            cpu_s += cpu_of(procs["a"])
            procs["a"].send_signal(signal.SIGKILL)
            procs["a"].wait()
            killed = time.time()
            procs["a"] = spawn(redis, db, tmp, "a")  # restarted at once, as the supervisor does
        behind = t_start + i / args.rate - time.time()
        if behind > 0:
            time.sleep(behind)
    t_sent = time.time()
    while not pub.flush():
        time.sleep(0.05)
    deadline = time.monotonic() + 60
    while len(seen) < n_total and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)  # anything published twice arrives now
    stop.set()
    cpu_s += sum(cpu_of(p) for p in procs.values())
    for p in procs.values():
        p.send_signal(signal.SIGTERM)
    for p in procs.values():
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
    with store.engine.connect() as c:
        in_sql = set(c.execute(sa.select(alarm_events.c.event_id)).scalars())
        total = int(c.execute(sa.select(sa.func.coalesce(sa.func.sum(alarms.c.total), 0))).scalar_one())
        n_alarms = c.execute(sa.select(sa.func.count()).select_from(alarms)).scalar_one()
    store.dispose()
    redis.stop()
    lost = len(set(sent) - in_sql) + len(set(sent) - set(seen))
    duplicated = (total - len(in_sql)) + sum(dup.values())
    lat = [seen[k] - sent[k] for k in sent if k in seen]
    last_seen = max(seen.values()) / 1000 if seen else t_sent
    rate = len(seen) / max(1e-9, last_seen - t_start)
    after_kill = [seen[k] - sent[k] for k in sent if k in seen and killed and sent[k] / 1000 >= killed - 2]
    print(f"sent {n_total} events in {t_sent - t_start:.1f} s (offered {args.rate}/s) into {n_alarms} "
          f"alarms; SQL rows {len(in_sql)}, sum of counts {total}; on the channel {len(seen)}")
    print(f"kill -9 of service a at event {kill_at}; worst latency around it "
          f"{max(after_kill, default=0):.0f} ms; max overall {max(lat, default=0):.0f} ms; "
          f"{sum(1 for x in lat if x > 250)} events over 250 ms")
    by_window: dict[int, list[float]] = {}
    for k, t in sent.items():
        if k in seen:
            by_window.setdefault(max(0, int((t / 1000 - t_start) // 10)), []).append(seen[k] - t)
    print("p99 per 10 s of sending: " + ", ".join(f"{w * 10}s {pct(v, 99):.0f} ms"
                                                  for w, v in sorted(by_window.items())))
    print(f"alarm services' CPU: {cpu_s:.1f} s for {n_total} events = {1000 * cpu_s / n_total:.2f} ms per "
          f"event (start-ups included): about {n_total / cpu_s:.0f} events/s per core (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores during the run)")
    print(f"db {db.split(':')[0]}; logs in {tmp}")
    print(f"alarms events_per_s={rate:.0f} e2e_p50_ms={pct(lat, 50):.1f} e2e_p99_ms={pct(lat, 99):.1f} "
          f"lost={lost} duplicated={duplicated}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
