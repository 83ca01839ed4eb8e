"""Air-quality stations (the 35 real AirKorea sites) with diurnal PM10, PM2.5, O3 and NO2.

PM follows a morning and evening traffic hump with a slow day-to-day drift; O3 peaks in the
afternoon sun; NO2 follows the rush hours and is higher at roadside stations (도로변대기).
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

from feeds.simulator.world import air_stations
from spine.layers import AIR_GRADES

KST = timedelta(hours=9)
# 2018 bands (standards.md 1.1): upper bound of 좋음, 보통, 나쁨; above is 매우나쁨.
PM10_BANDS = (30, 80, 150)
PM25_BANDS = (15, 35, 75)
GRADES = AIR_GRADES


def pm_grade(pm10: float | None, pm25: float | None) -> str | None:
    """The worse of the PM10 and PM2.5 grades (how the forecast reports them)."""
    def grade(v: float | None, bands: tuple[int, ...]) -> int:
        return -1 if v is None else sum(v > b for b in bands)
    g = max(grade(pm10, PM10_BANDS), grade(pm25, PM25_BANDS))
    return GRADES[g] if g >= 0 else None


class AirNetwork:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed + 2)
        self.stations = air_stations()
        self.bias = {s.name: self.rng.uniform(0.7, 1.4) for s in self.stations}
        self.drift = 1.0

    def readings(self, now: datetime | None = None) -> list[tuple[str, float, float, dict]]:
        now = now or datetime.now(UTC)
        hour = ((now + KST).hour + (now + KST).minute / 60)
        traffic = 1 + 0.35 * math.exp(-((hour - 8.5) ** 2) / 4) + 0.3 * math.exp(-((hour - 19) ** 2) / 5)
        sun = max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.0
        self.drift = min(max(self.drift + self.rng.gauss(0, 0.02), 0.5), 2.5)
        out = []
        for s in self.stations:
            road = s.kind == "도로변대기"
            b = self.bias[s.name] * self.drift
            pm10 = max(3.0, 38 * b * traffic * (1.15 if road else 1) + self.rng.gauss(0, 4))
            pm25 = max(1.0, pm10 * self.rng.uniform(0.4, 0.6))
            o3 = max(0.002, 0.012 + 0.045 * sun * b + self.rng.gauss(0, 0.003))
            no2 = max(0.002, (0.018 + (0.012 if road else 0)) * traffic * b + self.rng.gauss(0, 0.002))
            out.append((s.name, s.lat, s.lon, {
                "station": s.name, "kind": s.kind, "district": s.district_ko,
                "pm10": round(pm10), "pm25": round(pm25), "o3": round(o3, 3), "no2": round(no2, 3),
                "grade": pm_grade(pm10, pm25)}))
        return out
