"""Configuration of the drone source (section `feeds.drone` of config/feeds.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hfov_deg: float = Field(73.7, gt=1, lt=179)  # 24 mm equivalent, 3:2 (standards.md 5.3)
    vfov_deg: float = Field(53.1, gt=1, lt=179)
    gimbal_pitch_deg: float = Field(-60.0, ge=-90, le=30)  # used until MOUNT_ORIENTATION says otherwise
    max_range_m: float = Field(1500.0, gt=0)  # far edge clamp when the view reaches the horizon


class DroneConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    listen: str = "127.0.0.1:14550"  # UDP host:port the vehicles (or a GCS router) send to; port 0 = any
    contract_s: float = Field(2.0, gt=0)
    publish_hz: float = Field(5.0, gt=0, le=50)
    gone_s: float = Field(60.0, gt=0)  # a vehicle silent this long leaves the map (link lost, landed)
    names: dict[int, str] = {1: "Drone 1 (fire watch)"}  # MAVLink system id -> display name
    camera: CameraConfig = CameraConfig()
