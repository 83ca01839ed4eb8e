"""The wire contract between producers and the live gateway (version 1).

msgspec structs rather than pydantic here: the gateway decodes and validates every message on
the hot path (5,000+/s), and msgspec does both in one C pass at ~1-2 us per message. Config and
other cold boundaries use pydantic.

A channel payload is one JSON object or a JSON array of objects (producers batch per tick so a
thousand updates cost one PUBLISH). Ids are non-empty strings because dash-leaflet silently
swaps a falsy feature id for the array index.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Annotated, Any, Literal

import msgspec

VERSION = 1
LAYERS: tuple[str, ...] = ("bus", "camera", "sensor", "air", "drone", "incident")
SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "info")

Layer = Literal["bus", "camera", "sensor", "air", "drone", "incident"]
Severity = Literal["critical", "high", "medium", "low", "info"]
EntityId = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^\S")]
EpochMs = Annotated[int, msgspec.Meta(ge=0, le=10**14)]
Lat = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]


class EntityUpdate(msgspec.Struct, frozen=True, omit_defaults=True):
    """The latest state of one thing on the map."""

    v: Literal[1]
    layer: Layer
    id: EntityId
    ts: EpochMs  # source time
    seq: Annotated[int, msgspec.Meta(ge=0)]  # per (layer, src) counter, +1 per update
    lat: Lat
    lon: Lon
    props: dict[str, Any] = msgspec.field(default_factory=dict)
    src: Annotated[str, msgspec.Meta(max_length=64)] = ""  # producer instance
    gone: bool = False  # the entity left the map


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """Something that happened: a detection, a threshold crossing, a bell press."""

    v: Literal[1]
    id: EntityId
    type: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    severity: Severity
    ts: EpochMs
    layer: Layer
    entity: EntityId
    lat: Lat
    lon: Lon
    title: Annotated[str, msgspec.Meta(max_length=200)] = ""
    props: dict[str, Any] = msgspec.field(default_factory=dict)
    snapshot: str | None = None  # reference to a stored image (camera events)


_encoder = msgspec.json.Encoder()
_one_update = msgspec.json.Decoder(EntityUpdate)
_one_event = msgspec.json.Decoder(Event)
_raw_list = msgspec.json.Decoder(list[msgspec.Raw])


def encode(obj: Any) -> bytes:
    return _encoder.encode(obj)


def now_ms() -> int:
    return int(time.time() * 1000)


class Rejected(ValueError):
    """A message that failed validation; `reason` is a short stable label for counting."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class RejectLog:
    """Counts rejected messages by reason and logs them without flooding the log.

    The first few per reason are logged in full, then one line per minute per reason, because
    a hostile or broken producer can send thousands per second.
    """

    def __init__(self, logger: logging.Logger, burst: int = 5, every_s: float = 60.0) -> None:
        self.counts: Counter[str] = Counter()
        self._logger = logger
        self._burst = burst
        self._every_s = every_s
        self._last_logged: dict[str, float] = {}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, reason: str, detail: str, where: str = "") -> None:
        self.counts[reason] += 1
        n = self.counts[reason]
        now = time.monotonic()
        if n <= self._burst or now - self._last_logged.get(reason, 0.0) >= self._every_s:
            self._last_logged[reason] = now
            self._logger.warning(
                "rejected message (%s) %s: %s [%d so far]", reason, where, detail[:300], n
            )


def _reason(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    if "`$" in text:
        field = text.rsplit("`$", 1)[1].split("`", 1)[0].lstrip(".").split("[", 1)[0]
        return f"invalid:{field or 'root'}"
    return "invalid"


MAX_PAYLOAD_BYTES = 4 * 1024 * 1024  # one PUBLISH; producers chunk at 500 updates


def _decode_each(raw: bytes, one: msgspec.json.Decoder, max_item_bytes: int, rejects: RejectLog,
                 where: str) -> list:
    """Decode an object or an array of objects, rejecting bad elements one by one."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        rejects.add("too_large", f"payload of {len(raw)} bytes > {MAX_PAYLOAD_BYTES}", where)
        return []
    if raw.lstrip()[:1] == b"[":
        try:
            parts = _raw_list.decode(raw)
        except msgspec.DecodeError as exc:
            rejects.add("malformed_json", str(exc), where)
            return []
    else:
        parts = [raw]
    out = []
    for part in parts:
        if len(part) > max_item_bytes:
            rejects.add("too_large", f"message of {len(part)} bytes > {max_item_bytes}", where)
            continue
        try:
            out.append(one.decode(part))
        except msgspec.ValidationError as exc:
            rejects.add(_reason(exc), str(exc), where)
        except msgspec.DecodeError as exc:
            rejects.add("malformed_json", str(exc), where)
    return out


def decode_updates(raw: bytes, rejects: RejectLog, max_item_bytes: int = 65536,
                   where: str = "") -> list[EntityUpdate]:
    return _decode_each(raw, _one_update, max_item_bytes, rejects, where)


def decode_events(raw: bytes, rejects: RejectLog, max_item_bytes: int = 65536,
                  where: str = "") -> list[Event]:
    return _decode_each(raw, _one_event, max_item_bytes, rejects, where)


def validate_update(obj: dict[str, Any]) -> EntityUpdate:
    """Producer-side check: build an update from a dict or raise Rejected with the reason."""
    try:
        return msgspec.convert(obj, EntityUpdate)
    except msgspec.ValidationError as exc:
        raise Rejected(_reason(exc), str(exc)) from None


def validate_event(obj: dict[str, Any]) -> Event:
    try:
        return msgspec.convert(obj, Event)
    except msgspec.ValidationError as exc:
        raise Rejected(_reason(exc), str(exc)) from None
