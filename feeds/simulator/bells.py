"""The demo's emergency bells: now and then somebody presses one (the boxes of feeds.bells.bells).

Publishes over MQTT as a bell box would (<prefix>bells/<id>/press, QoS 1), logging in like the
sensors' field gateway (the broker URL's userinfo: the private broker's `sensors` user). A status
heartbeat from every bell keeps the source's health fresh between presses.
"""

from __future__ import annotations

import json
import random
import uuid

import paho.mqtt.client as mqtt

from feeds.bells.message import topic_for
from feeds.sensors.broker import broker_address, broker_credentials

FIRST_PRESS_S = 60.0  # the demo shows a bell incident early ...
MEAN_GAP_S = 900.0  # ... then about every 15 minutes
STATUS_EVERY_S = 120.0


class BellWire:
    def __init__(self, broker_url: str, topic_prefix: str, bells: list[str], seed: int) -> None:
        self.prefix = topic_prefix
        self.bells = sorted(bells)
        self.rng = random.Random(seed + 11)
        self.next_press = FIRST_PRESS_S
        self.next_status = 0.0
        self.elapsed = 0.0
        self.pressed: list[str] = []
        host, port = broker_address(broker_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"cc-simbell-{uuid.uuid4().hex[:8]}")
        self.client.reconnect_delay_set(min_delay=0.5, max_delay=10)
        creds = broker_credentials(broker_url)
        if creds:
            self.client.username_pw_set(*creds)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()

    def press(self, bell: str, t_ms: int) -> None:
        self.client.publish(topic_for(self.prefix, bell), json.dumps({"ts": t_ms}), qos=1)
        self.pressed.append(bell)

    def step(self, dt: float, t_ms: int) -> None:
        if not self.bells or not self.client.is_connected():
            return
        self.elapsed += dt
        if self.elapsed >= self.next_status:
            self.next_status = self.elapsed + STATUS_EVERY_S
            for b in self.bells:
                self.client.publish(topic_for(self.prefix, b, "status"), json.dumps({"ts": t_ms, "ok": True}),
                                    qos=1)
        if self.elapsed >= self.next_press:
            self.next_press = self.elapsed + self.rng.expovariate(1 / MEAN_GAP_S)
            self.press(self.rng.choice(self.bells), t_ms)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
