"""The simulated sensor network publishing SensorThings-like Observations over MQTT.

It logs in like a field gateway would: the broker URL's userinfo (the private broker's `sensors`
user, which may only publish under the topic prefix) or MQTT_USERNAME / MQTT_PASSWORD.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import paho.mqtt.client as mqtt

from feeds.sensors.broker import broker_address, broker_credentials
from feeds.sensors.observation import topic_for
from feeds.simulator.sensors import Sensor


def observation(s: Sensor, t_ms: int) -> bytes:
    when = datetime.fromtimestamp(t_ms / 1000, UTC).isoformat(timespec="milliseconds")
    when = when.replace("+00:00", "Z")
    return json.dumps({
        "phenomenonTime": when, "resultTime": when, "result": round(s.value, 3),
        "Datastream": {"@iot.id": s.id, "name": s.name, "unitOfMeasurement": {"symbol": s.unit},
                       "ObservedProperty": {"name": s.kind},
                       "Thing": {"properties": {"district": s.district}}},
        "FeatureOfInterest": {"encodingType": "application/vnd.geo+json",
                              "feature": {"type": "Point",
                                          "coordinates": [round(s.lon, 6), round(s.lat, 6)]}},
    }, ensure_ascii=False).encode("utf-8")


class MqttWire:
    def __init__(self, broker_url: str, topic_prefix: str) -> None:
        self.prefix = topic_prefix
        host, port = broker_address(broker_url)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"cc-sim-{uuid.uuid4().hex[:8]}")
        self.client.reconnect_delay_set(min_delay=0.5, max_delay=10)
        creds = broker_credentials(broker_url)
        if creds:
            self.client.username_pw_set(*creds)
        self.client.connect_async(host, port, keepalive=30)
        self.client.loop_start()
        self.sent = 0

    def publish(self, sensors: list[Sensor], t_ms: int) -> None:
        if not self.client.is_connected():
            return  # a real field gateway would buffer; the demo just skips a beat
        for s in sensors:
            self.client.publish(topic_for(self.prefix, s.id), observation(s, t_ms), qos=1)
            self.sent += 1

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
