"""Feed health: one JSON document per source in the Redis hash `cc:v1:health`, every few seconds.

Each source has a freshness contract (GTFS-rt 30 s, MAVLink 2 s, AirKorea 1 h, sensors per config).
A source whose last accepted record is older than its contract is `stale`; one that never connected
or lost its transport is `down`. The data's own age counts as well as arrival: a feed that keeps
answering with a newest record (source timestamp) older than twice its contract is `stale` however
often bytes arrive. A source whose every record is refused is `error`, with its main reject reason in
`error`. Records that are only noted (a vehicle reported without a position: not on the map, not a
fault of the feed) are counted under `notes`, not as rejects. Layers get their own entry
(`layer:<name>`), stale when every source feeding that layer is not `ok`, so the UI can grey a whole
map layer with one lookup.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Literal, Protocol

import msgspec
import redis

from spine import channels
from spine.contract import now_ms
from spine.publisher import REDIS_DOWN

log = logging.getLogger(__name__)

State = Literal["starting", "ok", "stale", "down", "error"]
NOT_OK: tuple[str, ...] = ("stale", "down", "error")

# Reasons that describe records the feed may legitimately carry (a subway car with no GPS, a vehicle
# between trips): counted as notes, never as a reject storm; an error only when nothing else came.
NOTE_REASONS = frozenset({"missing:position"})

# The newest accepted record may be this many contract periods old before the data counts as
# stale: sources timestamp a record when measured, and agencies publish some time after that.
SOURCE_AGE_FACTOR = 2.0


class Source(Protocol):
    """What health reads of a producer (feeds.adapter.Adapter is one); the spine never imports feeds."""

    source: str
    layer: str
    contract_s: float
    stats: Any
    rejects: Any


class SourceHealth(msgspec.Struct, omit_defaults=False):
    source: str
    layer: str
    state: State
    age_s: float | None  # since the last accepted record
    contract_s: float
    msgs_per_s: float
    messages: int
    rejects: int
    reject_reasons: dict[str, int]
    connected: bool
    error: str
    source_age_s: float | None  # now minus the newest source timestamp (clock skew shows here)
    ts: int
    notes: dict[str, int] = {}  # records counted but not shown and not a fault (NOTE_REASONS)


class LayerHealth(msgspec.Struct):
    layer: str
    stale: bool
    sources: list[str]
    ts: int


def _main_reason(counts: dict[str, int]) -> str:
    reason, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
    return f"every record rejected: {reason} ({n})"


def _refused(adapter: Source, st: Any, age: float | None) -> dict[str, int]:
    """Rejects of the newest batch when it accepted nothing, or of everything since the last
    accepted record when that is older than the contract (or none ever came): {} otherwise."""
    if getattr(st, "batch_accepted", None) == 0 and getattr(st, "batch_rejects", None):
        return dict(st.batch_rejects)
    since = getattr(st, "rejects_at_batch", None)
    if since is None or not (age is None or age > adapter.contract_s):
        return {}
    return {k: n - since.get(k, 0) for k, n in adapter.rejects.counts.items() if n > since.get(k, 0)}


def assess(adapter: Source, rate: float, now: float | None = None,
           wall_ms: int | None = None) -> SourceHealth:
    """One source's health. `now` (monotonic) dates arrivals; `wall_ms` (epoch ms) dates the data's own
    timestamps. Both default to the real clocks; the replay tool passes its capture's clock."""
    now = time.monotonic() if now is None else now
    wall_ms = now_ms() if wall_ms is None else wall_ms
    st = adapter.stats
    age = None if st.last_message_at is None else round(now - st.last_message_at, 2)
    if age is None:
        # Grace of one contract period after start before an empty source counts as a fault.
        quiet = now - st.started_at
        state: State = "starting" if quiet < adapter.contract_s else ("down" if not st.connected else "stale")
    elif age > adapter.contract_s:
        state = "stale"
    else:
        state = "ok"
    if not st.connected and age is not None and age > adapter.contract_s:
        state = "down"
    src_age = None if st.last_source_ts_ms is None else round((wall_ms - st.last_source_ts_ms) / 1000, 1)
    error = st.error
    if state == "ok" and src_age is not None and src_age > SOURCE_AGE_FACTOR * adapter.contract_s:
        # Bytes arrive, but what they carry is old (a frozen feed replaying yesterday's vehicles).
        state = "stale"
        error = error or f"newest record is {src_age:.0f} s old (contract {adapter.contract_s:g} s)"
    peer = getattr(st, "peer_state", "")
    if peer == "down":
        state = "down"
    elif peer == "partial" and state in ("ok", "stale"):
        state = "error"  # part of the source's cameras are offline: shown red with the server named
    counts = dict(adapter.rejects.counts)
    notes = {k: counts.pop(k) for k in NOTE_REASONS if k in counts}
    reasons = counts
    refused = _refused(adapter, st, age) if st.connected else {}
    if refused:
        state = "error"
        error = _main_reason(refused)[:300]
    # Keys Redis refuses to take from this producer (a value of the wrong type another process put
    # there): part of what it publishes is not reaching the screens, so the source is not "ok".
    poisoned = dict(getattr(getattr(adapter, "publisher", None), "poisoned", None) or {})
    if poisoned:
        reasons["redis_key_refused"] = len(poisoned)
        key, why = next(iter(poisoned.items()))
        error = error or f"Redis refuses writes to {len(poisoned)} key(s), e.g. {key}: {why}"[:300]
        state = "stale" if state == "ok" else state
    return SourceHealth(source=adapter.source, layer=adapter.layer, state=state, age_s=age,
                        contract_s=adapter.contract_s, msgs_per_s=round(rate, 2),
                        messages=st.messages, rejects=sum(reasons.values()),
                        reject_reasons=reasons, connected=st.connected,
                        error=error, source_age_s=src_age, ts=wall_ms, notes=notes)


class HealthWriter:
    """Writes the health hash on its own thread; a Redis outage only delays the next write."""

    def __init__(self, client: redis.Redis, adapters: Iterable[Source], interval_s: float = 2.0) -> None:
        self.client = client
        self.adapters = list(adapters)
        self.interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, SourceHealth | LayerHealth]:
        now = time.monotonic()
        out: dict[str, SourceHealth | LayerHealth] = {}
        for a in self.adapters:
            t0, n0 = self._last.get(a.source, (a.stats.started_at, 0))
            rate = (a.stats.messages - n0) / max(now - t0, 1e-3)
            self._last[a.source] = (now, a.stats.messages)
            out[a.source] = assess(a, rate, now)
        layers: dict[str, list[SourceHealth]] = {}
        for h in out.values():
            assert isinstance(h, SourceHealth)
            layers.setdefault(h.layer, []).append(h)
        for layer, hs in layers.items():
            stale = all(h.state in NOT_OK for h in hs)
            out[f"layer:{layer}"] = LayerHealth(layer=layer, stale=stale,
                                                sources=[h.source for h in hs], ts=now_ms())
        return out

    def write_once(self) -> bool:
        snap = self.snapshot()
        try:
            mapping = {k: msgspec.json.encode(v) for k, v in snap.items()}
            self.client.hset(channels.HEALTH_KEY, mapping=mapping)
        except REDIS_DOWN as exc:
            log.debug("health not written: %s", exc)
            return False
        return True

    def run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.write_once()

    def start(self) -> None:
        self.write_once()
        self._thread = threading.Thread(target=self.run, name="feed-health", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(3)
        self.write_once()
