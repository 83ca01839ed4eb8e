"""Bounded audit rows for events anyone can cause without signing in.

A failed or throttled sign-in is worth an audit row, but a script that sends a thousand bad tokens
must not write a thousand rows (the audit table is what the supervisor reads, and SQLite has one
writer). So per action and address, the first few events of a window are written as they come;
the rest are counted, and one summary row ("audit_suppressed", target = the action, detail = the
count and up to ten of the names tried) is written once the window has passed.

Kept in memory per web process, like LoginThrottle, and bounded in the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

# username, action, target, remote_addr, detail: Store.audit's signature.
AuditWriter = Callable[[str, str, str, str, str], None]
SUMMARY_ACTION = "audit_suppressed"
_NAMES_KEPT = 10


@dataclass
class _Window:
    started: float
    written: int = 0
    suppressed: int = 0
    names: set[str] = field(default_factory=set)


class AuditSampler:
    def __init__(self, write: AuditWriter, first: int = 5, window_s: float = 300.0, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._write = write
        self.first = first
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock  # a test moves time on instead of sleeping through a window
        self._lock = threading.Lock()  # waitress threads share one sampler
        self._windows: dict[tuple[str, str], _Window] = {}
        self._swept_at = clock()

    def audit(self, username: str, action: str, remote_addr: str = "", target: str = "") -> bool:
        """Write the row now, or count it for the window's summary; True when written now."""
        now = self._clock()
        summaries: list[tuple[tuple[str, str], _Window]] = []
        with self._lock:
            if now - self._swept_at >= 1.0 or len(self._windows) >= self.max_keys:
                summaries += self._take_ended(now)
            key = (action, remote_addr[:64])
            win = self._windows.get(key)
            if win is None:
                win = self._windows[key] = _Window(started=now)
            write_now = win.written < self.first
            if write_now:
                win.written += 1
            else:
                win.suppressed += 1
                if len(win.names) < _NAMES_KEPT:
                    win.names.add(username[:64])
        # Database writes outside the lock: a slow write must not hold every other request.
        for (act, addr), ended in summaries:
            self._summary(act, addr, ended)
        if write_now:
            self._write(username, action, target, remote_addr, "")
        return write_now

    def flush(self) -> None:
        """Write the summaries of every window, ended or not (at shutdown, and for tests)."""
        with self._lock:
            taken = list(self._windows.items())
            self._windows.clear()
        for (act, addr), win in taken:
            self._summary(act, addr, win)

    def _take_ended(self, now: float) -> list[tuple[tuple[str, str], _Window]]:
        self._swept_at = now
        ended = [k for k, w in self._windows.items() if now - w.started >= self.window_s]
        if len(self._windows) - len(ended) >= self.max_keys:
            # Still full of live windows (many addresses at once): close the oldest half early.
            done = set(ended)
            live = sorted((k for k in self._windows if k not in done), key=lambda k: self._windows[k].started)
            ended += live[: len(live) // 2]
        return [(k, self._windows.pop(k)) for k in ended]

    def _summary(self, action: str, addr: str, win: _Window) -> None:
        if win.suppressed == 0:
            return
        names = ", ".join(sorted(win.names))
        detail = (f"{win.suppressed} more {action} from this address within {self.window_s:.0f} s "
                  f"were counted, not written one by one; names tried include: {names}")
        self._write("?", SUMMARY_ACTION, action, addr, detail)
