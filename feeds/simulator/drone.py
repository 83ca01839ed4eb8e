"""One drone on a forest-fire watch over Gyeyangsan: a 700 m orbit at 120 m, and when the battery
runs low a return to the launch point, landing, battery swap, take-off and transit back, so the
telemetry shows the modes and altitudes a real mission goes through (ArduCopter mode names)."""

from __future__ import annotations

import math

from feeds.simulator.world import bearing_deg, distance_m, offset, places

ORBIT_M = 700.0
SPEED_MS = 9.0
ALT_M = 120.0
CLIMB_MS = 3.0
LAUNCH_OFFSET_M = (-1100.0, 300.0)  # north, east of the summit: a field by the trail head
RTL_BELOW_PCT = 20.0


class Drone:
    def __init__(self) -> None:
        hill = next(p for p in places() if p.id == "gyeyangsan")
        self.centre = (hill.lat, hill.lon)
        self.launch = offset(self.centre, *LAUNCH_OFFSET_M)
        self.angle = 0.0
        self.battery = 100.0
        self.phase = "AUTO"  # AUTO (orbit) | RTL | LAND | TAKEOFF | TRANSIT
        self.pos = offset(self.centre, ORBIT_M, 0.0)
        self.alt = ALT_M
        self.heading = 90.0

    def _fly_to(self, target: tuple[float, float], dt: float) -> bool:
        d = distance_m(self.pos, target)
        if d < SPEED_MS * dt:
            self.pos = target
            return True
        self.heading = bearing_deg(self.pos, target)
        step = SPEED_MS * dt
        rad = math.radians(self.heading)
        self.pos = offset(self.pos, step * math.cos(rad), step * math.sin(rad))
        return False

    def step(self, dt: float) -> tuple[float, float, dict]:
        speed = SPEED_MS
        mode = self.phase
        if self.phase == "AUTO":
            self.angle = (self.angle + SPEED_MS * dt / ORBIT_M) % (2 * math.pi)
            self.pos = offset(self.centre, ORBIT_M * math.cos(self.angle), ORBIT_M * math.sin(self.angle))
            self.heading = (math.degrees(self.angle) + 90) % 360  # tangent of a clockwise orbit
            if self.battery < RTL_BELOW_PCT:
                self.phase = "RTL"
        elif self.phase == "RTL":
            if self._fly_to(self.launch, dt):
                self.phase = "LAND"
        elif self.phase == "LAND":
            speed = 0.0
            self.alt = max(0.0, self.alt - CLIMB_MS * dt)
            if self.alt == 0.0:
                self.battery = 100.0  # swapped at the launch point
                self.phase = "TAKEOFF"
        elif self.phase == "TAKEOFF":
            speed = 0.0
            mode = "GUIDED"
            self.alt = min(ALT_M, self.alt + CLIMB_MS * dt)
            if self.alt >= ALT_M:
                self.phase = "TRANSIT"
        else:  # TRANSIT back to the orbit entry point
            mode = "AUTO"
            if self._fly_to(offset(self.centre, ORBIT_M * math.cos(self.angle),
                                   ORBIT_M * math.sin(self.angle)), dt):
                self.phase = "AUTO"
        if self.phase != "LAND" or self.alt > 0:
            self.battery = max(0.0, self.battery - dt * 0.05)
        lat, lon = self.pos
        return lat, lon, {"name": "Drone 1 (fire watch)", "alt_m": round(self.alt, 1),
                          "heading": round(self.heading) % 360, "speed_ms": speed,
                          "battery_pct": round(self.battery, 1), "mode": mode,
                          "mission": "Forest-fire watch, Gyeyangsan"}
