"""Static facts the simulated city is built from: real places, real air stations, districts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from config.root import reference_section
from feeds.air.stations import AirStation, air_stations
from spine.geography import district_index

__all__ = ["AirStation", "Place", "air_stations", "bearing_deg", "distance_m", "district_index",
           "offset", "places"]

EARTH_M = 6_371_000.0


@dataclass(frozen=True)
class Place:
    id: str
    name_ko: str
    name_en: str
    lat: float
    lon: float


@lru_cache(maxsize=1)
def places() -> tuple[Place, ...]:
    return tuple(Place(**p) for p in reference_section("places"))


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin(
        (lon2 - lon1) / 2) ** 2
    return 2 * EARTH_M * math.asin(math.sqrt(h))


def bearing_deg(a: tuple[float, float], b: tuple[float, float]) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    y = math.sin(lon2 - lon1) * math.cos(lat2)
    x = math.cos(lat1) * math.sin(lat2) - math.sin(lat1) * math.cos(lat2) * math.cos(lon2 - lon1)
    return (math.degrees(math.atan2(y, x)) + 360) % 360


def offset(origin: tuple[float, float], north_m: float, east_m: float) -> tuple[float, float]:
    lat, lon = origin
    dlat = north_m / EARTH_M
    dlon = east_m / (EARTH_M * math.cos(math.radians(lat)))
    return lat + math.degrees(dlat), lon + math.degrees(dlon)
