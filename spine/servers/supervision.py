"""Restart back-off for supervised child processes.

A part that keeps dying is restarted ever more slowly (min_s, doubling, up to max_s), so a crash
loop does not eat the machine; a part that ran `healthy_s` before dying is restarted at once
(min_s) again: one crash a day must not inherit yesterday's back-off. The supervisor schedules
restarts by deadline and never sleeps for them, so nothing else it watches (Redis) waits behind one.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RestartPolicy:
    min_s: float = 0.5
    max_s: float = 30.0
    healthy_s: float = 30.0
    _next: dict[str, float] = field(default_factory=dict)

    def delay(self, name: str, ran_s: float) -> float:
        """Seconds to wait before restarting `name`, which just died after running `ran_s`."""
        if ran_s >= self.healthy_s:
            self._next[name] = self.min_s
        wait = self._next.get(name, self.min_s)
        self._next[name] = min(wait * 2, self.max_s)
        return wait

    def peek(self, name: str) -> float:
        """The delay the next quick death of `name` would get (for logs and tests)."""
        return self._next.get(name, self.min_s)
