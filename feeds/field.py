"""The field-feed process: starts the configured adapters and the health writer, and runs until
SIGTERM or Ctrl-C. It knows nothing of the demo: the demo overlay (config/overlays/demo.yaml) points
the adapters' URLs and ports at the simulator's wire servers, as a deployment points them at its own.

    main(redis_url)                  configuration from the root (config/root.py), section `feeds:`
    FieldRunner(redis_url, cfg)      the same, as an object tests start and stop
"""

from __future__ import annotations

import logging
import signal
import tempfile
import threading
from pathlib import Path
from typing import Protocol

from feeds.adapter import Adapter, service_area
from feeds.air.adapter import AirAdapter
from feeds.bells.adapter import BellAdapter
from feeds.config import FeedsConfig
from feeds.drone.adapter import DroneAdapter
from feeds.frigate.adapter import FrigateAdapter
from feeds.sensors.adapter import SensorAdapter
from feeds.sensors.broker import broker_address, redact
from feeds.transit.adapter import TransitAdapter
from spine.health import HealthWriter
from spine.publisher import connect
from spine.servers.embedded_mqtt import EmbeddedMosquitto, broker_answers

log = logging.getLogger(__name__)


__all__ = ["FeedsConfig", "FieldRunner", "load_feeds_config", "main", "run_until_signal"]


def load_feeds_config(config_dir: Path | None = None) -> FeedsConfig:
    """The `feeds:` section from the configuration root (files, CC_PROFILE overlay, CC_FEEDS__*
    overrides); one readable line per problem, exit status 2."""
    from config.root import load_config

    return load_config(config_dir, check_references=False).feeds


class FieldRunner:
    def __init__(self, redis_url: str, cfg: FeedsConfig, workdir: Path | None = None) -> None:
        self.redis_url = redis_url
        self.cfg = cfg
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="cc-feeds-"))
        self.adapters: list[Adapter] = []
        self.broker: EmbeddedMosquitto | None = None
        self.broker_url: str | None = None
        self.health: HealthWriter | None = None

    def _resolve_broker(self) -> str:
        host, port = broker_address(self.cfg.sensors.broker_url)
        if broker_answers(host, port):
            return self.cfg.sensors.broker_url
        if not self.cfg.sensors.start_private_broker:
            log.warning("no MQTT broker at %s; waiting for it", redact(self.cfg.sensors.broker_url))
            return self.cfg.sensors.broker_url
        # Password auth and per-topic ACLs: the adapter logs in as `feeds`, which may only read.
        self.broker = EmbeddedMosquitto(self.workdir / "mosquitto",
                                        topic_prefixes=tuple(dict.fromkeys(
                                            (self.cfg.sensors.topic_prefix, self.cfg.bells.topic_prefix))))
        log.info("no MQTT broker at %s: starting a private one", redact(self.cfg.sensors.broker_url))
        self.broker.start()
        return self.broker.url_for("feeds")

    def start(self) -> FieldRunner:
        cfg = self.cfg
        client = connect(self.redis_url)
        # One area for every adapter: districts, the deployment's boundary file, or its lat/lon box.
        area = service_area(cfg.service_area.buffer_deg, cfg.service_area.boundary_file, cfg.service_area.box)
        # Bells without a registry have nothing to listen for: no broker (and no private one) for them.
        bells = cfg.bells.enabled and bool(cfg.bells.bells)
        if cfg.sensors.enabled or bells:
            self.broker_url = self._resolve_broker()
        # A pull source without a URL has nothing to read: it is left out (and said so), not started idle.
        if cfg.transit.enabled and cfg.transit.urls:
            self.adapters.append(TransitAdapter(client, cfg.transit, area))
        elif cfg.transit.enabled:
            log.info("transit: no feeds.transit.urls configured; not started")
        if cfg.air.enabled and cfg.air.url:
            self.adapters.append(AirAdapter(client, cfg.air, area))
        elif cfg.air.enabled:
            log.info("air: no feeds.air.url configured; not started")
        if cfg.drone.enabled:
            drone = DroneAdapter(client, cfg.drone, area)
            drone.connect()  # bind now: a port already taken is a start-up error, not a silent retry
            drone.stats.connected = True
            self.adapters.append(drone)
        if cfg.sensors.enabled:
            self.adapters.append(SensorAdapter(client, cfg.sensors, area, broker_url=self.broker_url))
        if bells and self.broker_url:
            self.adapters.append(BellAdapter(client, cfg.bells, self.broker_url, area))
        elif cfg.bells.enabled:
            log.info("bells: no feeds.bells.bells registry configured; not started")
        if cfg.frigate.enabled and cfg.frigate.servers:
            self.adapters.append(FrigateAdapter.from_config(client, cfg.frigate))
        for a in self.adapters:
            a.start()
        self.health = HealthWriter(client, self.adapters, cfg.health.interval_s)
        self.health.start()
        log.info("field feeds running: %s", ", ".join(a.source for a in self.adapters) or "none")
        return self

    def stop(self) -> None:
        for a in self.adapters:
            a.stop()
        if self.health:
            self.health.stop()
        if self.broker:
            self.broker.stop()

    def __enter__(self) -> FieldRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Part(Protocol):
    def start(self) -> object: ...

    def stop(self) -> None: ...


def run_until_signal(part: Part) -> None:
    """Start a part, run until SIGTERM or Ctrl-C, then stop it (the feeds and simulator parts)."""
    done = threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: done.set())
    part.start()
    try:
        while not done.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        part.stop()


def main(redis_url: str, cfg: FeedsConfig | None = None) -> None:
    runner = FieldRunner(redis_url, cfg or load_feeds_config())
    run_until_signal(runner)
    log.info("field feeds stopped: %s", {a.source: a.stats.messages for a in runner.adapters})
