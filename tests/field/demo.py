"""The demo's two halves as the tests start them: the simulator part and the feeds part, joined only by
the demo overlay of the configuration root, on this test's own ports and broker."""

from __future__ import annotations

import os

from config.root import ConfigRoot, load_config
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from spine.servers.managed import free_port
from tests.stack import free_udp_port


def demo_root(mosquitto: EmbeddedMosquitto, env: dict[str, str] | None = None) -> ConfigRoot:
    """CC_PROFILE=demo with free simulator ports and the test broker, set the way an operator would:
    environment overrides. `env` adds or replaces CC_* overrides."""
    return load_config(environ={
        **os.environ, "CC_PROFILE": "demo",
        "CC_SIMULATOR__HTTP_PORT": str(free_port()), "CC_SIMULATOR__MAVLINK_PORT": str(free_udp_port()),
        "CC_FEEDS__SENSORS__BROKER_URL": mosquitto.url, **(env or {}),
    })
