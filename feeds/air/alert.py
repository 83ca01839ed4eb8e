"""Fine-dust alerts (미세먼지/초미세먼지 주의보·경보), standards.md 1.3.

Issue after two consecutive hourly means at or over the threshold; release below a lower level.
The state is replayed over the stored hourly series every time, so a restarted adapter reaches the
same answer without keeping state of its own. Officially alerts are per region (권역); this is the
per-station signal the region decision is made from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

NONE, WATCH, WARNING = None, "주의보", "경보"


@dataclass(frozen=True)
class AlertRule:
    watch_issue: float
    watch_release: float
    warning_issue: float
    warning_release: float  # 경보 -> 주의보


RULES = {
    "pm10": AlertRule(150, 100, 300, 150),
    "pm25": AlertRule(75, 35, 150, 75),
}


def alert_state(pollutant: str, hourly: Sequence[float | None]) -> str | None:
    """hourly: consecutive hourly means, oldest first (None = missing hour, which breaks a run)."""
    rule = RULES[pollutant]
    state: str | None = NONE
    prev: float | None = None
    for c in hourly:
        if c is None:
            prev = None
            continue
        two_over = prev is not None
        if state is WARNING:
            if c < rule.warning_release:
                state = WATCH
        elif state is WATCH:
            if two_over and c >= rule.warning_issue and prev >= rule.warning_issue:
                state = WARNING
            elif c < rule.watch_release:
                state = NONE
        elif two_over and c >= rule.warning_issue and prev >= rule.warning_issue:
            state = WARNING
        elif two_over and c >= rule.watch_issue and prev >= rule.watch_issue:
            state = WATCH
        prev = c
    return state


def worst(states: Sequence[str | None]) -> str | None:
    if WARNING in states:
        return WARNING
    return WATCH if WATCH in states else NONE
