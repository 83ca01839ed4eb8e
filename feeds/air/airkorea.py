"""AirKorea real-time measurements (B552584 ArpltnInforInqireSvc, returnType=json) -> hourly rows.

Every field arrives as a string. "-", "", null or a non-empty *Flag (점검및교정, 통신장애...) mean
"no data", never zero; the flag's text is kept with the row so an operator sees why a value is
missing. dataTime is KST, "YYYY-MM-DD HH:MM" or "YYYY-MM-DD HH시", and the API writes midnight as
"24:00" of the previous day. Responses are pages (`numOfRows`, default 10, and `pageNo`) of
`totalCount` items: `parse_page` returns what is needed to ask for the rest.
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import msgspec

KST = timezone(timedelta(hours=9))
Scalar = str | int | float | None
POLLUTANTS = ("pm10", "pm25", "o3", "no2", "so2", "co")
# plausible physical ranges; outside them a value is a sensor or transfer fault
RANGES = {"pm10": (0, 2000), "pm25": (0, 1000), "o3": (0, 1.0), "no2": (0, 2.0), "so2": (0, 2.0),
          "co": (0, 60.0)}
FLAG_MAX = 40  # a flag is a short word (통신장애); longer text is cut, not trusted to be bounded
_TIME = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})\s+(\d{1,2})(?::(\d{2})|시)?\s*$")


class Item(msgspec.Struct, rename="camel"):
    station_name: Scalar = None
    data_time: Scalar = None
    pm10_value: Scalar = None
    pm25_value: Scalar = None
    o3_value: Scalar = None
    no2_value: Scalar = None
    so2_value: Scalar = None
    co_value: Scalar = None
    pm10_value24: Scalar = None
    pm25_value24: Scalar = None
    khai_value: Scalar = None
    pm10_flag: Scalar = None
    pm25_flag: Scalar = None
    o3_flag: Scalar = None
    no2_flag: Scalar = None
    so2_flag: Scalar = None
    co_flag: Scalar = None


class Header(msgspec.Struct, rename="camel"):
    result_code: Scalar = None
    result_msg: Scalar = None


class Body(msgspec.Struct, rename="camel"):
    items: list[msgspec.Raw] | None = None
    total_count: Scalar = None
    page_no: Scalar = None
    num_of_rows: Scalar = None


class Response(msgspec.Struct):
    header: Header
    body: Body | None = None


class Envelope(msgspec.Struct):
    response: Response


_envelope = msgspec.json.Decoder(Envelope)
_item = msgspec.json.Decoder(Item)


@dataclass(frozen=True, slots=True)
class Row:
    station: str
    hour_ms: int  # the hour label as AirKorea writes it (the end of the averaging hour), epoch ms
    values: dict[str, float | None]
    api24: dict[str, float | None]  # AirKorea's own pm10Value24 / pm25Value24
    # pollutant -> the *Flag text AirKorea sent (통신장애, 점검및교정, 자료이상, ...): why a value is absent
    flags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[Row]
    items: int  # items in the body, parsed or not: what counts towards totalCount
    total_count: int | None  # None: the body did not say (or said nonsense)
    page_no: int | None
    num_of_rows: int | None
    ok: bool  # False: no usable body (error code, malformed JSON); already rejected


Reject = Callable[[str, str], None]


def parse_time(text: Scalar) -> int | None:
    if not isinstance(text, str):
        return None
    m = _TIME.match(text)
    if not m:
        return None
    y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
    if not (0 <= h <= 24 and mi == 0):
        return None
    try:
        t = datetime(y, mo, d, tzinfo=KST) + timedelta(hours=h)
    except ValueError:
        return None
    return int(t.timestamp() * 1000)


def count_field(raw: Scalar) -> int | None:
    """A non-negative count from "123", 123 or 123.0; None for anything else."""
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        v = float(raw.strip()) if isinstance(raw, str) else float(raw)
    except ValueError:
        return None
    if not math.isfinite(v) or v < 0 or v != int(v) or v > 10**7:
        return None
    return int(v)


def flag_text(flag: Scalar) -> str | None:
    """The flag's text when it says something ("-" and blanks say nothing)."""
    if not isinstance(flag, str):
        return None
    text = flag.strip()
    if not text or text == "-":
        return None
    return text[:FLAG_MAX].rstrip()  # cut to the bound, then no blank left at the cut


def page_url(url: str, page_no: int, num_of_rows: int) -> str:
    """`url` asking for one page: its own numOfRows is kept when it has one, pageNo is replaced."""
    parts = urllib.parse.urlsplit(url)
    query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
             if k != "pageNo"]
    if not any(k == "numOfRows" for k, _ in query):
        query.append(("numOfRows", str(num_of_rows)))
    query.append(("pageNo", str(page_no)))
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _value(raw: Scalar, flag: Scalar, name: str, reject: Reject, where: str) -> float | None:
    if raw is None or isinstance(raw, bool):
        return None
    if flag_text(flag) is not None:
        return None  # under maintenance / communication fault: no data
    if isinstance(raw, str):
        raw = raw.strip()
        if raw in ("", "-", "--"):
            return None
        try:
            v = float(raw)
        except ValueError:
            reject(f"invalid:{name}", f"{where}: {raw[:20]!r}")
            return None
    else:
        v = float(raw)
    lo, hi = RANGES.get(name, (0, math.inf))
    if not math.isfinite(v) or not lo <= v <= hi:
        reject(f"out_of_range:{name}", f"{where}: {v}")
        return None
    return v


def parse_response(data: bytes, reject: Reject, station_hint: str | None = None) -> list[Row]:
    """Rows of one response. `station_hint` names the station for per-station queries, whose items
    carry no stationName."""
    return parse_page(data, reject, station_hint).rows


def open_envelope(data: bytes, reject: Reject) -> Body | None:
    """The body of any data.go.kr AirKorea response (measurements, station lists); None after a
    counted reject (not JSON, not the envelope, or an API error code). A body-less answer is empty."""
    try:
        env = _envelope.decode(data)
    except msgspec.ValidationError as exc:
        reject("invalid:envelope", str(exc)[:200])
        return None
    except msgspec.DecodeError as exc:
        reject("malformed_json", str(exc)[:200])
        return None
    code = env.response.header.result_code
    if str(code).strip() not in ("00", "0"):
        reject("api_error", f"resultCode={code!r} {env.response.header.result_msg!r}"[:200])
        return None
    return env.response.body or Body()


def parse_page(data: bytes, reject: Reject, station_hint: str | None = None) -> Page:
    """One response with its paging fields (totalCount, pageNo, numOfRows)."""
    body = open_envelope(data, reject)
    if body is None:
        return Page([], 0, None, None, None, False)
    items = body.items or []
    rows: list[Row] = []
    for raw in items:
        try:
            item = _item.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            reject("invalid:item", str(exc))
            continue
        station = item.station_name if isinstance(item.station_name, str) else station_hint
        station = (station or "").strip()
        if not station or len(station) > 40:
            reject("invalid:stationName", repr(item.station_name)[:40])
            continue
        hour = parse_time(item.data_time)
        if hour is None:
            reject("invalid:dataTime", f"{station}: {item.data_time!r}")
            continue
        where = f"{station} {item.data_time}"
        values = {p: _value(getattr(item, f"{p}_value"), getattr(item, f"{p}_flag"), p, reject, where)
                  for p in POLLUTANTS}
        api24 = {p: _value(getattr(item, f"{p}_value24"), getattr(item, f"{p}_flag"), p, reject, where)
                 for p in ("pm10", "pm25")}
        flags = {p: f for p in POLLUTANTS if (f := flag_text(getattr(item, f"{p}_flag"))) is not None}
        rows.append(Row(station, hour, values, api24, flags))
    return Page(rows, len(items), count_field(body.total_count), count_field(body.page_no),
                count_field(body.num_of_rows), True)
