"""US EPA AQI with the 2024 PM2.5 breakpoints (standards.md 1.4). Always shown with its scale name:
the same air reads ~137 here and ~154 on the Korean CAI.
"""

from __future__ import annotations

import math

SCALE = "US EPA AQI (2024)"
CATEGORIES = ((50, "Good"), (100, "Moderate"), (150, "Unhealthy for Sensitive Groups"),
              (200, "Unhealthy"), (300, "Very Unhealthy"), (500, "Hazardous"))
_AQI = ((0, 50), (51, 100), (101, 150), (151, 200), (201, 300), (301, 500))

# (concentration lo, hi) per AQI band; truncation step applied before lookup
TABLES: dict[str, tuple[float, tuple[tuple[float, float], ...]]] = {
    "pm25": (0.1, ((0.0, 9.0), (9.1, 35.4), (35.5, 55.4), (55.5, 125.4), (125.5, 225.4), (225.5, 325.4))),
    "pm10": (1.0, ((0, 54), (55, 154), (155, 254), (255, 354), (355, 424), (425, 604))),
    # ppb, 1 h
    "no2": (1.0, ((0, 53), (54, 100), (101, 360), (361, 649), (650, 1249), (1250, 2049))),
    # ppb, 1 h; the 1-h SO2 table stops at AQI 200
    "so2": (1.0, ((0, 35), (36, 75), (76, 185), (186, 304))),
}
O3_1H = ((0.125, 0.164), (0.165, 0.204), (0.205, 0.404), (0.405, 0.604))  # AQI 101..500, ppm


def _truncate(c: float, step: float) -> float:
    return math.floor(c / step + 1e-9) * step


def _interp(c: float, bands: tuple[tuple[float, float], ...], aqi: tuple[tuple[int, int], ...]) -> int:
    for (lo, hi), (ilo, ihi) in zip(bands, aqi, strict=False):
        if c <= hi:
            return round(min(max((ihi - ilo) / (hi - lo) * (c - lo) + ilo, ilo), ihi))
    return 500  # beyond the AQI (2024 PM2.5 above 325.4 reports 500)


def sub_index(pollutant: str, c: float | None) -> int | None:
    """c in µg/m³ for PM, ppb for NO2/SO2, ppm for O3 (1 h, only defined from 0.125 ppm)."""
    if c is None or not math.isfinite(c) or c < 0:
        return None
    if pollutant == "o3":
        c = _truncate(c, 0.001)
        return None if c < O3_1H[0][0] else _interp(c, O3_1H, _AQI[2:])
    step, bands = TABLES[pollutant]
    c = _truncate(c, step)
    if pollutant == "so2" and c > bands[-1][1]:
        return 200  # higher SO2 needs the 24 h average, which the real-time feed lacks
    return _interp(c, bands, _AQI)


def category(aqi: int) -> str:
    return next(name for hi, name in CATEGORIES if aqi <= hi)


def aqi(pm25_24h: float | None, pm10_24h: float | None, no2_ppm: float | None, so2_ppm: float | None,
        o3_ppm: float | None) -> dict | None:
    subs = {
        "pm25": sub_index("pm25", pm25_24h),
        "pm10": sub_index("pm10", pm10_24h),
        "no2": sub_index("no2", None if no2_ppm is None else no2_ppm * 1000),
        "so2": sub_index("so2", None if so2_ppm is None else so2_ppm * 1000),
        "o3": sub_index("o3", o3_ppm),
    }
    known = {k: v for k, v in subs.items() if v is not None}
    if "pm25" not in known and "pm10" not in known:
        return None
    value = max(known.values())
    return {"value": value, "category": category(value), "scale": SCALE,
            "dominant": max(known, key=lambda k: known[k]), "sub": known}
