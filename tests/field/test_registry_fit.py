"""What the real producers publish fits the layer registry (spine/layers.py).

The demo runs on the wire path (simulator -> GTFS-rt / AirKorea / MQTT / MAVLink -> the field
adapters -> Redis) while the simulator's cameras and direct models publish too; every state-hash
value and every recent event is then checked against the registry's typed props, as the gateway
checks them. A prop a producer sends that the registry does not declare fails here, not on a wall.
"""

from __future__ import annotations

import time

import msgspec
import redis

from config.settings import SimulatorSettings
from feeds.field import FieldRunner
from feeds.simulator.part import SimulatorPart
from feeds.simulator.run import CitySimulator
from spine import channels
from spine.contract import LAYERS, Event, validate_event, validate_update
from spine.publisher import Publisher, connect
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from tests.field.conftest import wait_for
from tests.field.demo import demo_root


def test_every_producer_output_fits_the_registry(redis_url: str, mosquitto: EmbeddedMosquitto,
                                                 tmp_path) -> None:
    root = demo_root(mosquitto, {"CC_FEEDS__SENSORS__TOPIC_PREFIX": "fit/",
                                 "CC_FEEDS__TRANSIT__PERIOD_S": "0.5",
                                 "CC_SIMULATOR__BUSES": "50", "CC_SIMULATOR__CAMERAS": "30"})
    demo = SimulatorPart(redis_url, root.settings.simulator, root.feeds)
    runner = FieldRunner(redis_url, root.feeds, tmp_path)
    client = redis.Redis.from_url(redis_url)
    try:
        demo.start()
        runner.start()
        wait_for(lambda: all(client.hlen(channels.state_key(layer)) > 0
                             for layer in ("bus", "air", "sensor", "drone", "camera")), 30)
        # The direct models too (tests and main_direct publish them), including threshold events.
        sim = CitySimulator(SimulatorSettings(buses=20, cameras=20, seed=7))
        sim.sensors.first_storm_in = 0.0  # type: ignore[union-attr]
        pub = Publisher(connect(redis_url), src="fit")
        sim.publish_static(pub)
        now = time.monotonic()
        for i in range(40):
            sim.tick(pub, now + i * 2.0, 2.0)
        assert pub.flush()
    finally:
        runner.stop()
        demo.stop()
    checked = 0
    for layer in LAYERS:
        for raw in client.hgetall(channels.state_key(layer)).values():
            validate_update(msgspec.json.decode(raw))
            checked += 1
    for raw in client.lrange(channels.RECENT_EVENTS_KEY, 0, -1):
        validate_event(msgspec.json.decode(raw))
    assert checked > 100
    # An over-long name is refused with a reason that names the prop.
    bad = {"v": 1, "layer": "camera", "id": "c", "ts": 1, "seq": 1, "lat": 37.0, "lon": 126.0,
           "props": {"name": "x" * 5000}}
    try:
        validate_update(bad)
    except Exception as exc:
        assert getattr(exc, "reason", "") == "invalid:props.name"
    else:
        raise AssertionError("an over-long camera name was accepted")
    assert Event  # the event type is the one the gateway decodes
