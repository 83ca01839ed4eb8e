"""What this web process refused and how much it wrote about it: sampled refusal audit rows and
busy history queries, readable by any control-room role at GET /api/health/web (dashboard/auth.py).

Refusals of a signed-in principal (the guard's `refused`, the agency links' `agency_refused`) are
audited, but a client that repeats a refused request must not write one row per request: the audit
table is what a supervisor reads, and SQLite has one writer. So per (principal, action, reason, path
prefix) the first refusal of each minute is written as it comes, the rest of that minute only
counted; when the minute has closed, one summary row (`audit_suppressed`, target "<action> <prefix>",
detail with the count and a few of the targets) is written: at the next refusal of any key (a sweep
at most once a second), at the next row of the same key, or when /api/health/web is read.

The path prefix is one of a fixed list (PREFIXES) or "/*": a client cannot make every request a new
key by varying the path. Kept in memory per web process, bounded like dashboard/audit_limit.py.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from dashboard.audit_limit import SUMMARY_ACTION, AuditWriter

WINDOW_S = 60.0
PREFIXES = frozenset({"api", "video", "agency", "assets", "_dash", "_reload", "_favicon", "wall",
                      "supervisor", "commander", "replay", "incidents", "device", "lang", "logout", "login"})
_TARGETS_KEPT = 5


def path_prefix(path: str) -> str:
    """`/api/alarms` -> `/api/`; a first segment not in PREFIXES -> `/*`."""
    first = path.lstrip("/").split("/", 1)[0]
    return f"/{first}/" if first in PREFIXES else "/*"


class WebCounters:
    """Thread-safe named counts (waitress threads share one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def get(self, name: str) -> int:
        with self._lock:
            return self._counts[name]

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))


COUNTERS = WebCounters()
EXTENSION = "cc_refusals"  # server.extensions key: the app's one RefusalSampler (dashboard/auth.py)


@dataclass
class _Minute:
    started: float
    username: str
    remote_addr: str
    suppressed: int = 0
    targets: list[str] = field(default_factory=list)


Key = tuple[str, str, str, str]  # principal, action, reason, prefix


class RefusalSampler:
    def __init__(self, write: AuditWriter, window_s: float = WINDOW_S, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, counters: WebCounters = COUNTERS) -> None:
        self._write = write
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock  # a test moves time on instead of sleeping through a minute
        self.counters = counters
        self._lock = threading.Lock()
        self._minutes: dict[Key, _Minute] = {}
        self._swept_at = clock()

    def refused(self, username: str, principal: str, action: str, reason: str, prefix: str,
                target: str = "", remote_addr: str = "") -> bool:
        """Write the refusal's row now (the first of its key this minute) or count it; True if written."""
        now = self._clock()
        key: Key = (principal[:96], action[:32], reason[:96], prefix[:32])
        with self._lock:
            sweep = now - self._swept_at >= 1.0 or len(self._minutes) >= self.max_keys
            ended = self._take_ended(now) if sweep else []
            minute = self._minutes.get(key)
            if minute is not None and now - minute.started >= self.window_s:
                ended.append((key, self._minutes.pop(key)))  # its summary goes before the new row
                minute = None
            write_now = minute is None
            if write_now:
                self._minutes[key] = _Minute(now, username[:64], remote_addr[:64])
            else:
                minute.suppressed += 1
                if len(minute.targets) < _TARGETS_KEPT and target[:80] not in minute.targets:
                    minute.targets.append(target[:80])
        self.counters.add("refusals")
        self.counters.add("refusal_rows" if write_now else "refusals_suppressed")
        # Database writes outside the lock: a slow write must not hold every other request.
        for k, m in ended:
            self._summary(k, m)
        if write_now:
            self._write(username, action, target, remote_addr, reason)
        return write_now

    def sweep(self) -> None:
        """Write the summaries of the minutes that have closed."""
        with self._lock:
            ended = self._take_ended(self._clock())
        for k, m in ended:
            self._summary(k, m)

    def flush(self) -> None:
        """Write every summary, closed or not (at shutdown, and for tests)."""
        with self._lock:
            taken = list(self._minutes.items())
            self._minutes.clear()
        for k, m in taken:
            self._summary(k, m)

    def _take_ended(self, now: float) -> list[tuple[Key, _Minute]]:
        self._swept_at = now
        ended = [k for k, m in self._minutes.items() if now - m.started >= self.window_s]
        if len(self._minutes) - len(ended) >= self.max_keys:
            # Still full of open minutes: close the oldest half early (their summaries are written).
            done = set(ended)
            live = sorted((k for k in self._minutes if k not in done), key=lambda k: self._minutes[k].started)
            ended += live[: len(live) // 2]
        return [(k, self._minutes.pop(k)) for k in ended]

    def _summary(self, key: Key, minute: _Minute) -> None:
        if minute.suppressed == 0:
            return
        principal, action, reason, prefix = key
        self.counters.add("refusal_summaries")
        detail = (f"{minute.suppressed} more {action} of {principal} ({reason}) under {prefix} within "
                  f"{self.window_s:.0f} s were counted, not written one by one; targets include: "
                  f"{', '.join(minute.targets)}")
        self._write(minute.username, SUMMARY_ACTION, f"{action} {prefix}", minute.remote_addr, detail)
