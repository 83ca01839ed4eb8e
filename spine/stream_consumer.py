"""One consumer of a Redis Streams consumer group, and the loop that keeps a service on its feet.

The alarm service (the event stream -> alarms in SQL) and the history writer (the updates, event and
alarm-change streams -> history in SQL) read their streams the same way; this is that way, once:

    create_groups  the group on each stream, from the stream's start (id 0: entries written before
                   the first start are not lost), MKSTREAM; an existing group is kept as it is; a
                   stream this Redis user may not read is left out where the caller can do without it
    read           this consumer's own pending entries first (after a restart: read before, never
                   acknowledged), then, at most every `claim_every_s`, entries another consumer left
                   pending longer than `claim_idle_ms` (XAUTOCLAIM: one killed with -9), then new
                   entries (XREADGROUP >, every stream in one call, blocking at most `block_ms`);
                   never more than `batch` entries per stream and read
    trimmed        a pending entry the stream trimmed away before it was written (it comes back
                   without fields, or XAUTOCLAIM names it deleted) is counted in the RejectLog
                   ("trimmed"), handed to `on_trimmed` (the history writer records a gap) and
                   acknowledged: nothing is left of it to write
    ack            by the caller, after its SQL commit and never before: at-least-once delivery,
                   which an idempotent write (event id, history keys) makes exactly-once

`run_with_backoff` is the services' outer loop: start, step until stopped, and on a Redis error wait
(doubling) and start again; `serve` runs it until SIGTERM. Nothing here knows what an entry holds:
the caller decodes (and counts hostile entries), writes, and acknowledges every entry it was given.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import KW_ONLY, dataclass, field

import redis
from redis.exceptions import NoPermissionError

from spine.contract import RejectLog
from spine.publisher import REDIS_DOWN

log = logging.getLogger(__name__)

# (stream, entry id, fields): fields as Redis returns them (bytes -> bytes), never empty here.
Entry = tuple[str, bytes, dict[bytes, bytes]]
TrimmedHook = Callable[[str, list[bytes]], None]


def consumer_name(instance_env: str) -> str:
    """Stable per host and instance, so a restarted service re-reads its own pending entries at once
    (a second service on the same host sets `instance_env`)."""
    return f"{socket.gethostname()[:40]}-{os.environ.get(instance_env, '1')[:20]}"


def entry_ms(eid: bytes | str) -> int:
    """The time part of a stream entry id (milliseconds since the epoch)."""
    text = eid.decode() if isinstance(eid, bytes) else eid
    return int(text.partition("-")[0])


def _name(stream: bytes | str) -> str:
    return stream.decode() if isinstance(stream, bytes) else stream


@dataclass
class StreamConsumer:
    """One consumer (`consumer`) of `group` on `wanted` streams; see the module's text for the order
    of reads.

    `timers` is the owner's table of monotonic deadlines; the next XAUTOCLAIM is kept there under
    "claim", so a service's timers (and a test's "due now") stay in one place. `linger_s` > 0: after
    a small read of new entries, wait that long once for more, so one SQL transaction carries more
    of them. `before_new` runs before each read of new entries (the history writer's gap check).
    """

    r: redis.Redis
    group: str
    consumer: str
    wanted: tuple[str, ...]
    rejects: RejectLog
    _: KW_ONLY
    batch: int
    block_ms: int
    claim_idle_ms: int
    claim_every_s: float
    linger_s: float = 0.0
    timers: dict[str, float] = field(default_factory=dict)
    on_trimmed: TrimmedHook | None = None
    before_new: Callable[[], None] | None = None
    # The streams this user may read: all wanted ones until create_groups has asked Redis.
    streams: tuple[str, ...] = field(init=False)
    _own_pending: dict[str, bool] = field(init=False)

    def __post_init__(self) -> None:
        self.timers.setdefault("claim", 0.0)
        self.streams = self.wanted
        self._own_pending = dict.fromkeys(self.wanted, True)

    # -- the groups ---------------------------------------------------------------------------------
    def create_groups(self, optional: Collection[str] = ()) -> tuple[str, ...]:
        """The group on every wanted stream (kept where it exists); returns the streams it will read.
        A stream in `optional` that this Redis user may not read is left out; any other refusal
        raises. Also at every restart after a Redis error: a Redis restarted empty lost the groups,
        and this consumer's own pending entries are read first again."""
        streams = []
        for stream in self.wanted:
            try:
                self.r.xgroup_create(stream, self.group, id="0", mkstream=True)
            except NoPermissionError:
                if stream not in optional:
                    raise
                continue
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            streams.append(stream)
        self.streams = tuple(streams)
        self.restart()
        return self.streams

    def restart(self) -> None:
        """Read this consumer's own pending entries first again (after a Redis error)."""
        self._own_pending = dict.fromkeys(self.streams, True)

    # -- reading ------------------------------------------------------------------------------------
    def read(self) -> list[Entry]:
        """The next batch: own pending entries, else claimed ones (when due), else new ones."""
        return self.read_own_pending() or self.claim() or self.read_new()

    def read_own_pending(self) -> list[Entry]:
        """Entries this consumer was given and never acknowledged (it stopped before its commit).
        Read until a read comes back short, then no more until `restart`."""
        out: list[Entry] = []
        for stream in self.streams:
            if not self._own_pending.get(stream):
                continue
            got = self.r.xreadgroup(self.group, self.consumer, {stream: "0"}, count=self.batch)
            entries = got[0][1] if got else []
            if len(entries) < self.batch:
                self._own_pending[stream] = False
            trimmed = [eid for eid, fields in entries if not fields]
            if trimmed:
                self._trimmed(stream, trimmed)
                self.r.xack(stream, self.group, *trimmed)  # nothing left to write
            out += [(stream, eid, fields) for eid, fields in entries if fields]
        return out

    def claim(self) -> list[Entry]:
        """Entries other consumers left pending longer than `claim_idle_ms`, at most every
        `claim_every_s` (XAUTOCLAIM scans the pending list: not at every read)."""
        now = time.monotonic()
        if now < self.timers["claim"]:
            return []
        self.timers["claim"] = now + self.claim_every_s
        out: list[Entry] = []
        for stream in self.streams:
            res = self.r.xautoclaim(stream, self.group, self.consumer, self.claim_idle_ms,
                                    start_id="0-0", count=self.batch)
            entries = res[1] if len(res) > 1 else []
            # Redis 6.2 hands over a trimmed entry without fields (still pending: acknowledged
            # here); Redis 7 names them in a third part and has dropped them from the pending list.
            trimmed = [eid for eid, fields in entries if not fields]
            if trimmed:
                self._trimmed(stream, trimmed)
                self.r.xack(stream, self.group, *trimmed)
            if len(res) > 2 and res[2]:
                self._trimmed(stream, list(res[2]))
            out += [(stream, eid, fields) for eid, fields in entries if fields]
        if out:
            log.info("%s: claimed %d entries left pending by a stopped consumer", self.group, len(out))
        return out

    def read_new(self) -> list[Entry]:
        """New entries of every stream, in one call that blocks at most `block_ms`."""
        if self.before_new is not None:
            self.before_new()
        if not self.streams:
            return []
        out = self._new(self.batch, self.block_ms)
        if self.linger_s and 0 < len(out) < self.batch // 4:
            # A few entries: wait a moment for more, so one transaction (whose fixed cost, the
            # commit on PostgreSQL, the lock and the publish on both, is most of a small batch's)
            # carries more of them. Measured on the alarm service: p99 at 3,000/s on SQLite
            # 1.6 s -> 0.3 s, PostgreSQL at 1,500/s 0.7 s -> 0.09 s (docs/performance.md).
            time.sleep(self.linger_s)
            out += self._new(self.batch - len(out), None)
        return out

    def _new(self, count: int, block: int | None) -> list[Entry]:
        got = self.r.xreadgroup(self.group, self.consumer, dict.fromkeys(self.streams, ">"),
                                count=count, block=block)
        return [(_name(stream), eid, fields) for stream, entries in got or [] for eid, fields in entries]

    def _trimmed(self, stream: str, ids: list[bytes]) -> None:
        self.rejects.add("trimmed", f"{len(ids)} pending entries were trimmed from the stream", stream)
        if self.on_trimmed is not None:
            self.on_trimmed(stream, ids)

    # -- acknowledging -----------------------------------------------------------------------------
    def ack(self, entries: list[Entry]) -> int:
        """XACK every entry given (call only after the commit); returns the newest one's time in
        ms (0: none), for the caller's lag."""
        by_stream: dict[str, list[bytes]] = {}
        for stream, eid, _ in entries:
            by_stream.setdefault(stream, []).append(eid)
        newest = 0
        for stream, ids in by_stream.items():
            self.r.xack(stream, self.group, *ids)
            newest = max(newest, max(entry_ms(i) for i in ids))
        return newest


def run_with_backoff(stop: threading.Event, start: Callable[[], None], step: Callable[[], None],
                     logger: logging.Logger, *, pause_s: float = 0.0, first_s: float = 0.5,
                     max_s: float = 5.0) -> None:
    """Start, then step until `stop` is set (waiting `pause_s` after each step). Redis unavailable
    (REDIS_DOWN, at start or in a step): wait `first_s`, doubling up to `max_s`, then start again,
    since a Redis restarted empty has lost the consumer groups. Nothing acknowledged is lost:
    unacknowledged entries stay pending for this consumer, which reads them first after the start."""
    backoff = first_s
    started = False
    while not stop.is_set():
        try:
            if not started:
                start()
                started = True
            step()
            if pause_s:
                stop.wait(pause_s)
            backoff = first_s
        except REDIS_DOWN as exc:
            logger.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
            started = False
            stop.wait(backoff)
            backoff = min(backoff * 2, max_s)


def serve(run: Callable[[threading.Event], None], dispose: Callable[[], None]) -> None:
    """A service's process: `run` until SIGTERM (or Ctrl-C), then `dispose` (its SQL engines)."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        dispose()
