"""The `feeds:` section of config/feeds.yaml as one validated model (sources, health, service area).

Kept apart from feeds/field.py so the configuration root (config/root.py) can validate it without
importing the adapters and their transports (paho-mqtt, pymavlink).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from feeds.air.config import AirConfig
from feeds.drone.config import DroneConfig
from feeds.sensors.config import SensorsConfig
from feeds.transit.config import TransitConfig


class HealthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_s: float = Field(2.0, gt=0, le=60)


class AreaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buffer_deg: float = Field(0.05, ge=0, le=1)


class FeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    health: HealthConfig = HealthConfig()
    service_area: AreaConfig = AreaConfig()
    transit: TransitConfig = TransitConfig()
    air: AirConfig = AirConfig()
    drone: DroneConfig = DroneConfig()
    sensors: SensorsConfig = SensorsConfig()
