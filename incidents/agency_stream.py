"""The MJPEG body of an agency link's camera stream (dashboard/incidents_api.py `/agency/<token>/video`).

Ends, so a waitress thread is never held by a stream nobody may or can watch:
- at the link's expiry, and after `max_s` (a browser reconnects by itself);
- within `check_every_s` of the viewer's session ending (logout, disabled user, revoked session);
- within `incident_every_s` of the incident being resolved or closed, or of this camera leaving it;
- after `no_frame_s` without a new frame: waitress notices a closed browser only when it writes,
  and a silent camera's expired frame key would otherwise never write again.
Between new frames the last part is resent every `keepalive_s`, for the same reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import redis

from incidents.agency_page import obscure_persons
from spine.channels import frame_key
from vision.relay import meta_key

POLL_S = 0.2  # how often the frame key is read (the worker writes a few frames a second)
INCIDENT_CHECK_S = 3.0  # how often the incident's state and cameras are read again
CLOSED_STATES = frozenset({"resolved", "closed"})


def _part(jpeg: bytes) -> bytes:
    return (b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: " + str(len(jpeg)).encode()
            + b"\r\n\r\n" + jpeg + b"\r\n")


def agency_frames(client: redis.Redis, camera_id: str, faces: bool, expires_ms: int,
                  still_allowed: Callable[[], bool], still_shown: Callable[[], bool], *,
                  max_s: float, no_frame_s: float, check_every_s: float,
                  incident_every_s: float = INCIDENT_CHECK_S, keepalive_s: float = 5.0,
                  poll_s: float = POLL_S) -> Iterator[bytes]:
    """Parts of `camera_id`'s frames (persons obscured unless `faces`) while all of the above hold.
    `still_shown`: the incident is open and this camera is still one of its cameras."""
    started = last_new = time.monotonic()
    next_session = started + check_every_s
    next_incident = started + incident_every_s
    last_raw = b""
    last_out: bytes | None = None
    last_sent = float("-inf")
    while True:
        now = time.monotonic()
        if now - started >= max_s or now - last_new >= no_frame_s or time.time() * 1000 >= expires_ms:
            return
        if now >= next_session:
            if not still_allowed():
                return
            next_session = now + check_every_s
        if now >= next_incident:
            if not still_shown():
                return
            next_incident = now + incident_every_s
        try:
            jpeg = client.get(frame_key(camera_id))
            meta = None
            if jpeg and jpeg != last_raw and not faces:
                got = client.xrevrange(meta_key(camera_id), count=1)
                meta = got[0][1].get(b"j") if got else None
        except (redis.RedisError, OSError):
            time.sleep(1.0)
            continue
        if jpeg and jpeg != last_raw:
            last_raw, last_new = jpeg, time.monotonic()
            out = jpeg if faces else obscure_persons(jpeg, meta)
            if out:
                last_out, last_sent = out, time.monotonic()
                yield _part(out)
        elif last_out is not None and time.monotonic() - last_sent >= keepalive_s:
            last_sent = time.monotonic()
            yield _part(last_out)  # a write, so a closed browser is noticed
        time.sleep(poll_s)
