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
import threading

from config.settings import SimulatorSettings
from feeds.config import FeedsConfig
from feeds.field import run_until_signal
from feeds.simulator.bells import BellWire
from feeds.simulator.wire import WireSimulator
from spine.contract import now_ms
from spine.publisher import Publisher, connect

log = logging.getLogger(__name__)


class SimulatorPart:
    def __init__(self, redis_url: str, sim: SimulatorSettings, feeds: FeedsConfig) -> None:
        self.redis_url = redis_url
        self.sim = sim
        self.feeds = feeds
        self.wire = WireSimulator(sim)
        self.bells: BellWire | None = None
        self._stop = threading.Event()

    @property
    def broker_url(self) -> str:
        return self.sim.mqtt_url or self.feeds.sensors.broker_url

    def start(self) -> SimulatorPart:
        publisher = Publisher(connect(self.redis_url), src="sim")
        self.wire.start(publisher, self.broker_url if self.feeds.sensors.enabled else None,
                        self.feeds.sensors.topic_prefix, (self.sim.host, self.sim.mavlink_port))
        if self.feeds.bells.enabled and self.feeds.bells.bells:
            # Bell boxes press now and then (feeds/simulator/bells.py), on the same broker.
            bells = self.feeds.bells
            self.bells = BellWire(self.broker_url, bells.topic_prefix, list(bells.bells), self.sim.seed)
            threading.Thread(target=self._bell_loop, name="sim-bells", daemon=True).start()
        return self

    def _bell_loop(self) -> None:
        while not self._stop.wait(1.0):
            try:
                if self.bells:
                    self.bells.step(1.0, now_ms())
            except Exception:
                log.exception("bell simulator step failed")

    def stop(self) -> None:
        self._stop.set()
        if self.bells:
            self.bells.close()
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
