"""config/history.yaml (section `history`), validated: per-layer downsampling, replay windows and
retention. A problem is one line naming the key (ConfigError), like every configuration file."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.settings import ConfigError, explain
from spine.layers import LAYERS

CCTV_MAX_DAYS = 30


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerHistory(_Model):
    every_s: float = Field(0.0, ge=0, le=86400)  # 0: every reading
    on_change: bool = False
    window_s: float = Field(300.0, gt=0, le=366 * 86400)
    retention_days: int = Field(90, ge=1, le=3650)

    @property
    def every_ms(self) -> int:
        return int(self.every_s * 1000)


class EventsHistory(_Model):
    retention_days: int = Field(365, ge=1, le=3650)
    camera_retention_days: int = Field(CCTV_MAX_DAYS, ge=1, le=3650)


class AlarmsHistory(_Model):
    retention_days: int = Field(365, ge=1, le=3650)


DEFAULT_LAYER = LayerHistory()
# A configuration that names no camera layer still keeps CCTV data at most 30 days.
DEFAULT_CAMERA = LayerHistory(on_change=True, window_s=30 * 86400, retention_days=CCTV_MAX_DAYS)


class HistoryConfig(_Model):
    layers: dict[str, LayerHistory] = {}
    events: EventsHistory = EventsHistory()
    alarms: AlarmsHistory = AlarmsHistory()
    cctv_over_30_days: bool = False
    retention_every_s: float = Field(3600.0, ge=1, le=86400)

    @model_validator(mode="after")
    def _check(self) -> HistoryConfig:
        unknown = sorted(set(self.layers) - set(LAYERS))
        if unknown:
            raise ValueError(f"unknown layer(s) {', '.join(unknown)}; known: {', '.join(LAYERS)}")
        if not self.cctv_over_30_days:
            cam = self.layer("camera").retention_days
            if cam > CCTV_MAX_DAYS or self.events.camera_retention_days > CCTV_MAX_DAYS:
                raise ValueError(f"CCTV data is kept at most {CCTV_MAX_DAYS} days unless "
                                 "cctv_over_30_days is true")
        return self

    def layer(self, name: str) -> LayerHistory:
        return self.layers.get(name, DEFAULT_CAMERA if name == "camera" else DEFAULT_LAYER)

    def event_retention_days(self, layer: str) -> int:
        return self.events.camera_retention_days if layer == "camera" else self.events.retention_days


def parse_history_config(data: object) -> HistoryConfig:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("Configuration is not valid:\n  - history: expected a mapping")
    try:
        return HistoryConfig(**data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, "Configuration is not valid:", prefix="history.")) from None


def load_history_config(config_dir: Path | None = None) -> HistoryConfig:
    from config.root import reference_section

    try:
        data = reference_section("history", config_dir)
    except ConfigError:
        data = {}  # no file: the defaults (CCTV 30 days)
    return parse_history_config(data)
