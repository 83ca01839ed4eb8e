"""The live gateway against a real Redis and real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from gateway import Gateway
from spine import channels
from spine.contract import EntityUpdate, encode, now_ms
from spine.servers.embedded_redis import EmbeddedRedis
from tests.gateway_support import (
    next_frame,
    publish,
    settled,
    start_gateway,
    stop_gateway,
    ticket,
    update,
    ws_url,
)


@pytest.fixture
async def gateway(redis_url: str) -> AsyncIterator[Gateway]:
    gw, task = await start_gateway(redis_url)
    yield gw
    await stop_gateway(task)


async def test_refuses_socket_without_valid_ticket(gateway: Gateway) -> None:
    for url in (f"ws://127.0.0.1:{gateway.port}/live",
                f"ws://127.0.0.1:{gateway.port}/live?ticket=forged.ticket.value"):
        with pytest.raises(InvalidStatus) as info:
            async with connect(url):
                pass
        assert info.value.response.status_code == 401


async def test_snapshot_on_connect_then_batches(gateway: Gateway, redis_url: str) -> None:
    publish(redis_url, ("bus", "bus-1", 37.45, 126.70), ("camera", "cam-1", 37.46, 126.71))
    await settled(gateway, received=2)
    async with connect(ws_url(gateway)) as ws:
        snap = await next_frame(ws, "snapshot")
        ids = {(u["layer"], u["id"]) for u in snap["u"]}
        assert ids == {("bus", "bus-1"), ("camera", "cam-1")}
        publish(redis_url, ("bus", "bus-1", 37.47, 126.72))
        batch = await next_frame(ws, "batch")  # strict: an extra snapshot here fails the test
        assert batch["n"] == snap["n"] + 1
        assert [(u["id"], u["lat"]) for u in batch["u"]] == [("bus-1", 37.47)]


async def test_first_redis_connect_is_not_an_outage(gateway: Gateway) -> None:
    # The race this pins down: on its first subscription the old gateway scheduled a snapshot of
    # every layer as if Redis had come back, which a page connecting just then got twice.
    await asyncio.sleep(0.3)
    assert gateway.batcher.counts.layer_snapshots == 0
    assert gateway.n == 0
    assert not gateway.batcher.has_work()


async def test_latest_wins_within_a_batch(gateway: Gateway, redis_url: str) -> None:
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client = redis.Redis.from_url(redis_url)
        # Two updates of one bus in one window: the browser gets only the newer one.
        client.publish(channels.entity_channel("bus"), b"[" + update("bus", "bus-9", 1, lat=37.40) + b","
                       + update("bus", "bus-9", 2, lat=37.41) + b"]")
        batch = await next_frame(ws, "batch")
        assert [u["lat"] for u in batch["u"] if u["id"] == "bus-9"] == [37.41]
        assert gateway.batcher.counts.coalesced >= 1


async def test_gap_in_producer_sequence_triggers_layer_resync(gateway: Gateway, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client.publish(channels.entity_channel("bus"), update("bus", "bus-a", 1, src="g"))
        await next_frame(ws, "batch")
        # seq 2 is "lost" on the way (written to state, never published); seq 3 arrives.
        client.hset(channels.state_key("bus"), "bus-lost", update("bus", "bus-lost", 2, lat=37.5, src="g"))
        third = update("bus", "bus-a", 3, lat=37.41, src="g")
        client.hset(channels.state_key("bus"), "bus-a", third)
        client.publish(channels.entity_channel("bus"), third)
        snap = await next_frame(ws, "snapshot")
        assert snap["layers"] == ["bus"]
        assert {u["id"] for u in snap["u"]} == {"bus-lost", "bus-a"}
        assert gateway.batcher.counts.gaps == 1


async def test_client_resync_request_gets_a_fresh_snapshot(gateway: Gateway, redis_url: str) -> None:
    async with connect(ws_url(gateway)) as ws:
        first = await next_frame(ws, "snapshot")
        publish(redis_url, ("air", "air-송도", 37.38, 126.65))
        batch = await next_frame(ws, "batch")
        await ws.send(json.dumps({"op": "resync"}))
        snap = await next_frame(ws, "snapshot")
        assert any(u["id"] == "air-송도" for u in snap["u"])
        # The snapshot is numbered with the last frame the page had: no gap after it.
        assert batch["n"] == first["n"] + 1 and snap["n"] == batch["n"]


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
    one = EntityUpdate(v=1, layer="bus", id="b1", ts=now_ms(), seq=1, lat=37.4, lon=126.6)
    good = msgspec.json.decode(encode(one))
    bad = {**good, "id": "b2", "lat": "north"}
    async with connect(ws_url(gateway)) as ws:
        await next_frame(ws, "snapshot")
        client.publish(channels.entity_channel("bus"), json.dumps([good, bad]))
        batch = await next_frame(ws, "batch")
        assert [u["id"] for u in batch["u"]] == ["b1"]
    assert gateway.rejects.counts["invalid:lat"] == 1
    assert gateway.rejects.by_source[channels.entity_channel("bus")]["invalid:lat"] == 1


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
        await stop_gateway(task)
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
        await stop_gateway(task)


async def test_video_frames_reach_only_the_pages_watching_that_camera(redis_url: str) -> None:
    audited: list[tuple] = []
    gw, task = await start_gateway(redis_url, audit=lambda *a: audited.append(a), cameras={"cam-a", "cam-b"})
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
            assert not gw.video_subs.get("cam-a")
    finally:
        await stop_gateway(task)


async def test_stats_are_written_to_redis_for_health(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    # Instances stopped long ago (each restart is a new id) are pruned; recent ones are kept.
    client.hset(channels.GATEWAY_STATS_KEY, mapping={
        "gone:1:1": encode({"ts": now_ms() - 2 * 3600_000}), "junk:1:1": b"[[[",
        "recent:1:1": encode({"ts": now_ms()})})
    gw, task = await start_gateway(redis_url, stats_interval_s=0.1)
    try:
        client.publish(channels.entity_channel("bus"), b"{not json")
        await asyncio.sleep(0.4)
        rows = {k.decode(): v for k, v in client.hgetall(channels.GATEWAY_STATS_KEY).items()}
        mine = f"{socket.gethostname()}:{os.getpid()}:{gw.port}"
        assert set(rows) == {mine, "recent:1:1"}
        stats = json.loads(rows[mine])
        assert stats["rejects"] == {"malformed_json": 1}
        assert stats["rejects_by_source"] == {"cc:v1:entity:bus": {"malformed_json": 1}}
        assert stats["redis_up"] is True and stats["ts"] > now_ms() - 5000
    finally:
        await stop_gateway(task)


async def test_ticket_payload_without_id_is_refused(gateway: Gateway) -> None:
    from itsdangerous import URLSafeTimedSerializer

    from tests.gateway_support import SECRET

    old_style = URLSafeTimedSerializer(SECRET, salt="cc-live-ticket").dumps({"u": "tester", "r": "operator"})
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(gateway, old_style)):
            pass
    assert info.value.response.status_code == 401
    async with connect(ws_url(gateway, ticket())) as ws:
        await next_frame(ws, "snapshot")


async def test_a_failing_audit_refuses_the_video_but_keeps_the_socket(redis_url: str) -> None:
    def audit(*_: object) -> None:
        raise OSError("database is locked")

    gw, task = await start_gateway(redis_url, audit=audit, cameras={"cam-a"})
    try:
        async with connect(ws_url(gw)) as ws:
            await next_frame(ws, "snapshot")
            await ws.send(json.dumps({"op": "video", "cams": ["cam-a"]}))
            await asyncio.sleep(0.2)
            assert not gw.video_subs.get("cam-a")  # no audit row, no picture
            publish(redis_url, ("bus", "bus-v", 37.45, 126.70))
            assert (await next_frame(ws, "batch"))["u"][0]["id"] == "bus-v"  # still live
    finally:
        await stop_gateway(task)


async def test_pages_joining_under_live_traffic_miss_nothing_and_see_no_gap(redis_url: str) -> None:
    # A page's snapshot is read while batches keep flowing to the others: what is numbered after
    # its snapshot is sent to it after the snapshot, so its picture ends equal to the state and
    # its frame numbers run without a gap.
    gw, task = await start_gateway(redis_url)
    stop = asyncio.Event()

    async def producer() -> None:
        pub = publish(redis_url)
        i = 0
        while not stop.is_set():
            for b in range(40):
                pub.update("bus", f"bus-{b}", 37.0 + (i % 100) / 1000, 126.5 + b / 100)
            await asyncio.to_thread(pub.flush)
            i += 1
            await asyncio.sleep(0.005)

    async def page(delay: float) -> tuple[dict[str, tuple[int, float]], list[int]]:
        await asyncio.sleep(delay)
        seen: dict[str, tuple[int, float]] = {}
        numbers: list[int] = []
        async with connect(ws_url(gw)) as ws:
            while True:
                try:
                    frame = await next_frame(ws, timeout=1.0)
                except TimeoutError:
                    return seen, numbers
                numbers.append(frame["n"])
                for u in frame["u"]:  # the browser keeps the newest by ts (assets/cc/store.js)
                    if u["id"] not in seen or seen[u["id"]][0] <= u["ts"]:
                        seen[u["id"]] = (u["ts"], u["lat"])

    prod = asyncio.create_task(producer())
    pages = [asyncio.create_task(page(0.05 * i)) for i in range(12)]
    await asyncio.sleep(1.2)
    stop.set()
    await prod
    results = await asyncio.gather(*pages)
    try:
        state = {k.decode(): json.loads(v) for k, v in
                 redis.Redis.from_url(redis_url).hgetall(channels.state_key("bus")).items()}
        for seen, numbers in results:
            assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), numbers
            assert {i: lat for i, (_, lat) in seen.items()} == {i: u["lat"] for i, u in state.items()}
    finally:
        await stop_gateway(task)


async def test_a_page_served_before_redis_is_up_gets_the_picture_when_it_comes(tmp_path: Path) -> None:
    from config.settings import GatewaySettings
    from spine.servers.managed import free_port
    from tests.gateway_support import SECRET

    server = EmbeddedRedis(tmp_path / "redis")
    url = server.start()
    publish(url, ("bus", "bus-early", 37.45, 126.70))
    server.stop()
    gw = Gateway(url, GatewaySettings(host="127.0.0.1", port=free_port(), batch_ms=20), SECRET)
    task = asyncio.create_task(gw.serve())
    try:
        await asyncio.wait_for(gw.ready.wait(), 5)
        async with connect(ws_url(gw)):
            pytest.fail("a ticket cannot be claimed without Redis")
    except InvalidStatus as exc:
        assert exc.response.status_code == 503  # the page retries; nothing half-served
    try:
        server.start()
        for _ in range(300):
            if gw.redis_up:
                break
            await asyncio.sleep(0.05)
        async with connect(ws_url(gw)) as ws:
            snap = await next_frame(ws, "snapshot", timeout=10)
            assert [u["id"] for u in snap["u"]] == []  # Redis restarted empty (no persistence here)
            assert snap["redis"] is True
    finally:
        await stop_gateway(task)
        server.stop()


async def test_a_failed_snapshot_read_does_not_blank_a_page(redis_url: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.server as server_module

    publish(redis_url, ("bus", "bus-1", 37.45, 126.70))
    gw, task = await start_gateway(redis_url)
    try:
        async with connect(ws_url(gw)) as ws:
            first = await next_frame(ws, "snapshot")
            assert [u["id"] for u in first["u"]] == ["bus-1"]
            real = server_module.read_state
            calls = []

            async def flaky(*args: object, **kwargs: object) -> object:
                calls.append(1)
                if len(calls) == 1:
                    raise ConnectionError("read timed out")  # fault injection: one failed read
                return await real(*args, **kwargs)

            monkeypatch.setattr(server_module, "read_state", flaky)
            await asyncio.sleep(1.0)  # past the per-page resync interval
            await ws.send(json.dumps({"op": "resync"}))
            snap = await next_frame(ws, "snapshot", timeout=5)  # the retry, not an empty picture
            assert [u["id"] for u in snap["u"]] == ["bus-1"] and len(calls) == 2
    finally:
        await stop_gateway(task)
