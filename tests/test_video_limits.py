"""MJPEG streams cannot take the web server's threads (capped per user and in total), and end
when their viewer's session ends.

Real waitress with 8 threads, a real Redis with a camera frame, real sockets. Before the caps,
one user's 32 streams held every thread and logins and tickets timed out for everyone. Before the
session check, a stream kept playing for up to an hour after logout, a password change, disabling
the user or revoking the wall's token.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from config.settings import WebSettings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from spine.channels import FRAME_CHANNEL, frame_key
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
    settings.web = WebSettings(threads=THREADS, video_streams_per_user=3, video_streams_total=4,
                               video_tiles_per_stream=5)
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


@pytest.fixture
def camera_playing(redis_url: str) -> Iterator[None]:
    """The vision worker: a new frame of cam-1 announced ten times a second."""
    stop = threading.Event()
    client = redis.Redis.from_url(redis_url)

    def frames() -> None:
        while not stop.is_set():
            client.set(frame_key("cam-1"), JPEG, ex=120)
            client.publish(FRAME_CHANNEL, b"cam-1")
            stop.wait(0.1)

    worker = threading.Thread(target=frames, name="fake-vision", daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join(timeout=2)


def parts_until_end(sock: socket.socket, seconds: float) -> tuple[int, float | None]:
    """Parts read, and the seconds until the response ended (its last chunk), or None if it
    was still playing after `seconds`."""
    start = time.monotonic()
    parts, tail = 0, b""
    while time.monotonic() - start < seconds:
        sock.settimeout(max(0.05, seconds - (time.monotonic() - start)))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        if not chunk:
            return parts, time.monotonic() - start
        parts += chunk.count(b"--ccframe")
        tail = (tail + chunk)[-16:]
        if tail.endswith(b"\r\n0\r\n\r\n"):  # chunked encoding's end: the generator returned
            return parts, time.monotonic() - start
    return parts, None


def end_session(how: str, store: Store, client: Client) -> None:
    if how == "disable":
        store.set_active("op", False)
    elif how == "passwd":
        store.set_password("op", "another-password")
    elif how == "logout":  # from another tab of the same browser session
        assert client.request("POST", "/logout", {"csrf": client.csrf("/logout")})[0] == 302
    elif how == "token_revoked":
        assert store.revoke_device_token("wall-5")


@pytest.mark.parametrize("how", ["disable", "passwd", "logout", "token_revoked"])
def test_a_playing_stream_ends_within_5_s_of_its_session_ending(port: int, store: Store, how: str,
                                                                 camera_playing: None) -> None:
    client = Client(port)
    if how == "token_revoked":
        token = store.create_device_token("wall-5")
        assert client.request("GET", f"/device/login?token={token}")[0] == 302
    else:
        assert client.login("op", "op-password") == 302
    sock, status = open_stream(port, client.cookie_header())
    try:
        assert status == 200
        parts, ended = parts_until_end(sock, 1.5)
        assert parts >= 5 and ended is None  # playing at the camera's rate
        end_session(how, store, client)
        _, ended = parts_until_end(sock, 6.0)
        assert ended is not None and ended < 5.0, f"stream still playing 6 s after {how}"
    finally:
        sock.close()
    # Its slot is free again, and the old cookie cannot open a new stream.
    sock, status = open_stream(port, client.cookie_header())
    sock.close()
    assert status == 401


def test_a_stream_of_a_valid_session_keeps_playing(port: int, store: Store, camera_playing: None) -> None:
    """The session check ends nothing it should not: another user's logout leaves this one be."""
    mine, theirs = Client(port), Client(port)
    assert mine.login("op", "op-password") == 302 and theirs.login("op2", "op2-password") == 302
    sock, status = open_stream(port, mine.cookie_header())
    try:
        assert status == 200
        assert theirs.request("POST", "/logout", {"csrf": theirs.csrf("/logout")})[0] == 302
        parts, ended = parts_until_end(sock, 5.0)
        assert ended is None and parts >= 20
    finally:
        sock.close()


def test_the_configured_caps_are_the_ones_the_routes_keep(port: int) -> None:
    client = Client(port)
    assert client.login("op", "op-password") == 302
    status, _, body = client.request("GET", "/video/live-slots")
    assert status == 200 and json.loads(body) == {"per_user": 3, "in_use": 0, "tiles": 5}
