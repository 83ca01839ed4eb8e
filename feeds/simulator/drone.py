"""One drone on a forest-fire watch over Gyeyangsan: an orbit at 120 m with a draining battery."""

from __future__ import annotations

import math

from feeds.simulator.world import offset, places

ORBIT_M = 700.0
SPEED_MS = 9.0
ALT_M = 120.0


class Drone:
    def __init__(self) -> None:
        hill = next(p for p in places() if p.id == "gyeyangsan")
        self.centre = (hill.lat, hill.lon)
        self.angle = 0.0
        self.battery = 100.0

    def step(self, dt: float) -> tuple[float, float, dict]:
        self.angle = (self.angle + SPEED_MS * dt / ORBIT_M) % (2 * math.pi)
        self.battery -= dt * 0.05
        if self.battery < 20:
            self.battery = 100.0  # swapped at the launch point
        lat, lon = offset(self.centre, ORBIT_M * math.cos(self.angle), ORBIT_M * math.sin(self.angle))
        heading = (math.degrees(self.angle) + 90) % 360  # tangent of a clockwise orbit
        return lat, lon, {"name": "Drone 1 (fire watch)", "alt_m": ALT_M, "heading": round(heading),
                          "speed_ms": SPEED_MS, "battery_pct": round(self.battery, 1),
                          "mode": "AUTO", "mission": "Forest-fire watch, Gyeyangsan"}
