"""The demo's data: the city models, stepped together (CitySimulator), and the demo entry point.

The demo part runs them on the wire path (feeds/simulator/part.py, wire.py); CitySimulator.tick() still
publishes the contract directly for tests and main_direct().

Deterministic for a seed (apart from wall-clock timestamps). Buses are spread evenly over the
ticks of each update period so the stream is smooth rather than a burst once a second.
"""

from __future__ import annotations

import logging
import signal
import time
from datetime import UTC, datetime

from config.settings import SimulatorSettings
from feeds.simulator.air import AirNetwork
from feeds.simulator.buses import BusFleet
from feeds.simulator.cameras import CameraInventory
from feeds.simulator.drone import Drone
from feeds.simulator.sensors import SensorNetwork
from spine.contract import now_ms
from spine.publisher import Publisher, connect

log = logging.getLogger(__name__)

TICK_S = 0.1
AIR_EVERY_S = 30.0
SENSOR_EVERY_S = 2.0
CAMERA_EVERY_S = 2.0
DRONE_EVERY_S = 0.5


class CitySimulator:
    def __init__(self, settings: SimulatorSettings) -> None:
        self.settings = settings
        self.fleet = BusFleet(settings.buses, settings.seed)
        self.cameras = CameraInventory(settings.cameras, settings.seed)
        self.air = AirNetwork(settings.seed) if settings.air else None
        self.sensors = SensorNetwork(settings.seed) if settings.sensors else None
        self.drone = Drone() if settings.drone else None
        self._due: dict[str, float] = {}
        self._bus_cursor = 0
        self._bus_carry = 0.0

    def _every(self, name: str, period: float, now: float) -> bool:
        if now >= self._due.get(name, 0.0):
            self._due[name] = now + period
            return True
        return False

    def publish_static(self, pub: Publisher) -> None:
        """Everything once, so the first snapshot is complete."""
        for cam in self.cameras.cameras:
            pub.update("camera", cam.id, cam.lat, cam.lon, cam.props)
        for bus in self.fleet.buses:
            lat, lon, props = self.fleet.state(bus)
            pub.update("bus", bus.id, lat, lon, props)

    def tick(self, pub: Publisher, now: float, dt: float) -> None:
        ts = now_ms()
        buses = self.fleet.buses
        if buses:
            # Each bus moves and reports once per bus_update_s, a slice of the fleet per tick.
            self._bus_carry += len(buses) * dt / self.settings.bus_update_s
            count = min(int(self._bus_carry), len(buses))
            self._bus_carry -= count
            for _ in range(count):
                bus = buses[self._bus_cursor]
                self._bus_cursor = (self._bus_cursor + 1) % len(buses)
                self.fleet.advance(bus, self.settings.bus_update_s)
                lat, lon, props = self.fleet.state(bus)
                pub.update("bus", bus.id, lat, lon, props, ts=ts)
        if self._every("camera", CAMERA_EVERY_S, now):
            for cam in self.cameras.step(ts, share=0.05):
                pub.update("camera", cam.id, cam.lat, cam.lon, cam.props, ts=ts)
        if self.sensors and self._every("sensor", SENSOR_EVERY_S, now):
            sensors, events = self.sensors.step(SENSOR_EVERY_S, ts)
            for s in sensors:
                pub.update("sensor", s.id, s.lat, s.lon, s.props, ts=ts)
            for ev in events:
                pub.event(ev)
        if self.air and self._every("air", AIR_EVERY_S, now):
            for name, lat, lon, props in self.air.readings(datetime.now(UTC)):
                pub.update("air", f"air-{name}", lat, lon, props, ts=ts)
        if self.drone and self._every("drone", DRONE_EVERY_S, now):
            lat, lon, props = self.drone.step(DRONE_EVERY_S)
            pub.update("drone", "drone-1", lat, lon, props, ts=ts)


def main_direct(redis_url: str, settings: SimulatorSettings) -> None:
    """The old path (the contract straight from the models), kept for comparisons and debugging."""
    sim = CitySimulator(settings)
    pub = Publisher(connect(redis_url), src="sim")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    sim.publish_static(pub)
    pub.flush()
    log.info("simulator: %d buses on %d routes, %d cameras, seed %d", len(sim.fleet.buses),
             len(sim.fleet.routes), len(sim.cameras.cameras), settings.seed)
    last = time.monotonic()
    try:
        while not stop:
            now = time.monotonic()
            sim.tick(pub, now, now - last)
            last = now
            pub.flush()
            time.sleep(max(0.0, TICK_S - (time.monotonic() - now)))
    except KeyboardInterrupt:
        pass
    log.info("simulator stopped after publishing %d messages", pub.published)
