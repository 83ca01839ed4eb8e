"""Video endpoints: refused without login, served and audited with it."""

from __future__ import annotations

import threading

import flask
import pytest
from flask_login import LoginManager, login_user

from dashboard.auth import SessionUser
from dashboard.store import Store
from spine.channels import FRAME_CHANNEL, frame_key

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


@pytest.fixture
def app(redis_url: str, sqlite_url: str, tmp_path, monkeypatch):
    from dashboard.video import install_video_routes

    cams = tmp_path / "cameras.yaml"
    cams.write_text(f"vision:\n  snapshot_dir: {tmp_path / 'snaps'}\n"
                    "cameras:\n  - {id: cam-1, name: One, lat: 37.4, lon: 126.6, source: x.avi}\n",
                    encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(cams))
    (tmp_path / "snaps").mkdir()
    (tmp_path / "snaps" / "ev-1.jpg").write_bytes(JPEG)
    server = flask.Flask("t")
    server.secret_key = "test"
    manager = LoginManager(server)
    manager.user_loader(lambda uid: SessionUser(uid, uid.split(":", 1)[1], "operator"))

    @server.route("/test-login")
    def _login():
        login_user(SessionUser("user:kim", "kim", "operator"))
        return "ok"

    store = Store(sqlite_url)
    install_video_routes(server, store, redis_url)
    server.config["store"] = store
    return server


def test_refuses_without_login(app) -> None:
    c = app.test_client()
    assert c.get("/video/cam-1.mjpg").status_code == 401
    assert c.get("/api/snapshots/ev-1.jpg").status_code == 401
    assert app.config["store"].audit_entries(action="view_camera") == []


def test_streams_pushed_frames_and_audits(app, redis_url: str) -> None:
    import redis

    r = redis.Redis.from_url(redis_url)
    r.set(frame_key("cam-1"), JPEG, ex=10)
    c = app.test_client()
    c.get("/test-login")
    resp = c.get("/video/cam-1.mjpg", buffered=False, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert resp.status_code == 200
    assert resp.mimetype == "multipart/x-mixed-replace"
    chunks = iter(resp.response)
    first = next(chunks)
    assert b"Content-Type: image/jpeg" in first and JPEG in first
    # A new frame is pushed on the notification, well before the idle keep-alive.
    newer = JPEG.replace(b"fake", b"next")

    def publish() -> None:
        r.set(frame_key("cam-1"), newer, ex=10)
        r.publish(FRAME_CHANNEL, "cam-1")

    timer = threading.Timer(0.5, publish)
    timer.start()
    second = next(chunks)
    assert newer in second
    resp.close()
    entries = app.config["store"].audit_entries(action="view_camera")
    assert [(e.username, e.target, e.remote_addr) for e in entries] == [("kim", "cam-1", "10.1.2.3")]
    snap = c.get("/api/snapshots/ev-1.jpg")
    assert snap.status_code == 200 and snap.data == JPEG
    assert c.get("/api/snapshots/..%2Fsecret.jpg").status_code == 404


def test_unknown_camera_is_refused_before_any_audit_or_stream(app) -> None:
    c = app.test_client()
    c.get("/test-login")
    assert c.get("/video/made-up.mjpg").status_code == 404
    assert app.config["store"].audit_entries(action="view_camera") == []


def test_stream_ends_when_the_camera_stops_sending(redis_url: str) -> None:
    import time

    import redis

    from dashboard.video import FrameNotifier, mjpeg_stream

    r = redis.Redis.from_url(redis_url)
    r.set(frame_key("cam-1"), JPEG, px=300)  # the worker died: its last frame expires
    started = time.monotonic()
    parts = list(mjpeg_stream(r, FrameNotifier(redis_url), "cam-1", lambda: True, no_frame_s=1.5))
    # One real frame, never the dead frame again, and the server thread is free within seconds.
    assert len(parts) == 1 and JPEG in parts[0]
    assert time.monotonic() - started < 8
