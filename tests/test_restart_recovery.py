"""A Redis restart loses nothing: under a running stack, Redis is killed and comes back empty, and
every layer (plus the route shapes and the air history, written once at start) is back to its count
within 10 s. The test republishes nothing: the producers notice and rewrite what they own.

Two ways for Redis to come back empty, so that persistence cannot hide a producer that forgets:
the append-only file deleted before SIGKILL, and a Redis without persistence, which the supervisor
restarts fresh on the same port. A marker key the test writes before the kill proves it was empty.
"""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest
import redis

from spine.servers.embedded_redis import private_url
from tests.stack import RunningStack, start_stack

LAYERS = ("bus", "camera", "air", "sensor", "drone")
MARKER = "cc:v1:test:before-restart"


def counts(c: redis.Redis) -> dict[str, int]:
    out = {layer: c.hlen(f"cc:v1:state:{layer}") for layer in LAYERS}
    out["route_shapes"] = c.hlen("cc:v1:transit:shapes")
    out["air_history"] = sum(c.zcard(k) for k in c.scan_iter("cc:v1:air:history:*", count=1000))
    return out


def sensor_sources(c: redis.Redis) -> Counter[str]:
    """The sensor layer by source: the demo's sensors and its emergency bells share the layer."""
    return Counter(json.loads(v)["src"] for v in c.hvals("cc:v1:state:sensor"))


def ids(c: redis.Redis) -> set[tuple[str, bytes]]:
    out = {(layer, k) for layer in LAYERS for k in c.hkeys(f"cc:v1:state:{layer}")}
    return out | {("route_shapes", k) for k in c.hkeys("cc:v1:transit:shapes")}


def _restored(before: dict[str, int], before_ids: set, now: dict[str, int], c: redis.Redis) -> bool:
    return all(now[k] >= n for k, n in before.items()) and before_ids <= ids(c)


def _settled(c: redis.Redis, timeout: float = 60) -> dict[str, int]:
    """Counts once every layer is filled and nothing changed for two seconds."""
    deadline = time.monotonic() + timeout
    last: dict[str, int] = {}
    since = time.monotonic()
    while time.monotonic() < deadline:
        now = counts(c)
        if now != last:
            last, since = now, time.monotonic()
        elif all(now.values()) and time.monotonic() - since >= 2:
            return now
        time.sleep(0.25)
    raise AssertionError(f"layers did not settle: {last}")


def _redis_proc(stack: RunningStack) -> psutil.Process:
    return next(p for p in stack.descendants() if p.name() == "redis-server")


@pytest.mark.parametrize("how", ["aof-deleted", "fresh-redis"])
def test_every_layer_returns_after_redis_comes_back_empty(tmp_path: Path, how: str) -> None:
    env = {"CC_REDIS__PERSIST": "false"} if how == "fresh-redis" else {}
    stack = start_stack(tmp_path, env)
    try:
        c = redis.Redis.from_url(private_url(stack.data_dir / "redis"), socket_timeout=2)
        before = _settled(c)
        assert before["bus"] == 300 and before["route_shapes"] > 0
        # 26 demo sensors and the 6 demo bells (config/overlays/demo.yaml), counted apart.
        assert sensor_sources(c) == {"mqtt_sensors": 26, "mqtt_bells": 6} and before["sensor"] == 32
        before_ids = ids(c)
        c.set(MARKER, 1)
        old = _redis_proc(stack)
        aof = stack.data_dir / "redis" / "appendonlydir"
        assert aof.exists() == (how == "aof-deleted")
        if how == "aof-deleted":
            shutil.rmtree(aof)  # the server still holds the files open; on restart there is nothing
        old.kill()
        old.wait(5)
        deadline = time.monotonic() + 5
        while True:  # the supervisor restarts it on the same port
            try:
                c.ping()
                break
            except (redis.RedisError, OSError):
                assert time.monotonic() < deadline, f"Redis not restarted:\n{stack.log()[-3000:]}"
                time.sleep(0.05)
        back_at = time.monotonic()
        assert _redis_proc(stack).pid != old.pid
        assert not c.exists(MARKER), "Redis came back with its data: this run proves nothing"
        now = counts(c)
        # At least the count before (a vision camera that came up late may add one, never remove).
        while not _restored(before, before_ids, now, c) and time.monotonic() - back_at < 10:
            time.sleep(0.1)
            now = counts(c)
        took = time.monotonic() - back_at
        assert _restored(before, before_ids, now, c), \
            f"after {took:.1f}s: {now} < {before}\n{stack.log()[-4000:]}"
        assert sensor_sources(c) == {"mqtt_sensors": 26, "mqtt_bells": 6}  # the bells are rewritten too
        print(f"{how}: every layer back in {took:.2f}s: {now}")
    finally:
        stack.stop()
