"""Reading the current picture from Redis: every entity of some layers, and the recent events.

Every value is decoded and checked like a live message (spine.contract); a bad one is a counted
reject and is skipped, never an error: one bad hash value used to make every new page fail to
connect until someone deleted it by hand. A key of the wrong type is skipped the same way.
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
        pipe.hvals(channels.state_key(layer))
    if with_events:
        pipe.lrange(channels.RECENT_EVENTS_KEY, 0, RECENT_EVENTS_SENT - 1)
    # Per-command errors (WRONGTYPE on a clobbered key) come back as values, not as one exception.
    results = await pipe.execute(raise_on_error=False)
    now = now_ms()
    updates: list[EntityUpdate] = []
    for layer, values in zip(layers, results, strict=False):
        where = channels.state_key(layer)
        if isinstance(values, Exception):
            rejects.add("bad_state_key", str(values), where)
            continue
        for i, raw in enumerate(values, 1):
            if i % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            upd = decode_stored_update(raw, rejects, where, limits=limits, now=now)
            if upd is None:
                continue
            if upd.layer != layer:
                rejects.add("layer_mismatch", f"{upd.layer} entry {upd.id!r}",
                            f"{where} src={upd.src}" if upd.src else where)
                continue
            updates.append(upd)
    events: list[Event] = []
    if with_events:
        raw_events = results[-1]
        if isinstance(raw_events, Exception):
            rejects.add("bad_state_key", str(raw_events), channels.RECENT_EVENTS_KEY)
        else:
            for raw in reversed(raw_events):
                ev = decode_stored_event(raw, rejects, channels.RECENT_EVENTS_KEY, limits=limits, now=now)
                if ev is not None:
                    events.append(ev)
    return updates, events
