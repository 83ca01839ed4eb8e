"""The live gateway: one async fan-out from Redis pub/sub to every browser over WebSocket.

Why a separate `websockets` server and not Dash's WebSocket callbacks: measured on this machine
(docs/architecture.md) the in-place path through a plain socket held p99 134 ms at 5,000
updates/s while the Dash prop path dropped 13-27 % of updates at that rate; the gateway is also
stateless, so it scales out behind a load balancer independently of the web server.

Frames to the browser (JSON in binary frames, serialised once per batch for all clients):
  {"t":"snapshot","n":N,"layers":[...],"u":[update...],"e":[event...]}  full state of layers
  {"t":"batch","n":N,"u":[update...],"e":[event...]}  latest-wins updates of one window
  {"t":"hb","redis":bool,"ts":ms}  heartbeat (no n) so a page can tell live from stale
`n` counts snapshot and batch frames; a page that sees a gap sends {"op":"resync"}.

Video: a page sends {"op":"video","cams":[ids of the tiles on screen]}; the gateway then relays
each new annotated frame of those cameras (announced on cc:v1:frame) as a binary message
0x00, len(id), id, JPEG bytes. One asyncio task serves every tile of every screen, where MJPEG
would hold one web-server thread per tile; each camera a user starts watching is audited.
"""

from __future__ import annotations

import asyncio
import http
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from config.settings import GatewaySettings
from spine import channels
from spine.contract import (
    LAYERS,
    EntityUpdate,
    Event,
    RejectLog,
    decode_events,
    decode_updates,
    encode,
    now_ms,
)
from spine.tickets import verify_ticket

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
VIDEO_TAG = b"\x00"  # first byte of a video message; JSON frames start with "{"
MAX_VIDEO_CAMS = 32  # per connection: more tiles than any screen shows
_snapshot_entry = msgspec.json.Decoder(EntityUpdate)
_event_entry = msgspec.json.Decoder(Event)


@dataclass
class GatewayStats:
    received: int = 0
    coalesced: int = 0
    batches: int = 0
    snapshots: int = 0
    gaps: int = 0
    lagging_skips: int = 0
    redis_reconnects: int = 0
    video_frames: int = 0
    clients: int = 0
    rejects: dict[str, int] = field(default_factory=dict)


class Gateway:
    def __init__(self, redis_url: str, settings: GatewaySettings, secret: str,
                 audit: Callable[[str, str, str, str], None] | None = None,
                 cameras: set[str] | None = None) -> None:
        self.redis_url = redis_url
        self.settings = settings
        self.secret = secret
        self.window = settings.batch_ms / 1000.0
        self.clients: set[ServerConnection] = set()
        self.rejects = RejectLog(log)
        self.stats = GatewayStats()
        self.redis_up = False
        self.n = 0
        self._pending: dict[tuple[str, str], EntityUpdate] = {}
        self._pending_events: list[Event] = []
        self._have_data = asyncio.Event()
        self._resync_layers: set[str] = set()
        self._last_seq: dict[tuple[str, str], int] = {}
        self._redis: aioredis.Redis | None = None
        self.ready = asyncio.Event()
        self.port: int | None = None
        self.audit = audit  # (user, action, target, remote address), blocking: run in a thread
        self.cameras = cameras  # ids a page may watch; None: any
        self.video_subs: dict[str, set[ServerConnection]] = defaultdict(set)
        self._video_busy: set[str] = set()

    # ---- Redis side -------------------------------------------------------------------------

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self.redis_url, protocol=2, socket_connect_timeout=3,
                                       health_check_interval=10)

    async def _reader(self) -> None:
        backoff = 0.5
        while True:
            client = self._client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(channels.ENTITY_PATTERN)
                await pubsub.subscribe(channels.EVENTS_CHANNEL, channels.FRAME_CHANNEL)
                self._redis = client
                if not self.redis_up and self.stats.redis_reconnects:
                    log.info("Redis is back; resyncing every client")
                was_down = not self.redis_up
                self.redis_up = True
                backoff = 0.5
                if was_down:
                    # Anything published while we were away is lost to pub/sub: resend state.
                    self._last_seq.clear()
                    self._resync_layers.update(LAYERS)
                    self._have_data.set()
                self._send_heartbeat()
                while True:
                    msg = await pubsub.get_message(timeout=HEARTBEAT_S)
                    if msg is not None:
                        self._on_message(msg["channel"], msg["data"])
            except (RedisError, OSError) as exc:
                if self.redis_up:
                    log.warning("lost Redis (%s); retrying with backoff", exc)
                self.redis_up = False
                self.stats.redis_reconnects += 1
                self._send_heartbeat()
            finally:
                self._redis = None
                try:
                    await pubsub.aclose()
                    await client.aclose()
                except Exception:
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        ch = channel.decode()
        if ch == channels.FRAME_CHANNEL:
            cam = data.decode("utf-8", "replace")
            if self.video_subs.get(cam) and cam not in self._video_busy:
                # One fetch per camera at a time: frames that arrive meanwhile are superseded anyway.
                self._video_busy.add(cam)
                asyncio.get_running_loop().create_task(self._relay_frame(cam))
            return
        if ch == channels.EVENTS_CHANNEL:
            events = decode_events(data, self.rejects, self.settings.max_message_bytes, ch)
            self._pending_events.extend(events)
            self.stats.received += len(events)
        else:
            layer = channels.layer_of_channel(ch)
            updates = decode_updates(data, self.rejects, self.settings.max_message_bytes, ch)
            for upd in updates:
                if upd.layer != layer:
                    self.rejects.add("layer_mismatch", f"{upd.layer} on {ch}", ch)
                    continue
                self._check_seq(upd)
                key = (upd.layer, upd.id)
                if key in self._pending:
                    self.stats.coalesced += 1
                self._pending[key] = upd
            self.stats.received += len(updates)
        self._have_data.set()

    def _check_seq(self, upd: EntityUpdate) -> None:
        key = (upd.layer, upd.src)
        last = self._last_seq.get(key)
        if last is not None and upd.seq > last + 1:
            # A message was lost between the producer and us: resend that layer's state.
            self.stats.gaps += 1
            self._resync_layers.add(upd.layer)
        if last is None or upd.seq > last:
            self._last_seq[key] = upd.seq

    async def _read_snapshot(self, layers: list[str]) -> tuple[list[EntityUpdate], list[Event]]:
        client = self._redis
        if client is None:
            return [], []
        pipe = client.pipeline(transaction=False)
        for layer in layers:
            pipe.hvals(channels.state_key(layer))
        pipe.lrange(channels.RECENT_EVENTS_KEY, 0, 49)
        results = await pipe.execute()
        updates: list[EntityUpdate] = []
        for values in results[:-1]:
            for raw in values:
                try:
                    updates.append(_snapshot_entry.decode(raw))
                except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                    self.rejects.add("bad_state_entry", str(exc), "snapshot")
        events: list[Event] = []
        for raw in reversed(results[-1]):
            try:
                events.append(_event_entry.decode(raw))
            except (msgspec.ValidationError, msgspec.DecodeError) as exc:
                self.rejects.add("bad_state_entry", str(exc), "recent events")
        return updates, events

    async def _frame_message(self, cam: str) -> bytes | None:
        client = self._redis
        if client is None:
            return None
        try:
            jpeg = await client.get(channels.frame_key(cam))
        except (RedisError, OSError):
            return None
        if not jpeg:
            return None
        name = cam.encode()
        return VIDEO_TAG + bytes([len(name)]) + name + jpeg

    async def _relay_frame(self, cam: str) -> None:
        try:
            msg = await self._frame_message(cam)
            subs = self.video_subs.get(cam)
            if msg and subs:
                self.stats.video_frames += 1
                self._send(list(subs), msg)
        finally:
            self._video_busy.discard(cam)

    async def _set_video(self, ws: ServerConnection, cams: list[str]) -> None:
        """The cameras this page shows now; new ones are audited and get their current frame."""
        user = getattr(ws, "cc_user", {})
        wanted = {c for c in cams[:MAX_VIDEO_CAMS]
                  if isinstance(c, str) and 0 < len(c) <= 64 and (self.cameras is None or c in self.cameras)}
        current = {c for c, subs in self.video_subs.items() if ws in subs}
        for cam in current - wanted:
            self.video_subs[cam].discard(ws)
        for cam in sorted(wanted - current):
            self.video_subs[cam].add(ws)
            if self.audit is not None:
                remote = str(ws.remote_address[0]) if ws.remote_address else ""
                await asyncio.to_thread(self.audit, user.get("u", "?"), "view_camera", cam, remote)
            msg = await self._frame_message(cam)
            if msg:
                self._send([ws], msg)

    def _drop_video(self, ws: ServerConnection) -> None:
        for subs in self.video_subs.values():
            subs.discard(ws)

    # ---- browser side -----------------------------------------------------------------------

    def _send(self, targets: list[ServerConnection], frame: bytes) -> None:
        limit = self.settings.max_client_buffer_bytes
        ok = []
        for ws in targets:
            transport = ws.transport
            if transport is not None and transport.get_write_buffer_size() > limit:
                # This client cannot keep up; it will see a gap in n and ask for a snapshot.
                self.stats.lagging_skips += 1
                continue
            ok.append(ws)
        if ok:
            broadcast(ok, frame)

    def _send_heartbeat(self) -> None:
        if self.clients:
            broadcast(self.clients, encode({"t": "hb", "redis": self.redis_up, "ts": now_ms()}))

    async def _flusher(self) -> None:
        while True:
            await self._have_data.wait()
            await asyncio.sleep(self.window)
            self._have_data.clear()
            if self._resync_layers:
                layers = sorted(self._resync_layers)
                self._resync_layers.clear()
                updates, events = await self._read_snapshot(layers)
                self._pending = {k: u for k, u in self._pending.items() if k[0] not in layers}
                self.n += 1
                self.stats.snapshots += 1
                self._send(list(self.clients), encode(
                    {"t": "snapshot", "n": self.n, "layers": layers, "u": updates, "e": [],
                     "redis": self.redis_up}))
            if not self._pending and not self._pending_events:
                continue
            updates = list(self._pending.values())
            events = self._pending_events
            self._pending = {}
            self._pending_events = []
            self.n += 1
            self.stats.batches += 1
            if self.clients:
                self._send(list(self.clients), encode({"t": "batch", "n": self.n, "u": updates,
                                                       "e": events}))

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self._send_heartbeat()

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if url.path != "/live":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        who = verify_ticket(self.secret, ticket) if ticket else None
        if who is None:
            log.info("refused live socket without a valid ticket from %s", connection.remote_address)
            return Response(http.HTTPStatus.UNAUTHORIZED.value, "Unauthorized",
                            Headers([("Content-Type", "text/plain")]), b"login required\n")
        connection.cc_user = who  # type: ignore[attr-defined]
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        user = getattr(ws, "cc_user", {})
        log.info("live client %s (%s) connected", user.get("u"), user.get("r"))
        try:
            await self._send_snapshot(ws)
            self.clients.add(ws)
            self.stats.clients = len(self.clients)
            async for message in ws:
                op = _client_op(message)
                if op.get("op") == "resync":
                    await self._send_snapshot(ws)
                elif op.get("op") == "video" and isinstance(op.get("cams"), list):
                    await self._set_video(ws, op["cams"])
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)
            self._drop_video(ws)
            self.stats.clients = len(self.clients)

    async def _send_snapshot(self, ws: ServerConnection) -> None:
        updates, events = await self._read_snapshot(list(LAYERS))
        # No await from here to the write: n must match what this socket sees next.
        self.stats.snapshots += 1
        broadcast([ws], encode({"t": "snapshot", "n": self.n, "layers": list(LAYERS),
                                "u": updates, "e": events, "redis": self.redis_up}))

    def stats_dict(self) -> dict:
        self.stats.rejects = dict(self.rejects.counts)
        return {**self.stats.__dict__, "redis_up": self.redis_up, "n": self.n}

    async def serve(self, host: str | None = None, port: int | None = None) -> None:
        async with serve(self._handler, host or self.settings.host,
                         self.settings.port if port is None else port,
                         process_request=self._process_request, compression=None,
                         max_size=4096, ping_interval=20, ping_timeout=20) as server:
            self.port = server.sockets[0].getsockname()[1]
            tasks = [asyncio.create_task(t) for t in (self._reader(), self._flusher(),
                                                        self._heartbeats())]
            log.info("live gateway on ws://%s:%d/live (batch %d ms)",
                     host or self.settings.host, self.port, self.settings.batch_ms)
            self.ready.set()
            try:
                await asyncio.gather(*tasks)
            finally:
                for t in tasks:
                    t.cancel()


def _client_op(message: str | bytes) -> dict:
    """A page's request ({"op": ...}); anything else is ignored, never an error."""
    try:
        op = msgspec.json.decode(message)
    except (msgspec.DecodeError, TypeError):
        return {}
    return op if isinstance(op, dict) else {}


def main(redis_url: str, settings: GatewaySettings, secret: str,
         audit: Callable[[str, str, str, str], None] | None = None,
         cameras: set[str] | None = None) -> None:
    gw = Gateway(redis_url, settings, secret, audit, cameras)
    started = time.monotonic()
    try:
        asyncio.run(gw.serve())
    except KeyboardInterrupt:
        pass
    finally:
        log.info("gateway stopped after %.0fs: %s", time.monotonic() - started, gw.stats_dict())
