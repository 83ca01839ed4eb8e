"""Issue 7 point 6, gateway side: single-use tickets, and sockets of an ended session closed (4401)
within 5 s, their video stopped, against the real store (SQLite) and a real gateway."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
import redis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from dashboard.store import Store
from gateway.sessions import CLOSE_REVOKED, ClaimedTickets
from spine import channels
from tests.gateway_support import next_frame, start_gateway, stop_gateway, ticket, ws_url


async def test_a_ticket_opens_one_socket_only(redis_url: str) -> None:
    gw, task = await start_gateway(redis_url)
    try:
        tk = ticket()
        async with connect(ws_url(gw, tk)) as ws:
            await next_frame(ws, "snapshot")
            for _ in range(4):  # the replay opened 5 sockets with one ticket
                with pytest.raises(InvalidStatus) as info:
                    async with connect(ws_url(gw, tk)):
                        pass
                assert info.value.response.status_code == 401
        assert gw.stats.tickets_replayed == 4
        assert redis.Redis.from_url(redis_url).ttl(channels.ticket_used_key(_ticket_id(tk))) > 60
    finally:
        await stop_gateway(task)


async def test_a_replay_is_refused_even_after_redis_lost_the_marker(redis_url: str) -> None:
    """A Redis that comes back empty (no persistence, or replaced) has no ticket-used markers; the
    gateway's own memory of what it accepted still refuses a replay within the ticket's life."""
    gw, task = await start_gateway(redis_url)
    try:
        tk = ticket()
        async with connect(ws_url(gw, tk)) as ws:
            await next_frame(ws, "snapshot")
        admin = redis.Redis.from_url(redis_url)
        assert admin.delete(channels.ticket_used_key(_ticket_id(tk))) == 1  # what an empty restart leaves
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(gw, tk)):
                pass
        assert info.value.response.status_code == 401
        assert gw.stats.tickets_replayed == 1
        async with connect(ws_url(gw, ticket())) as ws:  # a fresh ticket still opens a socket
            await next_frame(ws, "snapshot")
    finally:
        await stop_gateway(task)


def test_claimed_ticket_ids_expire_and_stay_bounded() -> None:
    now = [0.0]
    claims = ClaimedTickets(max_ids=3, ttl_s=120, clock=lambda: now[0])
    for j in ("a", "b", "c"):
        claims.add(j)
    assert claims.seen("a") and len(claims) == 3
    claims.add("d")  # full: the oldest (nearest to expiring) goes, and that is counted
    assert not claims.seen("a") and claims.seen("d") and claims.dropped_early == 1 and len(claims) == 3
    now[0] = 119.9
    assert claims.seen("b")
    now[0] = 120.0  # kept exactly as long as the Redis marker (TICKET_USED_TTL_S)
    assert not claims.seen("b") and not claims.seen("d") and len(claims) == 0


def _ticket_id(tk: str) -> str:
    from spine.tickets import verify_ticket
    from tests.gateway_support import SECRET

    payload = verify_ticket(SECRET, tk)
    assert payload is not None
    return payload["j"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'sessions.db'}")


async def _frames_until_closed(ws, deadline_s: float) -> tuple[int, int | None, float]:
    """(video messages received, close code, seconds until the close)."""
    start = time.monotonic()
    video = 0
    try:
        while time.monotonic() - start < deadline_s:
            msg = await asyncio.wait_for(ws.recv(), deadline_s)
            if isinstance(msg, bytes) and msg[:1] == b"\x00":
                video += 1
    except ConnectionClosed as exc:
        return video, exc.rcvd.code if exc.rcvd else None, time.monotonic() - start
    return video, None, time.monotonic() - start


async def test_revoked_device_token_closes_its_sockets_and_stops_video(redis_url: str, store: Store) -> None:
    store.create_device_token("wall-1")
    store.create_device_token("wall-2")
    sid1 = store.create_session("wall-1", "device")
    sid2 = store.create_session("wall-2", "device")
    gw, task = await start_gateway(redis_url, session_check=store.valid_sessions, cameras={"cam-a"})
    client = redis.Redis.from_url(redis_url)
    stop = asyncio.Event()

    async def camera() -> None:  # a vision worker storing and announcing frames at 20 fps
        while not stop.is_set():
            await asyncio.to_thread(client.set, channels.frame_key("cam-a"), b"\xff\xd8JPEG\xff\xd9", ex=10)
            await asyncio.to_thread(client.publish, channels.FRAME_CHANNEL, "cam-a")
            await asyncio.sleep(0.05)

    cam = asyncio.create_task(camera())
    try:
        async with connect(ws_url(gw, ticket("wall-1", sid=sid1, kind="device"))) as revoked, \
                connect(ws_url(gw, ticket("wall-2", sid=sid2, kind="device"))) as kept:
            for ws in (revoked, kept):
                await next_frame(ws, "snapshot")
                await ws.send(json.dumps({"op": "video", "cams": ["cam-a"]}))
            drain = asyncio.create_task(_frames_until_closed(kept, 30.0))  # a screen that reads
            await asyncio.sleep(0.5)
            assert len(gw.video_subs["cam-a"]) == 2
            revoked_at = time.monotonic()
            await asyncio.to_thread(store.revoke_device_token, "wall-1")
            _, code, _ = await _frames_until_closed(revoked, 6.0)
            assert code == CLOSE_REVOKED
            assert time.monotonic() - revoked_at < 5.0
            # The kept screen still plays; the revoked one is no longer a watcher.
            assert len(gw.video_subs["cam-a"]) == 1
            before = gw.video.frames
            await asyncio.sleep(0.5)
            assert gw.video.frames > before
            drain.cancel()
        assert gw.stats.sessions_revoked == 1
    finally:
        stop.set()
        await cam
        await stop_gateway(task)


async def test_a_ticket_of_an_ended_session_is_refused(redis_url: str, store: Store) -> None:
    store.create_device_token("wall-3")
    sid = store.create_session("wall-3", "device")
    store.revoke_session(sid)
    gw, task = await start_gateway(redis_url, session_check=store.valid_sessions)
    try:
        with pytest.raises(InvalidStatus) as info:
            async with connect(ws_url(gw, ticket("wall-3", sid=sid, kind="device"))):
                pass
        assert info.value.response.status_code == 401
        # With a session check, a ticket must name its session.
        with pytest.raises(InvalidStatus):
            async with connect(ws_url(gw, ticket("wall-3", sid="", kind="device"))):
                pass
    finally:
        await stop_gateway(task)
