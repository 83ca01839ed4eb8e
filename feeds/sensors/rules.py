"""Threshold rules with deadband, on-delay and off-delay, so a value hovering at a limit does not
chatter (OPC UA Part 9 B.1.5; the Allen-Bradley form `In >= H` for MinDuration, clear at `In < H - DB`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from feeds.sensors.config import RuleConfig
from spine.layers import SEVERITIES, sensor_level

Transition = Literal["activated", "cleared"]


@dataclass
class RuleState:
    active: bool = False
    pending_since: float | None = None  # condition true since (waiting for on-delay)
    clearing_since: float | None = None  # clear condition true since (waiting for off-delay)


def _beyond(rule: RuleConfig, v: float) -> bool:
    return v >= rule.level if rule.direction == "above" else v <= rule.level


def _clear(rule: RuleConfig, v: float) -> bool:
    if rule.direction == "above":
        return v < rule.level - rule.deadband
    return v > rule.level + rule.deadband


def step(rule: RuleConfig, state: RuleState, value: float, t: float) -> Transition | None:
    """Advance one rule with an observation at time t (seconds); returns a transition or None."""
    if not state.active:
        if _beyond(rule, value):
            if state.pending_since is None:
                state.pending_since = t
            if t - state.pending_since >= rule.on_delay_s:
                state.active, state.pending_since, state.clearing_since = True, None, None
                return "activated"
        else:
            state.pending_since = None
        return None
    if _clear(rule, value):
        if state.clearing_since is None:
            state.clearing_since = t
        if t - state.clearing_since >= rule.off_delay_s:
            state.active, state.clearing_since = False, None
            return "cleared"
    else:
        state.clearing_since = None
    return None


@dataclass
class Accumulator:
    """Rolling rainfall totals from intensity samples (mm/h), integrated over time."""

    samples: deque[tuple[float, float]] = field(default_factory=deque)  # (t, mm in the interval)
    last_t: float | None = None

    def add(self, t: float, mm_per_h: float) -> None:
        if self.last_t is not None and t > self.last_t:
            dt = min(t - self.last_t, 3600.0)  # a long gap is not assumed to have rained throughout
            self.samples.append((t, mm_per_h * dt / 3600.0))
        self.last_t = t if self.last_t is None else max(self.last_t, t)
        while self.samples and self.samples[0][0] < t - 12 * 3600:
            self.samples.popleft()

    def total(self, hours: float, now: float) -> float:
        return sum(mm for ts, mm in self.samples if ts >= now - hours * 3600)


METRIC_HOURS = {"sum_1h": 1.0, "sum_3h": 3.0, "sum_12h": 12.0}


def level_props(rules: list[RuleConfig], states: list[RuleState]) -> dict:
    """A sensor's level props from its active rules: `level` is a code of the registry's sensor
    levels (spine/layers.py), derived from the worst active rule's severity; the rule's configured
    name (e.g. the flood stage 심각) travels as `rule`, for display only. (Publishing the name as the
    level made a critical flood stage look normal on every map.)"""
    active = [ru for ru, st in zip(rules, states, strict=True) if st.active]
    worst = max(active, key=lambda ru: (-SEVERITIES.index(ru.severity), abs(ru.level)), default=None)
    return {"level": sensor_level(worst.severity if worst else None),
            "severity": worst.severity if worst else None, "rule": worst.name if worst else None,
            "alarms": [ru.name for ru in active]}
