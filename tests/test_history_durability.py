"""The history writer's durability beyond its own restart (issue 13): alarm transitions made while it
is down reach hist_alarms through the alarm service's stream (not only the open set at restart), and
updates trimmed from a stream before it read them are recorded as a gap (hist_gaps), counted in its
stats and named by replay answers. Real Redis, the real alarm service, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarms.config import load_alarm_config
from alarms.db import Actor, AlarmStore
from alarms.service import AlarmService
from history.config import load_history_config
from history.db import HistoryStore
from history.queries import picture_at, steps
from history.writer import HistoryWriter
from spine import channels
from spine.contract import Event, now_ms
from spine.publisher import Publisher, connect
from spine.servers.credentials import with_userinfo
from spine.servers.embedded_redis import EmbeddedRedis
from spine.servers.redis_acl import RULES, _compat
from tests.history_support import count, drain, make_db


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HistoryStore]:
    for url in make_db(request.param, tmp_path):
        s = HistoryStore(url, load_history_config())
        s.migrate()
        yield s
        s.dispose()


def _user(redis_server: EmbeddedRedis, name: str, keys: str) -> str:
    """A Redis user with the history writer's channel and command rules and these key rules."""
    _, chans, cmds = RULES["history"]
    admin = connect(redis_server.url)
    major = int(admin.info("server")["redis_version"].split(".")[0])
    password = uuid.uuid4().hex
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}",
                          *_compat(keys, major).split(), *chans.split(), *cmds.split())
    admin.close()
    return with_userinfo(f"redis://127.0.0.1:{redis_server.port}/0", name, password)


def history_url(redis_server: EmbeddedRedis) -> str:
    """The stack's real history user (spine/servers/redis_acl.py), which must hold the alarm stream."""
    assert f"~{channels.ALARMS_STREAM}" in RULES["history"][0].split()
    return redis_server.url_for("history")


def _event(i: int, entity: str, type_: str = "threshold", severity: str = "high") -> Event:
    return Event(v=1, id=f"dur-{i}", type=type_, severity=severity, ts=now_ms(), layer="sensor",
                 entity=entity, lat=37.45, lon=126.7, title=f"event {i}", props={"rule": "warn"})


def test_alarm_transitions_while_the_writer_is_down_are_recorded(store: HistoryStore, tmp_path: Path,
                                                                  redis_url: str,
                                                                  redis_server: EmbeddedRedis) -> None:
    url = history_url(redis_server)
    writer = HistoryWriter(url, store, consumer="w1")
    writer.start()
    assert writer.alarm_source == "stream"
    alarm_store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}", load_alarm_config())
    alarms = AlarmService(redis_server.url_for("alarms"), alarm_store, consumer="a1")
    alarms.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")

    def settle() -> None:
        assert pub.flush()
        for _ in range(20):
            alarms.step()
        time.sleep(0.005)  # the next change is in a later millisecond

    pub.event(_event(1, "s1"))  # raised while the writer runs: recorded live
    settle()
    drain(writer)
    assert count(store, "hist_alarms", "state = 'UNACK'") == 1
    writer.r.close()  # the writer goes away

    # While it is down: the condition clears (RTNUN), the operator acknowledges (NORM: the alarm
    # leaves the open set), and another alarm is raised and cleared (RTNUN).
    pub.event(_event(2, "s1", "threshold_clear", "info"))
    settle()
    [aid] = [a["id"] for a in alarm_store.open_docs() if a["state"] == "RTNUN"]
    assert alarm_store.acknowledge([aid], Actor("op1"))["done"]
    settle()
    pub.event(_event(3, "s2"))
    settle()
    pub.event(_event(4, "s2", "threshold_clear", "info"))
    settle()
    open_now = {a["id"]: a["state"] for a in alarm_store.open_docs()}
    assert aid not in open_now and sorted(open_now.values()) == ["RTNUN"]

    restarted = HistoryWriter(url, store, consumer="w1")
    restarted.start()
    drain(restarted)
    # Every transition the alarm service made, as its own audit table has them.
    with alarm_store.engine.connect() as conn:
        made = sorted((r.alarm_id, r.after) for r in conn.execute(sa.text(
            "SELECT alarm_id, after FROM alarm_changes WHERE before != after")))
    with store.engine.connect() as conn:
        got = sorted((r.alarm_id, r.state) for r in conn.execute(sa.text(
            "SELECT alarm_id, state FROM hist_alarms")))
    assert (aid, "NORM") in got and (aid, "RTNUN") in got, "intermediate transitions are kept"
    assert set(got) == set(made)
    other = next(i for i in open_now)
    assert {s for i, s in got if i == other} == {"UNACK", "RTNUN"}  # raised and cleared, both while down
    assert restarted.stats()["alarm_source"] == "stream"
    for stream in (channels.ALARMS_STREAM,):
        assert connect(redis_server.url).xpending(stream, channels.HISTORY_GROUP)["pending"] == 0
    alarm_store.dispose()


def test_without_access_to_the_alarm_stream_the_channel_is_used(store: HistoryStore, redis_url: str,
                                                                redis_server: EmbeddedRedis) -> None:
    """An ACL from before the alarm stream: the writer still starts, records alarms from the channel
    and the open-alarm snapshot, and its stats say where its alarms come from."""
    old = f"{channels.PREFIX}:updates:stream ~{channels.PREFIX}:events:stream ~{channels.PREFIX}:history:*"
    url = _user(redis_server, "history-old", f"~{old} %R~{channels.ALARMS_OPEN_KEY}")
    writer = HistoryWriter(url, store, consumer="old")
    writer.start()
    assert writer.alarm_source == "channel" and channels.ALARMS_STREAM not in writer.streams
    doc = {"id": 9, "state": "UNACK", "priority": "high", "layer": "sensor", "updated_ts": now_ms() - 1000,
           "active_since": now_ms() - 1000, "title": "x"}
    connect(redis_server.url).publish(channels.ALARM_CHANNEL, json.dumps({"n": 1, "t": "alarms", "a": [doc]}))
    time.sleep(0.1)
    drain(writer)
    assert count(store, "hist_alarms", "alarm_id = 9") == 1
    assert writer.stats()["alarm_source"] == "channel"


def _flush_sensors(pub: Publisher, n: int, t0: int, tag: float) -> None:
    for i in range(n):
        pub.update("sensor", f"s{i % 5}", 37.4, 126.7, {"value": tag + i}, ts=t0 + i)
        assert pub.flush()  # one stream entry per flush


def test_updates_trimmed_before_the_writer_read_them_are_a_gap(store: HistoryStore, redis_url: str,
                                                               redis_server: EmbeddedRedis) -> None:
    url = history_url(redis_server)
    writer = HistoryWriter(url, store, consumer="g1")
    writer.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    admin = connect(redis_server.url)
    base = now_ms() - 60_000
    _flush_sensors(pub, 10, base, 0.0)
    drain(writer)
    assert count(store, "hist_states") == 10 and count(store, "hist_gaps") == 0
    last_read = admin.xinfo_groups(channels.UPDATES_STREAM)[0]["last-delivered-id"]

    # The writer is away; 30 more entries arrive and the stream is trimmed to its last 5 (as
    # MAXLEN does to a writer away longer than the stream holds).
    time.sleep(0.01)
    _flush_sensors(pub, 30, base + 1000, 100.0)
    admin.xtrim(channels.UPDATES_STREAM, maxlen=5, approximate=False)
    first_kept = admin.xrange(channels.UPDATES_STREAM, count=1)[0][0]

    restarted = HistoryWriter(url, store, consumer="g1")
    restarted.start()
    drain(restarted)
    assert count(store, "hist_states") == 15  # the 10 before, the 5 kept
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stream, from_ts, to_ts, entries FROM hist_gaps")).all()
    assert [(r.stream, r.from_ts, r.to_ts) for r in rows] == [
        ("updates", int(last_read.split(b"-")[0]), int(first_kept.split(b"-")[0]))]
    if "lag" in admin.xinfo_groups(channels.UPDATES_STREAM)[0]:  # Redis 7 counts what was lost
        assert rows[0].entries == 25
    stats = restarted.stats()
    assert stats["gaps"] == 1 and stats["gap_ms"] == rows[0].to_ts - rows[0].from_ts
    restarted._next["stats"] = 0.0
    restarted.step()  # the health record every part's stats go to
    assert json.loads(admin.hget(channels.HISTORY_STATS_KEY, "g1"))["gaps"] == 1
    # Read on: no second gap (the group's counter was set right), and later entries arrive.
    _flush_sensors(pub, 3, now_ms(), 500.0)
    drain(restarted)
    assert count(store, "hist_gaps") == 1 and count(store, "hist_states") == 18

    # Replay answers name the gap: a moment inside it, steps across it; none outside it.
    mid = (rows[0].from_ts + rows[0].to_ts) // 2
    gap = {"stream": "updates", "from": rows[0].from_ts, "to": rows[0].to_ts, "entries": rows[0].entries}
    assert picture_at(store, mid)["gaps"] == [gap]
    assert steps(store, rows[0].from_ts - 5000, mid)["gaps"] == [gap]
    assert picture_at(store, rows[0].from_ts - 10_000)["gaps"] == []
    assert steps(store, rows[0].to_ts + 1, rows[0].to_ts + 5000)["gaps"] == []


def test_pending_entries_trimmed_before_their_commit_are_a_gap(store: HistoryStore, redis_url: str,
                                                               redis_server: EmbeddedRedis) -> None:
    """A writer read entries and died before writing them; they were trimmed before it came back:
    counted, acknowledged and recorded as a gap at their times."""
    url = history_url(redis_server)
    writer = HistoryWriter(url, store, consumer="p1")
    writer.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    admin = connect(redis_server.url)
    _flush_sensors(pub, 4, now_ms() - 30_000, 0.0)
    got = writer.r.xreadgroup(channels.HISTORY_GROUP, "p1", {channels.UPDATES_STREAM: ">"}, count=10)
    ids = [eid for eid, _ in got[0][1]]
    assert len(ids) == 4  # delivered, never written nor acknowledged: then the process died
    _flush_sensors(pub, 2, now_ms() - 20_000, 10.0)
    admin.xtrim(channels.UPDATES_STREAM, maxlen=2, approximate=False)
    restarted = HistoryWriter(url, store, consumer="p1")
    restarted.start()
    drain(restarted)
    assert count(store, "hist_states") == 2
    with store.engine.connect() as conn:
        (row,) = conn.execute(sa.text("SELECT stream, from_ts, to_ts, entries FROM hist_gaps")).all()
    times = [int(i.split(b"-")[0]) for i in ids]
    assert row.stream == "updates" and row.from_ts < min(times) and row.to_ts > max(times)
    assert row.entries == 4
    assert restarted.rejects.summary()["by_reason"]["trimmed"] == 1  # one report for the four
    assert admin.xpending(channels.UPDATES_STREAM, channels.HISTORY_GROUP)["pending"] == 0


def test_gaps_follow_retention(store: HistoryStore) -> None:
    now = now_ms()
    store.write_gap("updates", now - 400 * 86_400_000, now - 399 * 86_400_000, 5, now)
    store.write_gap("events", now - 10_000, now - 5000, None, now)
    store.write_gap("events", now - 10_000, now - 2000, 3, now)  # the same span, found to reach further
    store.enforce_retention(now)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT stream, from_ts, to_ts, entries FROM hist_gaps")).all()
    assert [(r.stream, r.to_ts - now, r.entries) for r in rows] == [("events", -2000, 3)]
