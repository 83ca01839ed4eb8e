"""The air-quality station registry (config/air_stations.yaml): production configuration that the
air adapter and the demo simulator both read."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import yaml

from config.settings import CONFIG_DIR


@dataclass(frozen=True)
class AirStation:
    name: str
    kind: str
    lat: float
    lon: float
    district_ko: str


@lru_cache(maxsize=1)
def air_stations() -> tuple[AirStation, ...]:
    data = yaml.safe_load((CONFIG_DIR / "air_stations.yaml").read_text(encoding="utf-8"))
    return tuple(AirStation(**s) for s in data["air_stations"])
