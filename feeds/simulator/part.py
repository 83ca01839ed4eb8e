"""The `simulator` part of the demo (app.py --only simulator): the demo city's wire servers and its
demo-only publishers, nothing else.

It serves GTFS-realtime, static GTFS and AirKorea JSON over HTTP at simulator.host:http_port, sends its
drone's MAVLink to simulator.host:mavlink_port, publishes its sensors' Observations to the MQTT broker
and publishes the simulated camera inventory straight onto the contract (their real path is vision/).
The adapters that read all this run in the `feeds` part, from configuration alone: the demo overlay
(config/overlays/demo.yaml) points them at these addresses.
"""

from __future__ import annotations

import logging

from config.settings import SimulatorSettings
from feeds.config import FeedsConfig
from feeds.field import run_until_signal
from feeds.simulator.wire import WireSimulator
from spine.publisher import Publisher, connect

log = logging.getLogger(__name__)


class SimulatorPart:
    def __init__(self, redis_url: str, sim: SimulatorSettings, feeds: FeedsConfig) -> None:
        self.redis_url = redis_url
        self.sim = sim
        self.feeds = feeds
        self.wire = WireSimulator(sim)

    @property
    def broker_url(self) -> str:
        return self.sim.mqtt_url or self.feeds.sensors.broker_url

    def start(self) -> SimulatorPart:
        publisher = Publisher(connect(self.redis_url), src="sim")
        self.wire.start(publisher, self.broker_url if self.feeds.sensors.enabled else None,
                        self.feeds.sensors.topic_prefix, (self.sim.host, self.sim.mavlink_port))
        return self

    def stop(self) -> None:
        self.wire.stop()

    def __enter__(self) -> SimulatorPart:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(redis_url: str, sim: SimulatorSettings, feeds: FeedsConfig) -> None:
    try:
        part = SimulatorPart(redis_url, sim, feeds)
    except OSError as exc:  # the port is taken (a second demo on this machine, another service)
        raise SystemExit(f"simulator: cannot serve on {sim.host}:{sim.http_port} ({exc.strerror}); "
                         "choose another with CC_SIMULATOR__HTTP_PORT") from None
    run_until_signal(part)
    log.info("simulator stopped")
