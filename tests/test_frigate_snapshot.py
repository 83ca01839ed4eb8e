"""Frigate snapshots through the product's own route: /api/snapshots/frigate.<server>.<event id>.jpg is
fetched server-side from the configured Frigate API (a real local HTTP server stands in for it),
behind the login, audited, bounded and checked; nothing of a bad id ever reaches Frigate."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from flask.testing import FlaskClient

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from tests.webtools import FAST_HASHER

EID = "1767225600.123456-ab12cd"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 8 + b"\xff\xd9"
CASES = {  # event id -> what the stand-in Frigate answers
    EID: (200, "image/jpeg", JPEG),
    "1767225600.123456-big000": (200, "image/jpeg", b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024 + 10)),
    "1767225600.123456-big001": (200, "image/jpeg", b"\xff\xd8\xff" + b"\0" * (2 * 1024 * 1024 + 10)),
    "1767225600.123456-html00": (200, "image/jpeg", b"<html><script>alert(1)</script></html>"),
    "1767225600.123456-gone00": (404, "application/json", b'{"success": false}'),
    "1767225600.123456-redir0": (302, "text/plain", b""),
    "1767225600.123456-slow00": (200, "image/jpeg", JPEG),
    "1767225600.123456-drip00": (200, "image/jpeg", JPEG[:40]),  # body: a byte every 0.2 s
    "1767225600.123456-drip01": (200, "image/jpeg", JPEG[:40]),  # status line and headers dripped
}
DRIP_S = 0.2  # under the configured 0.5 s timeout: each wait is short, the whole answer takes 8 s


class _Frigate(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []  # every path Frigate was asked for

    def do_GET(self) -> None:
        type(self).seen.append(self.path)
        m = re.fullmatch(r"/api/events/([^/]+)/snapshot\.jpg", self.path)
        status, ctype, body = CASES.get(m.group(1) if m else "", (404, "text/plain", b""))
        if m and m.group(1).endswith("slow00"):
            time.sleep(1.5)
        if m and m.group(1).endswith("drip01"):
            for b in b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nX-Pad: " + b"a" * 40:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(DRIP_S)
            return
        self.send_response(status)
        if status == 302:
            # To a real JPEG on the same server: followed, it would be served (and asked for twice).
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}"
                                         f"/api/events/{EID}/snapshot.jpg")
        self.send_header("Content-Type", ctype)
        if not self.path.startswith("/api/events/1767225600.123456-big001/"):  # that one: read to the end
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if m and m.group(1).endswith("drip00"):
            for b in body:
                self.wfile.write(bytes([b]))
                self.wfile.flush()
                time.sleep(DRIP_S)
            return
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the route hangs up on an oversize or slow answer: expected, not worth a traceback


@pytest.fixture
def frigate_api() -> Iterator[int]:
    _Frigate.seen = []
    server = _Server(("127.0.0.1", 0), _Frigate)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    s.add_user("op", "op-password", "operator")
    return s


@pytest.fixture
def client(store: Store, redis_url: str, frigate_api: int, monkeypatch) -> FlaskClient:
    # The web process reads the Frigate servers from the feeds configuration, as a deployment gives it.
    monkeypatch.setenv("CC_FEEDS__FRIGATE__SERVERS", (
        f"{{gate: {{http_url: 'http://127.0.0.1:{frigate_api}', http_timeout_s: 0.5}},"
        f" dead: {{topic_prefix: dead, http_url: 'http://127.0.0.1:{_closed_port()}'}},"
        f" mqttonly: {{topic_prefix: other}}}}"))
    settings = load_settings()
    settings.redis.url = redis_url
    return create_app(settings, store, "snapshot-test-secret").server.test_client()


def _login(client: FlaskClient) -> None:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": "op", "password": "op-password", "csrf": csrf})
    assert r.status_code == 302


def _get(client: FlaskClient, snapshot: str):
    return client.get(f"/api/snapshots/{snapshot}.jpg", environ_base={"REMOTE_ADDR": "10.9.8.7"})


def test_logged_out_is_refused_and_frigate_not_asked(client: FlaskClient, store: Store) -> None:
    assert _get(client, f"frigate.gate.{EID}").status_code == 401
    assert _Frigate.seen == [] and store.audit_entries(action="view_snapshot") == []


def test_logged_in_gets_the_jpeg_private_and_audited(client: FlaskClient, store: Store) -> None:
    _login(client)
    r = _get(client, f"frigate.gate.{EID}")
    assert r.status_code == 200 and r.data == JPEG and r.mimetype == "image/jpeg"
    assert r.headers["Cache-Control"] == "private, no-store"
    assert _Frigate.seen == [f"/api/events/{EID}/snapshot.jpg"]
    rows = store.audit_entries(action="view_snapshot")
    assert [(e.username, e.target, e.remote_addr) for e in rows] == [
        ("op", f"frigate.gate.{EID}", "10.9.8.7")]


@pytest.mark.parametrize("snapshot", [
    f"frigate.nowhere.{EID}",           # not a configured server
    f"frigate.mqttonly.{EID}",          # configured, but no HTTP API
    "frigate.gate.1767225600.1-AB12CD",  # not Frigate's id shape
    "frigate.gate.abc",
    f"frigate.gate.{EID}%2F..%2F..%2Fapi%2Fconfig",
    f"frigate.gate.{EID}%3Fx=1",
    "frigate.gate",
    "frigate.",
    f"frigate.127.0.0.1:{80}.{EID}",
    f"frigate.GATE.{EID}",
])
def test_bad_ids_are_404_and_never_reach_frigate(client: FlaskClient, store: Store, snapshot: str) -> None:
    _login(client)
    assert _get(client, snapshot).status_code == 404
    assert _Frigate.seen == [] and store.audit_entries(action="view_snapshot") == []


@pytest.mark.parametrize("event_id,status", [
    ("1767225600.123456-big000", 502),   # over 2 MiB, said in Content-Length
    ("1767225600.123456-big001", 502),   # over 2 MiB, no length given
    ("1767225600.123456-html00", 502),   # says image/jpeg, is not one
    ("1767225600.123456-redir0", 502),   # a redirect is not followed
    ("1767225600.123456-slow00", 502),   # past the configured timeout
    ("1767225600.123456-gone00", 404),   # Frigate has no snapshot for it
])
def test_bad_answers_are_refused(client: FlaskClient, store: Store, event_id: str, status: int) -> None:
    _login(client)
    r = _get(client, f"frigate.gate.{event_id}")
    assert r.status_code == status and not r.data.startswith(b"\xff\xd8")
    assert r.headers["Cache-Control"] == "private, no-store"
    assert _Frigate.seen == [f"/api/events/{event_id}/snapshot.jpg"]
    assert store.audit_entries(action="view_snapshot") == []  # nothing was viewed


def test_unreachable_frigate_is_502(client: FlaskClient) -> None:
    _login(client)
    t0 = time.monotonic()
    assert _get(client, f"frigate.dead.{EID}").status_code == 502
    assert time.monotonic() - t0 < 6


@pytest.mark.parametrize("event_id", ["1767225600.123456-drip00", "1767225600.123456-drip01"])
def test_a_dripping_answer_is_cut_at_the_timeout(client: FlaskClient, store: Store, event_id: str) -> None:
    """Slow-loris from the Frigate side: every byte comes within the per-read timeout, so only a bound
    on the whole answer (headers and body) keeps a web worker from being held for as long as it drips."""
    _login(client)
    t0 = time.monotonic()
    r = _get(client, f"frigate.gate.{event_id}")
    took = time.monotonic() - t0
    assert r.status_code == 502 and took < 2.0, (r.status_code, took)
    assert store.audit_entries(action="view_snapshot") == []


def test_concurrent_fetches_are_bounded_so_a_slow_frigate_cannot_take_every_web_thread(
        client: FlaskClient) -> None:
    """A Frigate that does not answer holds a web thread for http_timeout_s per snapshot; an events list
    full of its snapshots, on a few screens, would hold all of waitress's threads. At most
    FRIGATE_FETCHES run at once per process; beyond that the answer is 503 at once, Frigate not asked."""
    from dashboard.video import FRIGATE_FETCHES

    n = FRIGATE_FETCHES + 4
    clients = [client.application.test_client() for _ in range(n)]
    for c in clients:
        _login(c)
    start = threading.Barrier(n)
    codes: list[int] = []

    def one(c: FlaskClient) -> None:
        start.wait()
        codes.append(_get(c, "frigate.gate.1767225600.123456-slow00").status_code)

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(codes) == [502] * FRIGATE_FETCHES + [503] * 4, codes
    assert len(_Frigate.seen) == FRIGATE_FETCHES and time.monotonic() - t0 < 3
