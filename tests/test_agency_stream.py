"""An agency link's page and camera stream on the real web app, real Redis and a real database:
the link ends with its incident (resolved or closed: refused, audited), the stream counts against the
same per-user and total caps as the control room's video streams, and a playing stream ends soon
after its viewer's session ends or its camera leaves the incident."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import pytest
import redis
from flask.testing import FlaskClient
from sqlalchemy import text

from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from dashboard.video import SESSION_CHECK_S
from dashboard.web_counters import COUNTERS, EXTENSION
from incidents.agency import make_link, new_key, read_link
from incidents.db import Actor, IncidentStore
from incidents.service import make_store
from spine.channels import frame_key
from tests.webtools import FAST_HASHER
from vision.config import load_vision_config

SECRET = "agency-stream-test-secret"
CMD = Actor("cmd", "127.0.0.1")


@dataclass
class World:
    app: object
    store: Store
    incidents: IncidentStore
    incident_id: int
    camera: str
    token: str


@pytest.fixture
def world(sqlite_url: str, redis_url: str) -> Iterator[World]:
    store = Store(sqlite_url, FAST_HASHER)
    store.add_user("police", "police-password", "agency_112")
    store.add_user("op", "op-password", "operator")
    store.add_user("cmd", "cmd-password", "commander")
    settings: Settings = load_settings()
    settings.database.url = sqlite_url
    settings.redis.url = redis_url
    settings.web.video_streams_per_user = 2
    settings.web.video_streams_total = 3
    app = create_app(settings, store, SECRET)
    incidents = make_store(settings.database.resolved_url())
    incidents.migrate()
    camera = load_vision_config().cameras[0].id
    inc = incidents.create(next(iter(incidents.cfg.types)), 37.4895, 126.7242, CMD, title="t")
    cams = {c["camera_id"] for c in incidents.get(inc["id"])["cameras"]}
    if camera not in cams:
        incidents.set_camera(inc["id"], camera, CMD)
    token, link = make_link(SECRET, inc["id"], "112", 30, new_key())
    incidents.agency_link(inc["id"], "112", link.expires_ms, CMD, key=link.key)  # its row: revocable
    ok, jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))
    assert ok
    rc = redis.Redis.from_url(redis_url)
    rc.set(frame_key(camera), jpeg.tobytes(), ex=60)
    rc.close()
    yield World(app, store, incidents, inc["id"], camera, token)
    incidents.dispose()


def _login(app: object, name: str) -> FlaskClient:
    c = app.server.test_client()  # type: ignore[attr-defined]
    page = c.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302
    return c


def _stream_url(w: World) -> str:
    return f"/agency/{w.token}/video/{w.camera}.mjpg"


def _ends_within(parts: Iterator[bytes], seconds: float) -> float | None:
    """Seconds until the stream ends (parts drained), or None if it still runs after `seconds`."""
    done = threading.Event()

    def drain() -> None:
        for _ in parts:
            pass
        done.set()

    start = time.monotonic()
    threading.Thread(target=drain, daemon=True).start()
    return time.monotonic() - start if done.wait(seconds) else None


def _audit(store: Store, action: str) -> list[tuple[str, str]]:
    with store.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            text("SELECT target, detail FROM audit_log WHERE action = :a"), {"a": action})]


@pytest.mark.parametrize("state", ["resolved", "closed"])
def test_a_finished_incidents_link_is_refused_and_audited(world: World, state: str) -> None:
    c = _login(world.app, "police")
    assert c.get(f"/agency/{world.token}").status_code == 200
    with world.incidents.engine.begin() as conn:
        conn.execute(text("UPDATE incidents SET state = :s WHERE id = :i"),
                     {"s": state, "i": world.incident_id})
    assert c.get(f"/agency/{world.token}").status_code == 410
    assert c.get(_stream_url(world)).status_code == 410
    refused = [d for t, d in _audit(world.store, "agency_refused") if t == f"incident:{world.incident_id}"]
    # The page's refusal is a row; the stream's, the same principal, reason and /agency/ prefix within
    # the minute, is counted into a summary row (dashboard/web_counters.py).
    assert refused.count(f"incident {state}") == 1
    world.app.server.extensions[EXTENSION].flush()  # type: ignore[attr-defined]
    summary = [d for t, d in _audit(world.store, "audit_suppressed") if t == "agency_refused /agency/"]
    assert len(summary) == 1
    assert summary[0].startswith(f"1 more agency_refused of user:police (incident {state})")


def test_agency_streams_count_against_the_shared_caps(world: World) -> None:
    police = _login(world.app, "police")
    opened = [police.get(_stream_url(world), buffered=False) for _ in range(2)]
    assert [r.status_code for r in opened] == [200, 200]
    third = police.get(_stream_url(world), buffered=False)
    assert third.status_code == 429 and third.headers["Retry-After"] == "10"
    opened[0].close()  # a closed stream frees its slot
    again = police.get(_stream_url(world), buffered=False)
    assert again.status_code == 200
    # The control room's streams and the agency's share one total (3 here).
    op = _login(world.app, "op")
    assert op.get(f"/video/{world.camera}.mjpg", buffered=False).status_code == 200
    assert op.get(f"/video/{world.camera}.mjpg", buffered=False).status_code == 503
    for r in (opened[1], again):
        r.close()
    assert op.get(f"/video/{world.camera}.mjpg", buffered=False).status_code == 200


def test_a_disabled_viewer_stops_watching(world: World) -> None:
    c = _login(world.app, "police")
    r = c.get(_stream_url(world), buffered=False)
    assert r.status_code == 200
    parts = iter(r.response)
    first = next(parts)
    assert first.startswith(b"--frame\r\nContent-Type: image/jpeg")
    world.store.set_active("police", False)  # ends every session of the user
    took = _ends_within(parts, 6.0)
    assert took is not None and took < 4.0, took
    r.close()


def test_a_camera_removed_from_the_incident_ends_its_stream(world: World) -> None:
    c = _login(world.app, "police")
    r = c.get(_stream_url(world), buffered=False)
    assert r.status_code == 200
    parts = iter(r.response)
    next(parts)
    world.incidents.set_camera(world.incident_id, world.camera, CMD, on=False)
    took = _ends_within(parts, 8.0)
    assert took is not None and took < 5.0, took
    r.close()
    assert c.get(_stream_url(world)).status_code == 403  # and it cannot be reopened


def test_a_playing_stream_is_not_ended_while_all_holds(world: World) -> None:
    """The control for the two above: without a revocation or a removal it keeps playing."""
    c = _login(world.app, "police")
    r = c.get(_stream_url(world), buffered=False)
    parts = iter(r.response)
    next(parts)
    assert _ends_within(parts, 4.0) is None
    world.store.set_active("police", False)  # so the draining thread ends before the stream is closed
    time.sleep(3.0)
    r.close()


def test_a_silent_camera_ends_the_stream_and_an_idle_one_is_kept_alive(redis_url: str) -> None:
    """Unit test of the body: the last frame is resent while nothing new comes (a write, so a closed
    browser is noticed), and the stream ends `no_frame_s` after the last new frame."""
    from incidents.agency_stream import agency_frames

    rc = redis.Redis.from_url(redis_url, socket_timeout=5)
    ok, jpeg = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    assert ok
    rc.set(frame_key("cam-x"), jpeg.tobytes(), px=500)  # then the key expires, as a dead worker's does
    start = time.monotonic()
    parts = list(agency_frames(rc, "cam-x", True, int(time.time() * 1000) + 60_000, lambda: True,
                               lambda: True, max_s=30, no_frame_s=2.0, check_every_s=0.5,
                               keepalive_s=0.6, poll_s=0.05))
    took = time.monotonic() - start
    assert 1.9 < took < 3.0, took
    assert len(parts) >= 3 and len(set(parts)) == 1  # the first part and its keep-alive resends
    assert list(agency_frames(rc, "cam-x", True, int(time.time() * 1000) - 1, lambda: True, lambda: True,
                              max_s=30, no_frame_s=2.0, check_every_s=0.5)) == []  # expired link
    rc.close()


def _csrf(c: FlaskClient) -> str:
    return c.get("/api/incidents/meta").get_json()["csrf"]


def _revoke(c: FlaskClient, w: World, key: str, csrf: str | None = None) -> tuple[int, dict]:
    headers = {"X-CSRF-Token": csrf if csrf is not None else _csrf(c)}
    r = c.post(f"/api/incidents/{w.incident_id}/agency-links/{key}/revoke", json={}, headers=headers)
    return r.status_code, r.get_json(silent=True) or {}


def _key(w: World) -> str:
    return read_link(SECRET, w.token).key


def test_a_revoked_link_is_refused_at_once_and_audited(world: World) -> None:
    police = _login(world.app, "police")
    assert police.get(f"/agency/{world.token}").status_code == 200
    cmd = _login(world.app, "cmd")
    key = _key(world)
    # The form token is required, and the share right (an operator has not got it).
    assert _revoke(cmd, world, key, csrf="wrong")[0] == 400
    assert _revoke(_login(world.app, "op"), world, key)[0] == 403
    assert _revoke(cmd, world, "no-such-key")[0] == 404
    code, doc = _revoke(cmd, world, key)
    assert code == 200, doc
    assert [x["status"] for x in doc["links"]] == ["revoked"]
    last = world.incidents.timeline(world.incident_id)[-1]
    assert last["data"]["revoked"] is True and last["actor"] == "cmd" and last["kind"] == "share"
    assert _revoke(cmd, world, key)[0] == 409  # nothing left to end
    assert police.get(f"/agency/{world.token}").status_code == 410
    assert police.get(_stream_url(world)).status_code == 410
    assert (f"incident:{world.incident_id}", f"key={key}") in _audit(world.store, "incident_agency_revoke")
    assert (f"incident:{world.incident_id}", "revoked") in _audit(world.store, "agency_refused")
    links = cmd.get(f"/api/incidents/{world.incident_id}/agency-links").get_json()["links"]
    assert [(x["key"], x["status"], x["revoked_by"], x["created_by"]) for x in links] == [
        (key, "revoked", "cmd", "cmd")]
    assert world.token not in json.dumps(links)  # the list never shows the link itself
    assert _login(world.app, "op").get(f"/api/incidents/{world.incident_id}/agency-links").status_code == 403


def test_revoking_ends_an_open_stream_within_the_session_check(world: World) -> None:
    police = _login(world.app, "police")
    r = police.get(_stream_url(world), buffered=False)
    assert r.status_code == 200
    parts = iter(r.response)
    next(parts)
    assert _revoke(_login(world.app, "cmd"), world, _key(world))[0] == 200
    took = _ends_within(parts, SESSION_CHECK_S + 4.0)
    assert took is not None and took < SESSION_CHECK_S + 1.0, took
    r.close()


def test_revoking_one_link_leaves_the_others(world: World) -> None:
    cmd = _login(world.app, "cmd")
    made = cmd.post(f"/api/incidents/{world.incident_id}/agency-link", json={"agency": "112", "minutes": 5},
                    headers={"X-CSRF-Token": _csrf(cmd)})
    assert made.status_code == 200
    assert _revoke(cmd, world, _key(world))[0] == 200
    police = _login(world.app, "police")
    assert police.get(made.get_json()["url"]).status_code == 200
    statuses = {x["key"]: x["status"] for x in
                cmd.get(f"/api/incidents/{world.incident_id}/agency-links").get_json()["links"]}
    assert statuses == {_key(world): "revoked", made.get_json()["key"]: "active"}


def _payload(token: str) -> dict:
    body = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_the_token_carries_only_what_the_agency_needs(world: World) -> None:
    """Signed, not encrypted: whoever holds the link reads its payload. No maker's name in it."""
    cmd = _login(world.app, "cmd")
    made = cmd.post(f"/api/incidents/{world.incident_id}/agency-link", json={"agency": "112"},
                    headers={"X-CSRF-Token": _csrf(cmd)}).get_json()
    token = made["url"].removeprefix("/agency/")
    payload = _payload(token)
    assert set(payload) == {"i", "a", "e", "k"}, payload
    assert payload["i"] == world.incident_id and payload["a"] == "112" and payload["k"] == made["key"]
    assert "cmd" not in json.dumps(payload)


def test_a_signed_token_without_a_stored_link_is_not_honoured(world: World) -> None:
    """A link from before links were stored (it carried its maker, "b", and no key), or one whose
    row is missing, cannot be revoked, so it is refused."""
    from itsdangerous import URLSafeSerializer

    from incidents.agency import SALT

    legacy = URLSafeSerializer(SECRET, salt=SALT).dumps(
        {"i": world.incident_id, "a": "112", "e": int(time.time() * 1000) + 600_000, "b": "cmd", "n": "x"})
    rowless, _ = make_link(SECRET, world.incident_id, "112", 10, new_key())
    police = _login(world.app, "police")
    assert police.get(f"/agency/{legacy}").status_code == 404
    assert police.get(f"/agency/{rowless}").status_code == 404
    assert police.get(f"/agency/{rowless}/video/{world.camera}.mjpg").status_code == 404
    assert police.get(f"/agency/{world.token}").status_code == 200  # the stored one still opens


def test_repeated_refusals_are_one_row_a_minute_and_counted(world: World) -> None:
    """A client repeating a refused link writes one audit row per (principal, reason, prefix) and
    minute; the rest are counted (GET /api/health/web) and summed up in one summary row."""
    assert _revoke(_login(world.app, "cmd"), world, _key(world))[0] == 200
    police = _login(world.app, "police")
    sup = world.app.server.extensions[EXTENSION]  # type: ignore[attr-defined]
    before = COUNTERS.snapshot()
    for _ in range(50):
        assert police.get(f"/agency/{world.token}").status_code == 410
    revoked = [d for t, d in _audit(world.store, "agency_refused") if d == "revoked"]
    assert len(revoked) == 1
    after = COUNTERS.snapshot()
    assert after.get("refusals_suppressed", 0) - before.get("refusals_suppressed", 0) == 49
    sup.flush()
    summary = [d for t, d in _audit(world.store, "audit_suppressed") if t == "agency_refused /agency/"]
    assert len(summary) == 1 and summary[0].startswith("49 more agency_refused of user:police (revoked)")
    seen = _login(world.app, "op").get("/api/health/web").get_json()
    assert seen["counters"]["refusals_suppressed"] >= 49 and seen["window_s"] == 60
