"""Alarms on the live socket: the alarm channel's messages checked and the open-alarm hash read.

The alarm service (docs/alarms.md) publishes committed changes on `cc:v1:alarm` and keeps every alarm
that is not normal in the hash `cc:v1:alarms:open`. The gateway relays both so a page has one live
path: changed alarms ride in the numbered batch frames (`"al": [...]`), a page's snapshot carries the
whole hash (`"al"`), and the service's resync notice makes the next batch carry the whole hash with
`"alr": true` (replace). Numbered frames mean a page that misses one asks for a snapshot, so a page
never shows an alarm list with a hole in it.

Every alarm is decoded into a bounded struct (what the alarm service writes, nothing more reaches
a page); a bad message or hash entry is a counted reject (`invalid_alarm`), never an error.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from spine import channels
from spine.contract import MsgKey, MsgParams, RejectLog

MAX_OPEN = 5_000  # alarms a snapshot carries at most: more than a room can read (EEMUA: a flood is >10)
MAX_PER_MESSAGE = 2_000

S = Annotated
Ms = S[int, msgspec.Meta(ge=0, le=10**14)]


class AlarmView(msgspec.Struct, frozen=True, omit_defaults=True):
    """One alarm as pages see it (alarms.db.doc), every field bounded."""

    id: S[int, msgspec.Meta(ge=1, le=2**31 - 1)]
    key: S[str, msgspec.Meta(max_length=300)]
    source: S[str, msgspec.Meta(max_length=128)]
    condition: S[str, msgspec.Meta(max_length=128)]
    priority: Literal["low", "medium", "high", "critical"]
    state: Literal["NORM", "UNACK", "ACKED", "RTNUN", "SHLVD", "DSUPR", "OOSRV"]
    updated_ts: Ms
    rule: S[str, msgspec.Meta(max_length=64)] = ""
    kind: S[str, msgspec.Meta(max_length=16)] = ""
    layer: S[str, msgspec.Meta(max_length=16)] = ""
    active: bool = False
    acked: bool = False
    shelve: S[str, msgspec.Meta(max_length=8)] | None = None
    shelved_until: Ms | None = None
    shelved_by: S[str, msgspec.Meta(max_length=64)] | None = None
    suppressed: bool = False
    suppress_reason: S[str, msgspec.Meta(max_length=200)] | None = None
    oos: bool = False
    chattering: bool = False
    count: S[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    total: S[int, msgspec.Meta(ge=0, le=2**31 - 1)] = 0
    first_ts: Ms = 0
    last_ts: Ms = 0
    active_since: Ms | None = None
    title: S[str, msgspec.Meta(max_length=200)] = ""
    lat: S[float, msgspec.Meta(ge=-90.0, le=90.0)] | None = None
    lon: S[float, msgspec.Meta(ge=-180.0, le=180.0)] | None = None
    msg: MsgKey | None = None  # the originating event's catalogue key, when the service keeps it
    params: MsgParams | None = None


class AlarmMessage(msgspec.Struct):
    t: Literal["alarms", "resync"]
    a: S[list[AlarmView], msgspec.Meta(max_length=MAX_PER_MESSAGE)] = msgspec.field(default_factory=list)


_message = msgspec.json.Decoder(AlarmMessage)
_one = msgspec.json.Decoder(AlarmView)


def decode_message(data: bytes, rejects: RejectLog) -> AlarmMessage | None:
    """The channel's message, or None (counted) when it is not one the alarm service sends."""
    try:
        return _message.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        rejects.add("invalid_alarm", str(exc)[:200], channels.ALARM_CHANNEL)
        return None


async def read_open(client: aioredis.Redis, rejects: RejectLog) -> list[AlarmView]:
    """Every alarm of the open hash (at most MAX_OPEN, by HSCAN so a stuffed hash never stalls the loop);
    a bad entry is counted once and skipped."""
    out: list[AlarmView] = []
    cursor = 0
    try:
        while True:
            cursor, entries = await client.hscan(channels.ALARMS_OPEN_KEY, cursor, count=1000)
            for field, raw in entries.items():
                try:
                    out.append(_one.decode(raw))
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    if rejects.first_time((channels.ALARMS_OPEN_KEY, field, raw)):
                        rejects.add("invalid_alarm", str(exc)[:200], channels.ALARMS_OPEN_KEY)
            if cursor == 0 or len(out) >= MAX_OPEN:
                break
    except ResponseError as exc:  # the key is of another type
        rejects.add("bad_state_key", str(exc)[:200], channels.ALARMS_OPEN_KEY)
    return out[:MAX_OPEN]
