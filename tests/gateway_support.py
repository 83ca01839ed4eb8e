"""Helpers for the gateway tests: start one in-process, tickets, strict frame reading."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

from websockets.asyncio.client import ClientConnection

from config.settings import GatewaySettings
from gateway import Gateway
from gateway.sessions import SessionCheck
from spine.contract import EntityUpdate, encode, now_ms
from spine.publisher import Publisher
from spine.publisher import connect as redis_connect
from spine.servers.managed import free_port
from spine.tickets import issue_ticket

SECRET = "gateway-test-secret"


def ticket(user: str = "tester", role: str = "operator", sid: str = "sid-1", kind: str = "user") -> str:
    """A live ticket as the web server issues it (unique id `j` each time)."""
    return issue_ticket(SECRET, user, role, sid, kind)


async def start_gateway(redis_url: str, audit: Callable | None = None, cameras: set[str] | None = None,
                        session_check: SessionCheck | None = None,
                        **overrides: object) -> tuple[Gateway, asyncio.Task]:
    settings = GatewaySettings(host="127.0.0.1", port=free_port(), **{"batch_ms": 20, **overrides})
    gw = Gateway(redis_url, settings, SECRET, audit=audit, cameras=cameras, session_check=session_check)
    task = asyncio.create_task(gw.serve())
    await asyncio.wait_for(gw.ready.wait(), 5)
    for _ in range(500):  # wait until the pub/sub subscription is live
        if gw.redis_up:
            break
        await asyncio.sleep(0.02)
    assert gw.redis_up, "gateway never subscribed"
    return gw, task


async def stop_gateway(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def ws_url(gw: Gateway, tk: str | None = None) -> str:
    return f"ws://127.0.0.1:{gw.port}/live?ticket={tk or ticket()}"


async def next_frame(ws: ClientConnection, kind: str | None = None, timeout: float = 5.0) -> dict:
    """The next JSON frame other than a heartbeat. Strict: a frame of another kind than `kind`
    fails the test instead of being skipped (a skipped frame once hid a gateway race)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        raw = await asyncio.wait_for(ws.recv(), max(left, 0.01))
        if isinstance(raw, bytes) and raw[:1] == b"\x00":
            raise AssertionError("unexpected video message")
        frame = json.loads(raw)
        if frame["t"] == "hb":
            continue
        assert kind is None or frame["t"] == kind, f"expected {kind}, got {frame['t']} n={frame.get('n')}"
        return frame


def publish(redis_url: str, *updates: tuple[str, str, float, float]) -> Publisher:
    pub = Publisher(redis_connect(redis_url), src=f"test-{secrets.token_hex(3)}")
    for layer, id_, lat, lon in updates:
        pub.update(layer, id_, lat, lon, {"route": "7"} if layer == "bus" else {})
    assert pub.flush()
    return pub


def update(layer: str, id_: str, seq: int, lat: float = 37.45, lon: float = 126.7, src: str = "t",
           ts: int | None = None) -> bytes:
    return encode(EntityUpdate(v=1, layer=layer, id=id_, ts=now_ms() if ts is None else ts, seq=seq,
                               lat=lat, lon=lon, src=src))


async def settled(gw: Gateway, received: int, timeout: float = 5.0) -> None:
    """Wait until the gateway has taken in `received` messages and sent them on, so a page that
    connects now gets them in its snapshot and not also in a batch right after it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while gw.batcher.counts.received < received or gw.batcher.has_work():
        assert loop.time() < deadline, f"gateway took in {gw.batcher.counts.received} of {received}"
        await asyncio.sleep(0.01)
    await asyncio.sleep(gw.window * 2)
