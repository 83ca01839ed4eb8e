"""GTFS-realtime FeedMessage -> plain vehicle and trip-delay records.

Protobuf decoding is lenient by design (unknown fields are kept, missing optional fields read as
zero), so presence is checked with HasField: a missing bearing is "unknown", not north.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

OCCUPANCY = {v.number: v.name for v in rt.VehiclePosition.OccupancyStatus.DESCRIPTOR.values}
MAX_ENTITIES = 100_000  # a city feed has a few thousand; more is a broken or hostile producer


@dataclass(frozen=True, slots=True)
class VehicleRecord:
    vehicle_id: str
    lat: float
    lon: float
    ts_s: int
    bearing: float | None
    speed_ms: float | None
    trip_id: str
    route_id: str
    occupancy: str | None
    stop_id: str
    label: str


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    header_ts_s: int
    vehicles: list[VehicleRecord]
    delays: dict[str, int]  # trip_id (or "veh:<vehicle id>") -> delay in seconds, + = late


Reject = Callable[[str, str], None]


def _delay_of(tu: rt.TripUpdate) -> int | None:
    if tu.HasField("delay"):
        return int(tu.delay)
    for stu in tu.stop_time_update:  # the first stop still ahead carries the current delay
        for name in ("arrival", "departure"):
            if stu.HasField(name) and getattr(stu, name).HasField("delay"):
                return int(getattr(stu, name).delay)
    return None


def parse_feed(data: bytes, reject: Reject) -> ParsedFeed | None:
    """None (and one counted reject) when the whole message is unusable."""
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError) as exc:
        reject("malformed_protobuf", f"{len(data)} bytes: {exc}")
        return None
    if not msg.HasField("header") or not msg.header.gtfs_realtime_version:
        reject("invalid:header", "no FeedHeader or gtfs_realtime_version")
        return None
    if msg.header.incrementality == rt.FeedHeader.DIFFERENTIAL:
        # The spec calls DIFFERENTIAL unsupported and unspecified; guessing would corrupt state.
        reject("unsupported:differential", "DIFFERENTIAL feeds are not supported")
        return None
    if len(msg.entity) > MAX_ENTITIES:
        reject("too_large", f"{len(msg.entity)} entities > {MAX_ENTITIES}")
        return None
    header_ts = int(msg.header.timestamp)
    vehicles: list[VehicleRecord] = []
    delays: dict[str, int] = {}
    for ent in msg.entity:
        if ent.is_deleted:
            continue
        if ent.HasField("trip_update"):
            tu = ent.trip_update
            d = _delay_of(tu)
            if d is not None:
                if abs(d) > 86_400:
                    reject("out_of_range:delay", f"{ent.id}: {d}s")
                else:
                    if tu.trip.trip_id:
                        delays[tu.trip.trip_id] = d
                    if tu.vehicle.id:
                        delays["veh:" + tu.vehicle.id] = d
        if ent.HasField("vehicle"):
            v = ent.vehicle
            vid = (v.vehicle.id or ent.id).strip()
            if not vid or len(vid) > 120:
                reject("invalid:vehicle_id", repr(vid[:40]))
                continue
            if not v.HasField("position"):
                reject("missing:position", vid)
                continue
            p = v.position
            bearing = float(p.bearing) if p.HasField("bearing") else None
            if bearing is not None and not (math.isfinite(bearing) and -360 <= bearing <= 720):
                reject("out_of_range:bearing", f"{vid}: {bearing}")
                continue
            speed = float(p.speed) if p.HasField("speed") else None
            if speed is not None and not (math.isfinite(speed) and speed >= 0):
                reject("out_of_range:speed", f"{vid}: {speed}")
                continue
            vehicles.append(VehicleRecord(
                vehicle_id=vid, lat=float(p.latitude), lon=float(p.longitude),
                ts_s=int(v.timestamp) if v.HasField("timestamp") else header_ts,
                bearing=None if bearing is None else bearing % 360, speed_ms=speed,
                trip_id=v.trip.trip_id, route_id=v.trip.route_id,
                occupancy=OCCUPANCY.get(v.occupancy_status) if v.HasField("occupancy_status") else None,
                stop_id=v.stop_id, label=v.vehicle.label))
    return ParsedFeed(header_ts, vehicles, delays)
