"""Publishing to Redis: latest state in a hash per layer, then one PUBLISH per layer per flush.

Producers call `Publisher.update()` as often as they like and `flush()` once per tick. If Redis
is down the pending updates stay buffered (latest wins per entity) and go out after it returns,
so a restarted Redis costs freshness, never a crashed producer.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict, deque
from typing import Any

import msgspec
import redis

from spine import channels
from spine.contract import EntityUpdate, Event, encode, now_ms

log = logging.getLogger(__name__)

CHUNK = 500  # updates per PUBLISH; keeps each message well under the gateway's size limit
# What an unreachable, restarting or refusing Redis raises (a full disk gives MISCONF, a replica
# after failover READONLY): every caller treats them as "Redis is not taking writes now".
REDIS_DOWN = (redis.RedisError, OSError)


def connect(url: str) -> redis.Redis:
    # RESP2: pub/sub payloads come back as plain bytes on every server version.
    return redis.Redis.from_url(url, protocol=2, socket_timeout=5, socket_connect_timeout=3,
                                health_check_interval=15)


class Publisher:
    def __init__(self, client: redis.Redis, src: str | None = None) -> None:
        self.client = client
        self.src = src or uuid.uuid4().hex[:8]
        self._seq: dict[str, int] = defaultdict(int)
        self._pending: dict[tuple[str, str], EntityUpdate] = {}
        # Bounded: during a long outage only the newest events are kept (as the recent list does).
        self._pending_events: deque[Event] = deque(maxlen=channels.RECENT_EVENTS_KEEP)
        self._retry_at = 0.0
        self._backoff = 0.5
        self.published = 0
        self.failures = 0

    def update(self, layer: str, id: str, lat: float, lon: float, props: dict[str, Any] | None = None,
               ts: int | None = None, gone: bool = False) -> EntityUpdate:
        # seq is given at flush time, so superseded updates never leave a gap.
        upd = EntityUpdate(v=1, layer=layer, id=id, ts=ts or now_ms(), seq=0,
                           lat=lat, lon=lon, props=props or {}, src=self.src, gone=gone)
        self._pending[(layer, id)] = upd
        return upd

    def event(self, event: Event) -> None:
        self._pending_events.append(event)

    def flush(self) -> bool:
        """Send what is pending; False (and keep it) when Redis is unreachable."""
        if not self._pending and not self._pending_events:
            return True
        if time.monotonic() < self._retry_at:
            return False
        by_layer: dict[str, list[EntityUpdate]] = defaultdict(list)
        for upd in self._pending.values():
            by_layer[upd.layer].append(upd)
        next_seq = dict(self._seq)
        for layer, updates in by_layer.items():
            start = next_seq.get(layer, 0)
            updates[:] = [msgspec.structs.replace(u, seq=start + i + 1) for i, u in enumerate(updates)]
            next_seq[layer] = start + len(updates)
        try:
            pipe = self.client.pipeline(transaction=False)
            for layer, updates in by_layer.items():
                live = {u.id: encode(u) for u in updates if not u.gone}
                gone = [u.id for u in updates if u.gone]
                if live:
                    pipe.hset(channels.state_key(layer), mapping=live)
                if gone:
                    pipe.hdel(channels.state_key(layer), *gone)
                for i in range(0, len(updates), CHUNK):
                    pipe.publish(channels.entity_channel(layer), encode(updates[i:i + CHUNK]))
            for ev in self._pending_events:
                raw = encode(ev)
                pipe.lpush(channels.RECENT_EVENTS_KEY, raw)
                pipe.publish(channels.EVENTS_CHANNEL, raw)
            if self._pending_events:
                pipe.ltrim(channels.RECENT_EVENTS_KEY, 0, channels.RECENT_EVENTS_KEEP - 1)
            pipe.execute()
        except REDIS_DOWN as exc:
            self.failures += 1
            self._retry_at = time.monotonic() + self._backoff
            if self.failures == 1 or self.failures % 20 == 0:
                log.warning("Redis unreachable (%s); %d updates kept, retry in %.1fs",
                            exc, len(self._pending), self._backoff)
            self._backoff = min(self._backoff * 2, 10.0)
            return False
        if self.failures:
            log.info("Redis reachable again after %d failed flushes", self.failures)
        self._seq.update(next_seq)
        self.published += len(self._pending) + len(self._pending_events)
        self._pending.clear()
        self._pending_events.clear()
        self.failures = 0
        self._backoff = 0.5
        return True
