"""MJPEG streams cannot take the web server's threads: capped per user and in total.

Real waitress with 8 threads, a real Redis with a camera frame, real sockets. Before the caps,
one user's 32 streams held every thread and logins and tickets timed out for everyone.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import WebSettings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from spine.channels import frame_key
from tests.webtools import FAST_HASHER, Client, serve

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
THREADS = 8


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    for name in ("op", "op2", "sup"):
        s.add_user(name, f"{name}-password", "supervisor" if name == "sup" else "operator")
    return s


@pytest.fixture
def port(store: Store, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    settings = load_settings()  # the shipped configuration; the video routes read the camera below
    cams = tmp_path / "cameras.yaml"
    cams.write_text(f"vision:\n  snapshot_dir: {tmp_path / 'snaps'}\n"
                    "cameras:\n  - {id: cam-1, name: One, lat: 37.4, lon: 126.6, source: x.avi}\n",
                    encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(cams))
    redis.Redis.from_url(redis_url).set(frame_key("cam-1"), JPEG, ex=120)
    settings.redis.url = redis_url
    settings.web = WebSettings(threads=THREADS, video_streams_per_user=3, video_streams_total=4)
    app = create_app(settings, store, "video-limits-secret")
    with serve(app.server, threads=THREADS) as p:
        yield p


def open_stream(port: int, cookie: str) -> tuple[socket.socket, int]:
    """A browser tile: GET the stream and read its status line; the socket stays open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /video/cam-1.mjpg HTTP/1.1\r\nHost: x\r\nCookie: {cookie}\r\n\r\n".encode())
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(256)
        if not chunk:
            break
        head += chunk
    return sock, int(head.split(b" ", 2)[1])


def answered_quickly(port: int, name: str) -> float:
    """Seconds for a new user's login and a ticket, which must not wait for a stream's thread."""
    start = time.monotonic()
    client = Client(port, timeout=5)
    assert client.login(name, f"{name}-password") == 302
    assert client.request("GET", "/api/live/ticket")[0] == 200
    return time.monotonic() - start


def signed_in(port: int, name: str) -> str:
    client = Client(port)
    assert client.login(name, f"{name}-password") == 302
    return client.cookie_header()


def test_one_user_opening_32_streams_cannot_stop_logins_and_tickets(port: int) -> None:
    cookie = signed_in(port, "op")
    streams = [open_stream(port, cookie) for _ in range(32)]
    try:
        statuses = [status for _, status in streams]
        assert statuses.count(200) == 3 and statuses.count(429) == 29
        assert answered_quickly(port, "sup") < 3.0
    finally:
        for sock, _ in streams:
            sock.close()


def test_streams_in_total_are_capped_below_the_thread_count(port: int) -> None:
    first, second = signed_in(port, "op"), signed_in(port, "op2")
    streams = [open_stream(port, first) for _ in range(3)] + [open_stream(port, second) for _ in range(3)]
    try:
        assert [status for _, status in streams] == [200, 200, 200, 200, 503, 503]
        assert answered_quickly(port, "sup") < 3.0
    finally:
        for sock, _ in streams:
            sock.close()
    # A closed tile frees its slot once the server notices (its next write, <= 5 s keep-alive).
    deadline = time.monotonic() + 12
    while True:
        sock, status = open_stream(port, second)
        sock.close()
        if status == 200:
            break
        assert time.monotonic() < deadline, "closed streams never gave their slots back"
        time.sleep(0.5)


def test_stream_caps_must_leave_threads_for_everyone_else() -> None:
    with pytest.raises(ValueError, match="must leave at least 4"):
        WebSettings(threads=8, video_streams_total=6)
    assert WebSettings(threads=32).video_stream_cap() == 16
