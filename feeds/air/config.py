"""Configuration of the air-quality source (section `feeds.air` of config/feeds.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AirConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # getCtprvnRltmMesureDnsty?sidoName=인천&returnType=json&numOfRows=100&serviceKey=... (null in the
    # demo: the simulator's endpoint). A path to a saved response works too.
    url: str | None = None
    # Fetched once at start per known station to fill the 24 h history ({station} is replaced):
    # getMsrstnAcctoRltmMesureDnsty?stationName={station}&dataTerm=DAILY&returnType=json&...
    backfill_url: str | None = None
    # The station registry in AirKorea's getMsrstnList form (URL or file, paged like the measurements):
    # getMsrstnList?addr=인천&returnType=json&serviceKey=... ; null: config/air_stations.yaml. Districts
    # come from `districts_file` ({"districts": {stationName: district}}; null: Incheon's 2026-07-01
    # table), never from the station's address.
    stations_url: str | None = None
    districts_file: str | None = None
    # Rows asked per page when the URL names no numOfRows (the API's own default is 10); every page up
    # to totalCount is fetched, at most max_pages of them (a runaway totalCount must not spend the key's
    # daily quota).
    page_rows: int = Field(100, ge=1, le=10000)
    max_pages: int = Field(20, ge=1, le=1000)
    period_s: float = Field(600.0, gt=0, le=86400)  # AirKorea refreshes about minute 15 each hour
    contract_s: float = Field(3600.0, gt=0)
    us_aqi: bool = True  # also compute the US EPA AQI (2024), always labelled as such
    history_hours: int = Field(24, ge=1, le=24 * 30)
