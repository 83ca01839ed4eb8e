"""The alarm service on a real Redis stream and real SQL (SQLite and PostgreSQL): a kill -9 in the
middle of a burst loses and doubles nothing (in SQL and on the live channel); repeats, video grouping,
chattering, suppression by design (camera offline, stale feed), silences, shelve expiry; the
migrations match the tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
import sqlalchemy as sa

from alarms.config import load_alarm_config
from alarms.db import Actor, AlarmStore, Context, kpis
from alarms.schema import alarm_events, alarms, metadata
from alarms.service import AlarmService
from spine import channels
from spine.contract import Event
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.conftest import PG_URL, _pg_reachable

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = PG_URL.rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def alarm_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite in a temporary folder, or a PostgreSQL database of this test's own (other tests share
    the `test` database and drop its tables)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'alarms.db'}"
        return
    if not _pg_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 in CI")
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"alarms_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def fresh_redis(redis_url: str, redis_server: EmbeddedRedis) -> EmbeddedRedis:
    return redis_server  # redis_url flushed it


def ev(i: int | str, *, entity: str = "sen-1", type: str = "threshold", severity: str = "high",
       ts: int | None = None, layer: str = "sensor", rule: str = "warn", zone: str = "z1") -> Event:
    props = {"rule": rule} if layer == "sensor" else {"zone": zone}
    return Event(v=1, id=f"ev-{i}", type=type, severity=severity, ts=ts or int(time.time() * 1000),
                 layer=layer, entity=entity, lat=37.45, lon=126.7, title=f"event {i}", props=props)


def _count(store: AlarmStore, table: sa.Table) -> int:
    with store.engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _total(store: AlarmStore) -> int:
    with store.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.coalesce(sa.func.sum(alarms.c.total), 0))).scalar_one())


# ---- kill -9 in a burst ------------------------------------------------------------------------------
def _spawn(redis: EmbeddedRedis, db: str, tmp: Path) -> subprocess.Popen:
    env = {**os.environ, "REDIS_URL": redis.url_for("alarms"), "DATABASE_URL": db,
           "CC_DATA_DIR": str(tmp / "data"), "CC_LOG_LEVEL": "WARNING"}
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", "alarms"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=open(tmp / "alarms.log", "ab"))


def test_kill9_in_a_burst_loses_and_doubles_nothing(fresh_redis: EmbeddedRedis, alarm_db: str,
                                                    tmp_path: Path) -> None:
    n = 4000
    sub = connect(fresh_redis.url_for("web")).pubsub()
    sub.subscribe(channels.ALARM_CHANNEL)
    seen: Counter[str] = Counter()
    stop = threading.Event()

    def listen() -> None:
        while not stop.is_set():
            m = sub.get_message(timeout=0.2)
            if m and m["type"] == "message":
                seen.update(json.loads(m["data"]).get("ev", []))

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    store = AlarmStore(alarm_db, load_alarm_config())
    store.migrate()  # the service migrates too (idempotent); the test reads the tables from the start
    proc = _spawn(fresh_redis, alarm_db, tmp_path)
    pub = Publisher(connect(fresh_redis.url_for("feeds")), "burst")
    killed_at = None
    try:
        for i in range(n):
            # 200 sources x 2 conditions, activations and clears: many alarms change in each batch.
            k = i % 400
            clear = (i // 400) % 2 == 1
            pub.event(ev(i, entity=f"sen-{k % 200}", rule=f"r{k // 200}",
                         type="threshold_clear" if clear else "threshold",
                         severity="info" if clear else "high"))
            if i % 100 == 99:
                assert pub.flush()
                time.sleep(0.01)
            if killed_at is None and i > n // 3:
                deadline = time.monotonic() + 60
                while _count(store, alarm_events) < 300 and time.monotonic() < deadline:
                    time.sleep(0.02)  # it is consuming (and has done its migration)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                killed_at = i
                proc = _spawn(fresh_redis, alarm_db, tmp_path)
        assert pub.flush()
        r = connect(fresh_redis.url)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            info = r.xinfo_groups(channels.EVENTS_STREAM)[0]
            if info["pending"] == 0 and _count(store, alarm_events) == n and sum(seen.values()) >= n:
                break
            time.sleep(0.1)
        time.sleep(0.5)  # anything published twice would arrive now
    finally:
        stop.set()
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
    assert killed_at is not None
    assert _count(store, alarm_events) == n, "every event once in SQL"
    assert _total(store) == n, "no event counted twice"
    assert len(seen) == n and max(seen.values()) == 1, "every event once on the live channel"
    # The open-alarm hash agrees with SQL.
    open_ids = {int(k) for k in connect(fresh_redis.url).hkeys(channels.ALARMS_OPEN_KEY)}
    assert open_ids == {a["id"] for a in store.open_docs()}
    store.dispose()


# ---- noise control, on the store with explicit times -------------------------------------------------
@pytest.fixture
def store(alarm_db: str) -> Iterator[AlarmStore]:
    s = AlarmStore(alarm_db, load_alarm_config())
    s.migrate()
    yield s
    s.dispose()


T0 = 1_800_000_000_000


def test_repeats_raise_one_alarm_and_redelivery_changes_nothing(store: AlarmStore) -> None:
    batch = [(f"1-{i}", ev(i, ts=T0 + i)) for i in range(5)]
    assert store.ingest(batch, now=T0 + 10) == 5
    assert store.ingest(batch, now=T0 + 20) == 0  # the same entries again (a redelivery)
    (a,) = store.list_alarms()
    assert (a["count"], a["total"], a["last_ts"], a["state"]) == (5, 5, T0 + 4, "UNACK")


def test_video_detections_grouped_until_the_quiet_time(store: AlarmStore) -> None:
    cam = dict(entity="cam-1", type="zone_intrusion", layer="camera")
    for i, dt in enumerate((0, 10_000, 20_000)):
        store.ingest([(f"1-{i}", ev(f"v{i}", ts=T0 + dt, **cam))], now=T0 + dt)
    store.ingest([("1-9", ev("other", ts=T0, zone="z2", **cam))], now=T0)  # another rule: its own alarm
    a = next(x for x in store.list_alarms() if x["condition"] == "zone_intrusion:z1")
    assert (a["count"], a["state"]) == (3, "UNACK")
    store.tick(now=T0 + 20_000 + 29_000)
    assert store.get(a["id"])["state"] == "UNACK"  # activity 29 s ago: still grouped
    store.tick(now=T0 + 20_000 + 30_000)
    assert store.get(a["id"])["state"] == "RTNUN"  # quiet for 30 s: closed, still to acknowledge
    assert len(store.list_alarms(include_normal=True)) == 2


def test_chattering_is_flagged_and_counted(store: AlarmStore) -> None:
    seq = [("threshold", "high"), ("threshold_clear", "info"), ("threshold", "high")]
    for i, (t, sev) in enumerate(seq):
        store.ingest([(f"1-{i}", ev(i, type=t, severity=sev, ts=T0 + i * 20_000))], now=T0 + i * 20_000)
    (a,) = store.list_alarms()
    assert a["chattering"]
    k = kpis(store, hours=1, now=T0 + 60_000)
    assert k["chattering"] == ["sen-1|threshold:warn"] and k["total"] == 2


def test_suppression_by_design_camera_offline_and_stale_feed(store: AlarmStore) -> None:
    ctx = Context(offline_cameras={"cam-9"}, stale_layers={"sensor"})
    store.ingest([("1-0", ev("c", entity="cam-9", type="loitering", layer="camera", ts=T0)),
                  ("1-1", ev("s", entity="sen-7", ts=T0))], ctx, now=T0)
    got = {a["source"]: a for a in store.list_alarms()}
    assert got["cam-9"]["state"] == "DSUPR" and got["cam-9"]["suppress_reason"] == "camera offline"
    assert got["sen-7"]["state"] == "DSUPR" and "stale" in got["sen-7"]["suppress_reason"]
    assert kpis(store, hours=1, now=T0 + 1)["total"] == 0  # hidden alarms load nobody
    store.tick(Context(), now=T0 + 1000)  # camera back, feed fresh: back by the condition
    got = {a["source"]: a for a in store.list_alarms()}
    assert got["cam-9"]["state"] == "UNACK" and got["sen-7"]["state"] == "UNACK"


def test_silence_is_time_boxed(store: AlarmStore) -> None:
    sid = store.add_silence(Actor("sup"), "pump replacement", 10, source="sen-*", now=T0)
    ctx = Context(silences=store.active_silences(now=T0))
    store.ingest([("1-0", ev("s", ts=T0))], ctx, now=T0)
    (a,) = store.list_alarms()
    assert a["state"] == "DSUPR" and a["suppress_reason"].startswith(f"silence #{sid}")
    later = T0 + 10 * 60_000
    store.tick(Context(silences=store.active_silences(now=later)), now=later)
    assert store.list_alarms()[0]["state"] == "UNACK"


def test_a_silence_never_hides_a_priority_that_may_not_be_shelved(store: AlarmStore) -> None:
    """A wildcard silence for planned work silences the high sensor alarm, never the critical bell."""
    store.add_silence(Actor("sup"), "whole-site works", 60, now=T0)  # source "*"
    ctx = Context(silences=store.active_silences(now=T0))
    store.ingest([("1-0", ev("a", ts=T0)),
                  ("1-1", ev("b", entity="bell-1", type="bell", layer="sensor", ts=T0))], ctx, now=T0)
    got = {a["source"]: a for a in store.list_alarms()}
    assert got["sen-1"]["state"] == "DSUPR"
    assert got["bell-1"]["state"] == "UNACK" and got["bell-1"]["priority"] == "critical"


def test_shelve_expires_and_critical_never_shelves(store: AlarmStore) -> None:
    store.ingest([("1-0", ev("a", ts=T0)),
                  ("1-1", ev("b", entity="bell-1", type="bell", layer="sensor", ts=T0))], now=T0)
    by = {a["source"]: a["id"] for a in store.list_alarms()}
    res = store.shelve([by["sen-1"], by["bell-1"]], Actor("sup"), "road works", "timed", 5, now=T0)
    assert [d["id"] for d in res["done"]] == [by["sen-1"]]
    assert "never be shelved" in res["refused"][by["bell-1"]]
    store.tick(now=T0 + 5 * 60_000)
    one = store.get(by["sen-1"])
    assert one["state"] == "UNACK" and [h["kind"] for h in one["history"]][:2] == ["expire", "shelve"]
    assert one["history"][1]["actor"] == "sup" and one["history"][1]["reason"] == "road works"


def test_migrations_match_the_tables(store: AlarmStore) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert [d for d in diff if d[0] != "remove_table"] == []  # other parts' tables may share the DB


# ---- the service reads system state with its own Redis user ------------------------------------------
def test_service_reads_health_and_camera_state(fresh_redis: EmbeddedRedis, tmp_path: Path) -> None:
    admin = connect(fresh_redis.url)
    admin.hset(channels.HEALTH_KEY, "layer:air", json.dumps({"layer": "air", "stale": True}))
    admin.hset(channels.HEALTH_KEY, "layer:sensor", json.dumps({"layer": "sensor", "stale": False}))
    admin.hset(channels.state_key("camera"), mapping={
        "cam-1": json.dumps({"props": {"status": "offline"}}),
        "cam-2": json.dumps({"props": {"status": "online"}}), "cam-3": b"\xff not json \"offline\""})
    store = AlarmStore(f"sqlite:///{tmp_path / 'a.db'}", load_alarm_config())
    svc = AlarmService(fresh_redis.url_for("alarms"), store, consumer="t")
    svc.start()
    assert svc.ctx.offline_cameras == {"cam-1"} and svc.ctx.stale_layers == {"air"}
    # The alarm user may not write what it only reads.
    import redis as redis_lib

    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        svc.r.hset(channels.HEALTH_KEY, "x", "y")
    # A malformed stream entry is counted and acknowledged, never fatal.
    admin.xadd(channels.EVENTS_STREAM, {"e": b"{not json"})
    admin.xadd(channels.EVENTS_STREAM, {"x": b"1"})
    svc.step()
    assert svc.rejects.total == 2 and svc.processed == 2
    store.dispose()


def test_an_alarm_keeps_its_events_message_key_and_params(store: AlarmStore) -> None:
    """Each screen renders the alarm in its own language: the row keeps the event's msg and params."""
    base = ev("m1", ts=T0, entity="cam-9", type="zone_intrusion", layer="camera")
    keyed = msgspec.structs.replace(base, msg="{cls} entered {zone}",
                                    params={"cls": "person", "zone": "Gate 3"})
    assert store.ingest([("1-0", keyed)], now=T0) == 1
    (a,) = store.list_alarms()
    assert a["msg"] == "{cls} entered {zone}" and a["params"] == {"cls": "person", "zone": "Gate 3"}
    assert a["title"] == "event m1"  # the producer's text stays, for readers without the catalogue
    (opened,) = store.open_docs()
    assert opened["params"] == {"cls": "person", "zone": "Gate 3"}


def test_the_list_orders_before_its_limit_so_a_flood_shows_the_critical_alarm(store: AlarmStore) -> None:
    """30 high alarms raised first, then one critical: a list of 5 must hold the critical one first."""
    batch = [(f"1-{i}", ev(f"h{i}", entity=f"sen-{i}", ts=T0 + i)) for i in range(30)]
    batch.append(("1-99", ev("c", entity="bell-1", type="bell", layer="sensor", ts=T0 + 100)))
    store.ingest(batch, now=T0 + 200)
    top = store.list_alarms(limit=5)
    assert len(top) == 5 and top[0]["source"] == "bell-1" and top[0]["priority"] == "critical"
    assert [a["last_ts"] for a in top[1:]] == sorted((a["last_ts"] for a in top[1:]), reverse=True)
