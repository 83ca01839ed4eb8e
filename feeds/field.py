"""The field-feed process: starts the configured adapters (and in the demo the simulator's wire
servers), the health writer, and runs until SIGTERM or Ctrl-C.

    main(redis_url)                       configuration from config/feeds.yaml (`feeds:` section)
    FieldRunner(redis_url, cfg, sim)      the same, as an object tests and the simulator start/stop
"""

from __future__ import annotations

import logging
import os
import signal
import tempfile
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.settings import CONFIG_DIR, ConfigError, SimulatorSettings, explain, read_yaml
from feeds.adapter import Adapter, service_area
from feeds.air.adapter import AirAdapter
from feeds.air.config import AirConfig
from feeds.drone.adapter import DroneAdapter
from feeds.drone.config import DroneConfig
from feeds.sensors.adapter import SensorAdapter, broker_address
from feeds.sensors.config import SensorsConfig
from feeds.transit.adapter import TransitAdapter
from feeds.transit.config import TransitConfig
from spine.health import HealthWriter
from spine.publisher import Publisher, connect
from spine.servers.embedded_mqtt import EmbeddedMosquitto, broker_answers

log = logging.getLogger(__name__)


class DemoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    http_port: int = Field(0, ge=0, le=65535)
    private_ports: bool = True


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(2.0, gt=0, le=60)


class AreaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buffer_deg: float = Field(0.05, ge=0, le=1)


class FeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    demo: DemoConfig = DemoConfig()
    health: HealthConfig = HealthConfig()
    service_area: AreaConfig = AreaConfig()
    transit: TransitConfig = TransitConfig()
    air: AirConfig = AirConfig()
    drone: DroneConfig = DroneConfig()
    sensors: SensorsConfig = SensorsConfig()


def load_feeds_config(config_dir: Path | None = None) -> FeedsConfig:
    """The `feeds:` section of config/feeds.yaml; one readable line per problem, exit status 2."""
    directory = Path(os.environ.get("CC_CONFIG_DIR", config_dir or CONFIG_DIR))
    path = directory / "feeds.yaml"
    if not path.exists():
        return FeedsConfig()
    data = read_yaml(path)
    section = data.get("feeds", {})
    if not isinstance(section, dict):
        raise ConfigError(f"{path}: expected a mapping under 'feeds:'")
    try:
        return FeedsConfig(**section)
    except ValidationError as exc:
        raise ConfigError(explain(exc, f"{path} is not valid:", prefix="feeds.")) from None


class FieldRunner:
    def __init__(self, redis_url: str, cfg: FeedsConfig, sim: SimulatorSettings | None = None,
                 workdir: Path | None = None) -> None:
        self.redis_url = redis_url
        self.cfg = cfg
        self.sim_settings = sim
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="cc-feeds-"))
        self.adapters: list[Adapter] = []
        self.broker: EmbeddedMosquitto | None = None
        self.broker_url: str | None = None
        self.wire = None
        self.health: HealthWriter | None = None

    def _resolve_broker(self) -> str:
        host, port = broker_address(self.cfg.sensors.broker_url)
        if broker_answers(host, port):
            return self.cfg.sensors.broker_url
        if not self.cfg.sensors.start_private_broker:
            log.warning("no MQTT broker at %s; waiting for it", self.cfg.sensors.broker_url)
            return self.cfg.sensors.broker_url
        self.broker = EmbeddedMosquitto(self.workdir / "mosquitto")
        log.info("no MQTT broker at %s: starting a private one", self.cfg.sensors.broker_url)
        return self.broker.start()

    def start(self) -> FieldRunner:
        cfg = self.cfg
        client = connect(self.redis_url)
        area = service_area(cfg.service_area.buffer_deg)
        if self.sim_settings is not None:
            from feeds.simulator.wire import WireSimulator  # only the demo needs the models

            self.wire = WireSimulator(self.sim_settings, cfg.demo.http_port)
        wire = self.wire
        if cfg.sensors.enabled:
            self.broker_url = self._resolve_broker()
        if cfg.transit.enabled and (cfg.transit.urls or wire):
            a = TransitAdapter(client, cfg.transit, area)
            if not cfg.transit.urls and wire:
                a.urls, a.static_url = wire.gtfs_urls(), wire.gtfs_static_url()
            self.adapters.append(a)
        if cfg.air.enabled and (cfg.air.url or wire):
            a = AirAdapter(client, cfg.air, area)
            if not cfg.air.url and wire:
                a.url, a.backfill_url = wire.air_url(), wire.air_backfill_url()
            self.adapters.append(a)
        drone: DroneAdapter | None = None
        if cfg.drone.enabled:
            dcfg = cfg.drone
            if wire and cfg.demo.private_ports:
                dcfg = dcfg.model_copy(update={"listen": "127.0.0.1:0"})
            drone = DroneAdapter(client, dcfg, area)
            drone.connect()  # bind now so the simulator knows where to send
            drone.stats.connected = True
            self.adapters.append(drone)
        if cfg.sensors.enabled:
            self.adapters.append(SensorAdapter(client, cfg.sensors, area, broker_url=self.broker_url))
        if wire:
            wire.start(Publisher(client, src="sim"), self.broker_url, cfg.sensors.topic_prefix,
                       ("127.0.0.1", drone.port) if drone else None)
        for a in self.adapters:
            a.start()
        self.health = HealthWriter(client, self.adapters, cfg.health.interval_s)
        self.health.start()
        log.info("field feeds running: %s", ", ".join(a.source for a in self.adapters) or "none")
        return self

    def stop(self) -> None:
        for a in self.adapters:
            a.stop()
        if self.wire:
            self.wire.stop()
        if self.health:
            self.health.stop()
        if self.broker:
            self.broker.stop()

    def __enter__(self) -> FieldRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_until_signal(runner: FieldRunner) -> None:
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    runner.start()
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        runner.stop()
        log.info("field feeds stopped: %s", {a.source: a.stats.messages for a in runner.adapters})


def main(redis_url: str) -> None:
    cfg = load_feeds_config()
    sim = None
    if cfg.demo.enabled:
        from config.settings import get_settings

        sim = get_settings().simulator
    run_until_signal(FieldRunner(redis_url, cfg, sim))
