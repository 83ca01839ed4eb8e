"""The emergency-bell adapter: MQTT presses -> critical `bell` Events; the bells on the sensor map.

A press becomes one Event (type `bell`, severity critical, layer `sensor`, entity = the bell id,
position from the registry) that the alarm service's "emergency bell" rule turns into a critical
alarm and the incident service (auto_from_alarms) into an `emergency_bell` incident. paho's network
thread calls ingest(); paho reconnects by itself and on_connect subscribes again.
"""

from __future__ import annotations

import redis

from feeds.adapter import Clock, ServiceArea
from feeds.bells.config import BellConfig, BellsConfig
from feeds.bells.message import BadMessage, BellMessage, parse
from feeds.mqtt_adapter import MqttAdapter
from spine.contract import Rejected, validate_event
from spine.layers import N_
from spine.publisher import Publisher

__all__ = ["PRESS_MSG", "BellAdapter"]

PRESS_MSG = N_("Emergency bell pressed: {name}")


class BellAdapter(MqttAdapter):
    source = "mqtt_bells"
    client_prefix = "cc-bells"
    layer = "sensor"

    def __init__(self, client: redis.Redis | None, cfg: BellsConfig, broker_url: str,
                 area: ServiceArea | None = None, *, clock: Clock | None = None,
                 publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        self.broker_url = broker_url
        self.presses = 0
        self._last_press: dict[str, int] = {}  # bell -> t_ms of its last published press
        self._last_t: dict[str, int] = {}  # bell -> newest message time (older ones are replays)

    # --- transport (feeds/mqtt_adapter.py) ------------------------------------------------------
    def topic_filter(self) -> str:
        return f"{self.cfg.topic_prefix}bells/+/+"

    def on_subscribed(self) -> None:
        self.publish_registry()  # the bells are on the map before anyone presses one

    def after_message(self) -> None:
        self.flush()  # a press should not wait for the adapter loop's next turn

    # --- parse, validate, publish ------------------------------------------------------------------
    def publish_registry(self) -> None:
        """Every registered bell on the sensor map (kind `bell`), so they are visible before a press."""
        now = int(self.clock.time() * 1000)
        with self._lock:
            for bid, b in self.cfg.bells.items():
                if self.in_area(b.lat, b.lon, bid):
                    self.publisher.update("sensor", bid, b.lat, b.lon, self._props(b), ts=now)

    @staticmethod
    def _props(b: BellConfig) -> dict:
        return {"name": b.name, "kind": "bell", "district": b.district}

    def ingest(self, raw: bytes, **context: str) -> int:
        try:
            m = parse(context.get("topic", ""), self.cfg.topic_prefix, raw)
        except BadMessage as exc:
            self.reject(exc.reason, exc.detail)
            return 0
        with self._lock:
            return self._apply(m)

    def _apply(self, m: BellMessage) -> int:
        bell = self.cfg.bells.get(m.bell)
        if bell is None:
            self.reject("unknown_bell", m.bell)
            return 0
        now = int(self.clock.time() * 1000)
        t = now if m.t_ms is None else m.t_ms
        if t > now + self.cfg.max_future_s * 1000:
            self.reject("future_timestamp", f"{m.bell}: {(t - now) / 1000:.0f}s ahead")
            return 0
        t = min(t, now)
        if t < self._last_t.get(m.bell, 0):
            self.reject("duplicate_or_old", f"{m.bell}: {t}")
            return 0
        self._last_t[m.bell] = t
        if not self.in_area(bell.lat, bell.lon, m.bell):
            return 0
        if m.kind == "status":
            self.publisher.update("sensor", m.bell, bell.lat, bell.lon, self._props(bell), ts=t)
            self.accepted(1, t)
            return 1
        last = self._last_press.get(m.bell)
        if last is not None and t - last < self.cfg.min_interval_s * 1000:
            self.reject("press_repeat", m.bell)  # counted, not an error: a held button
            return 0
        try:
            ev = validate_event({
                "v": 1, "id": f"ev-{m.bell}-press-{t}", "type": "bell", "severity": "critical", "ts": t,
                "layer": "sensor", "entity": m.bell, "lat": bell.lat, "lon": bell.lon,
                "title": f"비상벨 호출: {bell.name}"[:200], "msg": PRESS_MSG,
                "params": {"name": bell.name[:200]},
                "props": {"kind": "bell", "state": "active"}})
        except Rejected as exc:
            self.reject(exc.reason, exc.detail)
            return 0
        self._last_press[m.bell] = t
        self.publisher.update("sensor", m.bell, bell.lat, bell.lon, self._props(bell), ts=t)
        self.publisher.event(ev)
        self.presses += 1
        self.accepted(1, t)
        return 1
