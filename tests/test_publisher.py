"""The Publisher restores what Redis lost: every live entity and every retained write (route shapes,
history) again, published, after Redis comes back empty; slow layers refreshed. Real Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis

from spine import channels
from spine.health import assess
from spine.publisher import Publisher
from spine.servers.embedded_redis import EmbeddedRedis

STATE = channels.state_key("camera")


def _ids(c: redis.Redis, layer: str) -> set[str]:
    return {k.decode() for k in c.hkeys(channels.state_key(layer))}


def _published(p: redis.client.PubSub) -> list[dict]:
    out = []
    while (m := p.get_message(timeout=0.3)) is not None:
        if m["type"] == "pmessage":
            out.extend(json.loads(m["data"]))
    return out


def test_everything_is_republished_when_redis_lost_it(redis_url: str) -> None:
    c = redis.Redis.from_url(redis_url)
    pub = Publisher(c, src="t", probe_s=0.1)
    for i in range(3):
        pub.update("camera", f"cam-{i}", 37.4, 126.7, {"name": f"c{i}"})
    pub.update("bus", "bus-1", 37.4, 126.7)
    pub.retain("shapes", lambda pipe: pipe.hset("cc:v1:transit:shapes", "s1", "{}"))
    assert pub.flush()
    pub.update("camera", "cam-2", 37.4, 126.7, gone=True)  # removed: must not come back
    assert pub.flush()
    sub = c.pubsub()
    sub.psubscribe(channels.ENTITY_PATTERN)
    sub.get_message(timeout=1)
    c.flushall()  # what a Redis restarted without its data looks like
    assert pub.flush()  # within probe_s: nothing checked yet
    time.sleep(0.15)
    assert pub.flush()
    assert _ids(c, "camera") == {"cam-0", "cam-1"} and _ids(c, "bus") == {"bus-1"}
    assert c.hexists("cc:v1:transit:shapes", "s1")
    assert {u["id"] for u in _published(sub)} == {"cam-0", "cam-1", "bus-1"}  # browsers get them live
    assert pub.resends == 1
    time.sleep(0.15)
    assert pub.flush() and pub.resends == 1  # Redis kept it this time: no second rewrite


def test_a_failed_flush_resends_everything_when_redis_returns(tmp_path: Path) -> None:
    from spine.servers.embedded_redis import EmbeddedRedis

    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:
        c = redis.Redis.from_url(server.url, socket_timeout=1, socket_connect_timeout=1)
        pub = Publisher(c, src="t", probe_s=3600)  # no probing: the failure alone must trigger it
        pub.update("air", "air-1", 37.4, 126.7, {"pm10": 20})
        assert pub.flush()
        server.stop()
        pub.update("bus", "bus-1", 37.4, 126.7)
        assert not pub.flush()
        server.start()  # back on the same port, empty
        pub._retry_at = 0.0  # skip the back-off wait
        assert pub.flush()
        assert _ids(c, "air") == {"air-1"} and _ids(c, "bus") == {"bus-1"}
    finally:
        server.stop()


def test_slow_layers_are_rewritten_unpublished_on_their_period(redis_url: str) -> None:
    c = redis.Redis.from_url(redis_url)
    pub = Publisher(c, src="t", refresh_s={"camera": 0.2}, probe_s=3600)
    pub.update("camera", "cam-1", 37.4, 126.7)
    pub.update("bus", "bus-1", 37.4, 126.7)
    assert pub.flush()
    c.hdel(STATE, "cam-1")
    c.hdel(channels.state_key("bus"), "bus-1")
    sub = c.pubsub()
    sub.psubscribe(channels.ENTITY_PATTERN)
    sub.get_message(timeout=1)
    time.sleep(0.25)
    assert pub.flush()
    assert c.hexists(STATE, "cam-1") and not c.hexists(channels.state_key("bus"), "bus-1")
    assert _published(sub) == []  # a refresh heals the hash; browsers already have it


def test_recent_events_are_restored_not_republished(redis_url: str) -> None:
    from spine.contract import Event

    c = redis.Redis.from_url(redis_url)
    pub = Publisher(c, src="t", probe_s=0.1)
    for i in range(3):
        pub.event(Event(v=1, id=f"ev-{i}", type="threshold", severity="high", ts=1_000 + i, layer="sensor",
                        entity="s1", lat=37.4, lon=126.7, title=f"event {i}", props={}))
    assert pub.flush()
    c.flushall()
    sub = c.pubsub()
    sub.subscribe(channels.EVENTS_CHANNEL)
    sub.get_message(timeout=1)
    time.sleep(0.15)
    assert pub.flush()
    ids = [json.loads(raw)["id"] for raw in c.lrange(channels.RECENT_EVENTS_KEY, 0, -1)]
    assert ids == ["ev-2", "ev-1", "ev-0"]  # newest first, as the gateway's snapshot reads them
    assert sub.get_message(timeout=0.3) is None  # old events are not announced as new


# A key of the wrong type (issue 7 review, D4): any process with the producers' ACL user can
# `SET cc:v1:state:bus x`. That must cost that key only: not the whole flush, not every later one.

def _seqs(sub: redis.client.PubSub) -> dict[str, int]:
    return {u["id"]: u["seq"] for u in _published(sub)}


def test_a_wrong_type_state_key_costs_that_key_only_and_is_repaired(redis_server: EmbeddedRedis) -> None:
    redis.Redis.from_url(redis_server.url).flushall()
    feeds = redis.Redis.from_url(redis_server.url_for("feeds"))  # a producer's rights, as a hostile one has
    feeds.set(channels.state_key("bus"), "x")
    pub = Publisher(redis.Redis.from_url(redis_server.url_for("feeds")), src="t", probe_s=0)
    sub = redis.Redis.from_url(redis_server.url_for("gateway")).pubsub()
    sub.psubscribe(channels.ENTITY_PATTERN)
    sub.get_message(timeout=1)
    pub.update("air", "air-1", 37.4, 126.7, {"pm10": 10.0})
    pub.update("bus", "b1", 37.4, 126.7, {"route": "7"})
    assert pub.flush()  # the old code: False ("Redis unreachable"), and so on every <= 2 s, forever
    assert pub.failures == 0 and pub.key_errors == 1
    assert _seqs(sub) == {"air-1": 1, "b1": 1}
    assert _ids(feeds, "air") == {"air-1"}
    # The publisher repaired the hash it writes: the layer is a hash again, with its entity.
    assert feeds.type(channels.state_key("bus")) == b"hash" and _ids(feeds, "bus") == {"b1"}
    assert pub.repairs == 1 and pub.poisoned == {}
    for n in (2, 3):  # both layers keep updating, and only what changed is sent (no resend loop)
        pub.update("air", "air-1", 37.4, 126.7, {"pm10": 10.0 + n})
        pub.update("bus", "b1", 37.4 + n / 100, 126.7)
        assert pub.flush()
        assert _seqs(sub) == {"air-1": n, "b1": n}
        assert json.loads(feeds.hget(channels.state_key("bus"), "b1"))["seq"] == n
    assert pub.resends == 0 and pub.key_errors == 1


def test_a_poisoned_recent_events_list_is_replaced(redis_url: str) -> None:
    from spine.contract import Event

    c = redis.Redis.from_url(redis_url)
    c.hset(channels.RECENT_EVENTS_KEY, "x", "y")  # a hash where the list belongs
    pub = Publisher(c, src="t", probe_s=3600)
    pub.event(Event(v=1, id="ev-1", type="threshold", severity="high", ts=1_000, layer="sensor",
                    entity="s1", lat=37.4, lon=126.7, title="event", props={}))
    pub.update("bus", "b1", 37.4, 126.7)
    assert pub.flush() and pub.failures == 0
    assert _ids(c, "bus") == {"b1"}
    assert [json.loads(r)["id"] for r in c.lrange(channels.RECENT_EVENTS_KEY, 0, -1)] == ["ev-1"]


def test_a_key_it_cannot_repair_is_reported_and_logged_once_a_minute(
        redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    c = redis.Redis.from_url(redis_url)
    c.set("cc:v1:transit:shapes", "x")
    pub = Publisher(c, src="t", probe_s=3600)
    pub.retain("shapes", lambda pipe: pipe.hset("cc:v1:transit:shapes", "s1", "{}"), refresh_s=0.001)
    with caplog.at_level("WARNING", logger="spine.publisher"):
        for i in range(3):
            pub.update("bus", "b1", 37.4 + i / 100, 126.7)
            time.sleep(0.01)
            assert pub.flush()
    assert pub.key_errors == 3 and pub.failures == 0 and pub.repairs == 0
    assert "WRONGTYPE" in pub.poisoned["cc:v1:transit:shapes"]
    assert c.get("cc:v1:transit:shapes") == b"x"  # not ours to decide what it should hold
    assert json.loads(c.hget(channels.state_key("bus"), "b1"))["seq"] == 3
    assert sum("cc:v1:transit:shapes" in r.getMessage() for r in caplog.records) == 1
    # Feed health tells the supervisor: the source is not "ok" while a key of it is refused.
    source = _Source(pub)
    health = assess(source, rate=1.0)
    assert health.state == "stale" and health.reject_reasons == {"redis_key_refused": 1}
    assert "cc:v1:transit:shapes" in health.error and "WRONGTYPE" in health.error
    c.delete("cc:v1:transit:shapes")  # an operator removes the bad value: no longer reported
    time.sleep(0.01)
    assert pub.flush() and pub.poisoned == {} and c.hexists("cc:v1:transit:shapes", "s1")
    assert assess(source, rate=1.0).state == "ok"


class _Source:
    """The parts of a feed adapter that health reads, around a real Publisher."""

    source, layer, contract_s = "gtfs_rt", "bus", 30.0

    def __init__(self, publisher: Publisher) -> None:
        import logging

        from feeds.adapter import AdapterStats
        from spine.contract import RejectLog

        self.publisher = publisher
        self.rejects = RejectLog(logging.getLogger("test"))
        self.stats = AdapterStats(messages=1, last_message_at=time.monotonic(), connected=True)


def test_a_server_refusing_every_write_is_down_not_a_key_problem(redis_server: EmbeddedRedis) -> None:
    admin = redis.Redis.from_url(redis_server.url)
    admin.flushall()
    pub = Publisher(redis.Redis.from_url(redis_server.url), src="t", probe_s=3600)
    pub.update("bus", "b1", 37.4, 126.7)
    assert pub.flush()
    old = admin.config_get("maxmemory*")
    admin.config_set("maxmemory-policy", "noeviction")
    admin.config_set("maxmemory", 1)  # every write now answers OOM
    try:
        pub.update("bus", "b2", 37.4, 126.7)
        assert not pub.flush() and pub.failures == 1 and pub.key_errors == 0
    finally:
        admin.config_set("maxmemory", old["maxmemory"])
        admin.config_set("maxmemory-policy", old["maxmemory-policy"])
    pub._retry_at = 0.0  # skip the back-off wait
    assert pub.flush()
    assert _ids(admin, "bus") == {"b1", "b2"}  # kept and sent once Redis took writes again
