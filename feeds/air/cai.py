"""Korea's Comprehensive Air-quality Index (통합대기환경지수, CAI) and the C24E PM average.

Breakpoints and formulas from standards.md 1.1 (2018 PM2.5 bands). The multi-pollutant surcharge
(+50/+75) is not applied: no public source confirms it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from spine.layers import AIR_BREAKPOINTS, AIR_GRADES, AIR_INDEX_BANDS

GRADES = AIR_GRADES  # the codes published as props.grade; labels and colours in spine/layers.py
# The breakpoint table lives in spine/layers.py: the browser draws the PM grade bands from it too.
INDEX_BANDS = AIR_INDEX_BANDS
BREAKPOINTS = AIR_BREAKPOINTS
REQUIRED = ("pm10", "pm25", "no2", "o3")  # AirKorea computes a CAI only when all four exist
C24E_M = {"pm10": 70.0, "pm25": 30.0}


def sub_index(pollutant: str, c: float | None) -> int | None:
    """Ip = (IHI - ILO)/(BPHI - BPLO) * (Cp - BPLO) + ILO within the band holding c."""
    if c is None or not math.isfinite(c) or c < 0:
        return None
    bands = BREAKPOINTS[pollutant]
    for (lo, hi), (ilo, ihi) in zip(bands, INDEX_BANDS, strict=True):
        if c <= hi:
            # Values between two bands (30.5 µg/m³) clamp to the lower edge of the upper band.
            value = ilo + (ihi - ilo) / (hi - lo) * (c - lo)
            return round(min(max(value, ilo), ihi))
    return 500


def grade_of(index: int | None) -> str | None:
    if index is None:
        return None
    for g, (_, hi) in zip(GRADES, INDEX_BANDS, strict=True):
        if index <= hi:
            return g
    return GRADES[-1]


def cai(subs: dict[str, int | None]) -> int | None:
    """The overall CAI: the highest sub-index, only when PM10, PM2.5, NO2 and O3 are all known."""
    if any(subs.get(p) is None for p in REQUIRED):
        return None
    return max(v for v in subs.values() if v is not None)


def c24e(pollutant: str, hourly: Sequence[float | None], min_c12: int = 8, min_c4: int = 3) -> float | None:
    """The 24 h predicted moving average from the last 12 hourly values (oldest first, newest last).

    C24E = (C12*12 + C4*12)/24, C4 the mean of the last four Ca, Ca = 0.75*Ci when Ci >= M and
    0.9 <= Ci/C12 <= 1.7 (a steady high level is damped), else Ci. With gaps, C12 needs `min_c12`
    of 12 hours and C4 `min_c4` of 4 (our availability rule; AirKorea's own is not published).
    """
    last12 = list(hourly)[-12:]
    vals12 = [v for v in last12 if v is not None]
    if len(vals12) < min_c12:
        return None
    c12 = sum(vals12) / len(vals12)
    m = C24E_M[pollutant]
    ca = []
    for ci in last12[-4:]:
        if ci is None:
            continue
        ratio = ci / c12 if c12 > 0 else math.inf
        ca.append(0.75 * ci if ci >= m and 0.9 <= ratio <= 1.7 else ci)
    if len(ca) < min_c4:
        return None
    c4 = sum(ca) / len(ca)
    return (c12 * 12 + c4 * 12) / 24
