"""Latest annotated JPEG per camera in Redis (short TTL) plus a tiny notification, so a web server
can push MJPEG to browsers without polling."""

from __future__ import annotations

import logging

import redis

from spine.channels import FRAME_CHANNEL, FRAME_TTL_S, frame_key
from spine.publisher import REDIS_DOWN

log = logging.getLogger(__name__)


class FrameSink:
    def __init__(self, client: redis.Redis, ttl_s: int = FRAME_TTL_S) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self.sent = 0
        self.failures = 0

    def put(self, camera_id: str, jpeg: bytes) -> bool:
        try:
            pipe = self.client.pipeline(transaction=False)
            pipe.set(frame_key(camera_id), jpeg, ex=self.ttl_s)
            pipe.publish(FRAME_CHANNEL, camera_id)
            pipe.execute()
        except REDIS_DOWN as exc:
            self.failures += 1  # frames are perishable: drop, never queue
            if self.failures == 1 or self.failures % 100 == 0:
                log.warning("frame for %s not stored (%s) [%d failures]", camera_id, exc, self.failures)
            return False
        self.sent += 1
        return True
