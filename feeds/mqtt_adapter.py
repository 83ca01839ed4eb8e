"""The MQTT transport that every MQTT source shares (sensors, emergency bells).

One paho client per adapter, connected asynchronously: paho's network thread delivers messages to
ingest() and reconnects by itself with back-off; on_connect subscribes again after each reconnect.
A subclass names its topic filter and client id prefix and implements ingest(); the adapter thread
only watches the connection.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod

import paho.mqtt.client as mqtt

from feeds.adapter import Adapter
from feeds.sensors.broker import broker_address, broker_credentials, redact

__all__ = ["MqttAdapter"]


class MqttAdapter(Adapter):
    broker_url: str
    client_prefix = "cc-feeds"  # the broker sees <prefix>-<random>: which of our processes it is
    mqtt: mqtt.Client | None = None
    subscribed = False

    @abstractmethod
    def topic_filter(self) -> str:
        """The one subscription of this adapter (QoS 1: a reading or a press must not be lost between
        the device and us; duplicates are the parser's to fold)."""

    def on_subscribed(self) -> None:
        """After the client is set up (before the broker answers): e.g. publish a static registry."""

    def after_message(self) -> None:
        """After each message: e.g. flush at once when a message must not wait for the loop's turn."""

    # --- transport ------------------------------------------------------------------------------
    def connect(self) -> None:
        if self.mqtt is not None:
            return
        host, port = broker_address(self.broker_url)
        client_id = f"{self.client_prefix}-{uuid.uuid4().hex[:8]}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
        c.reconnect_delay_set(min_delay=0.5, max_delay=10)
        creds = broker_credentials(self.broker_url)
        if creds:
            c.username_pw_set(*creds)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.connect_async(host, port, keepalive=30)
        c.loop_start()
        self.mqtt = c
        self.on_subscribed()

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.disconnect()
            self.mqtt.loop_stop()
            self.mqtt = None

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                    properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            self.stats.error = f"broker refused: {reason}"
            return
        topic = self.topic_filter()
        client.subscribe(topic, qos=1)
        self.subscribed = True
        self.stats.error = ""
        self.log.info("subscribed to %s at %s", topic, redact(self.broker_url))

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object,
                       properties: object = None) -> None:
        self.subscribed = False
        self.stats.error = f"broker disconnected: {reason}"

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        try:
            self.ingest(msg.payload, topic=msg.topic)
        except Exception as exc:  # a message must never end paho's network thread
            self.reject("internal_error", f"{type(exc).__name__}: {exc}")
        self.after_message()

    def run_once(self) -> None:
        self._stop.wait(0.5)
        if self.mqtt is not None:
            self.stats.connected = True  # the transport object exists; paho owns reconnection
            if not self.mqtt.is_connected():
                self.stats.error = self.stats.error or "connecting to broker"
