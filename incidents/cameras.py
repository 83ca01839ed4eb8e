"""The cameras nearest an incident: ranked by whether they can see the point, then by distance.

A camera "sees" the point when the point lies in its view cone (the cone the map draws: heading,
fov, reach spine.layers.CAMERA_CONE_M unless incidents.nearest.reach_m says otherwise) or when a
PTZ preset is configured for that spot (config/incidents.yaml ptz_presets). Drone-mounted cameras
are left out (their position moves; the drone is requested by its own SOP step) and so are
disabled ones. Positions come from config/cameras.yaml through vision.config.load_vision_config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from incidents.config import IncidentConfig, Preset

EARTH_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Initial bearing from point 1 to point 2, degrees clockwise from north (0..360)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dl = math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def in_cone(
    cam_lat: float, cam_lon: float, heading: float, fov: float, reach_m: float, lat: float, lon: float
) -> bool:
    d = distance_m(cam_lat, cam_lon, lat, lon)
    if d > reach_m:
        return False
    if d < 1.0 or fov >= 360:
        return True  # at the camera itself, or a full-circle camera
    off = abs((bearing_deg(cam_lat, cam_lon, lat, lon) - heading + 180) % 360 - 180)
    return off <= fov / 2


@dataclass(frozen=True)
class Ranked:
    camera_id: str
    name: str
    rank: int
    distance_m: float
    in_view: bool
    preset: str | None
    lat: float
    lon: float
    heading: float
    fov: float

    def doc(self) -> dict[str, Any]:
        return asdict(self)


def _preset(presets: list[Preset], lat: float, lon: float) -> str | None:
    best = None
    for p in presets:
        d = distance_m(p.lat, p.lon, lat, lon)
        if d <= p.radius_m and (best is None or d < best[0]):
            best = (d, p)
    return None if best is None else f"{best[1].preset}"[:64]


def nearest_cameras(
    lat: float,
    lon: float,
    cameras: list[Any],
    cfg: IncidentConfig,
    count: int | None = None,
    radius_m: float | None = None,
) -> list[Ranked]:
    """The best `count` cameras within `radius_m` of the point (config defaults)."""
    from spine.layers import CAMERA_CONE_M

    reach = cfg.nearest.reach_m or CAMERA_CONE_M
    limit = cfg.nearest.radius_m if radius_m is None else radius_m
    found: list[tuple[tuple[bool, float, str], Any, float, bool, str | None]] = []
    for cam in cameras:
        if not getattr(cam, "enabled", True) or getattr(cam, "mount", None):
            continue
        d = distance_m(cam.lat, cam.lon, lat, lon)
        if d > limit:
            continue
        seen = in_cone(cam.lat, cam.lon, cam.heading, cam.fov, reach, lat, lon)
        preset = _preset(cfg.ptz_presets.get(cam.id, []), lat, lon)
        found.append(((not (seen or preset is not None), d, cam.id), cam, d, seen, preset))
    found.sort(key=lambda f: f[0])
    n = cfg.nearest.count if count is None else count
    return [
        Ranked(cam.id, cam.name, i + 1, round(d, 1), seen, preset, cam.lat, cam.lon, cam.heading, cam.fov)
        for i, (_, cam, d, seen, preset) in enumerate(found[:n])
    ]
