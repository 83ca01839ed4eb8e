"""Frigate snapshots for the web process: `frigate.<server>.<event id>` -> JPEG bytes from that
server's API (`<http_url>/api/events/<event id>/snapshot.jpg`).

The browser never talks to Frigate: the web process fetches on its behalf, behind its login and
audit, so only configured servers are reachable (the server part of an id is looked up, never put
into a URL) and the event id must be Frigate's own id shape.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from feeds.frigate.config import FrigateServerConfig
from feeds.frigate.payload import FRIGATE_ID

PREFIX = "frigate."
MAX_SNAPSHOT_BYTES = 2 * 1024 * 1024
JPEG_MAGIC = b"\xff\xd8\xff"


def snapshot_id(server: str, event_id: str) -> str:
    return f"{PREFIX}{server}.{event_id}"


def is_frigate_id(snapshot: str) -> bool:
    return snapshot.startswith(PREFIX)


@dataclass(frozen=True)
class SnapshotRef:
    server: str
    event_id: str
    url: str
    timeout_s: float


def resolve(snapshot: str, servers: Mapping[str, FrigateServerConfig]) -> SnapshotRef | None:
    """The URL for a snapshot id, or None for an id that names no configured server with an API,
    or whose event id is not Frigate's id shape."""
    if not snapshot.startswith(PREFIX) or len(snapshot) > 128:
        return None
    server, sep, event_id = snapshot[len(PREFIX):].partition(".")
    cfg = servers.get(server) if sep else None
    if cfg is None or not cfg.http_url or not FRIGATE_ID.fullmatch(event_id):
        return None
    return SnapshotRef(server, event_id, f"{cfg.http_url}/api/events/{event_id}/snapshot.jpg",
                       cfg.http_timeout_s)


class SnapshotError(Exception):
    """`status` is what the web route answers: 404 (Frigate has none), 502 (bad or no answer)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect could lead the server-side fetch anywhere: Frigate's snapshot route does not redirect.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def fetch_snapshot(ref: SnapshotRef) -> bytes:
    """The JPEG, at most MAX_SNAPSHOT_BYTES; SnapshotError otherwise."""
    req = urllib.request.Request(ref.url, headers={"User-Agent": "incheon-control-room/web",
                                                   "Accept": "image/jpeg"})
    try:
        with _opener.open(req, timeout=ref.timeout_s) as resp:
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > MAX_SNAPSHOT_BYTES:
                raise SnapshotError(502, f"snapshot of {declared} bytes (limit {MAX_SNAPSHOT_BYTES})")
            body = resp.read(MAX_SNAPSHOT_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise SnapshotError(404 if exc.code == 404 else 502, f"Frigate answered {exc.code}") from None
    except (TimeoutError, urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        raise SnapshotError(502, f"Frigate unreachable: {type(exc).__name__}") from None
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(502, f"snapshot over {MAX_SNAPSHOT_BYTES} bytes")
    if not body.startswith(JPEG_MAGIC):
        raise SnapshotError(502, "Frigate's answer is not a JPEG")
    return body
