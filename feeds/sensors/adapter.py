"""The sensor adapter: MQTT Observations -> sensor layer, threshold crossings -> contract Events.

paho's network thread calls ingest(); the adapter thread only watches the connection. paho
reconnects by itself (with back-off) after a broker restart and on_connect subscribes again.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import redis

from feeds.adapter import Clock, ServiceArea
from feeds.mqtt_adapter import MqttAdapter
from feeds.sensors.broker import broker_address
from feeds.sensors.config import RuleConfig, SensorsConfig
from feeds.sensors.observation import Reading, parse
from feeds.sensors.rules import METRIC_HOURS, Accumulator, RuleState, level_props, step
from spine.contract import Event, Rejected, validate_event
from spine.layers import N_
from spine.publisher import Publisher

__all__ = ["SensorAdapter", "broker_address"]

MAX_UNKNOWN_SENSORS = 1000  # with discovery on (accept_unknown): self-described sensors beyond the registry


# Event texts as gettext message ids (translations/): [without, with] the rainfall span.
_ACTIVE_MSG = (N_("{name}: {rule}, {value} {unit} {op} {level}"),
               N_("{name}: {rule}, {value} {unit} ({what}) {op} {level}"))
_CLEARED_MSG = (N_("{name}: {rule} cleared, {value} {unit}"),
                N_("{name}: {rule} cleared, {value} {unit} ({what})"))
_SPAN_WORDS = {"value": None, "sum_1h": N_("1 h total"), "sum_3h": N_("3 h total"),
               "sum_12h": N_("12 h total")}


@dataclass
class _Sensor:
    id: str
    kind: str
    name: str
    unit: str
    lat: float
    lon: float
    district: str | None
    rules: list[RuleConfig]
    states: list[RuleState]
    range: tuple[float, float] | None
    last_t_ms: int = 0
    rain: Accumulator = field(default_factory=Accumulator)


class SensorAdapter(MqttAdapter):
    source = "mqtt_sensors"
    layer = "sensor"

    def __init__(self, client: redis.Redis, cfg: SensorsConfig, area: ServiceArea | None = None,
                 broker_url: str | None = None, *, clock: Clock | None = None,
                 publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        self.broker_url = broker_url or cfg.broker_url
        self.sensors: dict[str, _Sensor] = {}

    # --- transport (feeds/mqtt_adapter.py) ------------------------------------------------------
    def topic_filter(self) -> str:
        return f"{self.cfg.topic_prefix}v1.1/#"

    # --- parse, validate, publish ------------------------------------------------------------------
    def ingest(self, raw: bytes, **context: str) -> int:
        reading = parse(context.get("topic", ""), raw, self.reject)
        if reading is None:
            return 0
        with self._lock:
            return self._apply(reading)

    def _sensor(self, r: Reading) -> _Sensor | None:
        s = self.sensors.get(r.datastream)
        if s is not None:
            return s
        known = self.cfg.sensors.get(r.datastream)
        if known is None and not self.cfg.accept_unknown:
            self.reject("unknown_sensor", r.datastream)
            return None
        kind = (known.kind if known and known.kind else None) or r.kind
        lat = known.lat if known and known.lat is not None else r.lat
        lon = known.lon if known and known.lon is not None else r.lon
        if not kind or lat is None or lon is None:
            self.reject("unknown_sensor", f"{r.datastream}: no kind or location in config or payload")
            return None
        if known is None:
            # Self-describing sensors are welcome, but only real ones are remembered: hostile
            # traffic with endless made-up ids must not grow memory or the state hash.
            if not self.in_area(lat, lon, r.datastream):
                return None
            if sum(1 for sid in self.sensors if sid not in self.cfg.sensors) >= MAX_UNKNOWN_SENSORS:
                self.reject("too_many_unknown_sensors", r.datastream)
                return None
        kind_cfg = self.cfg.kinds.get(kind)
        rules = known.rules if known and known.rules is not None else (kind_cfg.rules if kind_cfg else [])
        s = _Sensor(id=r.datastream, kind=kind, name=(known.name if known and known.name else r.name)
                    or r.datastream, unit=(known.unit if known and known.unit else r.unit)
                    or (kind_cfg.unit if kind_cfg and kind_cfg.unit else ""), lat=lat, lon=lon,
                    district=(known.district if known and known.district else r.district),
                    rules=list(rules), states=[RuleState() for _ in rules],
                    range=kind_cfg.range if kind_cfg else None)
        self.sensors[r.datastream] = s
        return s

    def _apply(self, r: Reading) -> int:
        now_ms = int(self.clock.time() * 1000)
        if r.t_ms > now_ms + self.cfg.max_future_s * 1000:
            self.reject("future_timestamp", f"{r.datastream}: {(r.t_ms - now_ms) / 1000:.0f}s ahead")
            return 0
        if r.t_ms > now_ms:
            # Within the allowed clock skew: counted as "now", so this reading cannot hold back
            # the sensor's next real readings (last_t_ms is never ahead of our clock).
            r = dataclasses.replace(r, t_ms=now_ms)
        s = self._sensor(r)
        if s is None:
            return 0
        if s.range and not s.range[0] <= r.value <= s.range[1]:
            self.reject("out_of_range:result", f"{s.id}: {r.value} outside {s.range}")
            return 0
        if r.t_ms <= s.last_t_ms:
            self.reject("duplicate_or_old", f"{s.id}: {r.t_ms} <= {s.last_t_ms}")
            return 0
        lat, lon = s.lat, s.lon
        known = self.cfg.sensors.get(s.id)
        if r.lat is not None and r.lon is not None and not (known and known.lat is not None):
            lat, lon = r.lat, r.lon  # a self-located sensor may move (mobile gauges)
        if not self.in_area(lat, lon, s.id):
            return 0
        s.lat, s.lon = lat, lon
        s.last_t_ms = r.t_ms
        t = r.t_ms / 1000
        if s.kind == "rain":
            s.rain.add(t, r.value)
        for i, rule in enumerate(s.rules):
            value = r.value if rule.metric == "value" else s.rain.total(METRIC_HOURS[rule.metric], t)
            change = step(rule, s.states[i], value, t)
            if change:
                self._event(s, i, rule, value, change, r.t_ms)
        self.publisher.update("sensor", s.id, s.lat, s.lon, self._props(s, r.value), ts=r.t_ms)
        self.accepted(1, r.t_ms)
        return 1

    def _props(self, s: _Sensor, value: float) -> dict:
        first = next((ru for ru in s.rules if ru.metric == "value"), None)
        props: dict = {"name": s.name, "kind": s.kind, "unit": s.unit, "district": s.district,
                       "value": round(value, 3), "threshold": first.level if first else None,
                       **level_props(s.rules, s.states)}
        if s.kind == "rain" and s.rain.last_t is not None:
            props["rain_3h_mm"] = round(s.rain.total(3, s.rain.last_t), 1)
            props["rain_12h_mm"] = round(s.rain.total(12, s.rain.last_t), 1)
        return props

    def _event(self, s: _Sensor, i: int, rule: RuleConfig, value: float, change: str, t_ms: int) -> None:
        cleared = change == "cleared"
        what = {"value": "", "sum_1h": " (1 h total)", "sum_3h": " (3 h total)",
                "sum_12h": " (12 h total)"}[rule.metric]
        title = (f"{s.name}: {rule.name} cleared, {value:.2f} {s.unit}{what}" if cleared else
                 f"{s.name}: {rule.name}, {value:.2f} {s.unit}{what} "
                 f"{'≥' if rule.direction == 'above' else '≤'} {rule.level}")
        # The same text as a catalogue key and params, shown in each viewer's language (issue 9).
        span = _SPAN_WORDS[rule.metric]
        msg = (_CLEARED_MSG if cleared else _ACTIVE_MSG)[span is not None]
        params = {"name": s.name[:200], "rule": rule.name[:200], "value": round(value, 2),
                  "unit": s.unit[:200], "op": "≥" if rule.direction == "above" else "≤",
                  "level": rule.level, **({"what": span} if span else {})}
        try:
            ev: Event = validate_event({
                "msg": msg, "params": params,
                "v": 1, "id": f"ev-{s.id}-r{i}-{'clr' if cleared else 'act'}-{t_ms}",
                "type": "threshold_clear" if cleared else "threshold",
                "severity": "info" if cleared else rule.severity, "ts": t_ms, "layer": "sensor",
                "entity": s.id, "lat": s.lat, "lon": s.lon, "title": title[:200],
                "props": {"value": round(value, 3), "threshold": rule.level, "rule": rule.name,
                          "metric": rule.metric, "direction": rule.direction, "kind": s.kind,
                          "state": "cleared" if cleared else "active"}})
        except Rejected as exc:
            self.reject(exc.reason, exc.detail)
            return
        self.publisher.event(ev)
