"""A bell box's MQTT message: topic `<prefix>bells/<id>/<kind>`, a small JSON body.

    press:  {"ts": <epoch ms> | "<ISO 8601>", "seq": <int>?}   (an empty body means "now")
    status: {"ts": ..., "ok": true|false, "battery": 0..100?}

Bounded and typed with msgspec; anything else is a reason string for the reject counter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal

import msgspec

MAX_PAYLOAD = 1024
_TOPIC = re.compile(r"^bells/([A-Za-z0-9_.:-]{1,64})/(press|status)$")
Ts = int | Annotated[str, msgspec.Meta(max_length=40)] | None


class _Body(msgspec.Struct, forbid_unknown_fields=True):
    ts: Ts = None
    seq: Annotated[int, msgspec.Meta(ge=0, le=2**53)] | None = None
    ok: bool | None = None
    battery: Annotated[float, msgspec.Meta(ge=0, le=100)] | None = None


_decoder = msgspec.json.Decoder(_Body)


@dataclass(frozen=True)
class BellMessage:
    bell: str
    kind: Literal["press", "status"]
    t_ms: int | None  # None: the box gave no time (taken as arrival time)
    ok: bool | None = None
    battery: float | None = None


class BadMessage(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


def _ts(v: Ts) -> int | None:
    if v is None:
        return None
    if isinstance(v, int):
        if not 0 < v < 2**45:
            raise BadMessage("invalid:ts", str(v)[:40])
        return v
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00"))
    except ValueError:
        raise BadMessage("invalid:ts", v[:40]) from None
    if dt.tzinfo is None:
        raise BadMessage("invalid:ts", f"{v[:40]} (no time zone)")
    return int(dt.timestamp() * 1000)


def parse(topic: str, prefix: str, raw: bytes) -> BellMessage:
    """One message, or BadMessage naming why not."""
    if not topic.startswith(prefix):
        raise BadMessage("unknown_topic", topic[:120])
    m = _TOPIC.match(topic[len(prefix):])
    if m is None:
        raise BadMessage("unknown_topic", topic[:120])
    if len(raw) > MAX_PAYLOAD:
        raise BadMessage("too_large", f"{len(raw)} bytes")
    body = _Body()
    if raw.strip():
        try:
            body = _decoder.decode(raw)
        except msgspec.ValidationError as exc:
            raise BadMessage("invalid:body", str(exc)[:200]) from None
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
            raise BadMessage("malformed_json", str(exc)[:200]) from None
    return BellMessage(m.group(1), m.group(2), _ts(body.ts), body.ok, body.battery)  # type: ignore[arg-type]


def topic_for(prefix: str, bell: str, kind: str = "press") -> str:
    return f"{prefix}bells/{bell}/{kind}"
