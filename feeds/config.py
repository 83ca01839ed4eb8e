"""The `feeds:` section of config/feeds.yaml as one validated model (sources, health, service area).

Kept apart from feeds/field.py so the configuration root (config/root.py) can validate it without
importing the adapters and their transports (paho-mqtt, pymavlink).
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from feeds.air.config import AirConfig
from feeds.bells.config import BellsConfig
from feeds.drone.config import DroneConfig
from feeds.frigate.config import FrigateConfig
from feeds.sensors.config import SensorsConfig
from feeds.transit.config import TransitConfig

Box = tuple[float, float, float, float]  # south, west, north, east


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(2.0, gt=0, le=60)


class AreaConfig(BaseModel):
    """Where positions are accepted: the configured districts (default), a boundary GeoJSON of the
    deployment's own (`boundary_file`), or a lat/lon box `[S, W, N, E]` (`box`), grown by `buffer_deg`.
    The file's existence and shape are checked across files (config/references.py)."""

    model_config = ConfigDict(extra="forbid")

    buffer_deg: float = Field(0.05, ge=0, le=1)
    boundary_file: str | None = None
    box: Box | None = None

    @field_validator("box")
    @classmethod
    def _box_order(cls, box: Box | None) -> Box | None:
        if box is None:
            return None
        south, west, north, east = box
        if not all(math.isfinite(v) for v in box):
            raise ValueError(f"[S, W, N, E] must be finite numbers, got {list(box)}")
        if not (-90 <= south < north <= 90):
            raise ValueError(f"[S, W, N, E] needs -90 <= south < north <= 90, "
                             f"got south={south} north={north}")
        if not (-180 <= west < east <= 180):
            raise ValueError(f"[S, W, N, E] needs -180 <= west < east <= 180, got west={west} east={east} "
                             "(a box across the antimeridian is not supported: use a boundary_file)")
        return box

    @model_validator(mode="after")
    def _one_choice(self) -> AreaConfig:
        if self.box is not None and self.boundary_file:
            raise ValueError("give either box or boundary_file, not both")
        return self


class FeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    health: HealthConfig = HealthConfig()
    service_area: AreaConfig = AreaConfig()
    transit: TransitConfig = TransitConfig()
    air: AirConfig = AirConfig()
    drone: DroneConfig = DroneConfig()
    sensors: SensorsConfig = SensorsConfig()
    frigate: FrigateConfig = FrigateConfig()  # no servers: not started
    bells: BellsConfig = BellsConfig()  # emergency bells on the sensors' MQTT broker
