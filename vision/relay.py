"""The live video relay in Redis: fMP4 segments and overlay metadata from the worker to the web part.

Per camera and variant ("sub" for grid tiles, "main" for an enlarged view):
- `cc:v1:video:init:<cam>:<variant>`  hash {data: ftyp+moov, codec: "avc1.64001f", gen: n, kid: the stream
                                id of this generation's newest keyframe segment ("" before the first)},
                                short TTL; a viewer joins at `kid` without searching the stream;
- `cc:v1:video:seg:<cam>:<variant>`   Redis stream of media segments {d: moof+mdat, k: 1 if it starts at a
                                keyframe, t: source time (epoch s), m: media time (s), g: generation},
                                capped (MAXLEN) so a stream nobody reads costs a few seconds of memory;
- `cc:v1:video:meta:<cam>`            Redis stream of analytics per processed frame (JSON, see pipeline).
A new generation starts at every (re)connection to the camera: the muxer's clock restarts, so a
viewer must start a new init segment. Everything is perishable: a failed write is counted, never
queued (a frame late by seconds is worth nothing to a live view).
"""

from __future__ import annotations

import logging
import time

import redis

from spine import channels
from spine.publisher import REDIS_DOWN

log = logging.getLogger(__name__)

VARIANTS = ("sub", "main")
SEG_MAXLEN = 400  # ~16 s at 25 fps with one frame per segment
META_MAXLEN = 200
TTL_S = 30  # keys of a camera that stopped vanish


# The names live in spine/channels.py (one home for every Redis name; the ACL of the vision user
# allows writing them: spine/servers/redis_acl.py).
init_key = channels.video_init_key
seg_key = channels.video_seg_key
meta_key = channels.video_meta_key


class VideoRelay:
    """The writing side, one per camera and variant."""

    def __init__(self, client: redis.Redis, camera_id: str, variant: str) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}")
        self.client = client
        self.camera_id = camera_id
        self.variant = variant
        self.gen = 0
        self.timescale = 0
        self.sent = 0
        self.failures = 0
        self._ikey = init_key(camera_id, variant)
        self._skey = seg_key(camera_id, variant)
        self._init: dict[str, bytes | str | int] | None = None
        self._init_at = 0.0

    def init(self, data: bytes, codec: str, timescale: int) -> None:
        self.gen = int(time.time() * 1000)  # unique across worker restarts, increasing
        self.timescale = timescale or 90000
        self._init = {"data": data, "codec": codec, "gen": self.gen, "kid": ""}
        self._write_init()

    def _write_init(self) -> None:
        if self._init is None:
            return
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.hset(self._ikey, mapping=self._init)  # type: ignore[arg-type]
            pipe.expire(self._ikey, TTL_S)
            pipe.execute()
            self._init_at = time.monotonic()
        except REDIS_DOWN as exc:
            self._failed(exc)

    def segment(self, data: bytes, key: bool, src_ts: float, decode_time: int) -> None:
        if self._init is None:
            return
        if time.monotonic() - self._init_at > TTL_S / 3:
            self._write_init()  # keep the init alive as long as segments flow
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.xadd(self._skey, {"d": data, "k": 1 if key else 0, "t": f"{src_ts:.3f}",
                                   "m": f"{decode_time / self.timescale:.4f}", "g": self.gen},
                      maxlen=SEG_MAXLEN, approximate=True)
            pipe.expire(self._skey, TTL_S)
            sid = pipe.execute()[0]
            self.sent += 1
            if key:
                # Where a viewer joins: the whole init hash rewritten once a GOP (a second, the init is
                # a few hundred bytes; whole, so a hash Redis lost never comes back as `kid` alone),
                # instead of each viewer searching hundreds of entries back (dashboard/video.py).
                self._init["kid"] = sid.decode() if isinstance(sid, bytes) else str(sid)
                self._write_init()
        except REDIS_DOWN as exc:
            self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 200 == 0:
            log.warning("video relay %s/%s: not stored (%s) [%d failures]", self.camera_id, self.variant,
                        exc, self.failures)


def publish_meta(client: redis.Redis, camera_id: str, payload: bytes) -> bool:
    try:
        pipe = client.pipeline(transaction=False)
        pipe.xadd(meta_key(camera_id), {"j": payload}, maxlen=META_MAXLEN, approximate=True)
        pipe.expire(meta_key(camera_id), TTL_S)
        pipe.execute()
        return True
    except REDIS_DOWN:
        return False
