"""The ISA-18.2 alarm state machine, pure: values in, values out, no clock and no I/O.

An alarm is held as the OPC UA Part 9 components (condition active, acknowledged, shelving,
suppressed, out of service); the ISA-18.2 state (A-G, codes as in Alerta's model) is derived from
them, so no combination can drift from its state:

    OOSRV if out of service, else DSUPR if suppressed, else SHLVD if shelved, else by condition/ack:
    NORM (clear, acked) · UNACK (active, not acked) · ACKED (active, acked) · RTNUN (clear, not acked)

Hidden alarms (shelved, suppressed, out of service) are still evaluated: the condition follows the
events, and when the alarm is released it comes back by its condition (active -> UNACK, clear ->
NORM), as the standard's E/F/G -> A/B transitions say. An acknowledged alarm that gets worse (a
higher priority) is re-alarmed (ACKED -> UNACK). A one-shot shelve ends when the condition clears,
a timed one at its end time (the caller's clock decides, through `expire`).

Every function returns the new alarm and the `Change` it made (None: nothing changed), so the
caller writes exactly one history row per change. Refused actions raise `NotAllowed` with a reason
a person can read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

State = Literal["NORM", "UNACK", "ACKED", "RTNUN", "SHLVD", "DSUPR", "OOSRV"]
STATES: tuple[State, ...] = ("NORM", "UNACK", "ACKED", "RTNUN", "SHLVD", "DSUPR", "OOSRV")
HIDDEN: frozenset[str] = frozenset({"SHLVD", "DSUPR", "OOSRV"})
STATE_NAMES = {"NORM": "normal", "UNACK": "unacknowledged", "ACKED": "acknowledged",
               "RTNUN": "returned to normal, unacknowledged", "SHLVD": "shelved",
               "DSUPR": "suppressed by design", "OOSRV": "out of service"}
Priority = Literal["low", "medium", "high", "critical"]
PRIORITIES: tuple[Priority, ...] = ("low", "medium", "high", "critical")  # ascending
RANK = {p: i for i, p in enumerate(PRIORITIES)}
ShelveKind = Literal["timed", "oneshot"]
CHATTER_WINDOW_MS = 60_000
CHATTER_TRANSITIONS = 3


class NotAllowed(ValueError):
    """An action the alarm's state (or its priority) does not permit."""


@dataclass(frozen=True, slots=True)
class Alarm:
    priority: Priority = "low"
    active: bool = False
    acked: bool = True
    shelve: ShelveKind | None = None
    shelved_until: int | None = None  # epoch ms, for a timed shelve
    suppressed: bool = False
    oos: bool = False
    count: int = 0  # events since this activation (a repeat raises it)
    active_since: int | None = None
    cond_ts: int = 0  # time of the last condition change, so an older event cannot undo a newer one
    transitions: tuple[int, ...] = ()  # condition changes within the chatter window
    chattering: bool = False

    @property
    def state(self) -> State:
        return state_of(self)


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # activate, repeat, clear, realarm, escalate, ack, shelve, unshelve, suppress, ...
    before: State
    after: State


def state_of(a: Alarm) -> State:
    if a.oos:
        return "OOSRV"
    if a.suppressed:
        return "DSUPR"
    if a.shelve is not None:
        return "SHLVD"
    if a.active:
        return "ACKED" if a.acked else "UNACK"
    return "RTNUN" if not a.acked else "NORM"


def _change(kind: str, before: Alarm, after: Alarm) -> tuple[Alarm, Change]:
    return after, Change(kind, before.state, after.state)


Chatter = tuple[int, int]  # (transitions, window ms) that flag an alarm as chattering
CHATTER: Chatter = (CHATTER_TRANSITIONS, CHATTER_WINDOW_MS)


def _chatter(a: Alarm, ts: int, chatter: Chatter) -> tuple[tuple[int, ...], bool]:
    n, window = chatter
    recent = (*tuple(t for t in a.transitions if ts - t < window), ts)
    recent = recent[-16:]  # bounded: only "n or more in the window" is asked (n <= 16)
    return recent, len(recent) >= n


def condition(a: Alarm, active: bool, ts: int, priority: Priority | None = None,
              chatter: Chatter = CHATTER, never_shelved: Collection[str] = ("critical",)
              ) -> tuple[Alarm, Change | None]:
    """The process condition was seen active (with this priority) or clear at `ts`. A shelved
    alarm that gets a priority in `never_shelved` is unshelved at once: it may never be hidden."""
    b, ch = _condition(a, active, ts, priority, chatter)
    if b.shelve is not None and b.priority in never_shelved:
        return _change("escalate", a, _release(b, shelve=None, shelved_until=None))
    return b, ch


def _condition(a: Alarm, active: bool, ts: int, priority: Priority | None,
               chatter: Chatter) -> tuple[Alarm, Change | None]:
    if ts < a.cond_ts and active != a.active:
        return a, None  # an older event delivered late must not undo a newer change
    if active:
        prio = priority or a.priority
        if a.active:
            worse = RANK[prio] > RANK[a.priority]
            b = dataclasses.replace(a, count=a.count + 1, priority=prio if worse else a.priority)
            if worse and a.acked and state_of(a) == "ACKED":
                return _change("realarm", a, dataclasses.replace(b, acked=False))
            if worse:
                return _change("escalate", a, b)
            return b, Change("repeat", a.state, b.state)
        trans, chat = _chatter(a, ts, chatter)
        b = dataclasses.replace(a, active=True, acked=False, priority=prio, count=1, active_since=ts,
                                cond_ts=ts, transitions=trans, chattering=chat or a.chattering)
        return _change("activate", a, b)
    if not a.active:
        return a, None
    trans, chat = _chatter(a, ts, chatter)
    b = dataclasses.replace(a, active=False, cond_ts=ts, transitions=trans,
                            chattering=chat or a.chattering, active_since=None)
    if b.shelve == "oneshot":  # shelved until it next clears: this is that clear
        b = dataclasses.replace(b, shelve=None, shelved_until=None, acked=True)
        return _change("unshelve", a, b)
    return _change("clear", a, b)


def acknowledge(a: Alarm) -> tuple[Alarm, Change]:
    if a.state not in ("UNACK", "RTNUN"):
        raise NotAllowed(f"only an unacknowledged alarm can be acknowledged (this one is "
                         f"{STATE_NAMES[a.state]})")
    return _change("ack", a, dataclasses.replace(a, acked=True))


def shelve(a: Alarm, kind: ShelveKind, now: int, until: int | None, shelvable: bool,
           max_ms: int) -> tuple[Alarm, Change]:
    """Shelve for a time (`until`, at most `max_ms` from now) or until the condition next clears;
    the one-shot shelve is capped by `max_ms` as well (OPC UA MaxTimeShelved caps both)."""
    if not shelvable:
        raise NotAllowed(f"{a.priority} alarms can never be shelved")
    if a.state in ("DSUPR", "OOSRV"):
        raise NotAllowed(f"a {STATE_NAMES[a.state]} alarm cannot be shelved")
    if a.state == "NORM":
        raise NotAllowed("a normal alarm has nothing to shelve")
    if kind == "oneshot" and not a.active:
        raise NotAllowed("a one-shot shelve lasts until the alarm clears; this one is already clear")
    cap = now + max_ms
    end = cap if kind == "oneshot" or until is None else until
    if end <= now:
        raise NotAllowed("the shelve must end in the future")
    if end > cap:
        raise NotAllowed(f"shelving is limited to {max_ms // 60_000} minutes")
    return _change("shelve", a, dataclasses.replace(a, shelve=kind, shelved_until=end))


def _release(a: Alarm, **fields: object) -> Alarm:
    """Back from a hidden state, by the condition: active -> unacknowledged, clear -> normal."""
    b = dataclasses.replace(a, **fields)
    if state_of(b) in HIDDEN:
        return b
    return dataclasses.replace(b, acked=not b.active)


def unshelve(a: Alarm, kind: str = "unshelve") -> tuple[Alarm, Change]:
    if a.shelve is None:
        raise NotAllowed("the alarm is not shelved")
    return _change(kind, a, _release(a, shelve=None, shelved_until=None))


def expire(a: Alarm, now: int) -> tuple[Alarm, Change | None]:
    """Unshelve a shelve whose time is up (`kind` "expire" in the history)."""
    if a.shelve is not None and a.shelved_until is not None and now >= a.shelved_until:
        return unshelve(a, "expire")
    return a, None


def suppress(a: Alarm, on: bool) -> tuple[Alarm, Change | None]:
    if a.suppressed == on:
        return a, None
    if on:
        return _change("suppress", a, dataclasses.replace(a, suppressed=True))
    return _change("unsuppress", a, _release(a, suppressed=False))


def out_of_service(a: Alarm, on: bool) -> tuple[Alarm, Change]:
    if a.oos == on:
        raise NotAllowed("the alarm is already " + ("out of service" if on else "in service"))
    if on:
        # Removed for maintenance: a shelve no longer means anything and is dropped.
        return _change("out_of_service", a, dataclasses.replace(a, oos=True, shelve=None,
                                                                shelved_until=None))
    return _change("return_to_service", a, _release(a, oos=False))


def calm(a: Alarm, now: int, chatter: Chatter = CHATTER) -> Alarm:
    """Drop the chattering flag once the window holds fewer transitions than the limit."""
    n, window = chatter
    recent = tuple(t for t in a.transitions if now - t < window)
    if recent == a.transitions and (not a.chattering or len(recent) >= n):
        return a
    return dataclasses.replace(a, transitions=recent, chattering=len(recent) >= n)
