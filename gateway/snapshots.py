"""Reading the current picture from Redis: every entity of some layers, and the recent events.

Every value is decoded and checked like a live message (spine.contract); a bad one is a counted
reject and is skipped, never an error: one bad hash value used to make every new page fail to
connect until someone deleted it by hand. A key of the wrong type is skipped the same way.

A bad entry is counted once, not again on every read (each page join and resync): the RejectLog
remembers it by (key, field, value) and later reads skip it without decoding it again. Past the
first few rejects of one read, rejects are summed (RejectTally), so a hash stuffed with junk costs
a failed decode per entry on the first read and a set lookup per entry after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis

from spine import channels
from spine.contract import (
    DecodeLimits,
    EntityUpdate,
    Event,
    RejectLog,
    RejectTally,
    decode_stored_event,
    decode_stored_update,
    now_ms,
)

RECENT_EVENTS_SENT = 50
YIELD_EVERY = 2000  # entries decoded between yields: a 26,000-entity read never stalls live batches


async def read_state(client: aioredis.Redis, layers: Sequence[str], rejects: RejectLog, limits: DecodeLimits,
                     with_events: bool = True) -> tuple[list[EntityUpdate], list[Event]]:
    """State of `layers` and (optionally) the recent events, oldest event first.

    Raises only what Redis itself raises (connection lost); the caller decides what a page gets then.
    """
    pipe = client.pipeline(transaction=False)
    for layer in layers:
        pipe.hgetall(channels.state_key(layer))  # the field names a bad entry, to count it once
    if with_events:
        pipe.lrange(channels.RECENT_EVENTS_KEY, 0, RECENT_EVENTS_SENT - 1)
    # Per-command errors (WRONGTYPE on a clobbered key) come back as values, not as one exception.
    results = await pipe.execute(raise_on_error=False)
    now = now_ms()
    tally = RejectTally(rejects)
    updates: list[EntityUpdate] = []
    for layer, entries in zip(layers, results, strict=False):
        where = channels.state_key(layer)
        if isinstance(entries, Exception):
            tally.add("bad_state_key", entries, where)
            continue
        for i, (field, raw) in enumerate(entries.items(), 1):
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            entry = (where, field, raw)
            if rejects.known_bad(entry):
                continue
            upd = decode_stored_update(raw, _Once(tally, rejects, entry), where, limits=limits, now=now)
            if upd is None:
                continue
            if upd.layer != layer:
                if rejects.first_time(entry):
                    tally.add("layer_mismatch", f"{upd.layer} entry {upd.id!r}",
                              f"{where} src={upd.src}" if upd.src else where)
                continue
            updates.append(upd)
    events: list[Event] = []
    if with_events:
        raw_events = results[-1]
        if isinstance(raw_events, Exception):
            tally.add("bad_state_key", raw_events, channels.RECENT_EVENTS_KEY)
        else:
            for raw in reversed(raw_events):
                entry = (channels.RECENT_EVENTS_KEY, b"", raw)
                if rejects.known_bad(entry):
                    continue
                ev = decode_stored_event(raw, _Once(tally, rejects, entry), channels.RECENT_EVENTS_KEY,
                                         limits=limits, now=now)
                if ev is not None:
                    events.append(ev)
    tally.flush()
    return updates, events


class _Once:
    """What decode_stored_* report a reject to: counted in the read's tally the first time this
    entry is seen bad, remembered (and not counted) after."""

    __slots__ = ("_entry", "_rejects", "_tally")

    def __init__(self, tally: RejectTally, rejects: RejectLog, entry: tuple[str, bytes, bytes]) -> None:
        self._tally, self._rejects, self._entry = tally, rejects, entry

    def add(self, reason: str, detail: str, where: str = "") -> None:
        if self._rejects.first_time(self._entry):
            self._tally.add(reason, detail, where)
