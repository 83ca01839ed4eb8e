"""Operator-load KPIs (alarms/kpis.py) against a sequence checked by hand, and the same sequence through
the SQL store (alarms are raised by events, so the history rows are the service's own)."""

from __future__ import annotations

import pytest

from alarms.config import load_alarm_config
from alarms.db import AlarmStore, kpis
from alarms.kpis import compute, eemua_level
from spine.contract import Event

CFG = load_alarm_config()
T0 = 1_800_000_000_000
MIN = 60_000
P = 10 * MIN  # one 10-minute period


def _seq() -> list[dict]:
    """One hour (six periods). Hand count of annunciations (activate/realarm into UNACK):
        period 0: A x6, B x4, C x2            = 12  (> 10: a flood starts)
        period 1: A x3, D x3 (chattering)     =  6  (>= 5: the flood goes on)
        period 2: B x3                        =  3  (< 5: the flood ends; not a flood period)
        period 3: nothing; period 4: E x1 (re-alarm); period 5: nothing
        total 22; not counted: F activated while shelved (after SHLVD), clears, acks."""
    rows: list[dict] = []

    def add(t: int, key: str, kind: str = "activate", after: str = "UNACK", prio: str = "low") -> None:
        rows.append({"ts": T0 + t, "key": key, "kind": kind, "after": after, "priority": prio})

    for i in range(6):
        add(i * MIN, "A", prio="low")
        add(i * MIN + 1000, "A", kind="clear", after="RTNUN")
    for i in range(4):
        add(i * MIN + 2000, "B", prio="medium")
    for i in range(2):
        add(i * 2 * MIN + 3000, "C", prio="high")
    for i in range(3):
        add(P + i * 3 * MIN, "A", prio="low")
    for i in range(3):  # D: active, clear, active, ... within one minute: chattering
        add(P + 5 * MIN + i * 15_000, "D", prio="low")
        add(P + 5 * MIN + i * 15_000 + 5000, "D", kind="clear", after="RTNUN")
    for i in range(3):
        add(2 * P + i * MIN, "B", prio="medium")
    add(4 * P, "E", kind="realarm", prio="critical")
    add(4 * P + MIN, "E", kind="ack", after="ACKED", prio="critical")
    add(3 * P, "F", after="SHLVD", prio="low")  # hidden: loads nobody
    return rows


def test_hand_checked_sequence() -> None:
    stale_since = T0 + 6 * P - 25 * 3_600_000
    open_alarms = [{"key": "G", "active": True, "active_since": stale_since, "chattering": False},
                   {"key": "H", "active": True, "active_since": T0, "chattering": False},
                   {"key": "I", "active": False, "active_since": None, "chattering": True}]
    k = compute(_seq(), open_alarms, T0, T0 + 6 * P, CFG)
    assert k["total"] == 22
    assert k["rate"]["per_period"] == [12, 6, 3, 0, 1, 0]
    assert k["rate"]["avg_per_10min"] == pytest.approx(22 / 6, abs=1e-3)  # 3.667
    assert k["rate"]["peak_per_10min"] == 12
    assert k["rate"]["per_hour"] == 22.0
    assert k["rate"]["verdict"] == "over target"  # > 2 per 10 min
    assert k["flood"]["floods"] == 1 and k["flood"]["flood_periods"] == 2
    assert k["flood"]["time_in_flood_pct"] == pytest.approx(33.33)
    assert k["flood"]["periods_over_pct"] == pytest.approx(16.67)  # only period 0 has > 10
    # Top contributors: A 9, B 7, D 3, C 2, E 1 -> the top ten are all 22 (100 %).
    assert [(t["key"], t["count"]) for t in k["top10"]] == [("A", 9), ("B", 7), ("D", 3), ("C", 2), ("E", 1)]
    assert k["top10"][0]["share_pct"] == pytest.approx(40.91)  # 9 / 22
    assert k["top10_share_pct"] == 100.0
    assert k["chattering"] == ["D", "I"]  # D by its transitions, I flagged now; A's are a minute apart
    assert k["stale"] == ["G"]  # active 25 h; H only 1 h
    pr = k["priorities"]
    assert (pr["low"]["count"], pr["medium"]["count"], pr["high"]["count"], pr["critical"]["count"]) == \
        (12, 7, 2, 1)
    assert pr["low"]["share_pct"] == pytest.approx(54.55) and pr["low"]["target_pct"] == 80
    # EEMUA: average 3.7 (1-10: robust/stable), peak 12 (10-100: robust), periods with > 5 alarms:
    # 2 of 6 = 33 % (25-50 %: reactive) -> the worst of the three: reactive.
    assert k["eemua"] == {"level": "reactive", "avg_per_10min": 3.667, "peak_per_10min": 12,
                          "busy_periods_pct": 33.33}


@pytest.mark.parametrize(("avg", "peak", "busy", "level"), [
    (0.5, 5, 0.5, "predictive"), (2, 20, 2, "robust"), (5, 150, 10, "stable"), (20, 500, 30, "reactive"),
    (150, 20, 0, "overloaded"), (0.2, 1500, 0, "overloaded"), (3, 50, 60, "overloaded")])
def test_eemua_levels(avg: float, peak: int, busy: float, level: str) -> None:
    assert eemua_level(avg, peak, busy) == level


def test_empty_window() -> None:
    k = compute([], [], T0, T0 + P, CFG)
    assert k["total"] == 0 and k["eemua"]["level"] == "predictive" and k["top10_share_pct"] == 0.0


def test_kpis_from_the_store(tmp_path) -> None:
    store = AlarmStore(f"sqlite:///{tmp_path / 'k.db'}", CFG)
    store.migrate()

    def ev(i: int, entity: str, t: int, typ: str = "threshold", sev: str = "medium") -> tuple[str, Event]:
        return (f"1-{i}", Event(v=1, id=f"e{i}", type=typ, severity=sev, ts=T0 + t, layer="sensor",
                                entity=entity, lat=37.4, lon=126.6, props={"rule": "r"}))

    # 12 sources raise in the first period (a flood), one of them repeats (no new annunciation), then
    # one clears and comes back in the second period (a second annunciation of the same alarm).
    store.ingest([ev(i, f"s{i}", i * 1000) for i in range(12)], now=T0 + 20_000)
    store.ingest([ev(100, "s0", 30_000)], now=T0 + 30_000)
    store.ingest([ev(101, "s1", 40_000, "threshold_clear", "info")], now=T0 + 40_000)
    store.ingest([ev(102, "s1", P + 1000)], now=T0 + P + 1000)
    k = kpis(store, hours=1 / 3, now=T0 + 2 * P)
    assert k["rate"]["per_period"] == [12, 1]
    assert k["flood"]["floods"] == 1 and k["flood"]["flood_periods"] == 1
    assert k["top10"][0] == {"key": "s1|threshold:r", "count": 2, "share_pct": pytest.approx(15.38)}
    store.dispose()
