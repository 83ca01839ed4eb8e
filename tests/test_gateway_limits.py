"""Issue 7 point 7, gateway side: a reconnect wave of 200 screens, `max_clients` with a clear close
code, and a page that asks for snapshots in a loop without reading (real sockets, real Redis)."""

from __future__ import annotations

import asyncio
import json
import time

import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from gateway import Gateway
from gateway.sessions import CLOSE_FULL
from spine import channels
from tests.gateway_support import next_frame, start_gateway, stop_gateway, update, ws_url

WAVE = 200


async def _screen(gw: Gateway, hold: asyncio.Event) -> str:
    """One screen: 'ok' once it has its snapshot (then holds the socket), or the close code it got."""
    try:
        async with connect(ws_url(gw), open_timeout=30) as ws:
            snap = await next_frame(ws, "snapshot", timeout=30)
            assert snap["t"] == "snapshot"
            await hold.wait()
            return "ok"
    except ConnectionClosed as exc:
        return str(exc.rcvd.code if exc.rcvd else None)


def _fill_state(redis_url: str, buses: int) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(channels.state_key("bus"), mapping={f"bus-{i}": update("bus", f"bus-{i}", i + 1, src="fill")
                                                    for i in range(buses)})


async def test_two_hundred_screens_reconnecting_at_once_all_get_their_picture(redis_url: str) -> None:
    # The old gateway refused 101 of 200 (redis-py's default pool of 100 connections). Here the pool
    # is deliberately small: the wave waits for Redis connections instead of failing.
    _fill_state(redis_url, 500)
    gw, task = await start_gateway(redis_url, redis_pool_size=8)
    hold = asyncio.Event()
    try:
        started = time.monotonic()
        screens = [asyncio.create_task(_screen(gw, hold)) for _ in range(WAVE)]
        while len(gw.clients) < WAVE and time.monotonic() - started < 60:
            await asyncio.sleep(0.05)
        assert len(gw.clients) == WAVE
        hold.set()
        results = await asyncio.gather(*screens)
        assert results == ["ok"] * WAVE
        # Joining screens share snapshot reads: far fewer reads than screens.
        assert gw.stats.snapshots == WAVE
        assert gw.stats.snapshot_reads < WAVE / 4, gw.stats.snapshot_reads
        assert gw.stats.refused_full == 0
    finally:
        hold.set()
        await stop_gateway(task)


async def test_screens_past_max_clients_get_1013_and_can_retry(redis_url: str) -> None:
    gw, task = await start_gateway(redis_url, max_clients=150)
    hold = asyncio.Event()
    try:
        screens = [asyncio.create_task(_screen(gw, hold)) for _ in range(WAVE)]
        done = []
        while len(done) < WAVE - 150:
            done = [s for s in screens if s.done()]
            await asyncio.sleep(0.05)
        assert sorted(s.result() for s in done) == [str(CLOSE_FULL)] * (WAVE - 150)
        assert len(gw.clients) == 150
        hold.set()
        results = await asyncio.gather(*screens)
        assert results.count("ok") == 150
        # Room again: a retry gets in.
        again = asyncio.Event()
        again.set()
        assert await _screen(gw, again) == "ok"
    finally:
        hold.set()
        await stop_gateway(task)


async def test_a_page_asking_for_snapshots_in_a_loop_without_reading_stays_bounded(redis_url: str) -> None:
    # ~450 KB snapshots; the old gateway queued one per request: 300 requests, >100 MB in its buffer.
    _fill_state(redis_url, 3000)
    limit = 256 * 1024
    gw, task = await start_gateway(redis_url, max_client_buffer_bytes=limit, cameras={"cam-a"})
    client = redis.Redis.from_url(redis_url)
    try:
        # Reads one message, then never again (its socket buffers fill, then the gateway's would).
        async with connect(ws_url(gw), max_queue=1, close_timeout=1) as ws:
            await ws.send(json.dumps({"op": "video", "cams": ["cam-a"]}))
            for _ in range(300):
                await ws.send(json.dumps({"op": "resync"}))
            peak = 0
            jpeg = b"\xff\xd8" + b"v" * 300_000 + b"\xff\xd9"
            for _ in range(60):  # 3 s of 300 KB frames (18 MB, more than the kernel buffers) and resyncs
                client.set(channels.frame_key("cam-a"), jpeg, ex=10)
                client.publish(channels.FRAME_CHANNEL, "cam-a")
                await ws.send(json.dumps({"op": "resync"}))
                await asyncio.sleep(0.05)
                server_side = next(iter(gw.clients))
                peak = max(peak, server_side.transport.get_write_buffer_size())
            snapshot_size = 3000 * 200  # bytes per bus in a snapshot frame, generously
            assert peak <= limit + max(snapshot_size, len(jpeg) + 16), f"write buffer reached {peak} bytes"
            assert gw.stats.snapshots <= 5  # at most one a second, however often it asks
            assert gw.stats.lagging_skips > 0  # frames were skipped for it, not queued
    finally:
        await stop_gateway(task)
