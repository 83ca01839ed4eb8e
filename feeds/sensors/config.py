"""Configuration of the sensor source (section `feeds.sensors` of config/feeds.yaml): the broker,
per-kind default rules and per-sensor overrides (flood stages are per station, never percentages).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spine.layers import Severity  # one vocabulary for every producer (spine/layers.py)

Metric = Literal["value", "sum_1h", "sum_3h", "sum_12h"]


class RuleConfig(BaseModel):
    """One alarm limit with ISA-18.2 nuisance handling (standards.md 3.3)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60)
    level: float
    direction: Literal["above", "below"] = "above"
    metric: Metric = "value"  # sum_*: rolling accumulation of an mm/h intensity (rain)
    deadband: float = Field(0.0, ge=0)  # clears only once back past level -/+ deadband
    on_delay_s: float = Field(0.0, ge=0)  # must stay beyond the level this long to activate
    off_delay_s: float = Field(0.0, ge=0)  # must stay clear this long to return to normal
    severity: Severity = "medium"


class SensorConfig(BaseModel):
    """A known sensor; observations may also describe themselves (FeatureOfInterest, Datastream)."""

    model_config = ConfigDict(extra="forbid")

    kind: str | None = None
    name: str | None = None
    unit: str | None = None
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    district: str | None = None
    rules: list[RuleConfig] | None = None  # replaces the kind's rules when given
    contract_s: float | None = Field(None, gt=0)


class KindConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    unit: str | None = None
    range: tuple[float, float] | None = None  # physically plausible values; outside is rejected
    rules: list[RuleConfig] = []


class SensorsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    broker_url: str = "mqtt://127.0.0.1:1883"
    start_private_broker: bool = True  # when nothing answers at broker_url
    topic_prefix: str = "incheon/"  # subscriptions: <prefix>v1.1/Datastreams(<id>)/Observations
    contract_s: float = Field(60.0, gt=0)
    # The registry is `sensors` below: an observation from an unlisted id is rejected (counted as
    # unknown_sensor) unless discovery is switched on here, for commissioning a new network.
    accept_unknown: bool = False
    # Clock skew allowed for phenomenonTime; further ahead is rejected, a little ahead counts as now.
    max_future_s: float = Field(30.0, ge=0, le=3600)
    kinds: dict[str, KindConfig] = {}
    sensors: dict[str, SensorConfig] = {}

    @model_validator(mode="after")
    def _known_kinds(self) -> SensorsConfig:
        for sid, s in self.sensors.items():
            if s.kind and self.kinds and s.kind not in self.kinds and s.rules is None:
                raise ValueError(f"sensor {sid}: kind {s.kind!r} has no entry under feeds.sensors.kinds")
        return self
