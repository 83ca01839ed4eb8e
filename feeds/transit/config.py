"""Configuration of the transit source (section `feeds.transit` of config/feeds.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TransitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # GTFS-realtime feeds polled each period (VehiclePositions, TripUpdates, or one combined feed).
    # Empty in the demo: the simulator's own endpoints are used.
    urls: list[str] = []
    static_url: str | None = None  # GTFS zip (URL or path) for routes, shapes and stops
    period_s: float = Field(1.0, gt=0, le=300)
    contract_s: float = Field(30.0, gt=0)  # a feed older than this is stale
    fade_s: float = Field(90.0, gt=0)  # vehicles not reported for this long are marked stale
    gone_s: float = Field(180.0, gt=0)  # ... and for this long are removed (gone=True)
    max_future_s: float = Field(300.0, ge=0)  # clock-skew tolerance for vehicle timestamps
    max_speed_ms: float = Field(40.0, gt=0)  # faster than this is a broken fix, not a bus
