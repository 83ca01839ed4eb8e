"""The history writer on a real Redis and real SQL (SQLite and PostgreSQL): downsampling per layer,
idempotent rows, retention (PostgreSQL: day partitions dropped), hostile stream entries, and a
kill -9 of the writer process in a burst that loses and doubles nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from config.settings import ConfigError
from history.config import load_history_config, parse_history_config
from history.db import HistoryStore
from history.partitions import DAY_MS, Partitions
from history.writer import HistoryWriter
from spine import channels
from spine.contract import Event
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.history_support import count, drain, make_db

ROOT = Path(__file__).resolve().parent.parent
NOW = int(time.time() * 1000)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hist_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from make_db(request.param, tmp_path)


@pytest.fixture
def store(hist_db: str) -> Iterator[HistoryStore]:
    s = HistoryStore(hist_db, load_history_config())
    s.migrate()
    yield s
    s.dispose()


@pytest.fixture
def writer(store: HistoryStore, redis_url: str, redis_server: EmbeddedRedis) -> Iterator[HistoryWriter]:
    w = HistoryWriter(redis_server.url_for("history"), store, consumer="t1")
    w.start()
    yield w
    w.r.close()


def _ev(i: int, ts: int, layer: str = "sensor") -> Event:
    return Event(v=1, id=f"ev-{i}", type="threshold", severity="high", ts=ts, layer=layer,
                 entity=f"s{i % 5}", lat=37.4, lon=126.7, title=f"event {i}", props={})


def test_downsampling_per_layer(writer: HistoryWriter, store: HistoryStore,
                                redis_server: EmbeddedRedis) -> None:
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds-test")
    t0 = (NOW // 3_600_000) * 3_600_000 - 3_600_000  # an hour boundary, an hour ago
    for s in range(30):  # 30 s of one update per second per entity
        ts = t0 + s * 1000
        pub.update("bus", "b1", 37.4 + s / 1e4, 126.7, {"route": "7", "delay_s": float(s)}, ts=ts)
        pub.update("sensor", "s1", 37.4, 126.7, {"value": float(s)}, ts=ts)
        pub.update("drone", "d1", 37.4, 126.7 + s / 1e4, {"alt_m": 50.0}, ts=ts)
        pub.update("air", "a1", 37.4, 126.7, {"pm10": 20.0 + s}, ts=ts)
        status = "online" if s < 20 else "offline"  # one change in 30 identical-looking updates
        pub.update("camera", "c1", 37.4, 126.7, {"status": status}, ts=ts)
        assert pub.flush()
    drain(writer)
    assert count(store, "hist_states", "layer = 'bus'") == 3  # every 10 s
    assert count(store, "hist_states", "layer = 'sensor'") == 30  # every reading
    assert count(store, "hist_states", "layer = 'drone'") == 30  # every second
    assert count(store, "hist_states", "layer = 'air'") == 1  # hourly
    assert count(store, "hist_states", "layer = 'camera'") == 2  # on change
    with store.engine.connect() as conn:
        bus = conn.execute(sa.text("SELECT slot, ts, k, v FROM hist_states WHERE layer = 'bus' "
                                   "ORDER BY slot")).all()
    # The first update of each 10 s slot, with its trend key and value.
    assert [(r.slot - t0, r.ts - t0, r.k, r.v) for r in bus] == [
        (0, 0, "7", 0.0), (10_000, 10_000, "7", 10.0), (20_000, 20_000, "7", 20.0)]


def test_redelivered_entries_write_nothing_twice(writer: HistoryWriter, store: HistoryStore,
                                                 redis_server: EmbeddedRedis) -> None:
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds-test")
    for s in range(10):
        pub.update("sensor", "s1", 37.4, 126.7, {"value": float(s)}, ts=NOW - 10_000 + s * 1000)
        pub.event(_ev(s, NOW - 10_000 + s * 1000))
        assert pub.flush()
    drain(writer)
    assert count(store, "hist_states") == 10 and count(store, "hist_events") == 10
    # Every entry again (a writer killed before its XACK, a resent flush): nothing new.
    admin = connect(redis_server.url)
    for stream, field in ((channels.UPDATES_STREAM, b"u"), (channels.EVENTS_STREAM, b"e")):
        for _, f in admin.xrange(stream):
            admin.xadd(stream, {field: f[field]})
    fresh = HistoryWriter(redis_server.url_for("history"), store, consumer="t2")  # no in-memory state
    fresh.start()
    drain(fresh)
    assert count(store, "hist_states") == 10 and count(store, "hist_events") == 10


def test_hostile_entries_are_counted_and_acknowledged(writer: HistoryWriter, store: HistoryStore,
                                                      redis_server: EmbeddedRedis) -> None:
    admin = connect(redis_server.url)
    admin.xadd(channels.UPDATES_STREAM, {"u": b"\xff\xfe not json"})
    admin.xadd(channels.UPDATES_STREAM, {"x": b"no u field"})
    admin.xadd(channels.UPDATES_STREAM, {"u": b'[{"v":1,"layer":"bus","id":"b","ts":1e300}]'})
    admin.xadd(channels.UPDATES_STREAM, {"u": b'[{"v":1,"layer":"bus","id":"<img>","ts":%d,"seq":1,'
                                              b'"lat":37.4,"lon":126.7,"props":{"bogus":1}}]' % NOW})
    future = NOW + 3 * DAY_MS
    admin.xadd(channels.UPDATES_STREAM, {"u": b'[{"v":1,"layer":"sensor","id":"s","ts":%d,"seq":1,'
                                              b'"lat":37.4,"lon":126.7,"props":{}}]' % future})
    admin.xadd(channels.EVENTS_STREAM, {"e": b"[]"})
    # Alarm documents of the wrong shape, on the alarm stream and (the fallback) the channel.
    admin.xadd(channels.ALARMS_STREAM, {"a": b'{"id":"x"}'})
    admin.xadd(channels.ALARMS_STREAM, {"x": b"no a field"})
    admin.publish(channels.ALARM_CHANNEL, b'{"t":"alarms","a":[{"id":"x"}, 5]}')
    drain(writer)
    assert count(store, "hist_states") == 0 and count(store, "hist_events") == 0
    assert count(store, "hist_alarms") == 0
    assert writer.rejects.total >= 7
    for stream in (channels.UPDATES_STREAM, channels.EVENTS_STREAM):
        assert admin.xpending(stream, channels.HISTORY_GROUP)["pending"] == 0


def _send_alarms(admin, writer: HistoryWriter, n: int, docs: list[dict]) -> None:
    """As the alarm service does: onto its stream, or (a user without the stream) the channel."""
    if writer.alarm_source == "stream":
        for d in docs:
            admin.xadd(channels.ALARMS_STREAM, {"a": json.dumps(d)})
    else:
        admin.publish(channels.ALARM_CHANNEL, json.dumps({"n": n, "t": "alarms", "a": docs, "ev": []}))
        time.sleep(0.1)


def test_alarm_changes_are_recorded(writer: HistoryWriter, store: HistoryStore,
                                    redis_server: EmbeddedRedis) -> None:
    admin = connect(redis_server.url)
    doc = {"id": 7, "state": "UNACK", "priority": "high", "layer": "sensor", "updated_ts": NOW - 5000,
           "active_since": NOW - 5000, "title": "x"}
    _send_alarms(admin, writer, 1, [doc])
    drain(writer)
    _send_alarms(admin, writer, 2, [{**doc, "state": "NORM", "updated_ts": NOW - 1000}])
    drain(writer)
    assert count(store, "hist_alarms") == 2
    assert count(store, "hist_alarms", "state = 'NORM' AND alarm_id = 7") == 1


def test_retention_per_class(store: HistoryStore) -> None:
    """Camera states and events go after 30 days, buses after 90, sensors after 365; on PostgreSQL
    by dropping whole day partitions."""
    def st(layer: str, days_ago: int) -> dict:
        ts = NOW - days_ago * DAY_MS
        return {"layer": layer, "entity_id": f"{layer}-{days_ago}", "slot": ts, "ts": ts, "lat": 37.4,
                "lon": 126.7, "gone": False, "k": None, "v": None, "doc": "{}"}

    def ev(layer: str, days_ago: int) -> dict:
        return {"layer": layer, "id": f"e-{layer}-{days_ago}", "ts": NOW - days_ago * DAY_MS,
                "type": "t", "severity": "low", "entity": "x", "doc": "{}"}

    ages = (0, 29, 31, 89, 91, 364, 366)
    states = [st(layer, d) for layer in ("camera", "bus", "sensor") for d in ages]
    events = [ev(layer, d) for layer in ("camera", "sensor") for d in ages]
    store.write(states, events, [])
    assert count(store, "hist_states") == 21
    done = store.enforce_retention(NOW)
    kept = {(layer, d) for layer in ("camera", "bus", "sensor") for d in ages
            if count(store, "hist_states", "entity_id = :e", e=f"{layer}-{d}")}
    assert kept == {("camera", 0), ("camera", 29), ("bus", 0), ("bus", 29), ("bus", 31), ("bus", 89),
                    *(("sensor", d) for d in (0, 29, 31, 89, 91, 364))}
    assert count(store, "hist_events", "layer = 'camera'") == 2  # 0 and 29 days
    assert count(store, "hist_events", "layer = 'sensor'") == 6
    if store.pg:
        assert done["hist_states"] == 1 + 5 + 3  # camera 31..366 (5) -> see below
        with store.engine.connect() as conn:
            names = Partitions.leaves(conn, "hist_states_camera")
        assert len(names) == 2  # the partitions of 0 and 29 days ago are all that is left
    assert store.enforce_retention(NOW) in ({}, {"hist_states": 0, "hist_events": 0, "hist_alarms": 0})


def test_cctv_retention_over_30_days_is_refused() -> None:
    with pytest.raises(ConfigError, match="30 days"):
        parse_history_config({"layers": {"camera": {"on_change": True, "retention_days": 60}}})
    with pytest.raises(ConfigError, match="30 days"):
        parse_history_config({"events": {"camera_retention_days": 45}})
    assert parse_history_config({"layers": {"camera": {"retention_days": 60}},
                                 "cctv_over_30_days": True}).layer("camera").retention_days == 60
    assert parse_history_config(None).layer("camera").retention_days == 30  # CCTV by default
    assert parse_history_config(None).layer("bus").retention_days == 90
    assert parse_history_config(None).events.camera_retention_days == 30
    with pytest.raises(ConfigError, match="unknown layer"):
        parse_history_config({"layers": {"ufo": {}}})


# ---- kill -9 in a burst -------------------------------------------------------------------------------
def _spawn(redis: EmbeddedRedis, db: str, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis.url_for("history"), "DATABASE_URL": db,
           "CC_DATA_DIR": str(tmp / "data"), "CC_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", "history"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=open(tmp / "history.log", "ab"))


def test_kill9_in_a_burst_loses_and_doubles_nothing(store: HistoryStore, hist_db: str, redis_url: str,
                                                    redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    n = 6000  # sensor readings (every one is kept) and one event per 10
    proc = _spawn(redis_server, hist_db, tmp_path)
    pub = Publisher(connect(redis_server.url_for("feeds")), "burst")
    t0 = NOW - 600_000
    killed_at = None
    try:
        for i in range(n):
            pub.update("sensor", f"s{i % 50}", 37.4, 126.7, {"value": float(i)}, ts=t0 + i * 10)
            if i % 10 == 0:
                pub.event(_ev(i, t0 + i * 10))
            if i % 50 == 49:  # 50 entities: each updated once per flush (a publisher keeps the latest)
                assert pub.flush()
                time.sleep(0.003)
            if killed_at is None and i > n // 3:
                deadline = time.monotonic() + 60
                while count(store, "hist_states") < 500 and time.monotonic() < deadline:
                    time.sleep(0.02)  # it is consuming (its migration done)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = i
                proc = _spawn(redis_server, hist_db, tmp_path)
        assert pub.flush()
        r = connect(redis_server.url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pending = sum(r.xpending(s, channels.HISTORY_GROUP)["pending"]
                          for s in (channels.UPDATES_STREAM, channels.EVENTS_STREAM))
            if pending == 0 and count(store, "hist_states") >= n and count(store, "hist_events") >= n // 10:
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert killed_at is not None
    assert count(store, "hist_states") == n, "every reading once"
    assert count(store, "hist_events") == n // 10, "every event once"
    with store.engine.connect() as conn:
        values = [r[0] for r in conn.execute(sa.text("SELECT v FROM hist_states ORDER BY ts"))]
    assert values == [float(i) for i in range(n)]


def test_brin_ranges_of_today_are_summarized(store: HistoryStore) -> None:
    """PostgreSQL: an unsummarized BRIN range matches every query (a replay step read all of today's
    partition); the writer summarizes today's ranges every few seconds. SQLite: nothing to do."""
    rows = [{"layer": "drone", "entity_id": f"d{i % 100}", "slot": NOW - 100_000 + i, "ts": NOW - 100_000 + i,
             "lat": 37.4, "lon": 126.7, "gone": False, "k": None, "v": None, "doc": "x" * 200}
            for i in range(20_000)]
    store.write(rows, [], [])
    done = store.summarize(NOW)
    assert done > 0 if store.pg else done == 0
    assert store.summarize(NOW) == 0  # nothing new since


def test_trend_queries_on_both_databases(store: HistoryStore) -> None:
    """The trend SQL (a props field read from the JSON document, buckets by integer division) gives
    the same answers on SQLite and PostgreSQL."""
    from history.queries import alarm_rates, bus_delays, series

    t0 = NOW - 600_000
    rows = []
    for i in range(60):
        ts = t0 + i * 10_000
        doc = {"v": 1, "layer": "air", "id": "a1", "ts": ts, "seq": 1, "lat": 37.4, "lon": 126.7,
               "props": {"pm25": float(i), "pm10": "n/a" if i == 0 else 10.0}}
        rows.append({"layer": "air", "entity_id": "a1", "slot": ts, "ts": ts, "lat": 37.4, "lon": 126.7,
                     "gone": False, "k": None, "v": None, "doc": json.dumps(doc)})
        rows.append({"layer": "bus", "entity_id": f"b{i % 2}", "slot": ts, "ts": ts, "lat": 37.4,
                     "lon": 126.7, "gone": False, "k": "7", "v": float(i % 2) * 60, "doc": "{}"})
    alarms = [{"alarm_id": i, "ts": t0 + i, "state": "UNACK", "priority": "low", "layer": "sensor",
               "active_since": t0 + i, "doc": "{}"} for i in range(1, 4)]
    store.write(rows, [], alarms)
    s = series(store, "air", "a1", t0, t0 + 600_000, 10, "pm25")
    assert [p["avg"] for p in s["points"]] == [2.5 + 6 * k for k in range(10)]
    assert [p["n"] for p in s["points"]] == [6] * 10
    s = series(store, "air", "a1", t0, t0 + 600_000, 10, "pm10")  # a string value is not a number
    assert s["points"][0]["n"] == 5
    d = bus_delays(store, t0, t0 + 600_000, 1)
    assert d["routes"]["7"] == [{"t": t0, "min": 0.0, "avg": 30.0, "max": 60.0, "n": 60}]
    assert alarm_rates(store, t0, t0 + 600_000, 1)["priorities"] == {"low": [{"t": t0, "n": 3}]}
    with pytest.raises(ValueError):
        series(store, "air", "a1", t0, t0 + 600_000, 10, "pm25') --")


def test_entries_a_dead_consumer_held_are_claimed(store: HistoryStore, redis_url: str,
                                                  redis_server: EmbeddedRedis) -> None:
    """A writer that read entries and died before its XACK (another host, another instance): a
    live writer takes them over with XAUTOCLAIM once they are idle long enough."""
    w = HistoryWriter(redis_server.url_for("history"), store, consumer="live", claim_idle_ms=200)
    w.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds-test")
    for s in range(5):
        pub.update("sensor", "s1", 37.4, 126.7, {"value": float(s)}, ts=NOW - 10_000 + s * 1000)
        assert pub.flush()
    dead = connect(redis_server.url_for("history"))
    got = dead.xreadgroup(channels.HISTORY_GROUP, "dead", {channels.UPDATES_STREAM: ">"}, count=100)
    assert len(got[0][1]) == 5  # delivered to "dead", never acknowledged
    w.step()
    assert count(store, "hist_states") == 0  # not yet idle long enough
    time.sleep(0.3)
    w._next["claim"] = 0.0
    drain(w)
    assert count(store, "hist_states") == 5
    assert dead.xpending(channels.UPDATES_STREAM, channels.HISTORY_GROUP)["pending"] == 0
