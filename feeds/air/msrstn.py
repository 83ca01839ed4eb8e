"""The AirKorea station registry in the format AirKorea publishes it: `getMsrstnList`
(B552584 MsrstnInfoInqireSvc, returnType=json).

Items carry `stationName`, `mangName` (the network: 도시대기, 도로변대기, ...), `addr`, and the position as
`dmX` = latitude and `dmY` = longitude (the names suggest the opposite; AirKorea's own data settles it),
all as strings. The district of each station is not parsed from `addr`: addresses name the districts of
their day, and Incheon's were redrawn on 2026-07-01. It comes from a lookup table (station name ->
district), and a station missing from the table is kept with an empty district and reported.

The shipped Incheon file holds the stations of the 2021-05-31 getMsrstnList snapshot that
config/air_stations.yaml was written from (name, mangName, dmX, dmY; that snapshot kept no addr).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from feeds.air.airkorea import count_field, open_envelope
from feeds.air.stations import AirStation

Scalar = str | int | float | None
Reject = Callable[[str, str], None]
DATA = Path(__file__).with_name("registry")
INCHEON_LIST = DATA / "incheon_getMsrstnList.json"  # Incheon's stations in getMsrstnList form
INCHEON_DISTRICTS = DATA / "incheon_districts_2026-07-01.json"  # station name -> district from 2026-07-01


class Item(msgspec.Struct, rename="camel"):
    station_name: Scalar = None
    mang_name: Scalar = None
    dm_x: Scalar = msgspec.field(default=None, name="dmX")
    dm_y: Scalar = msgspec.field(default=None, name="dmY")


_item = msgspec.json.Decoder(Item)


def _coord(raw: Scalar) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    try:
        v = float(raw.strip()) if isinstance(raw, str) else float(raw)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _text(raw: Scalar, limit: int) -> str | None:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > limit:
        return None
    return raw.strip()


def parse_msrstn_list(data: bytes, districts: Mapping[str, str], reject: Reject) -> tuple[AirStation, ...]:
    """The stations of one getMsrstnList body."""
    return parse_msrstn_page(data, districts, reject)[0]


def parse_msrstn_page(data: bytes, districts: Mapping[str, str],
                      reject: Reject) -> tuple[tuple[AirStation, ...], int, int | None]:
    """(stations, items in the body, totalCount) of one getMsrstnList page. Items without a name, or
    whose dmX/dmY is not a latitude/longitude pair (dmX over 90: the pair written the other way
    round), are rejected."""
    body = open_envelope(data, reject)
    if body is None:
        return (), 0, None
    out: dict[str, AirStation] = {}
    items = body.items or []
    for raw in items:
        try:
            item = _item.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            reject("invalid:item", str(exc)[:200])
            continue
        name = _text(item.station_name, 40)
        if name is None:
            reject("invalid:stationName", repr(item.station_name)[:40])
            continue
        lat, lon = _coord(item.dm_x), _coord(item.dm_y)
        if lat is None or lon is None or not (-90 <= lat <= 90 and -180 <= lon <= 180):
            reject("invalid:dmX/dmY", f"{name}: dmX={item.dm_x!r} dmY={item.dm_y!r}"[:200])
            continue
        district = districts.get(name)
        if district is None:
            reject("unknown_district", f"{name}: not in the district table")
        if name in out:
            reject("duplicate_station", name)
        out[name] = AirStation(name, _text(item.mang_name, 40) or "", lat, lon, district or "")
    return tuple(out.values()), len(items), count_field(body.total_count)


def incheon_stations(reject: Reject | None = None) -> tuple[AirStation, ...]:
    """Incheon's shipped registry: the getMsrstnList file with the 2026-07-01 district table."""
    districts = json.loads(INCHEON_DISTRICTS.read_text(encoding="utf-8"))["districts"]
    return parse_msrstn_list(INCHEON_LIST.read_bytes(), districts, reject or (lambda _r, _d: None))
