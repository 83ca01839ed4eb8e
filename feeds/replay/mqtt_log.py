"""Recorded MQTT traffic (for `mqtt_sensors` and `frigate`), one message per line, in either form:

  JSON lines   {"ts": 1714540800.25, "topic": "cc/v1.1/...", "payload": ...}
               payload: text (UTF-8), {"b64": "<base64 of the raw bytes>"}, or any other JSON value
               (an object as most recorders keep it), which is re-encoded as compact JSON; ts
               (epoch seconds, optional) is when the broker delivered it.
  mosquitto    `mosquitto_sub -v -t '#'` output: `topic payload` (split at the first space), or with
               a leading epoch time as `mosquitto_sub -v -F '%U %t %p'` prints it: `ts topic payload`.

Blank lines and lines starting with `//` are skipped. A payload with a newline in it can only be
recorded in the JSON-lines form. A line that is neither form is counted (`capture:bad_line`), never
fatal; lines over 1 MiB are counted as `capture:line_too_long`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from typing import Any

import msgspec

from feeds.replay.records import Record, Tally

MAX_LINE = 1 << 20
MAX_TOPIC = 1024
_EPOCH = re.compile(rb"^\d{9,11}(\.\d{1,9})?$")


class _Line(msgspec.Struct):
    topic: str
    payload: Any = ""
    ts: float | None = None


_decode_line = msgspec.json.Decoder(_Line)


def _payload(value: Any) -> bytes | None:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict) and set(value) == {"b64"} and isinstance(value["b64"], str):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, ValueError):
            return None
    return msgspec.json.encode(value)


def _bad(tally: Tally, bad: dict[str, int], reason: str, lineno: int) -> None:
    tally.problem(reason)
    bad.setdefault(reason, lineno)


def read_mqtt_log(data: bytes, tally: Tally, name: str = "") -> Iterator[Record]:
    """Invariant: records + problems + skipped (blank/comment) lines == lines of the file."""
    bad: dict[str, int] = {}
    for lineno, line in enumerate(data.split(b"\n"), 1):
        line = line.rstrip(b"\r")
        if not line.strip() or line.startswith(b"//"):
            continue
        if len(line) > MAX_LINE:
            _bad(tally, bad, "capture:line_too_long", lineno)
            continue
        rec = _json_line(line) if line.lstrip().startswith(b"{") else _mosquitto_line(line)
        if rec is None:
            _bad(tally, bad, "capture:bad_line", lineno)
            continue
        tally.records += 1
        yield rec
    for reason, first in bad.items():
        tally.notes.append(f"{name}: {tally.problems[reason]} line(s) not read as an MQTT message "
                           f"({reason.removeprefix('capture:')}; first at line {first})")


def _topic_ok(topic: str) -> bool:
    """A topic a message can be published on: no wildcards, no NUL, bounded."""
    return bool(topic) and len(topic) <= MAX_TOPIC and not any(c in topic for c in "+#\x00")


def _json_line(line: bytes) -> Record | None:
    try:
        doc = _decode_line.decode(line)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):  # bad UTF-8 in a string
        return None
    except RecursionError:  # a payload nested past the decoder's limit: a bad line, not the end of a replay
        return None
    payload = _payload(doc.payload)
    if payload is None or not _topic_ok(doc.topic):
        return None
    return Record(payload, doc.ts, {"topic": doc.topic})


def _mosquitto_line(line: bytes) -> Record | None:
    ts: float | None = None
    first, _, rest = line.partition(b" ")
    if _EPOCH.match(first) and rest:
        ts = float(first)
        first, _, rest = rest.partition(b" ")
    try:
        topic = first.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not _topic_ok(topic):
        return None
    return Record(rest, ts, {"topic": topic})
