"""The live gateway: one async fan-out from Redis pub/sub to every browser over WebSocket.

Why a separate `websockets` server and not Dash's WebSocket callbacks: measured on this machine
(docs/architecture.md) the in-place path through a plain socket held p99 134 ms at 5,000
updates/s while the Dash prop path dropped 13-27 % of updates at that rate; the gateway is also
stateless, so it scales out behind a load balancer independently of the web server.

Frames to the browser (JSON in binary frames, serialised once per batch for all clients):
  {"t":"snapshot","n":N,"layers":[...],"u":[update...],"e":[event...]}  full state of layers
  {"t":"batch","n":N,"u":[update...],"e":[event...]}  latest-wins updates of one window
      (+ "al":[alarm...] changed alarms; "alr":true: "al" is the whole open-alarm list, replace)
  snapshot frames of every layer carry "al": the open alarms (gateway/alarms.py)
  {"t":"hb","redis":bool,"ts":ms}  heartbeat (no n) so a page can tell live from stale
  binary 0x00 ...: a camera frame (gateway/video.py)
`n` counts snapshot and batch frames; a page that sees a gap sends {"op":"resync"}.
Close codes: 1013 the gateway is full (retry later), 4401 the session was revoked (log in again).

Every frame to a page, whatever its kind, goes through one per-client write-buffer limit
(`_send`): a page that stops reading costs at most that much memory, and sees a gap later.
"""

from __future__ import annotations

import asyncio
import contextlib
import http
import logging
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from config.settings import GatewaySettings
from gateway.alarms import decode_message, read_open
from gateway.batcher import Batcher, Plan
from gateway.reader import Reader
from gateway.sessions import (
    CLOSE_FULL,
    CLOSE_REVOKED,
    SessionCheck,
    claim_ticket,
    invalid_sessions,
    ticket_problem,
)
from gateway.snapshots import read_state
from gateway.stats import GatewayStats, instance_id, write_stats_forever
from gateway.video import Audit, VideoRelay
from spine import channels
from spine.contract import LAYERS, DecodeLimits, RejectLog, decode_events, decode_updates, encode, now_ms
from spine.tickets import verify_ticket

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0
NOT_YET = sys.maxsize  # `joining` of a page whose first snapshot read has not started
RESYNC_MIN_S = 1.0  # per page: a page asking for snapshots in a loop gets at most one a second
MAX_TICKET_CHARS = 2048


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    user: str
    role: str
    sid: str | None
    # A new page gets nothing numbered until its first snapshot (whose read covers what it missed);
    # while a snapshot is read for it, this is that snapshot's n and later frames wait in `queue`.
    joining: int | None = None
    covered: int = -1  # frames numbered up to this are in its snapshot: never sent to it after
    queue: list[bytes] = field(default_factory=list)  # frames numbered after it, meanwhile
    queued_bytes: int = 0
    last_snapshot: float = float("-inf")
    resync_timer: asyncio.TimerHandle | None = None


class Gateway:
    def __init__(self, redis_url: str, settings: GatewaySettings, secret: str,
                 audit: Audit | None = None, cameras: set[str] | None = None,
                 session_check: SessionCheck | None = None) -> None:
        self.redis_url = redis_url
        self.settings = settings
        self.secret = secret
        self.session_check = session_check
        self.window = settings.batch_ms / 1000.0
        self.limits = DecodeLimits(max_item_bytes=settings.max_message_bytes,
                                   max_future_skew_ms=int(settings.max_future_skew_s * 1000),
                                   max_age_ms=int(settings.max_age_s * 1000))
        self.rejects = RejectLog(log)
        self.stats = GatewayStats()
        self.batcher = Batcher(LAYERS)
        self.clients: dict[ServerConnection, Client] = {}
        self.redis: aioredis.Redis | None = None
        self.reader: Reader | None = None
        self.video = VideoRelay(lambda: self.redis if self.redis_up else None, self._send, audit, cameras)
        self.ready = asyncio.Event()
        self.port: int | None = None
        self._have_data: asyncio.Event | None = None
        self._snap_waiting: list[Client] = []
        self._snap_task: asyncio.Task | None = None
        self._stale_pages = False  # a page got a snapshot while Redis was away: resend when back
        self._tasks: set[asyncio.Task] = set()

    # ---- compatibility names used by tests and the benchmark ----------------------------------

    @property
    def redis_up(self) -> bool:
        return self.reader is not None and self.reader.up

    @property
    def n(self) -> int:
        return self.batcher.n

    @property
    def video_subs(self) -> dict[str, set[ServerConnection]]:
        return self.video.subs

    # ---- Redis side -------------------------------------------------------------------------

    def _on_up(self, first: bool) -> None:
        # The first subscription recovers nothing unless a page was served while Redis was away;
        # a later one follows an outage, in which anything published was lost to pub/sub.
        resync_all = not first or self._stale_pages
        self._stale_pages = False
        self.batcher.redis_connected(resync_all)
        if resync_all:
            log.info("Redis is back; resyncing every page")
            self._wake()
        self._kick_snapshots()  # pages that asked while Redis was away
        self._send_heartbeat()

    def _on_down(self) -> None:
        self.stats.redis_reconnects += 1
        self._send_heartbeat()

    def _on_message(self, channel: bytes, data: bytes) -> None:
        try:
            ch = bytes(channel).decode()
        except UnicodeDecodeError:
            self.rejects.add("bad_channel", "channel name is not UTF-8", channel)
            return
        if not isinstance(data, (bytes, bytearray)):
            self.rejects.add("malformed_json", f"payload of type {type(data).__name__}", ch)
            return
        if ch == channels.FRAME_CHANNEL:
            self.video.announced(data)
            return
        if ch == channels.EVENTS_CHANNEL:
            for ev in decode_events(data, self.rejects, where=ch, limits=self.limits):
                self.batcher.add_event(ev)
        elif ch == channels.ALARM_CHANNEL:
            msg = decode_message(data, self.rejects)
            if msg is None:
                return
            if msg.t == "resync":  # the alarm service restarted: the hash is the truth
                self.batcher.request_alarm_resync()
            else:
                self.batcher.add_alarms(msg.a)
        else:
            layer = channels.layer_of_channel(ch)
            if layer not in LAYERS or ch != channels.entity_channel(layer):
                self.rejects.add("unknown_layer", "no such layer channel", ch)
                return
            for upd in decode_updates(data, self.rejects, where=ch, limits=self.limits):
                if upd.layer != layer:
                    where = f"{ch} src={upd.src}" if upd.src else ch
                    self.rejects.add("layer_mismatch", f"{upd.layer} update on this channel", where)
                    continue
                self.batcher.add_update(upd)
        self._wake()

    def _wake(self) -> None:
        if self._have_data is not None:
            self._have_data.set()

    # ---- sending, under one per-client buffer limit ------------------------------------------

    def _send(self, targets: Iterable[ServerConnection], frame: bytes) -> int:
        limit = self.settings.max_client_buffer_bytes
        ok = []
        for ws in targets:
            transport = ws.transport
            if transport is None or transport.get_write_buffer_size() > limit:
                # This page cannot keep up; it will see a gap in n and ask for a snapshot.
                self.stats.lagging_skips += 1
                continue
            ok.append(ws)
        if ok:
            broadcast(ok, frame)
        return len(ok)

    def _emit(self, n: int, frame: bytes) -> None:
        """A numbered frame to every page: live ones now, joining ones after their snapshot."""
        live = []
        limit = self.settings.max_client_buffer_bytes
        for c in self.clients.values():
            if c.joining is None:
                if n > c.covered:  # a frame numbered before its snapshot was read, sent late
                    live.append(c.ws)
            elif n > c.joining:
                if c.queued_bytes + len(frame) > limit:
                    # Dropping one means it will see a gap and resync: the same as a slow page.
                    self.stats.lagging_skips += 1
                    continue
                c.queue.append(frame)
                c.queued_bytes += len(frame)
        self._send(live, frame)

    def _send_heartbeat(self) -> None:
        if self.clients:
            self._send(list(self.clients), encode({"t": "hb", "redis": self.redis_up, "ts": now_ms()}))

    def _encode(self, obj: dict) -> bytes | None:
        try:
            return encode(obj)
        except Exception:  # a value that passed every check but cannot be encoded: never fatal
            self.stats.internal_errors += 1
            self.rejects.add("internal", "frame could not be encoded", "flusher")
            log.exception("frame could not be encoded; dropped")
            return None

    # ---- batches and layer snapshots ----------------------------------------------------------

    async def _flusher(self) -> None:
        assert self._have_data is not None
        loop = asyncio.get_running_loop()
        while True:
            # The timeout retries layer resyncs held back by the batcher's rate limit.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._have_data.wait(), timeout=0.5)
            if not self.batcher.has_work():
                self._have_data.clear()
                continue
            await asyncio.sleep(self.window)
            self._have_data.clear()
            plan = self.batcher.take(loop.time())
            if plan is not None:
                await self._send_plan(plan)

    async def _send_plan(self, plan: Plan) -> None:
        if plan.resync and plan.snapshot_n is not None:
            updates = await self._read_layers(plan.resync)
            if updates is None:
                self.batcher.request_resync(plan.resync)  # pages see the gap; they get it later
            else:
                self.stats.snapshots += 1
                frame = self._encode({"t": "snapshot", "n": plan.snapshot_n, "layers": list(plan.resync),
                                      "u": updates, "e": [], "redis": self.redis_up})
                if frame is not None:
                    self._emit(plan.snapshot_n, frame)
        if plan.batch_n is not None:
            self.stats.batches += 1
            body = {"t": "batch", "n": plan.batch_n, "u": plan.updates, "e": plan.events}
            if plan.alarm_resync:
                whole = await self._read_alarms()
                if whole is not None:
                    body.update(al=whole, alr=True)
                else:  # Redis away: the pages keep their list; ask again with the next batch
                    self.batcher.request_alarm_resync()
            elif plan.alarms:
                body["al"] = plan.alarms
            frame = self._encode(body)
            if frame is not None:
                self._emit(plan.batch_n, frame)

    async def _read_layers(self, layers: Iterable[str]) -> list | None:
        if self.redis is None or not self.redis_up:
            return None
        try:
            updates, _ = await read_state(self.redis, list(layers), self.rejects, self.limits,
                                          with_events=False)
        except (RedisError, OSError) as exc:
            log.warning("layer snapshot not read: %s", exc)
            return None
        except Exception:
            self.stats.internal_errors += 1
            log.exception("layer snapshot read failed")
            return None
        return updates

    async def _read_alarms(self) -> list | None:
        if self.redis is None or not self.redis_up:
            return None
        try:
            return await read_open(self.redis, self.rejects)
        except (RedisError, OSError) as exc:
            log.warning("open alarms not read: %s", exc)
            return None

    # ---- per-page snapshots (on connect and on resync), read once for every page waiting ------

    def _want_snapshot(self, c: Client) -> None:
        if (c.joining not in (None, NOT_YET)) or c in self._snap_waiting or c.ws not in self.clients:
            return  # one at a time per page: resync requests in a loop coalesce here
        loop = asyncio.get_running_loop()
        wait = c.last_snapshot + RESYNC_MIN_S - loop.time()
        if wait > 0:
            if c.resync_timer is None:
                c.resync_timer = loop.call_later(wait, self._resync_timer_fired, c)
            return
        self._snap_waiting.append(c)
        self._kick_snapshots()

    def _resync_timer_fired(self, c: Client) -> None:
        c.resync_timer = None
        self._want_snapshot(c)

    def _kick_snapshots(self) -> None:
        if self._snap_waiting and (self._snap_task is None or self._snap_task.done()):
            self._snap_task = asyncio.get_running_loop().create_task(self._snapshot_rounds())

    async def _snapshot_rounds(self) -> None:
        while self._snap_waiting:
            have_state = self.redis is not None and self.redis_up
            group = [c for c in self._snap_waiting if c.ws in self.clients
                     and (have_state or c.last_snapshot == float("-inf"))]
            if not group:
                return  # resyncs asked while Redis is away wait for it (the page keeps its picture)
            self._snap_waiting = [c for c in self._snap_waiting if c not in group and c.ws in self.clients]
            n0 = self.batcher.n
            for c in group:
                c.joining, c.queue, c.queued_bytes = n0, [], 0
            updates: list = []
            events: list = []
            open_alarms: list = []
            if have_state:
                self.stats.snapshot_reads += 1
                try:
                    updates, events = await read_state(self.redis, LAYERS, self.rejects, self.limits)
                    open_alarms = await read_open(self.redis, self.rejects)
                except (RedisError, OSError) as exc:
                    log.warning("snapshot not read: %s", exc)
                    have_state = False
                except Exception:  # never leave pages waiting in `joining` for ever
                    self.stats.internal_errors += 1
                    log.exception("snapshot read failed")
                    have_state = False
            frame = self._encode({"t": "snapshot", "n": n0, "layers": list(LAYERS), "u": updates,
                                  "e": events, "redis": have_state,
                                  **({"al": open_alarms} if have_state else {})})
            now = asyncio.get_running_loop().time()
            # No await from here on: each page gets its snapshot, then what was numbered after it.
            for c in group:
                queued, c.covered = c.queue, c.joining if c.joining is not None else c.covered
                c.joining, c.queue, c.queued_bytes = None, [], 0
                if c.ws not in self.clients or frame is None:
                    continue
                if not have_state and c.last_snapshot != float("-inf"):
                    # The read failed: an empty snapshot would blank a picture this page has. It
                    # keeps it, gets what was numbered meanwhile, and asks again shortly.
                    c.covered = -1
                    for q in queued:
                        self._send([c.ws], q)
                    if c.resync_timer is None:
                        c.resync_timer = asyncio.get_running_loop().call_later(
                            RESYNC_MIN_S, self._resync_timer_fired, c)
                    continue
                c.last_snapshot = now
                self.stats.snapshots += 1
                self._send([c.ws], frame)
                for q in queued:
                    self._send([c.ws], q)
                if not have_state:
                    self._stale_pages = True

    # ---- the browser side ---------------------------------------------------------------------

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "ok\n")
        if url.path != "/live":
            return connection.respond(http.HTTPStatus.NOT_FOUND, "not found\n")
        if len(self.clients) >= self.settings.max_clients:
            return None  # accepted, then closed with 1013 so the page knows to retry (a 503 it cannot read)
        ticket = (parse_qs(url.query).get("ticket") or [""])[0]
        who = verify_ticket(self.secret, ticket) if 0 < len(ticket) <= MAX_TICKET_CHARS else None
        problem = ticket_problem(who, need_sid=self.session_check is not None)
        if problem is None and who is not None:
            try:
                if self.redis is None or not await claim_ticket(self.redis, who["j"]):
                    self.stats.tickets_replayed += 1
                    problem = "ticket already used"
            except (RedisError, OSError):
                return _plain(http.HTTPStatus.SERVICE_UNAVAILABLE, "live store unavailable, retry\n")
        if (problem is None and who is not None and self.session_check is not None
                and await invalid_sessions(self.session_check, {who["sid"]})):
            problem = "session ended"
        if problem is not None:
            self.stats.refused_ticket += 1
            log.info("refused live socket from %s: %s", connection.remote_address, problem)
            return _plain(http.HTTPStatus.UNAUTHORIZED, "login required\n")
        connection.cc_user = who  # type: ignore[attr-defined]
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        who = getattr(ws, "cc_user", None)
        if who is None or len(self.clients) >= self.settings.max_clients:
            self.stats.refused_full += 1
            await ws.close(CLOSE_FULL, "try again later")
            return
        c = Client(ws, str(who.get("u", "?")), str(who.get("r", "")), who.get("sid"), joining=NOT_YET)
        self.clients[ws] = c
        self.stats.clients = len(self.clients)
        log.info("live client %s (%s) connected", c.user, c.role)
        self._want_snapshot(c)
        try:
            async for message in ws:
                if ws not in self.clients:
                    continue  # revoked: closing; nothing it asks is served
                try:
                    await self._on_page_op(c, _client_op(message))
                except ConnectionClosed:
                    raise
                except Exception:  # a bug must cost this request, not the page's socket
                    self.stats.internal_errors += 1
                    log.exception("request from %s failed", c.user)
        except ConnectionClosed:
            pass
        finally:
            self._forget(c)

    async def _on_page_op(self, c: Client, op: dict) -> None:
        if op.get("op") == "resync":
            self._want_snapshot(c)
        elif op.get("op") == "video" and isinstance(op.get("cams"), list):
            await self.video.set_cams(c.ws, c.user, op["cams"], lambda: c.ws in self.clients)

    def _forget(self, c: Client) -> None:
        self.video.drop(c.ws)
        self.clients.pop(c.ws, None)
        if c.resync_timer is not None:
            c.resync_timer.cancel()
        self.stats.clients = len(self.clients)

    # ---- sessions --------------------------------------------------------------------------------

    async def _session_sweep(self) -> None:
        check = self.session_check
        if check is None:
            return
        while True:
            await asyncio.sleep(self.settings.session_check_s)
            by_sid: dict[str, list[Client]] = defaultdict(list)
            for c in self.clients.values():
                if c.sid:
                    by_sid[c.sid].append(c)
            for sid in await invalid_sessions(check, by_sid):
                for c in by_sid[sid]:
                    self.revoke(c)

    def revoke(self, c: Client) -> None:
        """End a socket whose session ended: no frame or video from now on, then the close."""
        if c.ws not in self.clients:
            return
        self._forget(c)
        self.stats.sessions_revoked += 1
        log.info("closing live socket of %s: session ended", c.user)
        self._spawn(c.ws.close(CLOSE_REVOKED, "session revoked"))

    # ---- running --------------------------------------------------------------------------------

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            self._send_heartbeat()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _supervised(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run a loop forever: a bug in one (counted, logged) restarts it instead of ending the gateway."""
        while True:
            try:
                await run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.internal_errors += 1
                self.rejects.add("internal", f"{name} loop failed", name)
                log.exception("%s loop failed; restarting it", name)
                await asyncio.sleep(1.0)

    def stats_dict(self) -> dict[str, Any]:
        b = self.batcher.counts
        self.stats.received, self.stats.coalesced, self.stats.gaps = b.received, b.coalesced, b.gaps
        self.stats.video_frames, self.stats.video_skipped = self.video.frames, self.video.skipped
        if self.reader is not None:
            self.stats.internal_errors = max(self.stats.internal_errors, self.reader.internal_errors)
        self.stats.rejects = dict(self.rejects.counts)
        return {**self.stats.__dict__, "rejects_by_source": self.rejects.summary()["by_source"],
                "rejects_total": self.rejects.total, "redis_up": self.redis_up, "n": self.batcher.n,
                "pending_overflows": b.pending_overflows, "events_dropped": b.events_dropped,
                "max_clients": self.settings.max_clients}

    async def serve(self, host: str | None = None, port: int | None = None) -> None:
        self._have_data = asyncio.Event()
        pool = aioredis.BlockingConnectionPool.from_url(
            self.redis_url, max_connections=self.settings.redis_pool_size, timeout=10,
            socket_connect_timeout=3, health_check_interval=10, protocol=2)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.reader = Reader(self.redis, self.rejects, self._on_message, self._on_up, self._on_down)
        # Many pages connecting at once queue in the TCP backlog, not in a refused connect.
        async with serve(self._handler, host or self.settings.host,
                         self.settings.port if port is None else port,
                         process_request=self._process_request, compression=None,
                         max_size=4096, ping_interval=20, ping_timeout=20, backlog=1024) as server:
            self.port = server.sockets[0].getsockname()[1]
            instance = instance_id(self.port)
            loops = {"reader": self.reader.run, "flusher": self._flusher, "heartbeats": self._heartbeats,
                     "sessions": self._session_sweep,
                     "stats": lambda: write_stats_forever(self.redis, instance, self.stats_dict,
                                                          self.settings.stats_interval_s)}
            tasks = [asyncio.create_task(self._supervised(name, run)) for name, run in loops.items()]
            log.info("live gateway on ws://%s:%d/live (batch %d ms, up to %d clients)",
                     host or self.settings.host, self.port, self.settings.batch_ms, self.settings.max_clients)
            self.ready.set()
            try:
                await asyncio.gather(*tasks)
                await asyncio.Event().wait()  # the loops that end (no session check) leave the server up
            finally:
                for t in (*tasks, *self._tasks):
                    t.cancel()
                await self.redis.aclose()
                await pool.aclose()


def _plain(status: http.HTTPStatus, body: str) -> Response:
    return Response(status.value, status.phrase, Headers([("Content-Type", "text/plain")]), body.encode())


def _client_op(message: str | bytes) -> dict:
    """A page's request ({"op": ...}); anything else is ignored, never an error."""
    try:
        op = msgspec.json.decode(message)
    except (msgspec.DecodeError, TypeError, UnicodeError, RecursionError):
        return {}
    return op if isinstance(op, dict) else {}


def main(redis_url: str, settings: GatewaySettings, secret: str, audit: Audit | None = None,
         cameras: set[str] | None = None, session_check: SessionCheck | None = None) -> None:
    gw = Gateway(redis_url, settings, secret, audit, cameras, session_check)
    started = time.monotonic()
    try:
        asyncio.run(gw.serve())
    except KeyboardInterrupt:
        pass
    finally:
        log.info("gateway stopped after %.0fs: %s", time.monotonic() - started, gw.stats_dict())
