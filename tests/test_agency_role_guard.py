"""A role that opens no page (the 112/119 agency roles) reaches only its signed /agency/ links: the
live-socket ticket, every camera route, the snapshot files, the APIs and the pages all refuse it,
whatever camera id it knows, and the refusals are audited (the first per path prefix and minute as a
row, the rest counted: tests/test_refusal_audit.py). The control-room roles are unaffected."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from tests.webtools import FAST_HASHER

SECRET = "agency-guard-test-secret"
REFUSED = ("/api/live/ticket", "/video/vis-bupyeong-01.mjpg", "/video/vis-bupyeong-01.live",
           "/api/snapshots/vis-bupyeong-01-1-abc.jpg", "/api/alarms", "/api/incidents", "/api/health",
           "/wall/1", "/supervisor", "/commander", "/")


@pytest.fixture
def client(sqlite_url: str) -> tuple[FlaskClient, Store]:
    store = Store(sqlite_url, FAST_HASHER)
    store.add_user("police", "police-password", "agency_112")
    store.add_user("op", "op-password", "operator")
    settings: Settings = load_settings()
    settings.database.url = sqlite_url
    return create_app(settings, store, SECRET).server.test_client(), store


def _login(c: FlaskClient, name: str) -> None:
    page = c.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = c.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302


def test_agency_role_reaches_nothing_but_its_links(client: tuple[FlaskClient, Store]) -> None:
    c, store = client
    _login(c, "police")
    for path in REFUSED:
        r = c.get(path)
        assert r.status_code == 403, (path, r.status_code)
    # A link it was never given is still the agency route's own answer (not found), not the guard's.
    assert c.get("/agency/not-a-token").status_code == 404
    with store.engine.connect() as conn:
        refused = conn.execute(text("SELECT target FROM audit_log WHERE username = 'police' "
                                    "AND action = 'refused'")).scalars().all()
    assert "/video/vis-bupyeong-01.mjpg" in refused and "/api/live/ticket" in refused


def test_control_room_roles_are_not_affected(client: tuple[FlaskClient, Store]) -> None:
    c, _ = client
    _login(c, "op")
    assert c.get("/api/live/ticket").status_code == 200
    assert c.get("/wall/1").status_code == 200
