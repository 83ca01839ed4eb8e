"""Publishing to Redis: latest state in a hash per layer, then one PUBLISH per layer per flush.

Producers call `Publisher.update()` as often as they like and `flush()` once per tick. If Redis
is down the pending updates stay buffered (latest wins per entity) and go out after it returns,
so a restarted Redis costs freshness, never a crashed producer.

A restart must not lose the picture either, even for entities that never change (a camera, an
air station between hourly readings) and for what a producer writes once (route shapes, the air
history). So the Publisher keeps the last update of every live entity and the writers of such
once-written data (`retain()`), and writes all of it again, published, whenever Redis may have
lost it:
  * after a failed flush (Redis was unreachable, so it may have restarted empty);
  * when its marker key is gone: every `probe_s` a flush refreshes `cc:v1:publisher:<src>:<id>`
    (one EXPIRE); a Redis that restarted without its data, was replaced, or was flushed has none;
and, for slow layers, every `refresh_s` it rewrites their state hashes without publishing
(browsers already hold them), so a lost hash entry heals on its own.

One bad key must not stop the rest: a flush is one pipeline, and an error reply for one command
(WRONGTYPE: any process with a producer's ACL user can `SET cc:v1:state:bus x`) is a key problem,
counted, logged at most once a minute per key and listed in `poisoned`, while every other command
of that flush counts as sent. Only a connection error or a server-wide refusal (MISCONF, READONLY,
OOM, LOADING...) means "Redis is not taking writes now" and keeps everything for a resend.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from spine import channels
from spine.contract import EntityUpdate, Event, encode, now_ms

log = logging.getLogger(__name__)

CHUNK = 500  # updates per PUBLISH; keeps each message well under the gateway's size limit
# What an unreachable, restarting or refusing Redis raises (a full disk gives MISCONF, a replica
# after failover READONLY): every caller treats them as "Redis is not taking writes now".
REDIS_DOWN = (redis.RedisError, OSError)
# Slow layers: their state hashes are rewritten this often (seconds) even when nothing changed.
REFRESH_S: dict[str, float] = {"camera": 60.0, "air": 60.0}
PROBE_S = 1.0  # how often an idle publisher checks that Redis still holds what it wrote
MARKER_TTL_S = 3600  # a dead producer's marker goes away by itself
MAX_BACKOFF_S = 2.0  # a Redis back after a restart is written to within this
# Error replies that refuse every write, whatever the key: the flush failed as a whole.
SERVER_WIDE = ("MISCONF", "READONLY", "OOM", "LOADING", "BUSY", "MASTERDOWN", "NOREPLICAS",
               "CLUSTERDOWN", "TRYAGAIN", "NOAUTH")
KEY_ERROR_LOG_EVERY_S = 60.0
MAX_POISONED = 64  # keys remembered in `poisoned` (the count goes on beyond)


def server_wide(exc: redis.ResponseError) -> bool:
    return isinstance(exc, redis.exceptions.ReadOnlyError | redis.exceptions.OutOfMemoryError) \
        or str(exc).startswith(SERVER_WIDE)


class _FlushRefused(Exception):
    """A server-wide error reply: handled like an unreachable Redis."""


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def connect(url: str) -> redis.Redis:
    # RESP2: pub/sub payloads come back as plain bytes on every server version. Few, short retries:
    # the Publisher keeps what failed and retries itself, so a flush never blocks for seconds.
    return redis.Redis.from_url(url, protocol=2, socket_timeout=5, socket_connect_timeout=3,
                                health_check_interval=15,
                                retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), 2))


def marker_key(src: str, instance: str) -> str:
    return f"{channels.PREFIX}:publisher:{src}:{instance}"


Writer = Callable[[Any], None]  # called with a redis pipeline; queues the writes, never executes


@dataclass
class _Retained:
    write: Writer
    refresh_s: float | None
    due: float = 0.0  # monotonic time of the next write; 0: at the next flush


class Publisher:
    def __init__(self, client: redis.Redis, src: str | None = None,
                 refresh_s: Mapping[str, float] | None = None, probe_s: float = PROBE_S) -> None:
        self.client = client
        self.src = src or uuid.uuid4().hex[:8]
        self.marker = marker_key(self.src, uuid.uuid4().hex[:8])
        self.refresh_s = dict(REFRESH_S if refresh_s is None else refresh_s)
        self.probe_s = probe_s
        self._seq: dict[str, int] = defaultdict(int)
        self._pending: dict[tuple[str, str], EntityUpdate] = {}
        self._current: dict[tuple[str, str], EntityUpdate] = {}  # last live update per entity
        # Bounded: during a long outage only the newest events are kept (as the recent list does).
        self._pending_events: deque[Event] = deque(maxlen=channels.RECENT_EVENTS_KEEP)
        self._sent_events: deque[bytes] = deque(maxlen=channels.RECENT_EVENTS_KEEP)  # to restore the list
        self._retained: dict[str, _Retained] = {}
        self._resend = True  # the first flush writes the marker (and everything, which is all pending)
        self._refresh_due: dict[str, float] = {}
        self._probe_at = 0.0
        self._retry_at = 0.0
        self._backoff = 0.5
        self.published = 0
        self.failures = 0
        self.resends = 0  # full rewrites after Redis may have lost our data (not the first one)
        self._flushed_once = False
        self.key_errors = 0  # commands refused for one key (WRONGTYPE, NOPERM...), the flush went on
        self.repairs = 0  # state hashes / the recent-events list of the wrong type, deleted and rewritten
        self.poisoned: dict[str, str] = {}  # key -> last error, for feed health (bounded)
        self._key_log_at: dict[str, float] = {}

    def update(self, layer: str, id: str, lat: float, lon: float, props: dict[str, Any] | None = None,
               ts: int | None = None, gone: bool = False) -> EntityUpdate:
        # seq is given at flush time, so superseded updates never leave a gap.
        upd = EntityUpdate(v=1, layer=layer, id=id, ts=ts or now_ms(), seq=0,
                           lat=lat, lon=lon, props=props or {}, src=self.src, gone=gone)
        key = (layer, id)
        self._pending[key] = upd
        if gone:
            self._current.pop(key, None)
        else:
            self._current[key] = upd
        return upd

    def event(self, event: Event) -> None:
        self._pending_events.append(event)

    def retain(self, name: str, write: Writer, refresh_s: float | None = None) -> None:
        """Something written once (route shapes, a history), by `write(pipeline)`: written at the next
        flush, again whenever Redis may have lost it, and every `refresh_s` if given. The same name
        replaces the previous writer."""
        self._retained[name] = _Retained(write, refresh_s)

    def forget(self, name: str) -> None:
        self._retained.pop(name, None)

    @property
    def current_count(self) -> int:
        return len(self._current)

    def flush(self) -> bool:
        """Send what is pending (and rewrite what Redis may have lost); False when Redis is unreachable."""
        now = time.monotonic()
        refresh = [layer for layer, every in self.refresh_s.items()
                   if now >= self._refresh_due.setdefault(layer, now + every)]
        retained = [r for r in self._retained.values() if now >= r.due]
        probe = now >= self._probe_at
        if not (self._pending or self._pending_events or self._resend or refresh or retained or probe):
            return True
        if now < self._retry_at:
            return False
        resend = self._resend
        if resend:
            updates = [*self._current.values(), *(u for u in self._pending.values() if u.gone)]
            retained = list(self._retained.values())
        else:
            updates = list(self._pending.values())
        by_layer: dict[str, list[EntityUpdate]] = defaultdict(list)
        for upd in updates:
            by_layer[upd.layer].append(upd)
        next_seq = dict(self._seq)
        for layer, ups in by_layer.items():
            start = next_seq.get(layer, 0)
            ups[:] = [msgspec.structs.replace(u, seq=start + i + 1) for i, u in enumerate(ups)]
            next_seq[layer] = start + len(ups)
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.expire(self.marker, MARKER_TTL_S)  # result[0]: did Redis keep what we wrote?
            for layer, ups in by_layer.items():
                live = {u.id: encode(u) for u in ups if not u.gone}
                gone = [u.id for u in ups if u.gone]
                if live:
                    pipe.hset(channels.state_key(layer), mapping=live)
                if gone:
                    pipe.hdel(channels.state_key(layer), *gone)
                for i in range(0, len(ups), CHUNK):
                    chunk = encode(ups[i:i + CHUNK])
                    pipe.publish(channels.entity_channel(layer), chunk)
                    # The durable path of the history writer (its consumer group), the same bytes;
                    # a resent flush appends again: the writer's rows are idempotent.
                    pipe.xadd(channels.UPDATES_STREAM, {"u": chunk}, maxlen=channels.UPDATES_STREAM_MAXLEN,
                              approximate=True)
            if not resend:
                self._queue_refresh(pipe, [layer for layer in refresh if layer not in by_layer])
            for r in retained:
                r.write(pipe)
            for ev in self._pending_events:
                raw = encode(ev)
                pipe.lpush(channels.RECENT_EVENTS_KEY, raw)
                pipe.publish(channels.EVENTS_CHANNEL, raw)
                # The durable path (the alarm service's consumer group). A flush that is resent
                # after an unclear failure may append an event twice: consumers dedupe on its id.
                pipe.xadd(channels.EVENTS_STREAM, {"e": raw}, maxlen=channels.EVENTS_STREAM_MAXLEN,
                          approximate=True)
            if self._pending_events:
                pipe.ltrim(channels.RECENT_EVENTS_KEY, 0, channels.RECENT_EVENTS_KEEP - 1)
            if resend:
                pipe.set(self.marker, 1, ex=MARKER_TTL_S)
                if self._flushed_once and self._sent_events and not self.client.exists(self.marker):
                    self._restore_events(pipe)
            sent = [args for args, _ in pipe.command_stack]  # execute() empties the stack
            results = pipe.execute(raise_on_error=False)
            refused = [(args, r) for args, r in zip(sent, results, strict=True)
                       if isinstance(r, redis.ResponseError)]
            if any(server_wide(r) for _, r in refused):
                raise _FlushRefused(next(str(r) for _, r in refused if server_wide(r)))
            kept = results[0]
        except (*REDIS_DOWN, _FlushRefused) as exc:
            self.failures += 1
            self._resend = True  # it may come back empty: write everything, not just what is pending
            self._retry_at = time.monotonic() + self._backoff
            if self.failures == 1 or self.failures % 20 == 0:
                log.warning("Redis unreachable or refusing writes (%s); %d updates kept, retry in %.1fs",
                            exc, len(self._pending), self._backoff)
            self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)
            return False
        if self.failures:
            log.info("Redis reachable again after %d failed flushes", self.failures)
        self._seq.update(next_seq)
        self.published += len(updates) + len(self._pending_events)
        self._sent_events.extend(encode(ev) for ev in self._pending_events)
        self._pending.clear()
        self._pending_events.clear()
        self.failures = 0
        self._backoff = 0.5
        self._probe_at = now + self.probe_s
        for layer in refresh if not resend else self.refresh_s:
            self._refresh_due[layer] = now + self.refresh_s[layer]
        for r in retained:
            r.due = now + r.refresh_s if r.refresh_s else float("inf")
        if self.poisoned:  # a key written fine now (someone deleted the bad value) is no longer reported
            bad = {_text(args[1]) for args, _ in refused}
            for args, _ in zip(sent, results, strict=True):
                if len(args) > 1 and (key := _text(args[1])) in self.poisoned and key not in bad:
                    del self.poisoned[key]
        if refused:
            self._key_problems(refused)  # after the bookkeeping: a repair rewrites with the new seq
        if resend:
            self._resend = False
            self.resends += self._flushed_once
            self._flushed_once = True
            return True
        if not kept:  # (an error reply is truthy: a refused EXPIRE is a key problem, not a lost marker)
            # Our marker is gone: this Redis lost (or never had) what we wrote. Write it all now.
            log.warning("Redis lost this producer's state (restart or flush): republishing %d entities "
                        "and %d retained items", len(self._current), len(self._retained))
            self._resend = True
            return self.flush()
        return True

    def _key_problems(self, refused: list[tuple[tuple[Any, ...], redis.ResponseError]]) -> None:
        """Count and report commands refused for their key; repair the keys this publisher shares
        the ownership of (see _repair)."""
        now = time.monotonic()
        wrong: set[str] = set()
        for args, exc in refused:
            self.key_errors += 1
            key = _text(args[1]) if len(args) > 1 else "?"
            if key in self.poisoned or len(self.poisoned) < MAX_POISONED:
                self.poisoned[key] = f"{_text(args[0])}: {exc}"[:200]
            if now - self._key_log_at.get(key, float("-inf")) >= KEY_ERROR_LOG_EVERY_S:
                self._key_log_at[key] = now
                log.warning("Redis refused %s on %s (%s); the rest of the flush went out [%d key errors]",
                            _text(args[0]), key, exc, self.key_errors)
            if str(exc).startswith("WRONGTYPE"):
                wrong.add(key)
        for key in wrong:
            self._repair(key)

    def _repair(self, key: str) -> None:
        """A state hash or the recent-events list that holds another type holds nothing any reader
        can use (the gateway skips it, every producer's write to it fails), so deleting it loses no
        data and is the only way the layer ever updates again; no operator has to notice first.
        Only these keys, whose type the contract fixes, are touched; TYPE is asked first so a key
        another producer has already repaired (and refilled) is left alone. Other keys (a retained
        writer's) are only reported."""
        if key == channels.RECENT_EVENTS_KEY:
            want = "list"
        elif key.startswith(channels.state_key("")):
            want = "hash"
        else:
            return
        try:
            kind = _text(self.client.type(key))
            if kind in (want, "none"):
                return
            pipe = self.client.pipeline(transaction=False)
            pipe.delete(key)
            if want == "hash":
                self._queue_refresh(pipe, [key.removeprefix(channels.state_key(""))])
            elif self._sent_events:
                pipe.rpush(key, *reversed(self._sent_events))  # newest first, as LPUSH leaves it
            pipe.execute()
        except REDIS_DOWN as exc:
            log.warning("could not repair %s (%s): retried at its next refused write", key, exc)
            return
        self.repairs += 1
        self.poisoned.pop(key, None)
        log.warning("%s held a %s, not a %s: deleted and rewritten with this producer's data",
                    key, kind, want)

    def _restore_events(self, pipe: Any) -> None:
        """Put the events we sent back into the recent list (not published again: they are not new),
        merged with what the list holds now (other producers' restored or new events), newest first."""
        by_id: dict[str, tuple[int, bytes]] = {}
        pending = [encode(ev) for ev in self._pending_events]  # pushed earlier in this same pipeline
        try:
            listed = self.client.lrange(channels.RECENT_EVENTS_KEY, 0, -1)
        except redis.ResponseError as exc:  # not a list (WRONGTYPE): the RENAME below replaces it
            if server_wide(exc):
                raise
            listed = []
        for raw in [*listed, *self._sent_events, *pending]:
            try:
                doc = msgspec.json.decode(raw)
                by_id[str(doc["id"])] = (int(doc["ts"]), raw)
            except (msgspec.DecodeError, KeyError, TypeError, ValueError):
                continue
        merged = [raw for _, raw in sorted(by_id.values(), key=lambda tr: tr[0], reverse=True)]
        merged = merged[:channels.RECENT_EVENTS_KEEP]
        tmp = f"{channels.RECENT_EVENTS_KEY}-restore:{self.src}"
        pipe.delete(tmp)
        pipe.rpush(tmp, *merged)
        pipe.rename(tmp, channels.RECENT_EVENTS_KEY)

    def _queue_refresh(self, pipe: Any, layers: list[str]) -> None:
        """Rewrite the state hash entries of slow layers, unpublished, with their current seq."""
        if not layers:
            return
        rows: dict[str, dict[str, bytes]] = defaultdict(dict)
        for (layer, id_), upd in self._current.items():
            if layer in layers:
                rows[layer][id_] = encode(msgspec.structs.replace(upd, seq=self._seq[layer]))
        for layer, mapping in rows.items():
            pipe.hset(channels.state_key(layer), mapping=mapping)
