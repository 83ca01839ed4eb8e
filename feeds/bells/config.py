"""Configuration of the emergency-bell source (section `feeds.bells` of config/feeds.yaml).

The registry is authoritative: a bell's position, district and linked camera come from here, never
from the payload (a bell box sends only "pressed"), so a forged message cannot move a bell.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

BellId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class BellConfig(BaseModel):
    """One bell box: where it is and which camera (and PTZ preset) looks at it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=120)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    district: str | None = Field(None, max_length=60)
    camera: str | None = Field(None, max_length=64)  # config/cameras.yaml id
    preset: int | str | None = None  # the camera's PTZ preset that frames the bell
    radius_m: float = Field(60, gt=0, le=1000)  # how far from the bell the preset is offered


class BellsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # The broker is the sensors' (feeds.sensors.broker_url): one field MQTT network, one login.
    topic_prefix: str = "incheon/"  # <prefix>bells/<id>/press and <prefix>bells/<id>/status
    # Bells are silent for days: the contract is their status heartbeat, not presses.
    contract_s: float = Field(600.0, gt=0)
    # A held or bouncing button sends many presses: one event per bell per this many seconds
    # (the alarm service also folds repeats into one alarm; this keeps the stream small).
    min_interval_s: float = Field(2.0, ge=0, le=600)
    max_future_s: float = Field(30.0, ge=0, le=3600)
    bells: dict[BellId, BellConfig] = {}

    @field_validator("topic_prefix")
    @classmethod
    def _plain_prefix(cls, v: str) -> str:
        if any(c in v for c in "#+\0 ") or (v and not v.endswith("/")):
            raise ValueError("topic_prefix: no wildcards or spaces, and it ends with '/'")
        return v
