"""The replay clock: the capture's own time (`feed`) or wall time (`now`)."""

from __future__ import annotations

import math
import time
from typing import Literal

Mode = Literal["feed", "now"]

# Times outside these years are not a capture's clock (a zero, a corrupt tlog stamp).
EARLIEST_S = 946_684_800.0  # 2000-01-01
LATEST_S = 4_102_444_800.0  # 2100-01-01


def plausible(t_s: float | None) -> bool:
    return t_s is not None and math.isfinite(t_s) and EARLIEST_S <= t_s <= LATEST_S


class ReplayClock:
    """An adapter Clock (feeds.adapter.Clock).

    feed: time() is the newest capture time seen so far (never going back, so a reordered record
    cannot make the adapter's ages negative), and monotonic() runs with it; before the first
    timestamp it reads wall time. now: both are the real clocks. `skip()` moves both forward, as
    the live loop's next iteration would (a rate-limited change published a moment later)."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self._t: float | None = None
        self._skip = 0.0

    @property
    def feed_time(self) -> float | None:
        return self._t

    def advance(self, t_s: float | None) -> None:
        if self.mode == "feed" and plausible(t_s):
            assert t_s is not None
            self._t = t_s if self._t is None else max(self._t, t_s)

    def skip(self, seconds: float) -> None:
        self._skip += seconds

    def time(self) -> float:
        base = self._t if self.mode == "feed" and self._t is not None else time.time()
        return base + self._skip

    def monotonic(self) -> float:
        if self.mode == "feed":
            return self.time()  # only differences are read; the capture's time is monotonic here
        return time.monotonic() + self._skip
