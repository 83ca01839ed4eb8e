"""Operator-load figures (ISA-18.2 §16 / IEC 62682, EEMUA 191), computed from the alarm history.
Pure: rows in, a JSON-ready dict out (the API reads the rows from SQL).

Counted: annunciations, i.e. an alarm becoming unacknowledged-active on the screens (`activate` or
`realarm` into UNACK). A condition that comes while the alarm is shelved, suppressed or out of
service annunciates nothing and is not counted (that is the point of hiding it).

    rate        alarms per 10-minute period over the window: average, peak, per hour and per day,
                against the targets (ISA: ~1 acceptable, ~2 manageable per 10 min)
    flood       fixed 10-minute periods from the window's start; a flood starts in a period with more
                than `flood_per_10min` alarms and ends in the first period with fewer than half of
                that; time in flood = flood periods / periods (target < 1 %)
    top10       the ten alarms (source|condition) annunciated most, and their share of all
    chattering  alarms with `transitions` condition changes (active or clear) inside `window_s`,
                plus those flagged now
    stale       alarms active for more than `stale_hours` now
    priorities  the share of each priority against its target (80 / 15 / 4 / 1 by default)
    eemua       the EEMUA 191 level, the worst of three figures' levels (see `eemua_level`)
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import Any

from alarms.config import AlarmConfig
from alarms.states import PRIORITIES

PERIOD_MS = 600_000
ANNUNCIATE = ("activate", "realarm")
TRANSITION = ("activate", "clear", "unshelve")  # unshelve: a one-shot shelve ending on its clear
LEVELS = ("predictive", "robust", "stable", "reactive", "overloaded")  # best to worst


def _level_avg(avg: float) -> int:
    # EEMUA 191: average per 10 min: >100 overloaded, 10-100 reactive, 1-10 stable or robust
    # (told apart by the other figures), <1 predictive.
    return 4 if avg > 100 else 3 if avg > 10 else 1 if avg >= 1 else 0


def _level_peak(peak: int) -> int:
    # Peak per 10 min: >1000 overloaded, 1000 reactive, 100-1000 stable, 10-100 robust, <10 predictive.
    return 4 if peak > 1000 else 3 if peak == 1000 else 2 if peak >= 100 else 1 if peak >= 10 else 0


def _level_busy(pct: float) -> int:
    # Share of periods with more than 5 alarms: >50 % overloaded, 25-50 reactive, 5-25 stable,
    # 1-5 robust, <1 predictive.
    return 4 if pct > 50 else 3 if pct > 25 else 2 if pct > 5 else 1 if pct >= 1 else 0


def eemua_level(avg: float, peak: int, busy_pct: float) -> str:
    return LEVELS[max(_level_avg(avg), _level_peak(peak), _level_busy(busy_pct))]


def _chattering(changes: list[dict], transitions: int, window_ms: int) -> set[str]:
    by_key: dict[str, list[int]] = defaultdict(list)
    for c in changes:
        if c["kind"] in TRANSITION:
            by_key[c["key"]].append(c["ts"])
    out = set()
    for key, times in by_key.items():
        times.sort()
        for i in range(len(times) - transitions + 1):
            if times[i + transitions - 1] - times[i] < window_ms:
                out.add(key)
                break
    return out


def compute(changes: list[dict], open_alarms: list[dict], start_ms: int, end_ms: int,
            cfg: AlarmConfig) -> dict[str, Any]:
    """`changes`: history rows {ts, key, kind, after, priority} in the window; `open_alarms`: the
    alarms not normal now ({key, active, active_since, chattering, priority})."""
    periods = max(1, math.ceil((end_ms - start_ms) / PERIOD_MS))
    ann = [c for c in changes if c["kind"] in ANNUNCIATE and c["after"] == "UNACK"
           and start_ms <= c["ts"] < end_ms]
    per = [0] * periods
    for c in ann:
        per[(c["ts"] - start_ms) // PERIOD_MS] += 1
    total = len(ann)
    avg = total / periods
    peak = max(per)
    flood_over = cfg.flood_per_10min
    flooding, flood_periods, floods = False, 0, 0
    for n in per:
        if not flooding and n > flood_over:
            flooding, floods = True, floods + 1
        elif flooding and n < flood_over / 2:
            flooding = False
        flood_periods += flooding
    busy_pct = 100 * sum(1 for n in per if n > 5) / periods
    by_key = Counter(c["key"] for c in ann)
    top = [{"key": k, "count": n, "share_pct": round(100 * n / total, 2)} for k, n in by_key.most_common(10)]
    chat = _chattering(changes, cfg.chattering.transitions, int(cfg.chattering.window_s * 1000))
    chat |= {a["key"] for a in open_alarms if a.get("chattering")}
    stale_ms = int(cfg.stale_hours * 3_600_000)
    stale = sorted(a["key"] for a in open_alarms
                   if a.get("active") and a.get("active_since") is not None
                   and end_ms - a["active_since"] > stale_ms)
    by_prio = Counter(c["priority"] for c in ann)
    prio = {p: {"count": by_prio.get(p, 0),
                "share_pct": round(100 * by_prio.get(p, 0) / total, 2) if total else 0.0,
                "target_pct": cfg.priorities[p].target_share} for p in PRIORITIES}
    t = cfg.targets_per_10min
    return {
        "window": {"start_ms": start_ms, "end_ms": end_ms, "periods": periods},
        "total": total,
        "rate": {"avg_per_10min": round(avg, 3), "peak_per_10min": peak, "per_hour": round(avg * 6, 2),
                 "per_day": round(avg * 144, 1), "per_period": per,
                 "target_acceptable": t.acceptable, "target_manageable": t.manageable,
                 "verdict": ("acceptable" if avg <= t.acceptable else
                             "manageable" if avg <= t.manageable else "over target")},
        "flood": {"threshold_per_10min": flood_over, "floods": floods, "flood_periods": flood_periods,
                  "time_in_flood_pct": round(100 * flood_periods / periods, 2),
                  "periods_over_pct": round(100 * sum(1 for n in per if n > flood_over) / periods, 2)},
        "top10": top,
        "top10_share_pct": round(sum(x["count"] for x in top) * 100 / total, 2) if total else 0.0,
        "chattering": sorted(chat),
        "stale": stale,
        "priorities": prio,
        "eemua": {"level": eemua_level(avg, peak, busy_pct), "avg_per_10min": round(avg, 3),
                  "peak_per_10min": peak, "busy_periods_pct": round(busy_pct, 2)},
    }
