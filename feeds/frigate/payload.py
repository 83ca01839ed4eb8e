"""Frigate's MQTT payloads as bounded msgspec structs, 0.10-era and 0.14+ shapes alike.

    <prefix>/events     {type: new|update|end, before: {...}, after: {...}}: one tracked object
    <prefix>/reviews    (0.14+) the same envelope around a review item: an alert or a detection
                        with data {detections, objects, sub_labels, zones, audio}
    <prefix>/available  "online" / "offline" (Frigate's last will)
    <prefix>/stats      periodic statistics, read only as a sign of life

These are another product's messages, so unknown keys are ignored (Frigate adds some in every
release) while every field read here is typed and bounded. What changed between versions:
`sub_label` was a plain string, then became `[name, score]` or null; `score` joined `top_score`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

MAX_PAYLOAD = 256 * 1024  # an events message is ~1-2 KB; a stats message of many cameras a few tens
# Frigate ids are "<frame time>-<6 random characters>" (e.g. 1607123955.475377-mxklsc). Strict,
# because an id travels into a snapshot URL path on the Frigate server. `\Z`, not `$`: msgspec applies
# the pattern with re.search, where `$` also matches before a trailing newline.
FRIGATE_ID = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}-[a-z0-9]{1,16}\Z")

Name = Annotated[str, Meta(max_length=64)]
Text = Annotated[str, Meta(max_length=200)]
Id = Annotated[str, Meta(min_length=1, max_length=64, pattern=FRIGATE_ID.pattern)]
Names = Annotated[list[Name], Meta(max_length=64)]
Score = Annotated[float, Meta(ge=0.0, le=1.0)]
Epoch = Annotated[float, Meta(ge=0.0, le=1e11)]  # seconds
# 0.10-0.12: "Bob"; 0.13+: ["Bob", 0.87] or null.
SubLabel = Text | Annotated[list[Text | float | None], Meta(max_length=4)] | None

Phase = Literal["new", "update", "end"]


class TrackedObject(msgspec.Struct):
    id: Id
    camera: Name
    label: Name = ""
    sub_label: SubLabel = None
    top_score: Score | None = None
    score: Score | None = None
    current_zones: Names = []
    entered_zones: Names = []
    has_snapshot: bool = False
    start_time: Epoch | None = None
    end_time: Epoch | None = None
    frame_time: Epoch | None = None  # the frame this message describes (an update's own time)
    false_positive: bool | None = None


class EventMessage(msgspec.Struct):
    type: Phase
    after: TrackedObject  # `before` is not read: a malformed one must not cost the message


class ReviewData(msgspec.Struct):
    detections: Annotated[list[Name], Meta(max_length=256)] = []
    objects: Names = []
    sub_labels: Annotated[list[SubLabel], Meta(max_length=64)] = []
    zones: Names = []
    audio: Names = []


class Review(msgspec.Struct):
    id: Id
    camera: Name
    severity: Literal["alert", "detection"]
    start_time: Epoch | None = None
    end_time: Epoch | None = None
    data: ReviewData = msgspec.field(default_factory=ReviewData)


class ReviewMessage(msgspec.Struct):
    type: Phase
    after: Review


class _Envelope(msgspec.Struct):
    type: Name  # read first: a type Frigate added later (e.g. `genai`) has other contents


PHASES = ("new", "update", "end")
OTHER = "other"  # an envelope type that is not a phase: a sign of life, nothing to show

Kind = Literal["events", "reviews", "available", "stats"]
KINDS: tuple[str, ...] = ("events", "reviews", "available", "stats")
Parsed = EventMessage | ReviewMessage | Literal["online", "offline", "other"] | dict

_decoders: dict[str, msgspec.json.Decoder] = {
    "events": msgspec.json.Decoder(EventMessage),
    "reviews": msgspec.json.Decoder(ReviewMessage),
    "stats": msgspec.json.Decoder(dict),
}
_envelope = msgspec.json.Decoder(_Envelope)
_INDEX = re.compile(r"\[\d+\]")
_PATH = re.compile(r"at `\$\.?([A-Za-z0-9_.\[\]]*)`")

Reject = Callable[[str, str], None]


def sub_label_name(value: SubLabel) -> str | None:
    """The sub label's name in either shape (a string, or [name, score])."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0].strip() or None
    return None


def _reason(exc: msgspec.ValidationError) -> str:
    m = _PATH.search(str(exc))
    # Indices dropped: the reasons stay a small fixed set (one per field), whatever the payload.
    return f"invalid:{_INDEX.sub('', m.group(1))}" if m and m.group(1) else "invalid:payload"


def parse(kind: str, raw: bytes, reject: Reject) -> Parsed | None:
    """One payload of `kind` (a topic suffix), or None after reporting why it was refused."""
    if len(raw) > MAX_PAYLOAD:
        reject("too_large", f"{kind}: {len(raw)} bytes")
        return None
    if kind == "available":
        word = raw.strip().decode("ascii", "replace").lower()
        if word in ("online", "offline"):
            return word  # type: ignore[return-value]
        reject("invalid:available", repr(raw[:40]))
        return None
    decoder = _decoders.get(kind)
    if decoder is None:
        reject("unknown_topic", kind[:64])
        return None
    try:
        if kind != "stats" and _envelope.decode(raw).type not in PHASES:
            return OTHER
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        reject(_reason(exc), f"{kind}: {str(exc)[:200]}")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:  # bad UTF-8 in a string: the latter
        reject("invalid:json", f"{kind}: {str(exc)[:200]}")
    except RecursionError:  # nesting deeper than the decoder's limit (even in a key that is ignored)
        reject("invalid:json", f"{kind}: nested too deeply")
    return None
