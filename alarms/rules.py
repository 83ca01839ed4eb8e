"""Which alarm an event concerns: the rules of config/alarms.yaml applied to one event (pure)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from alarms.config import AlarmConfig, Rule
from alarms.states import Priority

MAX_PART = 128  # a condition (and a source) is at most this long; the key is source|condition


@dataclass(frozen=True, slots=True)
class Match:
    rule: Rule
    key: str  # "<source>|<condition>": one alarm per source and condition
    source: str
    condition: str
    active: bool  # False: the event clears the condition
    priority: Priority | None  # None for a clearing event


def _field(ev: Any, name: str) -> str:
    value = (ev.props or {}).get(name[6:]) if name.startswith("props.") else getattr(ev, name, None)
    if value is None:
        return "-"
    # Keys are built from producer data: keep them printable and bounded (a '|' would fake a key).
    text = str(value)[:MAX_PART]
    return "".join(c if c.isprintable() and c != "|" else "_" for c in text)


def condition_of(rule: Rule, ev: Any) -> str:
    out = []
    for literal, name, _, _ in string.Formatter().parse(rule.condition):
        out.append(literal)
        if name is not None:
            out.append(_field(ev, name))
    return "".join(out)[:MAX_PART]


def match(cfg: AlarmConfig, ev: Any) -> Match | None:
    """The alarm this event raises or clears, or None (no rule, or a severity that raises none)."""
    for rule in cfg.rules:
        if rule.layer is not None and rule.layer != ev.layer:
            continue
        raising = ev.type in rule.types
        if not raising and ev.type not in rule.clear_types:
            continue
        priority: Priority | None = None
        if raising:
            priority = rule.priority or cfg.severity_priority.get(ev.severity)
            if priority is None:
                return None  # e.g. an info event: journal-worthy, not an alarm
        source = _field(ev, "entity")
        cond = condition_of(rule, ev)
        return Match(rule, f"{source}|{cond}", source, cond, raising, priority)
    return None
