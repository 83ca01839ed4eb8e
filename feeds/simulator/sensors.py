"""Disaster sensors: stream water level, rain gauges, wind, seismic, gas and tap-water quality.

Sites are placed inside the district they belong to (the coordinates are simulated, not survey
points). A rain event now and then raises rainfall and, with a lag, the stream levels, so the
map shows the causal chain an operator expects. Upward threshold crossings become events.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from feeds.simulator.world import district_index
from spine.contract import Event
from spine.layers import N_, sensor_level

# (kind, unit, name, district id, baseline, caution threshold)
SITES: tuple[tuple[str, str, str, str, float, float], ...] = (
    ("water_level", "m", "굴포천", "bupyeong", 1.2, 3.0),
    ("water_level", "m", "굴포천 하류", "gyeyang", 1.4, 3.2),
    ("water_level", "m", "승기천", "namdong", 0.9, 2.5),
    ("water_level", "m", "장수천", "namdong", 0.8, 2.2),
    ("water_level", "m", "공촌천", "seo", 0.7, 2.0),
    ("water_level", "m", "심곡천", "seo", 0.6, 1.8),
    ("water_level", "m", "나진포천", "geomdan", 0.8, 2.2),
    ("water_level", "m", "계산천", "gyeyang", 0.5, 1.6),
    ("rain", "mm/h", "강우 부평", "bupyeong", 0.0, 30.0),
    ("rain", "mm/h", "강우 남동", "namdong", 0.0, 30.0),
    ("rain", "mm/h", "강우 서구", "seo", 0.0, 30.0),
    ("rain", "mm/h", "강우 연수", "yeonsu", 0.0, 30.0),
    ("rain", "mm/h", "강우 강화", "ganghwa", 0.0, 30.0),
    ("rain", "mm/h", "강우 영종", "yeongjong", 0.0, 30.0),
    ("wind", "m/s", "풍속 연안부두", "jemulpo", 5.0, 14.0),
    ("wind", "m/s", "풍속 송도", "yeonsu", 4.5, 14.0),
    ("wind", "m/s", "풍속 영종", "yeongjong", 6.0, 14.0),
    ("wind", "m/s", "풍속 강화", "ganghwa", 5.5, 14.0),
    ("seismic", "gal", "지진 남동", "namdong", 0.2, 10.0),
    ("seismic", "gal", "지진 강화", "ganghwa", 0.2, 10.0),
    ("gas", "%LEL", "가스 남동산단 A", "namdong", 1.0, 20.0),
    ("gas", "%LEL", "가스 남동산단 B", "namdong", 1.0, 20.0),
    ("turbidity", "NTU", "정수 부평", "bupyeong", 0.08, 0.5),
    ("turbidity", "NTU", "정수 남동", "namdong", 0.07, 0.5),
    ("chlorine", "mg/L", "잔류염소 공촌", "seo", 0.45, 4.0),
    ("ph", "pH", "pH 수산", "namdong", 7.2, 8.5),
)


@dataclass
class Sensor:
    id: str
    kind: str
    unit: str
    name: str
    lat: float
    lon: float
    district: str
    baseline: float
    threshold: float
    value: float
    alarmed: bool = False
    props: dict = field(default_factory=dict)


class SensorNetwork:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed + 3)
        index = district_index()
        self.sensors = []
        for i, (kind, unit, name, did, base, thr) in enumerate(SITES):
            lat, lon = index.random_point(did, self.rng)
            self.sensors.append(Sensor(f"sen-{kind}-{i + 1:02d}", kind, unit, name, lat, lon,
                                       index.by_id(did).name_ko, base, thr, base))
        self.storm = 0.0  # 0..1 intensity of a passing rain band
        self.first_storm_in = 45.0  # the demo shows a rain band early, then every ~15 min

    def step(self, dt: float, now_ms: int) -> tuple[list[Sensor], list[Event]]:
        rng = self.rng
        self.first_storm_in -= dt
        if self.storm <= 0 and (rng.random() < dt / 900 or 0 > self.first_storm_in > -dt):
            self.storm = rng.uniform(0.7, 1.0)
        self.storm = max(0.0, self.storm - dt / 600)
        events = []
        for s in self.sensors:
            if s.kind == "rain":
                target = self.storm * rng.uniform(15, 55)
            elif s.kind == "water_level":
                target = s.baseline + self.storm * (s.threshold - s.baseline) * 1.2
            elif s.kind == "wind":
                target = s.baseline * (1 + self.storm) + rng.gauss(0, 1)
            else:
                target = s.baseline
            # First-order lag toward the target plus sensor noise.
            s.value += (target - s.value) * min(1.0, dt / 60) + rng.gauss(0, 0.01 * (s.threshold or 1))
            s.value = max(0.0, s.value)
            level = sensor_level("medium" if s.value >= s.threshold else None)  # the event's severity
            s.props = {"name": s.name, "kind": s.kind, "unit": s.unit, "district": s.district,
                       "value": round(s.value, 3), "threshold": s.threshold, "level": level}
            # A 5 % band below the threshold so a value hovering there does not chatter.
            if not s.alarmed and s.value >= s.threshold:
                s.alarmed = True
                events.append(Event(v=1, id=f"ev-{s.id}-{now_ms}", type="threshold",
                                    severity="medium", ts=now_ms, layer="sensor", entity=s.id,
                                    lat=s.lat, lon=s.lon,
                                    title=f"{s.name}: {s.value:.2f} {s.unit} over {s.threshold}",
                                    msg=N_("{name}: {value} {unit} over {threshold}"),
                                    params={"name": s.name, "value": round(s.value, 2), "unit": s.unit,
                                            "threshold": s.threshold},
                                    props={"value": round(s.value, 3), "threshold": s.threshold}))
            elif s.alarmed and s.value < s.threshold * 0.95:
                s.alarmed = False
        return self.sensors, events
