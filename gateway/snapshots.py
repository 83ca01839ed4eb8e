"""Reading the current picture from Redis: every entity of some layers, and the recent events.

Every value is decoded and checked like a live message (spine.contract); a bad one is a counted
reject and is skipped, never an error: one bad hash value used to make every new page fail to
connect until someone deleted it by hand. A key of the wrong type is skipped the same way.

A bad entry is counted once, not again on every read (each page join and resync): the RejectLog
remembers it by (key, field, value) and later reads skip it without decoding it again. Past the
first few rejects of one read, rejects are summed (RejectTally), so a hash stuffed with junk costs
a failed decode per entry on the first read and a set lookup per entry after (for the first
spine.contract.MAX_REMEMBERED bad entries; more are decoded and counted again on each read).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from spine import channels
from spine.contract import (
    DecodeLimits,
    EntityUpdate,
    Event,
    Rejected,
    RejectLog,
    RejectTally,
    may_hold_extreme_numbers,
    now_ms,
    try_decode_stored,
)

RECENT_EVENTS_SENT = 50
WHOLE_READ_MAX = 50_000  # a hash up to this size is read in one HGETALL (one round trip, ~30 ms parse)
SCAN_COUNT = 2000  # a bigger one with HSCAN, this many entries a reply, yielding between replies
MAX_ENTRIES = 100_000  # and at most this many (the design's largest layer is 16,000 cameras)
YIELD_EVERY = 2000  # entries decoded between yields: a 26,000-entity read never stalls live batches

Entry = tuple[str, bytes, bytes]  # (key, field, value): how a bad stored entry is remembered


async def read_state(client: aioredis.Redis, layers: Sequence[str], rejects: RejectLog, limits: DecodeLimits,
                     with_events: bool = True) -> tuple[list[EntityUpdate], list[Event]]:
    """State of `layers` and (optionally) the recent events, oldest event first.

    Sizes first (HLEN): HGETALL of a hash stuffed with a million junk entries is one reply parsed in
    one go on the event loop (seconds with no batches and no heartbeats for any page), so a hash
    over WHOLE_READ_MAX is scanned in slices instead, and read no further than MAX_ENTRIES (counted
    as too_many_entries). An entry changed during a scan may come twice; the last copy wins.

    Raises only what Redis itself raises (connection lost); the caller decides what a page gets then.
    """
    keys = [channels.state_key(layer) for layer in layers]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.hlen(key)
    # Per-command errors (WRONGTYPE on a clobbered key) come back as values, not as one exception.
    sizes = await pipe.execute(raise_on_error=False)
    whole = [k for k, n in zip(keys, sizes, strict=True) if isinstance(n, int) and n <= WHOLE_READ_MAX]
    pipe = client.pipeline(transaction=False)
    for key in whole:
        pipe.hgetall(key)  # with the field names: a bad entry is remembered by (key, field, value)
    if with_events:
        pipe.lrange(channels.RECENT_EVENTS_KEY, 0, RECENT_EVENTS_SENT - 1)
    results = await pipe.execute(raise_on_error=False) if len(pipe) else []
    read = dict(zip(whole, results, strict=False))
    now = now_ms()
    tally = RejectTally(rejects)
    updates: list[EntityUpdate] = []
    for layer, key, size in zip(layers, keys, sizes, strict=True):
        entries = size if isinstance(size, Exception) else read.get(key)
        if isinstance(entries, Exception):
            tally.add("bad_state_key", entries, key)
        elif entries is not None:
            updates.extend(await _decode_entries(entries, layer, key, rejects, tally, limits, now))
        else:
            updates.extend(await _scan_layer(client, layer, key, rejects, tally, limits, now))
    events: list[Event] = []
    if with_events:
        raw_events = results[-1]
        if isinstance(raw_events, Exception):
            tally.add("bad_state_key", raw_events, channels.RECENT_EVENTS_KEY)
        else:
            for raw in reversed(raw_events):
                ev = _decode(raw, Event, (channels.RECENT_EVENTS_KEY, b"", raw), rejects, tally, limits, now)
                if ev is not None:
                    events.append(ev)  # type: ignore[arg-type]
    tally.flush()
    return updates, events


async def _scan_layer(client: aioredis.Redis, layer: str, key: str, rejects: RejectLog, tally: RejectTally,
                      limits: DecodeLimits, now: int) -> list[EntityUpdate]:
    by_field: dict[bytes, EntityUpdate] = {}
    cursor, seen = 0, 0
    while True:
        try:
            cursor, entries = await client.hscan(key, cursor, count=SCAN_COUNT)
        except ResponseError as exc:  # the key changed type since HLEN
            tally.add("bad_state_key", exc, key)
            return []
        for field, upd in zip(entries, await _decode_entries(entries, layer, key, rejects, tally, limits, now,
                                                             keep_none=True), strict=True):
            if upd is not None:
                by_field[field] = upd
        seen += len(entries)
        if cursor == 0:
            return list(by_field.values())
        if seen >= MAX_ENTRIES:
            if rejects.first_time((key, b"", b"too_many_entries")):
                tally.add("too_many_entries", f"more than {MAX_ENTRIES} entries; the rest not read", key)
            return list(by_field.values())
        await asyncio.sleep(0)


async def _decode_entries(entries: dict[bytes, bytes], layer: str, key: str, rejects: RejectLog,
                          tally: RejectTally, limits: DecodeLimits, now: int,
                          keep_none: bool = False) -> list[EntityUpdate | None]:
    """The good updates of one hash (with None in place of bad ones when `keep_none`).

    The good path is inlined: a 26,000-entity read pays one decode call per entry and nothing more."""
    out: list[EntityUpdate | None] = []
    # One scan of the whole read instead of one per entry (values start with `{`, so joining them
    # makes no digit-e pair that was not there).
    exponents = may_hold_extreme_numbers(b"".join(entries.values()))
    bad = rejects.bad_entries  # the same set object for the whole read; empty: nothing to skip
    for i, (field, raw) in enumerate(entries.items(), 1):
        if i % YIELD_EVERY == 0:
            await asyncio.sleep(0)
        if bad and hash((key, field, raw)) in bad:
            if keep_none:
                out.append(None)
            continue
        upd = try_decode_stored(raw, EntityUpdate, limits, now, exponents)
        if upd.__class__ is EntityUpdate and upd.layer == layer:  # type: ignore[union-attr]
            out.append(upd)  # type: ignore[arg-type]
            continue
        if rejects.first_time((key, field, raw)):
            if upd.__class__ is Rejected:
                tally.add(upd.reason, upd.detail, f"{key} src={upd.src}" if upd.src else key)  # type: ignore[union-attr]
            else:
                tally.add("layer_mismatch", f"{upd.layer} entry {upd.id!r}",  # type: ignore[union-attr]
                          f"{key} src={upd.src}" if upd.src else key)  # type: ignore[union-attr]
        if keep_none:
            out.append(None)
    return out


def _decode(raw: bytes, kind: type[EntityUpdate] | type[Event], entry: Entry, rejects: RejectLog,
            tally: RejectTally, limits: DecodeLimits, now: int,
            exponents: bool = True) -> EntityUpdate | Event | None:
    """A stored entry decoded, or None: a bad one is counted the first time it is seen, then skipped
    without decoding (checked only once some entry was bad, so a clean read pays nothing)."""
    bad = rejects.bad_entries
    if bad and hash(entry) in bad:
        return None
    got = try_decode_stored(raw, kind, limits, now, exponents)
    if got.__class__ is Rejected:
        if rejects.first_time(entry):
            tally.add(got.reason, got.detail, f"{entry[0]} src={got.src}" if got.src else entry[0])
        return None
    return got
