"""Camera frames over the live socket, and the audit row for every camera a user starts watching.

A page sends {"op":"video","cams":[ids of the tiles on screen]}; each new annotated frame of
those cameras (announced on cc:v1:frame) is relayed as one binary message
    0x00, len(id), id (UTF-8), JPEG bytes
through the same per-client buffer limit as every other frame. One asyncio task serves every
tile of every screen, where MJPEG would hold one web-server thread per tile.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from websockets.asyncio.server import ServerConnection

from spine import channels

log = logging.getLogger(__name__)

VIDEO_TAG = b"\x00"  # first byte of a video message; JSON frames start with "{"
MAX_VIDEO_CAMS = 32  # per connection: more tiles than any screen shows
MAX_CAM_ID_BYTES = 64  # the id travels behind a one-byte length
MAX_FRAME_BYTES = 4 * 1024 * 1024

Audit = Callable[[str, str, str, str], None]  # (user, action, target, remote address), blocking


class VideoRelay:
    def __init__(self, client: Callable[[], aioredis.Redis | None],
                 send: Callable[[Iterable[ServerConnection], bytes], int],
                 audit: Audit | None, cameras: set[str] | None) -> None:
        self._client = client  # None while Redis is away
        self._send = send  # returns how many targets it wrote to (the buffer limit skips others)
        self.audit = audit
        self.cameras = cameras  # ids a page may watch; None: any
        self.subs: dict[str, set[ServerConnection]] = defaultdict(set)
        self._busy: set[str] = set()
        self.frames = 0
        self.skipped = 0

    def announced(self, data: bytes) -> None:
        """A frame of camera `data` was stored: fetch and relay it if anyone watches."""
        try:
            cam = bytes(data).decode()
        except UnicodeDecodeError:
            return  # no page can watch an id that is not text
        if self.subs.get(cam) and cam not in self._busy:
            # One fetch per camera at a time: frames that arrive meanwhile are superseded anyway.
            self._busy.add(cam)
            asyncio.get_running_loop().create_task(self._relay(cam))

    async def _relay(self, cam: str) -> None:
        try:
            msg = await self.frame_message(cam)
            subs = self.subs.get(cam)
            if msg and subs:
                sent = self._send(list(subs), msg)
                self.frames += 1 if sent else 0
                self.skipped += len(subs) - sent
        finally:
            self._busy.discard(cam)

    async def frame_message(self, cam: str) -> bytes | None:
        client = self._client()
        if client is None:
            return None
        try:
            jpeg = await client.get(channels.frame_key(cam))
        except (RedisError, OSError):
            return None
        if not jpeg or len(jpeg) > MAX_FRAME_BYTES:
            return None
        name = cam.encode()
        return VIDEO_TAG + bytes([len(name)]) + name + jpeg

    def _allowed(self, cam: object) -> bool:
        return (isinstance(cam, str) and 0 < len(cam.encode("utf-8", "replace")) <= MAX_CAM_ID_BYTES
                and (self.cameras is None or cam in self.cameras))

    async def set_cams(self, ws: ServerConnection, user: str, cams: list,
                       still_open: Callable[[], bool]) -> None:
        """The cameras this page shows now; new ones are audited and get their current frame."""
        wanted = {c for c in cams[:MAX_VIDEO_CAMS] if self._allowed(c)}
        current = {c for c, subs in self.subs.items() if ws in subs}
        for cam in current - wanted:
            self.subs[cam].discard(ws)
            if not self.subs[cam]:
                del self.subs[cam]
        remote = str(ws.remote_address[0]) if ws.remote_address else ""
        for cam in sorted(wanted - current):
            if self.audit is not None:
                try:
                    await asyncio.to_thread(self.audit, user, "view_camera", cam, remote)
                except Exception:  # no audit row, no picture: viewing is only allowed on the record
                    log.exception("audit of %s viewing %s failed; not relaying it", user, cam)
                    continue
            if not still_open():  # revoked or gone while the audit row was written
                return
            self.subs[cam].add(ws)
            msg = await self.frame_message(cam)
            if msg and ws in self.subs[cam]:
                self._send([ws], msg)

    def drop(self, ws: ServerConnection) -> None:
        """No more video for this socket, from now on (closing, or its session was revoked)."""
        for cam in [c for c, subs in self.subs.items() if ws in subs]:
            self.subs[cam].discard(ws)
            if not self.subs[cam]:
                del self.subs[cam]
