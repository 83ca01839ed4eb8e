"""The Redis side: one pub/sub subscription kept alive for as long as the gateway runs.

Reconnects with back-off when Redis goes away and says so (`on_down`, `on_up(first)`), so the
server can tell pages their picture is stale and resend state when Redis is back. Every message
is handed to `on_message` inside a guard: an exception nobody foresaw is counted as `internal`
and logged, never the end of the reader (one such exception used to blank every screen).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from spine import channels
from spine.contract import RejectLog, printable

log = logging.getLogger(__name__)

POLL_S = 2.0  # get_message timeout: how often the loop wakes with no traffic


class Reader:
    def __init__(self, client: aioredis.Redis, rejects: RejectLog,
                 on_message: Callable[[bytes, bytes], None],
                 on_up: Callable[[bool], None], on_down: Callable[[], None]) -> None:
        self.client = client
        self.rejects = rejects
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.up = False
        self.reconnects = 0
        self.internal_errors = 0

    async def run(self) -> None:
        backoff = 0.5
        first = True
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(channels.ENTITY_PATTERN)
                await pubsub.subscribe(channels.EVENTS_CHANNEL, channels.FRAME_CHANNEL,
                                       channels.ALARM_CHANNEL)
                if not first:
                    log.info("Redis is back")
                self.up = True
                backoff = 0.5
                self.on_up(first)
                first = False
                while True:
                    msg = await pubsub.get_message(timeout=POLL_S)
                    if msg is not None:
                        self.handle(msg)
            except (RedisError, OSError) as exc:
                if self.up:
                    log.warning("lost Redis (%s); retrying with back-off", exc)
            except Exception:  # a bug below us must not end the live path: count, resubscribe
                self.internal_errors += 1
                self.rejects.add("internal", "pub/sub loop failed", "reader")
                log.exception("pub/sub loop failed; resubscribing")
            finally:
                was_up = self.up
                self.up = False
                if was_up:
                    self.reconnects += 1
                    self.on_down()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def handle(self, msg: dict) -> None:
        channel = msg.get("channel", b"")
        try:
            self.on_message(channel, msg.get("data", b""))
        except Exception as exc:
            self.internal_errors += 1
            where = printable(channel) if isinstance(channel, (bytes, str)) else "?"
            self.rejects.add("internal", f"{type(exc).__name__}: {exc}", where)
            if self.internal_errors <= 5 or self.internal_errors % 1000 == 0:
                log.exception("message on %s failed (counted as internal, reader goes on)", where)
