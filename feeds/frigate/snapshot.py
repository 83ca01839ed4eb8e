"""Frigate snapshots for the web process: `frigate.<server>.<event id>` -> JPEG bytes from that
server's API (`<http_url>/api/events/<event id>/snapshot.jpg`).

The browser never talks to Frigate: the web process fetches on its behalf, behind its login and
audit, so only configured servers are reachable (the server part of an id is looked up, never put
into a URL) and the event id must be Frigate's own id shape.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import urllib.parse
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


def _hang_up(sock: list[socket.socket], expired: threading.Event) -> None:
    expired.set()  # first, so a connect() finishing now sees it (see fetch_snapshot)
    if sock:
        with contextlib.suppress(OSError):
            sock[0].shutdown(socket.SHUT_RDWR)  # wakes the worker's blocking read at once


def fetch_snapshot(ref: SnapshotRef) -> bytes:
    """The JPEG, at most MAX_SNAPSHOT_BYTES; SnapshotError otherwise.

    `timeout_s` bounds the whole answer, not only each wait: an answer dripped a byte per few
    seconds (a slow-loris, or a wedged server) would otherwise hold a web worker for hours. Plain
    http.client, so nothing follows a redirect (it could lead the server-side fetch anywhere; Frigate's
    snapshot route does not redirect) and no environment proxy is used (Frigate is on the site's own
    network)."""
    parts = urllib.parse.urlsplit(ref.url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    expired = threading.Event()
    try:
        conn = cls(parts.hostname or "", parts.port, timeout=ref.timeout_s)
    except (http.client.HTTPException, ValueError) as exc:
        raise SnapshotError(502, f"Frigate unreachable: {type(exc).__name__}") from None
    # The socket itself, not conn.sock: http.client drops conn.sock once a response says the
    # connection will close, while the response goes on reading from it.
    sock: list[socket.socket] = []
    timer = threading.Timer(ref.timeout_s, _hang_up, (sock, expired))
    timer.daemon = True
    timer.start()
    try:
        conn.connect()
        if conn.sock is not None:
            sock.append(conn.sock)
        if expired.is_set():
            raise TimeoutError
        conn.request("GET", parts.path, headers={"User-Agent": "incheon-control-room/web",
                                                 "Accept": "image/jpeg"})
        resp = conn.getresponse()
        if resp.status != 200:
            raise SnapshotError(404 if resp.status == 404 else 502, f"Frigate answered {resp.status}")
        declared = resp.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > MAX_SNAPSHOT_BYTES:
            raise SnapshotError(502, f"snapshot of {declared} bytes (limit {MAX_SNAPSHOT_BYTES})")
        body = resp.read(MAX_SNAPSHOT_BYTES + 1)
        if expired.is_set():  # cut short by the hang-up: what was read is not the whole snapshot
            raise TimeoutError
    except SnapshotError:
        raise
    except (OSError, http.client.HTTPException, ValueError) as exc:
        why = f"no whole answer within {ref.timeout_s:g} s" if expired.is_set() else type(exc).__name__
        raise SnapshotError(502, f"Frigate unreachable: {why}") from None
    finally:
        timer.cancel()
        conn.close()
    if len(body) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(502, f"snapshot over {MAX_SNAPSHOT_BYTES} bytes")
    if not body.startswith(JPEG_MAGIC):
        raise SnapshotError(502, "Frigate's answer is not a JPEG")
    return body
