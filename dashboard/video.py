"""Video for browsers: MJPEG per camera pushed from Redis, and event snapshots. Login required.

GET /video/<camera_id>.mjpg   multipart/x-mixed-replace stream of the worker's annotated (and,
                              where the camera's privacy mode is on, masked) JPEG frames. A new
                              part is written when the worker announces a frame on the frame
                              channel, so nothing polls. Each opened stream is audited
                              (who viewed which camera, when, from where: PIPA safety measures).
                              A stream ends within SESSION_CHECK_S of its viewer's session
                              ending (logout, password change, disabled user, revoked token).
GET /video/<camera_id>.live?v=sub|main
                              the camera's live H.264 as fragmented MP4 (remuxed by the worker, never
                              re-encoded; a privacy camera's masked re-encode only), with the analytics
                              overlay metadata, in one framed HTTP stream the page reads with fetch()
                              and feeds to Media Source Extensions (dashboard/assets/cc/video.js).
                              Frames: 1 byte type, 4 bytes length (big-endian), payload; type 1 init
                              segment (codec length, codec, ftyp+moov), 2 media segment (source time
                              and media time as float64, moof+mdat), 3 overlay JSON. It starts at a
                              keyframe, sends a new init when the camera reconnects, and is audited,
                              capped and session-checked exactly as the MJPEG stream (same slots).
GET /video/live-tiles?c=<cam>,<cam>,...
                              the substreams of up to `StreamLimits.tiles` (web.video_tiles_per_stream,
                              16) cameras in ONE response: the grid tiles of a page. Framed as `.live`
                              with the tile's index after the type (1 byte type, 1 byte tile, 4 bytes
                              length, payload), the init payload led by the generation (float64), and
                              type 4: this tile's camera is not streaming (the page shows its JPEGs;
                              the stream picks the camera up when it starts). One blocking XREAD over
                              all the cameras' segment and overlay streams: one thread, and ONE stream
                              slot, for a whole wall. Every camera audited; ids checked against the
                              configured live cameras: one this server does not hold is never read nor
                              audited, its tile reported as not streaming (404 if none is known); a
                              list empty, repeated or longer than the cap is 400; refusals counted
                              (StreamSlots.refused_request).
GET /video/live-slots         {"per_user": cap, "in_use": streams this user plays now, "tiles": cameras
                              per tiles stream}: the page opens at most the free slots (the enlarged
                              view first, then its tiles' one stream), the rest stays on JPEG frames.
GET /api/snapshots/<id>.jpg   an event snapshot from the vision snapshot folder (audited), or, for
                              an id `frigate.<server>.<event id>`, fetched server-side from that
                              configured Frigate server's API (feeds.frigate; audited the same way).

Each open stream holds one server thread (a tiles stream one for all its tiles; see docs/vision.md).
So streams are capped per user (web.video_streams_per_user, 429 beyond it) and in total
(web.video_stream_cap(), 503 beyond it; always below the server's thread count), both per web
process: one user's 32 tabs, or a whole wall of tiles, can never take the threads that answer
logins, tickets and pages.
The live socket's video (the gateway) is the main path and is not limited here.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import redis
from flask import Flask, Response, abort, jsonify, request, send_file
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from dashboard.auth import api_login_required
from dashboard.store import Store
from feeds.frigate import snapshot as frigate
from feeds.frigate.config import FrigateServerConfig
from spine.channels import FRAME_CHANNEL, FRAME_TTL_S, frame_key
from spine.publisher import connect
from vision.config import load_vision_config
from vision.relay import VARIANTS, init_key, meta_key, seg_key
from vision.snapshots import SnapshotStore

log = logging.getLogger(__name__)

BOUNDARY = "ccframe"
IDLE_KEEPALIVE_S = 5.0  # resend the last frame this often so proxies and browsers keep the stream
MAX_STREAM_S = 3600.0  # a browser reconnects by itself; caps a forgotten tab's thread
NO_FRAME_END_S = FRAME_TTL_S + 5  # a camera silent this long ends its streams
# How often a playing stream asks whether its viewer's session still stands: access must end
# within 5 s of a logout or revocation (one indexed lookup per stream every 2 s).
SESSION_CHECK_S = 2.0
# Frigate snapshots fetched at once per web process: each holds a waitress thread for up to the
# server's http_timeout_s, so an unanswering Frigate behind a list of its snapshots on a few screens
# must not take every thread. Beyond this: 503 at once, the browser tries again later.
FRIGATE_FETCHES = 4


_NOTIFIERS: weakref.WeakSet[FrameNotifier] = weakref.WeakSet()


def stop_notifiers() -> None:
    """Stop every listener of this process (tests, before their Redis goes away)."""
    for notifier in list(_NOTIFIERS):
        notifier.stop()


class FrameNotifier:
    """One pub/sub listener per web process; streams wait on its condition instead of polling."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.cond = threading.Condition()
        self.version: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        _NOTIFIERS.add(self)

    def stop(self) -> None:
        self._stop.set()

    def ensure_started(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._listen, name="frame-notifier", daemon=True)
                self._thread.start()

    def _listen(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                client = redis.Redis.from_url(self.redis_url, protocol=2, socket_connect_timeout=3,
                                              socket_timeout=10, socket_keepalive=True,
                                              health_check_interval=15)
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(FRAME_CHANNEL)
                backoff = 0.5
                while not self._stop.is_set():
                    # A timeout on each read, so a silently dead connection is noticed and replaced.
                    msg = pubsub.get_message(timeout=1.0)
                    if msg is None:
                        continue
                    cam = msg["data"].decode("utf-8", "replace") if isinstance(msg["data"], bytes) else ""
                    with self.cond:
                        self.version[cam] = self.version.get(cam, 0) + 1
                        self.cond.notify_all()
            except (redis.RedisError, OSError) as exc:
                if self._stop.is_set():
                    return
                log.warning("frame notifier: Redis unreachable (%s); retry in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def wait(self, camera_id: str, seen: int, timeout: float) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.version.get(camera_id, 0) != seen, timeout)
            return self.version.get(camera_id, 0)


MUX_TILES = 16  # cameras one multiplexed tiles stream may carry (web.video_tiles_per_stream)


@dataclass(frozen=True)
class StreamLimits:
    per_user: int = 4
    total: int = 16
    tiles: int = MUX_TILES  # cameras in one /video/live-tiles stream (it holds one slot, one thread)


class StreamSlots:
    """Counts the MJPEG streams playing now, per principal and in total, under a lock."""

    def __init__(self, limits: StreamLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._by_user: Counter[str] = Counter()
        self.playing = 0
        self.refused_user = 0  # counted refusals, for logs and tests
        self.refused_total = 0
        self.refused_request: Counter[str] = Counter()  # bad stream requests (400/404), by reason

    def acquire(self, principal: str) -> str | None:
        """None when a slot was taken; else "user" or "total", the limit that refused it."""
        with self._lock:
            if self._by_user[principal] >= self.limits.per_user:
                self.refused_user += 1
                return "user"
            if self.playing >= self.limits.total:
                self.refused_total += 1
                return "total"
            self._by_user[principal] += 1
            self.playing += 1
            return None

    def refuse(self, reason: str) -> None:
        with self._lock:
            self.refused_request[reason] += 1

    def held(self, principal: str) -> int:
        """Streams `principal` plays now (the page subtracts its own to see what other tabs hold)."""
        with self._lock:
            return self._by_user.get(principal, 0)

    def release(self, principal: str) -> None:
        with self._lock:
            self._by_user[principal] -= 1
            if self._by_user[principal] <= 0:
                del self._by_user[principal]
            self.playing -= 1


def stream_refused(slots: StreamSlots, refused: str) -> Response:
    """The answer to a stream the caps refused (`refused` from StreamSlots.acquire): 429 for the
    user's cap, 503 for the server's; every stream route (and the agency links') answers alike."""
    if refused == "user":
        resp = jsonify(error=f"at most {slots.limits.per_user} video streams per user")
        resp.status_code = 429
    else:
        resp = jsonify(error="the server is playing as many video streams as it may")
        resp.status_code = 503
    resp.headers["Retry-After"] = "10"
    return resp


class _SlotStream:
    """The response body of a stream; its slot is freed when the server closes it.

    A WSGI server calls close() on every response body, also one never iterated (a browser that
    left before the first byte), which a generator's `finally` would miss.
    """

    def __init__(self, parts: Iterable[bytes], slots: StreamSlots, principal: str) -> None:
        self._parts = parts
        self._slots = slots
        self._principal = principal
        self._open = True

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._parts)

    def close(self) -> None:
        if not self._open:
            return
        self._open = False
        try:
            close = getattr(self._parts, "close", None)
            if close is not None:
                close()
        finally:
            self._slots.release(self._principal)


def _part(jpeg: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            + jpeg + b"\r\n")


def mjpeg_stream(client: redis.Redis, notifier: FrameNotifier, camera_id: str,
                 still_allowed: Callable[[], bool], max_s: float = MAX_STREAM_S,
                 no_frame_s: float = NO_FRAME_END_S,
                 check_every_s: float = SESSION_CHECK_S) -> Iterator[bytes]:
    """Parts while the camera delivers and the viewer's session stands.

    Ends after `no_frame_s` without a frame. Ending matters twice: waitress only notices a closed
    browser when it writes, so a stream that never writes would hold a server thread; and a dead
    camera's tile must not freeze on its last frame (the worker's frames expire after FRAME_TTL_S).
    Ends, too, within `check_every_s` of the session ending (logout, password change, disabled
    user, revoked wall token): the route checked it once at the start, and a stream lasts an hour.
    """
    key = frame_key(camera_id)
    seen = notifier.version.get(camera_id, 0)
    started = last_frame_at = time.monotonic()
    next_check = started + check_every_s
    last_sent = float("-inf")
    while time.monotonic() - started < max_s and time.monotonic() - last_frame_at < no_frame_s:
        now = time.monotonic()
        if now >= next_check:
            if not still_allowed():
                return
            next_check = now + check_every_s
        if last_sent != float("-inf"):
            # Wake for a new frame, the keep-alive resend, or the next session check, whichever is first.
            wake_at = min(last_sent + IDLE_KEEPALIVE_S, next_check)
            version = notifier.wait(camera_id, seen, max(0.0, wake_at - time.monotonic()))
            if version == seen and time.monotonic() - last_sent < IDLE_KEEPALIVE_S:
                continue  # woken only to check the session
            seen = version
        try:
            jpeg = client.get(key)
        except (redis.RedisError, OSError):
            time.sleep(1.0)
            continue
        last_sent = time.monotonic()  # also when the key is gone: the next try waits like a resend
        if jpeg:
            last_frame_at = last_sent
            yield _part(jpeg)


LIVE_NO_DATA_END_S = 10.0  # a camera silent this long ends the live stream; the page reconnects
LIVE_BLOCK_MS = 1000  # one blocking read at most this long, so session checks stay on time


def _frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BI", kind, len(payload)) + payload


def _init_frame(init: dict[bytes, bytes]) -> bytes | None:
    codec, data = init.get(b"codec", b""), init.get(b"data", b"")
    if not codec or not data or len(codec) > 64:
        return None
    return _frame(1, bytes([len(codec)]) + codec + data)


def _seg_frame(fields: dict[bytes, bytes]) -> bytes | None:
    try:
        src_ts, media = float(fields[b"t"]), float(fields[b"m"])
    except (KeyError, ValueError):
        return None
    return _frame(2, struct.pack(">dd", src_ts, media) + fields.get(b"d", b""))


def live_variant(client: redis.Redis, camera_id: str, wanted: str) -> str | None:
    """The variant to play: the one asked for, else the other (a camera without a main stream plays
    its substream when enlarged; a privacy camera has only its masked "sub"); None when neither is up."""
    for v in (wanted, *[x for x in VARIANTS if x != wanted]):
        if client.exists(init_key(camera_id, v)):
            return v
    return None


def _before(sid: str) -> str:
    """The stream id just before `sid` (XREAD returns the entries after the id it is given)."""
    ms, seq = (int(x) for x in sid.split("-"))
    return f"{ms}-{seq - 1}" if seq > 0 else f"{ms - 1}-18446744073709551615"


def _join_id(kid_entry: list, init: dict[bytes, bytes], newest: list) -> str:
    """Where a viewer starts reading a segment stream: just before the generation's newest keyframe,
    which the relay names in the init hash (`kid`, vision/relay.py) and the caller fetched
    (`kid_entry`, XRANGE kid kid); else after the newest entry, to wait for the next keyframe (at most
    a GOP: the relay had not written a keyframe of this generation yet, or it was trimmed)."""
    if kid_entry and kid_entry[0][1].get(b"g") == init.get(b"gen") and kid_entry[0][1].get(b"k") == b"1":
        return _before(kid_entry[0][0].decode())
    return newest[0][0].decode() if newest else "0-0"


def _last_id(entries: list) -> str:
    return entries[0][0].decode() if entries else "0-0"


def live_stream(client: redis.Redis, camera_id: str, variant: str, still_allowed: Callable[[], bool],
                max_s: float = MAX_STREAM_S, no_data_s: float = LIVE_NO_DATA_END_S,
                check_every_s: float = SESSION_CHECK_S) -> Iterator[bytes]:
    """Framed init + media segments + overlay metadata while the camera delivers and the session stands."""
    ikey, skey, mkey = init_key(camera_id, variant), seg_key(camera_id, variant), meta_key(camera_id)
    gen: bytes | None = None
    # Join at the newest keyframe of the current generation (at most a GOP old): playback starts at
    # once, and the page skips to the live edge.
    try:
        init = client.hgetall(ikey)
        kid = init.get(b"kid", b"").decode()
        pipe = client.pipeline(transaction=False)
        pipe.xrevrange(mkey, count=1)
        pipe.xrevrange(skey, count=1)
        pipe.xrange(skey, kid, kid, count=1) if kid else pipe.echo(b"")
        last_meta, newest, kid_entry = pipe.execute()
    except (redis.RedisError, OSError, ValueError):
        return
    if not init:
        return
    meta_id = _last_id(last_meta)
    seg_id = _join_id(kid_entry or [], init, newest)
    started = last_data = time.monotonic()
    next_check = started + check_every_s
    need_key = True
    while time.monotonic() - started < max_s and time.monotonic() - last_data < no_data_s:
        now = time.monotonic()
        if now >= next_check:
            if not still_allowed():
                return
            next_check = now + check_every_s
        try:
            got = client.xread({skey: seg_id, mkey: meta_id}, block=LIVE_BLOCK_MS, count=50)
        except (redis.RedisError, OSError):
            time.sleep(1.0)
            continue
        out: list[bytes] = []
        for stream, entries in got:
            for eid, fields in entries:
                if stream.decode() == mkey:
                    meta_id = eid.decode()
                    j = fields.get(b"j", b"")
                    if 0 < len(j) <= 65536:
                        out.append(_frame(3, j))
                    continue
                seg_id = eid.decode()
                last_data = time.monotonic()
                g = fields.get(b"g")
                if g != gen:
                    # A new connection to the camera (or the first segment): its own init segment,
                    # then media from its first keyframe on.
                    try:
                        init = client.hgetall(ikey)
                    except (redis.RedisError, OSError):
                        init = {}
                    if init.get(b"gen") != g:
                        continue
                    frame = _init_frame(init)
                    if frame is None:
                        continue
                    gen, need_key = g, True
                    out.append(frame)
                if need_key and fields.get(b"k") != b"1":
                    continue
                need_key = False
                seg = _seg_frame(fields)
                if seg is not None:
                    out.append(seg)
        if out:
            yield b"".join(out)


# ---- the tiles' multiplexed stream ------------------------------------------------------------------
MUX_TILE_SILENT_S = 4.0  # a tile's camera silent this long is reported "not streaming" (JPEGs meanwhile)
MUX_STATE_NOT_STREAMING = 0  # kind 4 payload: this tile's camera sends nothing now


def _mux_frame(kind: int, tile: int, payload: bytes) -> bytes:
    return struct.pack(">BBI", kind, tile, len(payload)) + payload


@dataclass
class _MuxTile:
    """One camera of a multiplexed stream: where its reads stand and what its viewer has been sent."""

    index: int
    camera_id: str
    ikey: str
    skey: str
    mkey: str
    seg_id: str = "0-0"
    meta_id: str = "0-0"
    gen: bytes | None = None  # the generation whose init was sent; None: none (or not streaming)
    need_key: bool = True
    last_data: float = 0.0


def mux_stream(client: redis.Redis, cameras: list[str | None], still_allowed: Callable[[], bool],
               max_s: float = MAX_STREAM_S, no_data_s: float = LIVE_NO_DATA_END_S,
               check_every_s: float = SESSION_CHECK_S,
               tile_silent_s: float = MUX_TILE_SILENT_S) -> Iterator[bytes]:
    """The substreams of `cameras` in one framed stream, read by ONE blocking XREAD over all of their
    segment and overlay streams (one thread for a whole wall of tiles).

    Frames: 1 byte type, 1 byte tile (the camera's index in `cameras`), 4 bytes length, payload.
    Types as the single stream's, and 4: the tile's camera is not streaming (payload one byte, 0).
    The init payload (type 1) starts with the generation (float64) so a page that reopens the stream
    with another set of tiles keeps playing a tile whose generation it already has.
    Each tile starts at a keyframe; a tile whose camera is not streaming (yet) is reported at once, read
    all the same, and gets its init when its camera starts; one silent for `tile_silent_s` is
    reported again and re-initialised when it comes back. Ends when every camera has been silent for
    `no_data_s`, when the session ends (checked every `check_every_s`), or after `max_s`.
    A None in `cameras` is a tile this server plays no live stream for (a camera the page saw on the
    camera layer that this web's configuration does not hold): reported as not streaming once and never
    read, so one stray id leaves the rest of the wall live."""
    tiles = [_MuxTile(i, cam, init_key(cam, "sub"), seg_key(cam, "sub"), meta_key(cam))
             for i, cam in enumerate(cameras) if cam is not None]
    by_key: dict[str, tuple[_MuxTile, bool]] = {}
    for t in tiles:
        by_key[t.skey] = (t, False)
        by_key[t.mkey] = (t, True)
    try:
        pipe = client.pipeline(transaction=False)
        for t in tiles:
            pipe.hgetall(t.ikey)
            pipe.xrevrange(t.skey, count=1)
            pipe.xrevrange(t.mkey, count=1)
        got0 = pipe.execute()
        inits = got0[0::3]
        pipe = client.pipeline(transaction=False)
        for init, t in zip(inits, tiles, strict=True):
            kid = init.get(b"kid", b"").decode()
            pipe.xrange(t.skey, kid, kid, count=1) if kid else pipe.echo(b"")
        kids = pipe.execute()
    except (redis.RedisError, OSError, ValueError):
        return
    started = time.monotonic()
    first = [_mux_frame(4, i, bytes([MUX_STATE_NOT_STREAMING]))
             for i, cam in enumerate(cameras) if cam is None]
    for t, init, newest, last_meta, kid_entry in zip(tiles, inits, got0[1::3], got0[2::3], kids,
                                                     strict=True):
        t.meta_id = _last_id(last_meta)
        t.last_data = started
        if init:
            t.seg_id = _join_id(kid_entry or [], init, newest)
        else:
            # Not streaming now: the page shows its JPEGs; read on from the newest entry, so the
            # camera's first segments, when it starts, come here.
            t.seg_id = _last_id(newest)
            first.append(_mux_frame(4, t.index, bytes([MUX_STATE_NOT_STREAMING])))
    if first:
        yield b"".join(first)
    next_check = started + check_every_s
    while time.monotonic() - started < max_s:
        now = time.monotonic()
        if now - max(t.last_data for t in tiles) > no_data_s:
            return
        if now >= next_check:
            if not still_allowed():
                return
            next_check = now + check_every_s
        streams: dict[str, str] = {}
        for t in tiles:
            streams[t.skey] = t.seg_id
            streams[t.mkey] = t.meta_id
        try:
            got = client.xread(streams, block=LIVE_BLOCK_MS, count=50)  # type: ignore[arg-type]
        except (redis.RedisError, OSError):
            time.sleep(1.0)
            continue
        out: list[bytes] = []
        for stream, entries in got:
            t, is_meta = by_key[stream.decode()]
            for eid, fields in entries:
                if is_meta:
                    t.meta_id = eid.decode()
                    j = fields.get(b"j", b"")
                    if t.gen is not None and 0 < len(j) <= 65536:
                        out.append(_mux_frame(3, t.index, j))
                    continue
                t.seg_id = eid.decode()
                t.last_data = time.monotonic()
                g = fields.get(b"g")
                if g != t.gen:
                    try:
                        init = client.hgetall(t.ikey)
                    except (redis.RedisError, OSError):
                        init = {}
                    frame = _init_frame(init) if init.get(b"gen") == g else None
                    if frame is None:
                        continue
                    try:
                        gen_f = float(g or b"")
                    except ValueError:
                        continue
                    t.gen, t.need_key = g, True
                    out.append(_mux_frame(1, t.index, struct.pack(">d", gen_f) + frame[5:]))
                if t.need_key and fields.get(b"k") != b"1":
                    continue
                t.need_key = False
                seg = _seg_frame(fields)
                if seg is not None:
                    out.append(_mux_frame(2, t.index, seg[5:]))
        now = time.monotonic()
        for t in tiles:
            if t.gen is not None and now - t.last_data > tile_silent_s:
                # The camera stopped (or its worker did): the page falls back to JPEGs for this tile,
                # and gets a fresh init (and a keyframe) when segments flow again.
                t.gen = None
                out.append(_mux_frame(4, t.index, bytes([MUX_STATE_NOT_STREAMING])))
        if out:
            yield b"".join(out)


def session_check(store: Store, sid: str) -> Callable[[], bool]:
    """True while the session `sid` is valid. A database error counts as not valid: a stream
    whose viewer cannot be confirmed ends (fail closed), and a tool reopens it when it can."""

    def still_allowed() -> bool:
        try:
            return store.active_session(sid) is not None
        except SQLAlchemyError as exc:
            log.warning("video stream: session check failed (%s); ending the stream", exc)
            return False

    return still_allowed


def frigate_servers() -> dict[str, FrigateServerConfig]:
    """The Frigate servers of the feeds configuration (their HTTP API bases), none if it cannot be read."""
    from config.root import load_config

    try:
        return dict(load_config(check_references=False).feeds.frigate.servers)
    except Exception as exc:  # the web app runs without Frigate snapshots rather than not at all
        log.warning("Frigate snapshots off: feeds configuration not readable (%s)", type(exc).__name__)
        return {}


def install_video_routes(server: Flask, store: Store, redis_url: str,
                         limits: StreamLimits | None = None,
                         frigate_cfg: Mapping[str, FrigateServerConfig] | None = None,
                         slots: StreamSlots | None = None) -> StreamSlots:
    """Mount the video routes; returns the stream counter (its refusals are counted there).
    `frigate_cfg`: the Frigate servers (default: from the feeds configuration). `slots`: a counter
    shared with other stream routes (the agency links'), so one cap holds for all; else one of `limits`."""
    client = connect(redis_url)
    slots = slots if slots is not None else StreamSlots(limits or StreamLimits())
    notifier = FrameNotifier(redis_url)
    vision = load_vision_config()
    snapshots = SnapshotStore(vision.vision.snapshots_path())
    known = {c.id for c in vision.cameras}
    live_known = {c.id for c in vision.cameras if c.streams is not None}
    # Blocking stream reads get their own pool, with a read timeout above the block time.
    live_client = redis.Redis.from_url(redis_url, protocol=2, socket_timeout=LIVE_BLOCK_MS / 1000 + 5,
                                       socket_connect_timeout=3, socket_keepalive=True)
    nvrs = frigate_servers() if frigate_cfg is None else dict(frigate_cfg)
    fetches = threading.BoundedSemaphore(FRIGATE_FETCHES)

    def remote() -> str:
        return request.remote_addr or ""

    @server.route("/video/<camera_id>.mjpg")
    @api_login_required
    def video_mjpeg(camera_id: str) -> Response:
        if camera_id not in known:  # before the audit: no row, and no thread, for a made-up id
            abort(404)
        principal = getattr(current_user, "principal", f"user:{current_user.name}")
        refused = slots.acquire(principal)
        if refused is not None:
            return refused_response(refused)
        try:
            store.audit(current_user.name, "view_camera", camera_id, remote())
            notifier.ensure_started()
            stream = mjpeg_stream(client, notifier, camera_id, session_check(store, current_user.sid))
            body = _SlotStream(stream, slots, principal)
        except BaseException:
            slots.release(principal)
            raise
        resp = Response(body, mimetype=f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Accel-Buffering"] = "no"  # nginx: pass each part through at once
        return resp

    def refused_response(refused: str) -> Response:
        return stream_refused(slots, refused)

    def not_streaming() -> Response:
        resp = Response(status=204)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def live_response(cameras: list[str], variant: str,
                      open_stream: Callable[[Callable[[], bool]], Iterator[bytes]]) -> Response:
        """A framed live stream for the signed-in viewer: one stream slot (429/503 beyond the caps),
        one audit row per camera, the session re-checked while it plays, the slot freed when the
        server closes the body (also one never read)."""
        principal = getattr(current_user, "principal", f"user:{current_user.name}")
        refused = slots.acquire(principal)
        if refused is not None:
            return refused_response(refused)
        try:
            for c in cameras:
                store.audit(current_user.name, "view_camera", c, remote())
            body = _SlotStream(open_stream(session_check(store, current_user.sid)), slots, principal)
        except BaseException:
            slots.release(principal)
            raise
        resp = Response(body, mimetype="application/octet-stream")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Accel-Buffering"] = "no"  # nginx: pass each frame through at once
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["X-Video-Variant"] = variant
        return resp

    @server.route("/video/live-slots")
    @api_login_required
    def video_live_slots() -> Response:
        # The page asks this before opening live streams and plays at most the free ones live, the
        # rest as JPEG frames over the socket: a refused fetch (429) is logged by the browser as a
        # failed resource load whatever the script does with it, so it must stay the rare race of
        # two tabs asking at once, not the normal answer to a 16-tile wall.
        principal = getattr(current_user, "principal", f"user:{current_user.name}")
        resp = jsonify(per_user=slots.limits.per_user, in_use=slots.held(principal), tiles=slots.limits.tiles)
        resp.headers["Cache-Control"] = "private, no-store"
        return resp

    @server.route("/video/<camera_id>.live")
    @api_login_required
    def video_live(camera_id: str) -> Response:
        if camera_id not in live_known:  # no row, no slot for a made-up id or a camera without streams
            slots.refuse("unknown")
            abort(404)
        wanted = request.args.get("v", "sub")
        if wanted not in VARIANTS:
            slots.refuse("variant")
            abort(400)
        try:
            variant = live_variant(live_client, camera_id, wanted)
        except (redis.RedisError, OSError):
            variant = None
        if variant is None:
            # Not streaming now (camera down, worker starting): 204, not an error, the page shows
            # JPEG frames meanwhile and asks again in a few seconds.
            return not_streaming()
        return live_response([camera_id], variant,
                             lambda allowed: live_stream(live_client, camera_id, variant, allowed))

    @server.route("/video/live-tiles")
    @api_login_required
    def video_live_tiles() -> Response:
        # The grid tiles of a page in one response (mux_stream): one connection, one thread and one
        # stream slot for a wall of up to `limits.tiles` cameras. Every id is checked against the
        # configured live cameras before anything else (no row, no slot, no Redis key of a made-up id).
        raw = request.args.get("c", "")
        cams = raw.split(",") if raw else []
        if not cams or len(raw) > slots.limits.tiles * 65 or len(cams) > slots.limits.tiles:
            slots.refuse("tiles" if cams else "empty")
            abort(400)
        if len(set(cams)) != len(cams):
            slots.refuse("duplicate")
            abort(400)
        # An id this server holds no live stream for is left out (never read, never audited) and its
        # tile reported as not streaming: the page's camera layer can name a camera this web's
        # configuration lacks, and that must not take the rest of the wall off live video.
        tiles: list[str | None] = [c if c in live_known else None for c in cams]
        known = [c for c in tiles if c is not None]
        if len(known) < len(cams):
            slots.refuse("unknown")
        if not known:
            abort(404)
        try:
            pipe = live_client.pipeline(transaction=False)
            for c in known:
                pipe.exists(init_key(c, "sub"))
            streaming = any(pipe.execute())
        except (redis.RedisError, OSError):
            streaming = False
        if not streaming:
            # None of them streams now: 204 as for one camera; the page shows JPEGs and asks again.
            return not_streaming()
        # Every tile is a view of its camera, audited as one.
        return live_response(known, "sub", lambda allowed: mux_stream(live_client, tiles, allowed))

    @server.route("/api/snapshots/<event_id>.jpg")
    @api_login_required
    def event_snapshot(event_id: str) -> Response:
        if frigate.is_frigate_id(event_id):
            return frigate_snapshot(event_id)
        path = snapshots.path_for(event_id)
        if path is None or not path.is_file():
            abort(404)
        store.audit(current_user.name, "view_snapshot", event_id, remote())
        resp = send_file(path, mimetype="image/jpeg", max_age=0)
        resp.headers["Cache-Control"] = "private, no-store"
        return resp

    def frigate_snapshot(snapshot_id: str) -> Response:
        # The server part is looked up among the configured ones and the event id must be Frigate's
        # id shape: nothing of the request reaches the URL unchecked (no path or host injection).
        ref = frigate.resolve(snapshot_id, nvrs)
        if ref is None:
            abort(404)
        if not fetches.acquire(blocking=False):
            resp = jsonify(error="too many Frigate snapshots being fetched; try again")
            resp.status_code = 503
            resp.headers["Retry-After"] = "2"
            resp.headers["Cache-Control"] = "private, no-store"
            return resp
        try:
            jpeg = frigate.fetch_snapshot(ref)
        except frigate.SnapshotError as exc:
            log.warning("Frigate snapshot %s: %s", snapshot_id, exc)
            resp = jsonify(error="no such snapshot" if exc.status == 404 else "no snapshot from Frigate")
            resp.status_code = exc.status
            resp.headers["Cache-Control"] = "private, no-store"
            return resp
        finally:
            fetches.release()
        store.audit(current_user.name, "view_snapshot", snapshot_id, remote())  # on a view, as stored ones
        resp = Response(jpeg, mimetype="image/jpeg")
        resp.headers["Cache-Control"] = "private, no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    return slots
