"""The air-quality station registry (config/air_stations.yaml): production configuration that the
air adapter and the demo simulator both read."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class AirStation:
    name: str
    kind: str
    lat: float
    lon: float
    district_ko: str


@lru_cache(maxsize=1)
def air_stations() -> tuple[AirStation, ...]:
    from config.root import reference_section  # the same files as the configuration root

    return tuple(AirStation(**s) for s in reference_section("air_stations"))
