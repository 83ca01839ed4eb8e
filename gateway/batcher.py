"""Latest-wins batching, frame numbering and resync decisions, with no sockets and no Redis.

The gateway feeds decoded updates and events in; `take()` says what to send next:
  - `resync`: layers whose state must be re-read from Redis and sent as a snapshot frame
    (a producer's sequence jumped, the pending map overflowed, or Redis came back), numbered
    `snapshot_n`;
  - `updates`/`events`: one batch frame numbered `batch_n` (latest update per entity wins).
`n` counts snapshot and batch frames, so a page that sees a gap knows it missed one and asks
for a fresh snapshot. Pure and synchronous so every decision is unit-tested without timing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from spine.contract import EntityUpdate, Event


@dataclass(frozen=True)
class Plan:
    """What to send now, in this order: a layer snapshot (if `resync`), then a batch (if `batch_n`)."""

    resync: tuple[str, ...] = ()
    snapshot_n: int | None = None
    updates: list[EntityUpdate] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    batch_n: int | None = None
    alarms: list = field(default_factory=list)  # changed alarms (gateway/alarms.py AlarmView)
    alarm_resync: bool = False  # the batch carries the whole open-alarm hash instead (read by the server)


@dataclass
class BatcherCounts:
    received: int = 0
    coalesced: int = 0
    gaps: int = 0
    batches: int = 0
    layer_snapshots: int = 0
    pending_overflows: int = 0  # updates not held because the window held too many: layer resynced
    events_dropped: int = 0  # events past the per-window cap (still in the recent-events list)
    alarms_dropped: int = 0  # alarm changes past the per-window cap: the window resends the hash instead


class Batcher:
    def __init__(self, layers: Iterable[str], max_pending: int = 100_000, max_events: int = 2_000,
                 resync_min_s: float = 1.0, max_sources: int = 10_000) -> None:
        self.layers = tuple(layers)
        self.n = 0
        self.counts = BatcherCounts()
        self._pending: dict[tuple[str, str], EntityUpdate] = {}
        self._events: list[Event] = []
        self._alarms: dict[int, object] = {}  # alarm id -> latest change in this window
        self._alarm_resync = False
        self._resync: set[str] = set()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._last_resync: dict[str, float] = {}
        self._max_pending = max_pending
        self._max_events = max_events
        self._resync_min_s = resync_min_s  # a flapping producer cannot make us re-read a layer per window
        self._max_sources = max_sources

    # ---- input ------------------------------------------------------------------------------

    def add_update(self, upd: EntityUpdate) -> None:
        self.counts.received += 1
        self._check_seq(upd)
        key = (upd.layer, upd.id)
        if key in self._pending:
            self.counts.coalesced += 1
        elif len(self._pending) >= self._max_pending:
            # Holding more would grow without bound; the state hash has it, so resend the layer.
            self.counts.pending_overflows += 1
            self._resync.add(upd.layer)
            return
        self._pending[key] = upd

    def add_event(self, ev: Event) -> None:
        self.counts.received += 1
        if len(self._events) >= self._max_events:
            self.counts.events_dropped += 1
            return
        self._events.append(ev)

    def add_alarms(self, alarms: Iterable) -> None:
        """Changed alarms (latest per id wins inside a window); too many: send the whole hash instead."""
        for a in alarms:
            self.counts.received += 1
            if a.id not in self._alarms and len(self._alarms) >= self._max_events:
                self.counts.alarms_dropped += 1
                self._alarm_resync = True
                continue
            self._alarms[a.id] = a

    def request_alarm_resync(self) -> None:
        self._alarm_resync = True

    def _check_seq(self, upd: EntityUpdate) -> None:
        key = (upd.layer, upd.src)
        last = self._last_seq.get(key)
        if last is None and len(self._last_seq) >= self._max_sources:
            self._last_seq.clear()  # invented src names: forget, rather than grow
        if last is not None and upd.seq > last + 1:
            # A message was lost between the producer and us: resend that layer's state.
            self.counts.gaps += 1
            self._resync.add(upd.layer)
        # Always the latest: a lower seq is a restarted producer, whose gaps must not go unseen.
        self._last_seq[key] = upd.seq

    def redis_connected(self, resync_all: bool) -> None:
        """A (re)subscription: sequences start over; resend every layer only if something may be missed.

        On the very first connection with no page served stale data there is nothing to recover,
        and a snapshot broadcast then would only race with pages that are connecting.
        """
        self._last_seq.clear()
        if resync_all:
            self._resync.update(self.layers)
            self._last_resync.clear()

    def request_resync(self, layers: Iterable[str]) -> None:
        self._resync.update(layers)

    # ---- output -----------------------------------------------------------------------------

    def has_work(self) -> bool:
        return bool(self._pending or self._events or self._resync or self._alarms or self._alarm_resync)

    def take(self, now: float) -> Plan | None:
        """The next frames to send (None: nothing), numbering them; `now` is a monotonic time."""
        due = tuple(sorted(layer for layer in self._resync
                           if now - self._last_resync.get(layer, float("-inf")) >= self._resync_min_s))
        snapshot_n = None
        if due:
            self._resync.difference_update(due)
            for layer in due:
                self._last_resync[layer] = now
            # Pending updates of those layers are already in the state the snapshot reads.
            self._pending = {k: u for k, u in self._pending.items() if k[0] not in due}
            self.n += 1
            snapshot_n = self.n
            self.counts.layer_snapshots += 1
        if not self._pending and not self._events and not self._alarms and not self._alarm_resync:
            return Plan(resync=due, snapshot_n=snapshot_n) if due else None
        updates = list(self._pending.values())
        events = self._events
        alarms, alarm_resync = ([], True) if self._alarm_resync else (list(self._alarms.values()), False)
        self._pending = {}
        self._events = []
        self._alarms = {}
        self._alarm_resync = False
        self.n += 1
        self.counts.batches += 1
        return Plan(resync=due, snapshot_n=snapshot_n, updates=updates, events=events, batch_n=self.n,
                    alarms=alarms, alarm_resync=alarm_resync)
