"""The one life cycle every field-feed adapter follows: configure, connect, parse, validate, publish,
report health.

An adapter owns one thread and one Publisher (its own `src`, so sequence numbers stay per producer).
`ingest()` is the whole parse-validate-publish step for one raw message and is what tests and the
benchmark drive directly; `run()` is the transport loop (poll, subscribe, receive). Anything raised
inside the loop is logged and retried with back-off: one bad message or a dead peer never ends the
process.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import redis

from spine.contract import RejectLog
from spine.geography import ServiceArea, service_area
from spine.publisher import Publisher

__all__ = ["Adapter", "AdapterStats", "Clock", "ServiceArea", "WallClock", "fetch", "service_area"]


class Clock(Protocol):
    """Where an adapter reads time: real time live, a capture's own time in a replay (feeds.replay)."""

    def time(self) -> float: ...  # seconds since the epoch (source timestamps are compared to it)

    def monotonic(self) -> float: ...  # seconds, for ages and rate limits


class WallClock:
    """The real clocks; what every live adapter uses."""

    @staticmethod
    def time() -> float:
        return time.time()

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


WALL_CLOCK = WallClock()


@dataclass
class AdapterStats:
    messages: int = 0  # accepted source records (vehicles, observations, packets...)
    last_message_at: float | None = None  # monotonic time of the last accepted record
    last_source_ts_ms: int | None = None  # the newest source timestamp of an accepted record
    connected: bool = False
    # What the last batch (one accepted() call: a poll, a payload) did, and the reject counts at that
    # moment: health tells "every record rejected" (an error, with its main reason) from "quiet".
    batch_accepted: int = 0
    batch_rejects: dict[str, int] = field(default_factory=dict)
    rejects_at_batch: dict[str, int] = field(default_factory=dict)
    error: str = ""
    # What the peer itself says of its own state (Frigate's `available` last will): "down" when every
    # peer of the source said it is offline, "partial" when some did. Health shows it at once rather
    # than after a contract period of silence, since the peer has told us.
    peer_state: str = ""
    started_at: float = field(default_factory=time.monotonic)


class Adapter(ABC):
    """Base of every source. Subclasses set `source`, `layer`, and implement ingest() and run_once()."""

    source: ClassVar[str]
    layer: ClassVar[str]

    def __init__(self, client: redis.Redis | None, contract_s: float, area: ServiceArea | None = None,
                 *, clock: Clock | None = None, publisher: Publisher | None = None) -> None:
        # clock and publisher are seams for the replay tool (a capture's own time, nothing sent to
        # Redis); live adapters get the real clocks and a Publisher on `client`.
        self.client = client
        self.contract_s = contract_s
        self.area = area
        self.clock: Clock = clock or WALL_CLOCK
        self.publisher = publisher if publisher is not None else Publisher(client, src=self.source)  # type: ignore[arg-type]
        self.log = logging.getLogger(f"feeds.{self.source}")
        self.rejects = RejectLog(self.log)
        self.stats = AdapterStats(started_at=self.clock.monotonic())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # ingest() may be called from a client library's thread

    # --- life cycle ---------------------------------------------------------------------------
    def connect(self) -> None:  # noqa: B027 - optional hook
        """Open the transport; the default (polling sources) has nothing to open."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the transport."""

    @abstractmethod
    def ingest(self, raw: bytes, **context: str) -> int:
        """Parse, validate and queue one raw message; returns the number of accepted records."""

    @abstractmethod
    def run_once(self) -> None:
        """One step of the transport loop (one poll, or one receive with a short timeout)."""

    def tick(self) -> None:  # noqa: B027 - optional hook
        """Periodic housekeeping after each step (fading stale entities); default none."""

    def flush(self) -> bool:
        with self._lock:
            return self.publisher.flush()

    def run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if not self.stats.connected:
                    self.connect()
                    self.stats.connected = True
                    self.stats.error = ""
                    backoff = 0.5
                self.run_once()
                self.tick()
                self.flush()
            except Exception as exc:
                self.stats.connected = False
                self.stats.error = f"{type(exc).__name__}: {exc}"[:300]
                self.log.warning("%s: %s (retry in %.1fs)", self.source, self.stats.error, backoff)
                self._safe_close()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 15.0)
        self._safe_close()
        self.flush()

    def _safe_close(self) -> None:
        try:
            self.close()
        except Exception:
            self.log.debug("close failed", exc_info=True)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name=f"feed-{self.source}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    # --- helpers for subclasses -------------------------------------------------------------------
    def reject(self, reason: str, detail: str) -> None:
        self.rejects.add(reason, detail, self.source)

    def accepted(self, count: int = 1, source_ts_ms: int | None = None) -> None:
        """Count `count` records that reach the screens (call it after dropping what is not shown).

        Every call ends a batch: the rejects since the previous call are kept with it, so a poll
        whose every record was refused reads as an error, not as a healthy feed with 0 messages.
        """
        st = self.stats
        now = dict(self.rejects.counts)
        st.batch_rejects = {k: n - st.rejects_at_batch.get(k, 0) for k, n in now.items()
                            if n > st.rejects_at_batch.get(k, 0)}
        st.rejects_at_batch = now
        st.batch_accepted = count
        st.messages += count
        st.last_message_at = self.clock.monotonic()
        # Callers pass the newest accepted record's time (or, for a batch with no records at all,
        # the source's own "as of" time): old fixes that were dropped must not date the data.
        if source_ts_ms is not None and (st.last_source_ts_ms is None
                                         or source_ts_ms > st.last_source_ts_ms):
            st.last_source_ts_ms = source_ts_ms

    def in_area(self, lat: float, lon: float, what: str) -> bool:
        if not (math.isfinite(lat) and math.isfinite(lon)) or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            self.reject("invalid:position", f"{what}: {lat!r}, {lon!r}")
            return False
        if self.area is not None and not self.area.contains(lat, lon):
            self.reject("outside_service_area", f"{what}: {lat:.5f}, {lon:.5f}")
            return False
        return True


MAX_FETCH_BYTES = 64 * 1024 * 1024


def fetch(url: str, timeout: float = 10.0) -> bytes:
    """GET an http(s) URL or read a file (path or file:// URL); refuses bodies over 64 MiB."""
    import urllib.parse
    import urllib.request
    from pathlib import Path

    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        req = urllib.request.Request(url, headers={"User-Agent": "incheon-control-room/feeds"})
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            body = resp.read(MAX_FETCH_BYTES + 1)
    elif parts.scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parts.path) if parts.scheme == "file" else url)
        with path.open("rb") as f:
            body = f.read(MAX_FETCH_BYTES + 1)
    else:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r}")
    if len(body) > MAX_FETCH_BYTES:
        raise ValueError(f"{url}: body over {MAX_FETCH_BYTES} bytes")
    return body
