"""The gateway's counters, and the task that publishes them to Redis for /api/health.

Every instance writes one field (its instance id) of `channels.GATEWAY_STATS_KEY` every few
seconds; the JSON carries its own `ts`, so a reader can tell a stopped instance's last word from
a live one without the gateway having to clean up after a crash.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from spine import channels
from spine.contract import encode, now_ms

log = logging.getLogger(__name__)

KEEP_STOPPED_S = 3600  # a stopped instance's last counts stay readable for an hour
PRUNE_EVERY_S = 300


@dataclass
class GatewayStats:
    received: int = 0
    coalesced: int = 0
    batches: int = 0
    snapshots: int = 0  # snapshot frames sent (per page, and layer snapshots)
    snapshot_reads: int = 0  # full-state reads for pages: joining pages share one
    gaps: int = 0
    lagging_skips: int = 0
    redis_reconnects: int = 0
    video_frames: int = 0
    video_skipped: int = 0
    clients: int = 0
    refused_full: int = 0  # sockets closed with 1013 because max_clients were connected
    refused_ticket: int = 0  # missing, forged, expired or already used tickets
    tickets_replayed: int = 0
    sessions_revoked: int = 0  # sockets closed with 4401
    internal_errors: int = 0
    rejects: dict[str, int] = field(default_factory=dict)


def instance_id(port: int | None) -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{port or 0}"


async def write_stats_forever(client: aioredis.Redis, instance: str, payload: Callable[[], dict[str, Any]],
                              interval_s: float) -> None:
    """HSET the stats JSON every `interval_s`; Redis being away only delays the next write.
    Every few minutes, fields of instances silent for KEEP_STOPPED_S are removed (each restart
    is a new instance id, so the hash would otherwise grow with every restart)."""
    next_prune = 0.0
    loop = asyncio.get_running_loop()
    while True:
        try:
            body = {**payload(), "instance": instance, "ts": now_ms()}
            await client.hset(channels.GATEWAY_STATS_KEY, instance, encode(body))
            if loop.time() >= next_prune:
                next_prune = loop.time() + PRUNE_EVERY_S
                await _prune(client)
        except (RedisError, OSError) as exc:
            log.debug("stats not written: %s", exc)
        await asyncio.sleep(interval_s)


async def _prune(client: aioredis.Redis) -> None:
    cutoff = now_ms() - KEEP_STOPPED_S * 1000
    stale = []
    for name, raw in (await client.hgetall(channels.GATEWAY_STATS_KEY)).items():
        try:
            ts = msgspec.json.decode(raw).get("ts")
        except (msgspec.DecodeError, AttributeError, RecursionError, UnicodeError):
            ts = None
        if not isinstance(ts, int) or ts < cutoff:
            stale.append(name)
    if stale:
        await client.hdel(channels.GATEWAY_STATS_KEY, *stale)
