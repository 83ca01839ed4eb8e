"""Static GTFS: the routes, shapes, stops and trips a realtime feed refers to.

Only the columns the map needs are read. Rows that do not parse are counted and skipped, so one
broken line in a city's 50 MB zip does not cost the whole route map.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RouteInfo:
    route_id: str
    short_name: str
    long_name: str
    color: str


@dataclass(frozen=True)
class TripInfo:
    trip_id: str
    route_id: str
    shape_id: str
    direction_id: int


@dataclass(frozen=True)
class StopInfo:
    stop_id: str
    name: str
    lat: float
    lon: float


@dataclass
class StaticGtfs:
    routes: dict[str, RouteInfo] = field(default_factory=dict)
    trips: dict[str, TripInfo] = field(default_factory=dict)
    stops: dict[str, StopInfo] = field(default_factory=dict)
    shapes: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    route_shape: dict[str, str] = field(default_factory=dict)  # route_id -> first shape seen

    def shapes_geojson(self) -> dict[str, dict]:
        """shape_id -> {route, color, coords [[lat, lon]...]} for the map's route lines."""
        by_shape_route = {t.shape_id: t.route_id for t in self.trips.values() if t.shape_id}
        out = {}
        for sid, coords in self.shapes.items():
            route = self.routes.get(by_shape_route.get(sid, ""))
            out[sid] = {"shape": sid, "route": route.short_name if route else None,
                        "route_id": route.route_id if route else None,
                        "color": route.color if route else None,
                        "coords": [[round(a, 6), round(b, 6)] for a, b in coords]}
        return out


Reject = Callable[[str, str], None]


def _float(row: dict[str, str], key: str) -> float:
    v = float(row[key])
    if not math.isfinite(v):
        raise ValueError(f"{key} not finite")
    return v


def _rows(zf: zipfile.ZipFile, name: str) -> list[dict[str, str]]:
    if name not in zf.namelist():
        return []
    text = zf.read(name).decode("utf-8-sig", errors="replace")
    return list(csv.DictReader(io.StringIO(text)))


def parse_static(data: bytes, reject: Reject) -> StaticGtfs:
    """Parse a GTFS zip. Raises zipfile.BadZipFile for a body that is not a zip at all."""
    gtfs = StaticGtfs()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for row in _rows(zf, "routes.txt"):
            try:
                rid = row["route_id"].strip()
                if not rid:
                    raise ValueError("empty route_id")
                gtfs.routes[rid] = RouteInfo(rid, (row.get("route_short_name") or rid).strip(),
                                             (row.get("route_long_name") or "").strip(),
                                             (row.get("route_color") or "").strip())
            except (KeyError, ValueError, AttributeError) as exc:
                reject("gtfs_static:routes", f"{row!r}: {exc}")
        for row in _rows(zf, "stops.txt"):
            try:
                sid = row["stop_id"].strip()
                gtfs.stops[sid] = StopInfo(sid, (row.get("stop_name") or "").strip(),
                                           _float(row, "stop_lat"), _float(row, "stop_lon"))
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                reject("gtfs_static:stops", f"{row!r}: {exc}")
        points: dict[str, list[tuple[int, float, float]]] = defaultdict(list)
        for row in _rows(zf, "shapes.txt"):
            try:
                points[row["shape_id"].strip()].append((int(row["shape_pt_sequence"]),
                                                        _float(row, "shape_pt_lat"),
                                                        _float(row, "shape_pt_lon")))
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                reject("gtfs_static:shapes", f"{row!r}: {exc}")
        gtfs.shapes = {sid: [(la, lo) for _, la, lo in sorted(pts)] for sid, pts in points.items()}
        for row in _rows(zf, "trips.txt"):
            try:
                tid, rid = row["trip_id"].strip(), row["route_id"].strip()
                shape = (row.get("shape_id") or "").strip()
                gtfs.trips[tid] = TripInfo(tid, rid, shape, int(row.get("direction_id") or 0))
                if shape:
                    gtfs.route_shape.setdefault(rid, shape)
            except (KeyError, ValueError, AttributeError, TypeError) as exc:
                reject("gtfs_static:trips", f"{row!r}: {exc}")
    return gtfs


def write_static(files: dict[str, list[dict[str, object]]]) -> bytes:
    """Build a GTFS zip from rows per file (used by the simulator and tests)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, rows in files.items():
            out = io.StringIO()
            if rows:
                w = csv.DictWriter(out, fieldnames=list(rows[0].keys()), lineterminator="\n")
                w.writeheader()
                w.writerows(rows)
            zf.writestr(name, out.getvalue())
    return buf.getvalue()
