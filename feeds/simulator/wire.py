"""The demo city speaking real wire formats: GTFS-realtime and AirKorea JSON over HTTP, sensor
Observations over MQTT, MAVLink 2 over UDP. Only cameras go straight onto the contract (their real
path is vision/). The same adapters that read a deployment's feeds read these.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

from config.settings import SimulatorSettings
from feeds.simulator import gtfs_wire
from feeds.simulator.air_wire import AirKoreaWire
from feeds.simulator.http_wire import PATHS, WireHttpServer
from feeds.simulator.mavlink_wire import MavlinkWire
from feeds.simulator.mqtt_wire import MqttWire
from feeds.simulator.run import CAMERA_EVERY_S, SENSOR_EVERY_S, TICK_S, CitySimulator
from spine.contract import now_ms
from spine.publisher import Publisher

log = logging.getLogger(__name__)

DRONE_EVERY_S = 0.2  # 5 Hz position, as an autopilot streams it


class WireSimulator:
    def __init__(self, settings: SimulatorSettings, http_port: int | None = None) -> None:
        """`http_port` None: settings.http_port (what the demo overlay points the adapters at); 0: any."""
        self.settings = settings
        self.city = CitySimulator(settings)
        self.lock = threading.Lock()
        self.stamps: dict[str, int] = {}
        self._static = gtfs_wire.static_zip(self.city.fleet)
        self.air = AirKoreaWire(self.city.air, settings.seed) if self.city.air else None
        self.http = WireHttpServer({
            PATHS["vehicles"]: lambda q: (self._locked(gtfs_wire.vehicle_positions, self.stamps),
                                          "application/x-protobuf"),
            PATHS["trips"]: lambda q: (self._locked(gtfs_wire.trip_updates), "application/x-protobuf"),
            PATHS["static"]: lambda q: (self._static, "application/zip"),
            PATHS["air_province"]: lambda q: (self._air(None), "application/json;charset=UTF-8"),
            PATHS["air_station"]: lambda q: (self._air((q.get("stationName") or [""])[0]),
                                             "application/json;charset=UTF-8"),
        }, host=settings.host, port=settings.http_port if http_port is None else http_port)
        self.mqtt: MqttWire | None = None
        self.mavlink: MavlinkWire | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bus_cursor = 0
        self._bus_carry = 0.0
        self._due: dict[str, float] = {}

    def _locked(self, fn, *args):
        with self.lock:
            return fn(self.city.fleet, *args)

    def _air(self, station: str | None) -> bytes:
        assert self.air is not None
        with self.lock:
            return self.air.province() if station is None else self.air.station(station)

    # --- endpoints the adapters are pointed at ---------------------------------------------------
    def gtfs_urls(self) -> list[str]:
        return [self.http.url("vehicles"), self.http.url("trips")]

    def gtfs_static_url(self) -> str:
        return self.http.url("static")

    def air_url(self) -> str:
        return self.http.url("air_province",
                             "sidoName=%EC%9D%B8%EC%B2%9C&returnType=json&numOfRows=100&ver=1.0")

    def air_backfill_url(self) -> str:
        return self.http.url("air_station",
                             "stationName={station}&dataTerm=DAILY&returnType=json&numOfRows=24")

    # --- life cycle ------------------------------------------------------------------------------
    def start(self, publisher: Publisher, broker_url: str | None, topic_prefix: str,
              mavlink_addr: tuple[str, int] | None) -> None:
        self.publisher = publisher
        if broker_url and self.city.sensors:
            self.mqtt = MqttWire(broker_url, topic_prefix)
        if mavlink_addr and self.city.drone:
            self.mavlink = MavlinkWire(self.city.drone, mavlink_addr)
        now = int(time.time())
        self.stamps = {b.id: now for b in self.city.fleet.buses}
        # Serve first: the feeds part starts beside us and fetches static GTFS and air history once.
        self.http.start()
        for cam in self.city.cameras.cameras:
            publisher.update("camera", cam.id, cam.lat, cam.lon, cam.props)
        publisher.flush()
        self._thread = threading.Thread(target=self._loop, name="sim-wire", daemon=True)
        self._thread.start()
        log.info("simulator on the wire: %d buses on %d routes (GTFS-rt %s), %d cameras, seed %d",
                 len(self.city.fleet.buses), len(self.city.fleet.routes), self.http.url("vehicles"),
                 len(self.city.cameras.cameras), self.settings.seed)

    def _every(self, name: str, period: float, now: float) -> bool:
        if now >= self._due.get(name, 0.0):
            self._due[name] = now + period
            return True
        return False

    def _loop(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                self.step(now, now - last)
            except Exception:
                log.exception("simulator step failed")
            last = now
            self._stop.wait(max(0.0, TICK_S - (time.monotonic() - now)))

    def step(self, now: float, dt: float) -> None:
        ts = now_ms()
        buses = self.city.fleet.buses
        if buses:
            self._bus_carry += len(buses) * dt / self.settings.bus_update_s
            count = min(int(self._bus_carry), len(buses))
            self._bus_carry -= count
            with self.lock:
                for _ in range(count):
                    bus = buses[self._bus_cursor]
                    self._bus_cursor = (self._bus_cursor + 1) % len(buses)
                    self.city.fleet.advance(bus, self.settings.bus_update_s)
                    self.stamps[bus.id] = ts // 1000
        if self._every("camera", CAMERA_EVERY_S, now):
            for cam in self.city.cameras.step(ts, share=0.05):
                self.publisher.update("camera", cam.id, cam.lat, cam.lon, cam.props, ts=ts)
            self.publisher.flush()
        if self.city.sensors and self._every("sensor", SENSOR_EVERY_S, now):
            sensors, _events = self.city.sensors.step(SENSOR_EVERY_S, ts)  # events: the adapter's job now
            if self.mqtt:
                self.mqtt.publish(sensors, ts)
        if self.city.drone and self.mavlink and self._every("drone", DRONE_EVERY_S, now):
            lat, lon, props = self.city.drone.step(DRONE_EVERY_S)
            self.mavlink.send(lat, lon, props, DRONE_EVERY_S)
        if self.air and self._every("air", 60.0, now):
            with self.lock:
                self.air.ensure(datetime.now(UTC))  # roll the hour over even when nobody polls

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(3)
        self.http.stop()
        if self.mqtt:
            self.mqtt.close()
