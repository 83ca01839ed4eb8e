"""History under load: the writer (app.py --only history, its own process) behind 10,000 moving
entities at 1 Hz plus events, and replay queries over the last hour.

A private Redis; the database is SQLite in a temporary folder, or `--db postgresql` (a database made
for the run on 127.0.0.1:5432 and dropped after). Before the run the tables are filled with the last
`--prefill-min` minutes of the same city (bulk inserts: COPY on PostgreSQL, batched transactions on
SQLite; ~7 million rows for the default hour, 1-3 min here), so replay reads a full hour's tables. No
ANALYZE afterwards: replay must not depend on planner statistics (a new day's partition has none).
The city: 9,000 buses (kept every 10 s) and 1,000 drones (every 1 s), each moving every second,
and 10 events/s; so 10,000 updates/s are decoded and ~1,900 rows/s written.

    .venv/bin/python bench/history.py --quick           # about a minute (3 min prefill, 20 s run)
    .venv/bin/python bench/history.py --db postgresql   # 60 min prefill, 60 s run

write_lag_s: the age of the oldest entry not yet acknowledged (pending, or not yet read), sampled
every second after a 5 s warm-up; the maximum is reported (sustained means it never grew).
replay_open_ms: picture_at(T) (every layer, alarms, incidents, events) for T in the prefilled hour and
its JSON body, as the API makes it, median of 5; replay_step_ms: the same for steps over 8 s (one
tick of play at x8), median of 10.

Last line: history write_rows_per_s=<n> write_lag_s=<n> replay_open_ms=<n> replay_step_ms=<n>
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from history.config import load_history_config  # noqa: E402
from history.db import HistoryStore  # noqa: E402
from history.queries import picture_at, steps  # noqa: E402
from spine import channels  # noqa: E402
from spine.contract import Event  # noqa: E402
from spine.publisher import Publisher, connect  # noqa: E402
from spine.servers.embedded_redis import EmbeddedRedis  # noqa: E402

BUSES, DRONES = 9000, 1000
PG_BASE = os.environ.get("CC_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432")


def pos(i: int, t: float) -> tuple[float, float]:
    return 37.30 + (i % 100) / 400 + 0.0005 * (t % 60), 126.55 + (i // 100) / 400


STATE_COLS = ("layer", "entity_id", "slot", "ts", "lat", "lon", "gone", "k", "v", "doc")
EVENT_COLS = ("layer", "id", "ts", "type", "severity", "entity", "doc")
CHUNK_S = 300  # seconds of city per transaction / COPY


def _rows(sec: int) -> tuple[list[tuple], list[tuple]]:
    """One second of the city as the writer keeps it (drones every second, buses every 10 s). The
    documents are formatted directly (json.dumps per row was most of the prefill's Python time)."""
    ts = sec * 1000
    rows = []
    for d in range(DRONES):
        lat, lon = pos(BUSES + d, sec)
        rows.append(("drone", f"d{d}", ts, ts, lat, lon, False, None, 50.0,
                     f'{{"v":1,"layer":"drone","id":"d{d}","ts":{ts},"seq":1,"lat":{lat!r},'
                     f'"lon":{lon!r},"props":{{"alt_m":50.0}}}}'))
    if sec % 10 == 0:
        for b in range(BUSES):
            lat, lon = pos(b, sec)
            route, delay = f"r{b % 120}", float(b % 300)
            rows.append(("bus", f"b{b}", ts, ts, lat, lon, False, route, delay,
                         f'{{"v":1,"layer":"bus","id":"b{b}","ts":{ts},"seq":1,"lat":{lat!r},'
                         f'"lon":{lon!r},"props":{{"route":"{route}","delay_s":{delay!r}}}}}'))
    events = [("sensor", f"pre-{sec}-{k}", ts, "threshold", "low", f"s{k}",
               f'{{"v":1,"id":"pre-{sec}-{k}","ts":{ts}}}') for k in range(10)]
    return rows, events


def _chunks(start_ms: int, end_ms: int):
    secs = list(range(start_ms // 1000, end_ms // 1000))
    for i in range(0, len(secs), CHUNK_S):
        states, events = [], []
        for sec in secs[i:i + CHUNK_S]:
            st, ev = _rows(sec)
            states += st
            events += ev
        yield states, events


def _prefill_pg(store: HistoryStore, start_ms: int, end_ms: int) -> int:
    """COPY (psycopg 3) into the partitioned parents: PostgreSQL routes each row to its partition."""
    with store.engine.begin() as conn:  # the day partitions the rows go to
        for day in range(start_ms // 86_400_000, end_ms // 86_400_000 + 1):
            for layer in ("bus", "drone"):
                store.parts.ensure(conn, "hist_states", layer, day)
            store.parts.ensure(conn, "hist_events", "sensor", day)
    n = 0
    raw = store.engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        for states, events in _chunks(start_ms, end_ms):
            with dbapi.cursor() as cur:
                with cur.copy(f"COPY hist_states ({', '.join(STATE_COLS)}) FROM STDIN") as cp:
                    for row in states:
                        cp.write_row(row)
                with cur.copy(f"COPY hist_events ({', '.join(EVENT_COLS)}) FROM STDIN") as cp:
                    for row in events:
                        cp.write_row(row)
            dbapi.commit()
            n += len(states) + len(events)
        # No ANALYZE: replay must not depend on statistics (a new day's partition has none until
        # autovacuum comes, the last minutes of any are past its histogram): history/queries.py.
    finally:
        raw.close()
    return n


def _prefill_sqlite(store: HistoryStore, start_ms: int, end_ms: int) -> int:
    """executemany in one transaction per chunk (the engine's connections are in autocommit mode:
    without BEGIN each row was its own transaction), the secondary indexes dropped during the fill
    and made again after it (one sort instead of 7 million random index inserts)."""
    raw = store.engine.raw_connection()
    n = 0
    try:
        db = raw.driver_connection
        db.execute("PRAGMA cache_size=-1000000")  # 1 GB of page cache for this connection
        db.execute("PRAGMA synchronous=OFF")  # a benchmark's scratch database: no fsync per commit
        indexes = [sql for (sql,) in db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('hist_states', 'hist_events')")]
        names = [name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            "AND tbl_name IN ('hist_states', 'hist_events')")]
        for name in names:
            db.execute(f"DROP INDEX {name}")
        ins_s = f"INSERT INTO hist_states ({', '.join(STATE_COLS)}) VALUES ({', '.join('?' * 10)})"
        ins_e = f"INSERT INTO hist_events ({', '.join(EVENT_COLS)}) VALUES ({', '.join('?' * 7)})"
        for states, events in _chunks(start_ms, end_ms):
            db.execute("BEGIN")
            db.executemany(ins_s, states)
            db.executemany(ins_e, events)
            db.execute("COMMIT")
            n += len(states) + len(events)
        for sql in indexes:
            db.execute(sql)
        db.execute("ANALYZE")
        db.execute("PRAGMA synchronous=NORMAL")
    finally:
        raw.close()
    return n


def prefill(store: HistoryStore, start_ms: int, end_ms: int) -> int:
    """The last minutes of the same city, as the writer would have kept them, by bulk inserts (the
    writer's own path is what the run measures)."""
    return _prefill_pg(store, start_ms, end_ms) if store.pg else _prefill_sqlite(store, start_ms, end_ms)


def produce(url: str, seconds: float, stop_at: float) -> None:
    pub = Publisher(connect(url), "bench")
    i = 0
    next_t = time.time()
    while time.time() < stop_at:
        now = time.time()
        for b in range(BUSES):
            lat, lon = pos(b, now)
            pub.update("bus", f"b{b}", lat, lon, {"route": f"r{b % 120}", "delay_s": float(b % 300)})
        for d in range(DRONES):
            lat, lon = pos(BUSES + d, now)
            pub.update("drone", f"d{d}", lat, lon, {"alt_m": 50.0})
        for _ in range(10):
            i += 1
            pub.event(Event(v=1, id=f"bench-{i}", type="threshold", severity="low", ts=int(now * 1000),
                            layer="sensor", entity=f"s{i % 50}", lat=37.4, lon=126.7, title="bench",
                            props={"rule": "warn"}))
        pub.flush()
        next_t += 1.0
        time.sleep(max(0.0, next_t - time.time()))


def lag_s(r, stream: str) -> float:
    """Age of the oldest entry of `stream` the history group has not acknowledged."""
    oldest = None
    p = r.xpending(stream, channels.HISTORY_GROUP)
    if p["pending"]:
        oldest = p["min"]
    else:
        last = next(g for g in r.xinfo_groups(stream) if g["name"] == channels.HISTORY_GROUP.encode())
        nxt = r.xrange(stream, min=b"(" + last["last-delivered-id"], count=1)
        oldest = nxt[0][0] if nxt else None
    if oldest is None:
        return 0.0
    return max(0.0, time.time() - int(oldest.split(b"-")[0]) / 1000)


def count(store: HistoryStore) -> int:
    with store.engine.connect() as c:
        return c.execute(sa.text("SELECT (SELECT COUNT(*) FROM hist_states) + "
                                 "(SELECT COUNT(*) FROM hist_events)")).scalar_one()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--prefill-min", type=float)
    args = ap.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 60.0)
    prefill_min = args.prefill_min if args.prefill_min is not None else (3.0 if args.quick else 60.0)
    tmp = Path(tempfile.mkdtemp(prefix="cc-bench-history-"))
    pg_name = None
    if args.db == "postgresql":
        pg_name = f"bench_history_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(f"{PG_BASE}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(sa.text(f"CREATE DATABASE {pg_name}"))
        db = f"{PG_BASE}/{pg_name}"
    else:
        db = f"sqlite:///{tmp / 'history.db'}"
    redis = EmbeddedRedis(tmp / "redis")
    redis.start()
    store = HistoryStore(db, load_history_config())
    store.migrate()
    proc = None
    try:
        now_ms = int(time.time() * 1000)
        t0 = time.perf_counter()
        pre = prefill(store, now_ms - int(prefill_min * 60_000), now_ms - 1000)
        print(f"prefill: {pre} rows in {time.perf_counter() - t0:.1f} s ({prefill_min:g} min of history)",
              flush=True)
        env = {**os.environ, "REDIS_URL": redis.url_for("history"), "DATABASE_URL": db,
               "CC_DATA_DIR": str(tmp / "data"), "CC_LOG_LEVEL": "WARNING"}
        log = open(tmp / "history.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", "history"], cwd=ROOT,
                                env=env, stdout=log, stderr=log)
        r = connect(redis.url)
        deadline = time.time() + 60
        while time.time() < deadline:  # the writer's groups exist: it has migrated and started
            try:
                if any(g["name"] == b"history" for g in r.xinfo_groups(channels.UPDATES_STREAM)):
                    break
            except Exception:  # the stream does not exist yet
                pass
            time.sleep(0.2)
        rows0 = count(store)
        start = time.time()
        producer = mp.get_context("spawn").Process(target=produce,
                                                   args=(redis.url_for("feeds"), seconds, start + seconds))
        producer.start()
        lags: list[float] = []
        while time.time() < start + seconds:
            time.sleep(1.0)
            if time.time() - start > 5:
                lags.append(max(lag_s(r, channels.UPDATES_STREAM), lag_s(r, channels.EVENTS_STREAM)))
        producer.join(30)
        elapsed = time.time() - start
        rows = count(store) - rows0
        settle = time.time()
        while time.time() - settle < 60 and max(lag_s(r, s) for s in (channels.UPDATES_STREAM,
                                                                       channels.EVENTS_STREAM)) > 0:
            time.sleep(0.2)
        rows_total = count(store) - rows0
        time.sleep(2.5)  # the writer's stats record (every 2 s): gaps must be 0 (nothing trimmed unread)
        health = [json.loads(v) for v in r.hvals(channels.HISTORY_STATS_KEY)]
        gaps = sum(h.get("gaps", 0) for h in health)
        # Replay over the prefilled history (the time the prefill itself took is a hole in it: no T
        # there, nor in the first bus window, where the map is still filling).
        end_ms = now_ms - 2000
        span = min(3_600_000, int(prefill_min * 60_000) - 130_000)
        rnd = random.Random(1)
        opens, stepped = [], []
        n_open = 0
        for _ in range(5):
            t = end_ms - rnd.randrange(0, span)
            q = time.perf_counter()
            pic = picture_at(store, t, raw=True)
            msgspec.json.encode(pic)  # the response body, as the API makes it
            opens.append((time.perf_counter() - q) * 1000)
            n_open = sum(len(v) for v in pic["layers"].values())
        n_step = 0
        for _ in range(10):
            t = end_ms - 8000 - rnd.randrange(0, span - 8000)
            q = time.perf_counter()
            st = steps(store, t, t + 8000, raw=True)
            msgspec.json.encode(st)
            stepped.append((time.perf_counter() - q) * 1000)
            n_step = len(st["updates"])
        print(f"db={args.db} offered_updates_per_s={BUSES + DRONES} run_s={elapsed:.1f} rows_in_run={rows} "
              f"rows_after_settle={rows_total} gaps={gaps} lag_samples={[round(x, 1) for x in lags]}")
        print(f"replay: entities_at_T={n_open} open_ms={[round(x) for x in opens]} "
              f"step_updates={n_step} step_ms={[round(x) for x in stepped]}")
        print(f"history write_rows_per_s={rows / elapsed:.0f} write_lag_s={max(lags or [0.0]):.1f} "
              f"replay_open_ms={statistics.median(opens):.0f} "
              f"replay_step_ms={statistics.median(stepped):.0f}")
        return 0
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(15)
        store.dispose()
        redis.stop()
        shutil.rmtree(tmp, ignore_errors=True)  # hundreds of MB of SQLite after a long prefill
        if pg_name:
            with admin.connect() as c:
                c.execute(sa.text(f"DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)"))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
