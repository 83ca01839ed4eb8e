"""The MQTT payload: a SensorThings-like Observation (OGC 18-088), documented in docs/feeds.md.

Topic  <prefix>v1.1/Datastreams(<datastream id>)/Observations
Body   {"phenomenonTime": "2026-11-22T05:00:00Z", "result": 2.31,
        "Datastream": {"@iot.id": "sen-water_level-01", "name": "굴포천",
                       "unitOfMeasurement": {"symbol": "m"}, "ObservedProperty": {"name": "water_level"}},
        "FeatureOfInterest": {"feature": {"type": "Point", "coordinates": [126.72, 37.49]}}}
Only phenomenonTime and result are required when the datastream is listed in config/feeds.yaml.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import msgspec

TOPIC = re.compile(r"v1\.1/Datastreams\(([^()/#+]{1,100})\)/Observations$")
MAX_PAYLOAD = 16 * 1024


class UnitModel(msgspec.Struct):
    symbol: str | None = None
    name: str | None = None


class PropertyModel(msgspec.Struct):
    name: str | None = None


class ThingModel(msgspec.Struct):
    properties: dict[str, str | int | float | None] | None = None


class DatastreamModel(msgspec.Struct):
    iot_id: str | int | None = msgspec.field(default=None, name="@iot.id")
    name: str | None = None
    unit: UnitModel | None = msgspec.field(default=None, name="unitOfMeasurement")
    observed_property: PropertyModel | None = msgspec.field(default=None, name="ObservedProperty")
    thing: ThingModel | None = msgspec.field(default=None, name="Thing")


class PointModel(msgspec.Struct):
    type: str
    coordinates: list[float]


class FeatureModel(msgspec.Struct):
    feature: PointModel | None = None


class Observation(msgspec.Struct):
    phenomenon_time: str = msgspec.field(name="phenomenonTime")
    result: float | int | bool = msgspec.field(name="result")
    datastream: DatastreamModel | None = msgspec.field(default=None, name="Datastream")
    feature_of_interest: FeatureModel | None = msgspec.field(default=None, name="FeatureOfInterest")
    result_time: str | None = msgspec.field(default=None, name="resultTime")


_decoder = msgspec.json.Decoder(Observation)


@dataclass(frozen=True, slots=True)
class Reading:
    datastream: str
    value: float
    t_ms: int
    kind: str | None
    name: str | None
    unit: str | None
    lat: float | None
    lon: float | None
    district: str | None


Reject = Callable[[str, str], None]


def parse_time(text: str) -> int | None:
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        return None  # an observation without a zone is ambiguous by hours
    return int(t.timestamp() * 1000)


def parse(topic: str, payload: bytes, reject: Reject) -> Reading | None:
    m = TOPIC.search(topic)
    if not m:
        reject("unknown_topic", topic[:120])
        return None
    ds_id = m.group(1).strip().strip("'\"")
    if not ds_id:
        reject("invalid:datastream", topic[:120])
        return None
    if len(payload) > MAX_PAYLOAD:
        reject("too_large", f"{len(payload)} bytes")
        return None
    try:
        obs = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        reject("invalid:observation", str(exc))
        return None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # msgspec raises UnicodeDecodeError for bad UTF-8 inside a JSON string, not DecodeError.
        reject("malformed_json", str(exc)[:200])
        return None
    if isinstance(obs.result, bool) or not _finite(obs.result):
        reject("invalid:result", repr(obs.result))
        return None
    t_ms = parse_time(obs.phenomenon_time)
    if t_ms is None:
        reject("invalid:phenomenonTime", obs.phenomenon_time[:40])
        return None
    lat = lon = None
    foi = obs.feature_of_interest.feature if obs.feature_of_interest else None
    if foi is not None:
        if foi.type != "Point" or len(foi.coordinates) < 2:
            reject("invalid:feature", f"{foi.type} {foi.coordinates[:3]}")
            return None
        lon, lat = float(foi.coordinates[0]), float(foi.coordinates[1])  # GeoJSON order: lon, lat
    ds = obs.datastream
    props = ds.thing.properties if ds and ds.thing and ds.thing.properties else {}
    district = props.get("district")
    return Reading(
        datastream=ds_id, value=float(obs.result), t_ms=t_ms,
        kind=(ds.observed_property.name if ds and ds.observed_property else None),
        name=ds.name if ds else None,
        unit=(ds.unit.symbol if ds and ds.unit else None),
        lat=lat, lon=lon, district=district if isinstance(district, str) else None)


def topic_for(prefix: str, datastream: str) -> str:
    return f"{prefix}v1.1/Datastreams({datastream})/Observations"


def _finite(value: float) -> bool:
    """math.isfinite raises OverflowError for integers too large for a float (a hostile payload)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
