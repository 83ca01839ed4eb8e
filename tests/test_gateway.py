"""The live gateway against a real Redis and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import redis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from config.settings import GatewaySettings
from dashboard.gateway import Gateway
from spine import channels
from spine.contract import EntityUpdate, encode, now_ms
from spine.publisher import Publisher
from spine.publisher import connect as redis_connect
from spine.servers.embedded_redis import EmbeddedRedis
from spine.servers.managed import free_port
from spine.tickets import issue_ticket

SECRET = "gateway-test-secret"


async def start_gateway(redis_url: str, **overrides: object) -> tuple[Gateway, asyncio.Task]:
    settings = GatewaySettings(host="127.0.0.1", port=free_port(), batch_ms=20, **overrides)
    gw = Gateway(redis_url, settings, SECRET)
    task = asyncio.create_task(gw.serve())
    await asyncio.wait_for(gw.ready.wait(), 5)
    for _ in range(100):  # wait until the pub/sub subscription is live
        if gw.redis_up:
            break
        await asyncio.sleep(0.02)
    return gw, task


@pytest.fixture
async def gateway(redis_url: str) -> AsyncIterator[Gateway]:
    gw, task = await start_gateway(redis_url)
    yield gw
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def ws_url(gw: Gateway, ticket: str | None = None) -> str:
    ticket = ticket or issue_ticket(SECRET, "tester", "operator")
    return f"ws://127.0.0.1:{gw.port}/live?ticket={ticket}"


async def next_frame(ws: ClientConnection, kind: str | None = None, timeout: float = 5.0) -> dict:
    """The next frame (skipping heartbeats), optionally of one type."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        raw = await asyncio.wait_for(ws.recv(), max(left, 0.01))
        frame = json.loads(raw)
        if frame["t"] == "hb":
            continue
        if kind is None or frame["t"] == kind:
            return frame


def publish(redis_url: str, *updates: tuple[str, str, float, float]) -> Publisher:
    pub = Publisher(redis_connect(redis_url), src="test")
    for layer, id_, lat, lon in updates:
        pub.update(layer, id_, lat, lon, {"route": "7"})
    assert pub.flush()
    return pub


async def test_refuses_socket_without_valid_ticket(gateway: Gateway) -> None:
    for url in (f"ws://127.0.0.1:{gateway.port}/live",
                f"ws://127.0.0.1:{gateway.port}/live?ticket=forged.ticket.value"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 401


async def test_snapshot_on_connect_then_batches(gateway: Gateway, redis_url: str) -> None:
    publish(redis_url, ("bus", "bus-1", 37.45, 126.70), ("camera", "cam-1", 37.46, 126.71))
    async with connect(ws_url(gateway)) as ws:
        snap = await next_frame(ws, "snapshot")
        ids = {(u["layer"], u["id"]) for u in snap["u"]}
        assert ids == {("bus", "bus-1"), ("camera", "cam-1")}
        publish(redis_url, ("bus", "bus-1", 37.47, 126.72))
        batch = await next_frame(ws, "batch")
        assert batch["n"] == snap["n"] + 1
        assert [(u["id"], u["lat"]) for u in batch["u"]] == [("bus-1", 37.47)]


async def test_latest_wins_within_a_batch(gateway: Gateway, redis_url: str) -> None:
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client = redis.Redis.from_url(redis_url)
        # Two updates of one bus in one window: the browser gets only the newer one.
        for seq, lat in ((1, 37.40), (2, 37.41)):
            upd = EntityUpdate(v=1, layer="bus", id="bus-9", ts=now_ms(), seq=seq, lat=lat, lon=126.7,
                               src="lw")
            client.publish(channels.entity_channel("bus"), encode(upd))
        batch = await next_frame(ws, "batch")
        assert [u["lat"] for u in batch["u"] if u["id"] == "bus-9"] == [37.41]
        assert gateway.stats.coalesced >= 1


async def test_gap_in_producer_sequence_triggers_layer_resync(gateway: Gateway, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        first = EntityUpdate(v=1, layer="bus", id="bus-a", ts=now_ms(), seq=1, lat=37.4, lon=126.6, src="g")
        client.publish(channels.entity_channel("bus"), encode(first))
        await next_frame(ws, "batch")
        # seq 2 is "lost" on the way (written to state, never published); seq 3 arrives.
        lost = EntityUpdate(v=1, layer="bus", id="bus-lost", ts=now_ms(), seq=2, lat=37.5, lon=126.7, src="g")
        client.hset(channels.state_key("bus"), "bus-lost", encode(lost))
        third = EntityUpdate(v=1, layer="bus", id="bus-a", ts=now_ms(), seq=3, lat=37.41, lon=126.6, src="g")
        client.hset(channels.state_key("bus"), "bus-a", encode(third))
        client.publish(channels.entity_channel("bus"), encode(third))
        snap = await next_frame(ws, "snapshot")
        assert snap["layers"] == ["bus"]
        assert {u["id"] for u in snap["u"]} == {"bus-lost", "bus-a"}
        assert gateway.stats.gaps == 1


async def test_client_resync_request_gets_a_fresh_snapshot(gateway: Gateway, redis_url: str) -> None:
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        publish(redis_url, ("air", "air-송도", 37.38, 126.65))
        await next_frame(ws, "batch")
        await ws.send(json.dumps({"op": "resync"}))
        snap = await next_frame(ws, "snapshot")
        assert any(u["id"] == "air-송도" for u in snap["u"])


@pytest.mark.parametrize("payload", [
    b"{not json",
    b'{"v": 1, "layer": "bus", "id": "", "ts": 1, "seq": 1, "lat": 37.4, "lon": 126.6}',
    b'{"v": 1, "layer": "bus", "id": "x", "ts": "yesterday", "seq": 1, "lat": 37.4, "lon": 126.6}',
    b'{"v": 1, "layer": "bus", "id": "x", "ts": 1, "seq": 1, "lat": 137.4, "lon": 126.6}',
    b'{"v": 2, "layer": "bus", "id": "x", "ts": 1, "seq": 1, "lat": 37.4, "lon": 126.6}',
    b'{"v": 1, "layer": "camera", "id": "x", "ts": 1, "seq": 1, "lat": 37.4, "lon": 126.6}',
    b"[1, 2, 3]",
    b"\xff\xfe\x00garbage",
    b'{"v": 1, "layer": "bus", "id": "big", "ts": 1, "seq": 1, "lat": 37.4, "lon": 126.6, "props": {"x": "'
    + b"A" * 200_000 + b'"}}',
])
async def test_hostile_input_is_counted_and_dropped(gateway: Gateway, redis_url: str, payload: bytes) -> None:
    client = redis.Redis.from_url(redis_url)
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client.publish(channels.entity_channel("bus"), payload)
        client.publish(channels.EVENTS_CHANNEL, payload)
        # Still serving: a good update right after arrives, and nothing bad came through.
        publish(redis_url, ("bus", "bus-ok", 37.45, 126.70))
        batch = await next_frame(ws, "batch")
        assert [u["id"] for u in batch["u"]] == ["bus-ok"]
        assert batch["e"] == []
    assert gateway.rejects.total >= 2


async def test_batch_array_keeps_good_elements_and_rejects_bad_ones(gateway: Gateway, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    one = EntityUpdate(v=1, layer="bus", id="b1", ts=1, seq=1, lat=37.4, lon=126.6)
    good = msgspec.json.decode(encode(one))
    bad = {**good, "id": "b2", "lat": "north"}
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client.publish(channels.entity_channel("bus"), json.dumps([good, bad]))
        batch = await next_frame(ws, "batch")
        assert [u["id"] for u in batch["u"]] == ["b1"]
    assert gateway.rejects.counts["invalid:lat"] == 1


async def test_recovers_after_redis_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    gw, task = await start_gateway(url)
    try:
        publish(url, ("bus", "bus-before", 37.45, 126.70))
        async with connect(ws_url(gw)) as ws:
            await next_frame(ws, "snapshot")
            server.stop()
            # The page is told the data is stale while Redis is away...
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["t"] == "hb" and frame["redis"] is False:
                    break
            server.start()
            publish(url, ("bus", "bus-after", 37.46, 126.71))
            # ...and gets a full snapshot when it is back, then live batches again.
            snap = await next_frame(ws, "snapshot", timeout=15)
            assert "bus-after" in {u["id"] for u in snap["u"]}
            publish(url, ("bus", "bus-after", 37.47, 126.72))
            batch = await next_frame(ws, "batch", timeout=5)
            assert batch["u"][0]["lat"] == 37.47
        assert gw.redis_up
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.stop()


async def test_slow_client_is_skipped_not_blocking(redis_url: str) -> None:
    gw, task = await start_gateway(redis_url, max_client_buffer_bytes=65536)
    try:
        async with connect(ws_url(gw)) as fast:
            await next_frame(fast, "snapshot")
            slow = next(iter(gw.clients))
            slow.transport.get_write_buffer_size = lambda: 10**9  # as if this client had stalled
            publish(redis_url, ("bus", "bus-s", 37.45, 126.70))
            await asyncio.sleep(0.3)
            assert gw.stats.lagging_skips >= 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_video_frames_reach_only_the_pages_watching_that_camera(redis_url: str) -> None:
    audited: list[tuple] = []
    settings = GatewaySettings(host="127.0.0.1", port=free_port(), batch_ms=20)
    gw = Gateway(redis_url, settings, SECRET, audit=lambda *a: audited.append(a), cameras={"cam-a", "cam-b"})
    task = asyncio.create_task(gw.serve())
    await asyncio.wait_for(gw.ready.wait(), 5)
    client = redis.Redis.from_url(redis_url)
    try:
        async with connect(ws_url(gw)) as watcher, connect(ws_url(gw)) as other:
            await next_frame(watcher, "snapshot")
            await next_frame(other, "snapshot")
            await watcher.send(json.dumps({"op": "video", "cams": ["cam-a", "cam-unknown"]}))
            await asyncio.sleep(0.2)
            assert audited == [("tester", "view_camera", "cam-a", "127.0.0.1")]  # unknown id ignored
            client.set(channels.frame_key("cam-a"), b"\xff\xd8JPEG-A\xff\xd9", ex=10)
            client.publish(channels.FRAME_CHANNEL, "cam-a")
            while True:
                msg = await asyncio.wait_for(watcher.recv(), 5)
                if isinstance(msg, bytes) and msg[:1] == b"\x00":
                    break
            n = msg[1]
            assert msg[2:2 + n] == b"cam-a" and msg[2 + n:] == b"\xff\xd8JPEG-A\xff\xd9"
            # The page not watching gets no video, only its usual frames.
            with pytest.raises(TimeoutError):
                while True:
                    m = await asyncio.wait_for(other.recv(), 0.5)
                    assert not (isinstance(m, bytes) and m[:1] == b"\x00")
            # Stop watching: no more frames for it.
            await watcher.send(json.dumps({"op": "video", "cams": []}))
            await asyncio.sleep(0.1)
            assert not gw.video_subs["cam-a"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
