"""Checks across configuration files, run by config.root.load_config() once every section is valid on
its own. Each problem is one line that starts with the key to fix.

A value can be valid in its own file and still point at nothing: a wall showing a camera that was
removed from cameras.yaml would start and then show an empty tile on a control-room wall.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from config.settings import REPO_ROOT, Settings
from feeds.config import FeedsConfig
from vision.config import VisionConfig

DRONE_ID = re.compile(r"^drone-(\d+)$")  # what feeds/drone publishes: drone-<MAVLink system id>


def resolve_path(value: str) -> Path:
    """A configured file path: absolute, or relative to the repository root (the parts' working dir)."""
    p = Path(value)
    return p if p.is_absolute() else REPO_ROOT / p


def _boundary_districts(value: str) -> tuple[list[str], set[str]]:
    """Problems with map.boundary_file, and the district names it defines."""
    path = resolve_path(value)
    if not path.is_file():
        return [f"map.boundary_file: {value!r} does not exist (looked at {path})"], set()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        features = data["features"]
        names = {str(f["properties"]["name_ko"]) for f in features}
        for f in features:
            _ = f["properties"]["id"], f["properties"]["name_en"], f["geometry"]["type"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        return [f"map.boundary_file: {value!r} is not a district GeoJSON FeatureCollection with "
                f"properties id, name_ko, name_en ({type(exc).__name__}: {exc})"], set()
    return [], names


def _service_area(feeds: FeedsConfig) -> list[str]:
    """feeds.service_area.boundary_file must exist and hold an area: otherwise every position is rejected."""
    value = feeds.service_area.boundary_file
    if not value:
        return []
    from spine.geography import area_from_file  # shapely is loaded only when a file is configured

    path = resolve_path(value)
    if not path.is_file():
        return [f"feeds.service_area.boundary_file: {value!r} does not exist (looked at {path})"]
    try:
        area_from_file(path)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return [f"feeds.service_area.boundary_file: {value!r} is not a polygonal GeoJSON ({exc})"]
    return []


def _shipped_districts(reference: dict) -> set[str]:
    edition = reference.get("district_edition") or {}
    districts = edition.get("districts") if isinstance(edition, dict) else None
    return {str(d.get("name_ko")) for d in districts or [] if isinstance(d, dict)}


def _walls(settings: Settings, cameras: dict[str, bool]) -> list[str]:
    problems = []
    for n, wall in settings.walls.items():
        if wall.drone_video is not None:
            if wall.drone_video not in cameras:
                known = ", ".join(sorted(cameras)) or "none"
                problems.append(f"walls.{n}.drone_video: no camera {wall.drone_video!r} in the cameras "
                                f"file (cameras: {known})")
            elif not cameras[wall.drone_video]:
                problems.append(f"walls.{n}.drone_video: camera {wall.drone_video!r} is disabled")
        if wall.bounds:
            (s, w), (north, e) = wall.bounds
            if not (s < north and w < e):
                problems.append(f"walls.{n}.bounds: expected [[south, west], [north, east]], got "
                                f"{wall.bounds}")
    return problems


def _mounts(feeds: FeedsConfig, vision: VisionConfig) -> list[str]:
    problems = []
    for cam in vision.cameras:
        if cam.mount is None or not cam.enabled:
            continue
        where = f"cameras.[{cam.id}].mount"
        m = DRONE_ID.match(cam.mount)
        if not m:
            problems.append(f"{where}: {cam.mount!r} is not a drone id (drone-<MAVLink system id>)")
        elif not feeds.drone.enabled:
            problems.append(f"{where}: {cam.mount!r} is a drone but feeds.drone is disabled")
        elif int(m.group(1)) not in feeds.drone.names:
            known = ", ".join(f"drone-{i}" for i in sorted(feeds.drone.names)) or "none"
            problems.append(f"{where}: no drone {cam.mount!r} under feeds.drone.names (drones: {known})")
    return problems


def _sensors(feeds: FeedsConfig) -> list[str]:
    s = feeds.sensors
    problems = []
    for sid, sensor in s.sensors.items():
        if sensor.kind is not None and sensor.kind not in s.kinds:
            known = ", ".join(sorted(s.kinds)) or "none"
            problems.append(f"feeds.sensors.sensors.{sid}.kind: {sensor.kind!r} is not a sensor type "
                            f"under feeds.sensors.kinds (types: {known})")
    return problems


def _ports(settings: Settings) -> list[str]:
    listeners = [("web.port", settings.web.host, settings.web.port),
                 ("gateway.port", settings.gateway.host, settings.gateway.port)]
    sim = settings.simulator
    if sim.enabled and sim.http_port:
        listeners.append(("simulator.http_port", sim.host, sim.http_port))
    problems = []
    for i, (key, host, port) in enumerate(listeners):
        for other, other_host, other_port in listeners[:i]:
            wildcard = {"0.0.0.0", "::", ""}
            same_host = host == other_host or host in wildcard or other_host in wildcard
            if port == other_port and same_host:
                problems.append(f"{key}: port {port} is also {other}")
    return problems


def check_references(settings: Settings, feeds: FeedsConfig, vision: VisionConfig,
                     reference: dict | None = None) -> list[str]:
    """Every cross-file problem, one line each (empty: consistent). `reference` holds the raw
    reference-data sections (district_edition, places, ...)."""
    problems: list[str] = []
    cameras = {c.id: c.enabled for c in vision.cameras}
    problems += _walls(settings, cameras)
    problems += _mounts(feeds, vision)
    problems += _sensors(feeds)
    problems += _ports(settings)
    problems += _service_area(feeds)
    if settings.map.boundary_file:
        found, districts = _boundary_districts(settings.map.boundary_file)
        problems += found
        source = "map.boundary_file"
    else:
        districts = _shipped_districts(reference or {})
        source = "district_edition"
    if districts:
        known = ", ".join(sorted(districts))
        for cam in vision.cameras:
            if cam.district and cam.district not in districts:
                problems.append(f"cameras.[{cam.id}].district: {cam.district!r} is not a district of "
                                f"{source} ({known})")
        for sid, sensor in feeds.sensors.sensors.items():
            if sensor.district and sensor.district not in districts:
                problems.append(f"feeds.sensors.sensors.{sid}.district: {sensor.district!r} is not a "
                                f"district of {source} ({known})")
    return problems
