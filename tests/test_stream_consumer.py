"""The shared stream consumer and outbox publisher (spine/stream_consumer.py, spine/outbox.py) on a
real Redis: groups made once and kept, a Redis user's refused stream left out only where optional,
own pending entries first and in bounded batches, XAUTOCLAIM of a dead consumer's entries only once
idle and due, trimmed pending entries counted once and acknowledged, new entries of several streams
in one read, the linger, acknowledgement, the back-off loop; the outbox's rows each published once
and in order (a lost WATCH race, two publishers at once), the service's writes in the same MULTI."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from redis.client import Pipeline
from redis.exceptions import NoPermissionError

from spine import channels
from spine.contract import RejectLog
from spine.outbox import OutboxPublisher
from spine.publisher import connect
from spine.servers.embedded_redis import EmbeddedRedis
from spine.stream_consumer import Entry, StreamConsumer, entry_ms, run_with_backoff

log = logging.getLogger("test_stream_consumer")
A, B = "t:stream:a", "t:stream:b"
GROUP = "g"


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = connect(redis_url)
    yield client
    client.close()


def make(r: redis.Redis, name: str = "c1", streams: tuple[str, ...] = (A,), **kw: Any) -> StreamConsumer:
    args: dict[str, Any] = {"batch": 3, "block_ms": 10, "claim_idle_ms": 100, "claim_every_s": 60.0}
    args.update(kw)
    return StreamConsumer(r, GROUP, name, streams, RejectLog(log), **args)


def add(r: redis.Redis, stream: str, n: int) -> list[bytes]:
    return [r.xadd(stream, {"v": str(i)}) for i in range(n)]


def ids(entries: list[Entry]) -> list[bytes]:
    return [eid for _, eid, _ in entries]


def pending(r: redis.Redis, stream: str = A) -> int:
    return int(r.xpending(stream, GROUP)["pending"])


def test_groups_from_the_start_kept_and_a_refused_stream_left_out_only_where_optional(
        r: redis.Redis, redis_server: EmbeddedRedis) -> None:
    early = add(r, A, 2)  # written before the first start: read all the same (group made at 0)
    c = make(r, streams=(A, B))
    assert c.create_groups() == (A, B)
    assert ids(c.read_new()) == early
    c.ack(c.read_new())
    assert make(r, streams=(A, B)).create_groups() == (A, B)  # BUSYGROUP: the position is kept
    assert r.xinfo_groups(A)[0]["last-delivered-id"] == early[-1]

    # The alarm service's user may read the event stream, not the updates stream.
    limited = connect(redis_server.url_for("alarms"))
    wanted = (channels.EVENTS_STREAM, channels.UPDATES_STREAM)
    with pytest.raises(NoPermissionError):
        StreamConsumer(limited, GROUP, "c", wanted, RejectLog(log), batch=3, block_ms=10,
                       claim_idle_ms=100, claim_every_s=1.0).create_groups()
    c2 = StreamConsumer(limited, GROUP, "c", wanted, RejectLog(log), batch=3, block_ms=10,
                        claim_idle_ms=100, claim_every_s=1.0)
    assert c2.create_groups(optional=(channels.UPDATES_STREAM,)) == (channels.EVENTS_STREAM,)
    assert c2.streams == (channels.EVENTS_STREAM,)
    limited.close()


def test_own_pending_first_in_bounded_batches_then_new(r: redis.Redis) -> None:
    first = make(r)
    first.create_groups()
    held = add(r, A, 7)
    got = first.read_new()
    assert len(got) == 3  # batch bounds every read
    got += first.read_new() + first.read_new()
    assert ids(got) == held and pending(r) == 7  # read, never acknowledged: the process dies here
    later = add(r, A, 2)
    again = make(r)  # the same consumer name after a restart
    again.create_groups()
    batches = []
    for _ in range(4):  # as a service does: each batch acknowledged (after its commit) before the next
        got = again.read()
        batches.append(ids(got))
        again.ack(got)
    assert batches == [held[:3], held[3:6], held[6:], later]  # its own first, in order, then new
    assert pending(r) == 0
    assert again.read_own_pending() == []  # not read again until a restart
    again.restart()
    assert again.read_own_pending() == []  # nothing left pending


def test_a_dead_consumers_entries_are_claimed_once_idle_and_due(r: redis.Redis) -> None:
    timers: dict[str, float] = {}
    live = make(r, "live", batch=10, claim_every_s=60.0, timers=timers)
    live.create_groups()
    held = add(r, A, 4)
    assert len(r.xreadgroup(GROUP, "dead", {A: ">"}, count=10)[0][1]) == 4
    assert live.read() == []  # claim checked now: not idle long enough
    assert timers["claim"] > time.monotonic() + 50  # the owner's timer table holds the next claim
    time.sleep(0.15)
    assert live.read() == []  # idle now, but the next claim is not due for a minute
    timers["claim"] = 0.0
    got = live.read()
    assert ids(got) == held and all(s == A and f for s, _, f in got)
    assert live.ack(got) == max(entry_ms(e) for e in held)
    assert pending(r) == 0


def test_trimmed_pending_entries_are_counted_once_handed_over_and_acknowledged(r: redis.Redis) -> None:
    lost: list[tuple[str, list[bytes]]] = []
    c = make(r, batch=10, on_trimmed=lambda s, i: lost.append((s, i)))
    c.create_groups()
    held = add(r, A, 4)
    assert len(c.read_new()) == 4  # read; then the process died before its commit
    kept = add(r, A, 2)
    r.xtrim(A, maxlen=2, approximate=False)  # the four held ones trimmed away meanwhile
    again = make(r, batch=10, on_trimmed=lambda s, i: lost.append((s, i)))
    again.create_groups()
    assert ids(again.read()) == kept  # nothing of the trimmed ones to write
    assert lost == [(A, held)]
    assert again.rejects.counts["trimmed"] == 1  # one report for the four
    again.ack([(A, e, {}) for e in kept])
    assert pending(r) == 0

    # The same through XAUTOCLAIM: entries a dead consumer held, trimmed before the claim.
    lost.clear()
    more = add(r, A, 3)
    r.xreadgroup(GROUP, "dead", {A: ">"}, count=10)
    for eid in more:
        r.xdel(A, eid)
    time.sleep(0.15)
    again.timers["claim"] = 0.0
    assert again.claim() == []
    assert lost == [(A, more)] and again.rejects.counts["trimmed"] == 2
    assert pending(r) == 0


def test_new_entries_of_several_streams_in_one_read_and_the_linger(r: redis.Redis) -> None:
    calls: list[int] = []
    c = make(r, streams=(A, B), batch=40, before_new=lambda: calls.append(1))
    c.create_groups()
    a, b = add(r, A, 2), add(r, B, 1)
    got = c.read()
    assert sorted((s, e) for s, e, _ in got) == sorted([(A, e) for e in a] + [(B, e) for e in b])
    assert calls == [1]  # the hook ran before the read of new entries
    assert c.read_new() == [] and calls == [1, 1]  # blocks at most block_ms, then nothing

    lingering = make(r, "c2", streams=(A,), batch=40, linger_s=0.4)
    lingering.create_groups()
    add(r, A, 1)
    late = threading.Timer(0.1, lambda: add(r, A, 5))
    late.start()
    t0 = time.monotonic()
    got = lingering.read_new()
    late.join()
    assert len(got) == 1 + 5  # one, and the five that came meanwhile (same group: not c's ones)
    assert time.monotonic() - t0 >= 0.4
    add(r, A, 20)  # a full quarter batch or more: no waiting
    t0 = time.monotonic()
    assert len(lingering.read_new()) == 20 and time.monotonic() - t0 < 0.3


def test_run_with_backoff_starts_again_after_redis_errors(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    events: list[str] = []

    def start() -> None:
        events.append("start")
        if events.count("start") == 1:
            raise redis.ConnectionError("down")

    def step() -> None:
        events.append("step")
        if events.count("step") == 2:
            raise OSError("reset")
        if events.count("step") == 4:
            stop.set()

    with caplog.at_level(logging.WARNING, logger=log.name):
        t0 = time.monotonic()
        run_with_backoff(stop, start, step, log, first_s=0.05, max_s=0.1)
    assert events == ["start", "start", "step", "step", "start", "step", "step"]
    assert [rec.getMessage().split(";")[0] for rec in caplog.records] == [
        "Redis unavailable (down)", "Redis unavailable (reset)"]
    assert 0.1 <= time.monotonic() - t0 < 2.0  # waited 0.05 s, then 0.05 s again (reset by a good step)


class Rows:
    """An outbox in memory: committed rows (id, JSON) and the trims done."""

    def __init__(self, n: int) -> None:
        self.rows = [(i, json.dumps({"t": "x", "k": i})) for i in range(1, n + 1)]
        self.trimmed: list[int] = []

    def outbox_after(self, after: int) -> list[tuple[int, str]]:
        return [row for row in self.rows if row[0] > after][:7]

    def outbox_trim(self, upto: int) -> None:
        self.trimmed.append(upto)


def listen(r: redis.Redis, channel: str) -> Any:
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.subscribe(channel)
    while sub.get_message(timeout=0.05) is not None:
        pass
    return sub


def received(sub: Any, want: int, timeout: float = 5.0) -> list[dict]:
    out: list[dict] = []
    end = time.monotonic() + timeout
    while len(out) < want and time.monotonic() < end:
        msg = sub.get_message(timeout=0.1)
        if msg is not None:
            out.append(json.loads(msg["data"]))
    time.sleep(0.1)
    while (msg := sub.get_message(timeout=0.05)) is not None:  # nothing more (no doubles)
        out.append(json.loads(msg["data"]))
    return out


def test_outbox_rows_once_in_order_with_the_services_writes_in_the_same_multi(r: redis.Redis,
                                                                              redis_url: str) -> None:
    source = Rows(10)
    sub = listen(r, "t:chan")
    done: list[list[dict]] = []
    other = connect(redis_url)  # another service's connection
    raced: list[int] = []

    def row_writes(pipe: Pipeline, doc: dict[str, Any]) -> None:
        pipe.hset("t:seen", str(doc["k"]), "1")
        if not raced:  # another publisher moves the cursor between WATCH and EXEC, once
            raced.append(1)
            other.set("t:cursor", 3)

    pub = OutboxPublisher(r, source, "t:chan", "t:cursor", row_writes=row_writes, committed=done.append)
    assert pub.publish() == 7  # rows 4..10: 1..3 counted as sent by the other one
    msgs = received(sub, 7)
    assert [m["n"] for m in msgs] == list(range(4, 11)) and [m["k"] for m in msgs] == list(range(4, 11))
    assert msgs[0] == {"n": 4, "t": "x", "k": 4}  # the stored JSON, "n" in front
    assert int(r.get("t:cursor")) == 10 and pub.published == 7
    assert sorted(int(k) for k in r.hkeys("t:seen")) == list(range(4, 11))  # none from the lost MULTI
    assert [d["k"] for batch in done for d in batch] == list(range(4, 11))
    assert source.trimmed == [10]
    assert pub.publish() == 0 and received(sub, 0) == []
    sub.close()
    other.close()


def test_two_outbox_publishers_at_once_send_each_row_once(r: redis.Redis, redis_url: str) -> None:
    source = Rows(300)
    sub = listen(r, "t:chan")
    pubs = [OutboxPublisher(connect(redis_url), source, "t:chan", "t:cursor") for _ in range(2)]
    threads = [threading.Thread(target=p.publish) for p in pubs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    msgs = received(sub, 300)
    assert [m["n"] for m in msgs] == list(range(1, 301))  # each once, in commit order
    assert sum(p.published for p in pubs) == 300
    sub.close()
