"""Every page, API and callback refuses anonymous access; roles decide which pages open."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from spine.tickets import verify_ticket

SECRET = "web-test-secret"


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url)
    for name, role in (("op", "operator"), ("sup", "supervisor"), ("cmd", "commander"), ("adm", "admin")):
        s.add_user(name, f"{name}-password", role)
    return s


@pytest.fixture
def client(store: Store) -> FlaskClient:
    app = create_app(load_settings(), store, SECRET)
    return app.server.test_client()


def login(client: FlaskClient, name: str, password: str | None = None, nxt: str = "") -> object:
    page = client.get(f"/login?next={nxt}").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": name, "password": password or f"{name}-password",
                                       "csrf": csrf, "next": nxt})


@pytest.mark.parametrize("path", ["/", "/wall/1", "/supervisor", "/commander"])
def test_pages_send_anonymous_users_to_login(client: FlaskClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 302
    assert r.headers["Location"].startswith("/login")


@pytest.mark.parametrize("path", ["/_dash-layout", "/_dash-dependencies", "/api/live/ticket",
                                  "/assets/live.js", "/_dash-component-suites/dash/deps/react@18.js"])
def test_apis_and_assets_refuse_anonymous_requests(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 401


def test_dash_callback_refuses_anonymous_post(client: FlaskClient) -> None:
    r = client.post("/_dash-update-component", json={"output": "cc-root.children", "outputs": {},
                                                     "inputs": [], "changedPropIds": []})
    assert r.status_code == 401


def test_login_needs_the_form_token(client: FlaskClient) -> None:
    r = client.post("/login", data={"username": "op", "password": "op-password"})
    assert r.status_code == 400


def test_wrong_password_is_refused_and_audited(client: FlaskClient, store: Store) -> None:
    r = login(client, "op", "guess")
    assert r.status_code == 200 and "Wrong user or password" in r.get_data(as_text=True)
    assert client.get("/wall/1").status_code == 302
    assert store.audit_entries(action="login_failed")[0].username == "op"


def test_login_returns_to_the_page_asked_for(client: FlaskClient, store: Store) -> None:
    r = login(client, "op", nxt="/wall/2")
    assert r.headers["Location"] == "/wall/2"
    assert client.get("/wall/2").status_code == 200
    assert store.audit_entries(action="login")[0].username == "op"


def test_login_is_not_an_open_redirect(client: FlaskClient) -> None:
    r = login(client, "op", nxt="//evil.example/phish")
    assert r.headers["Location"] == "/wall/1"


@pytest.mark.parametrize(("user", "allowed", "refused"), [
    ("op", ["/wall/1"], ["/supervisor", "/commander"]),
    ("sup", ["/wall/1", "/supervisor"], ["/commander"]),
    ("cmd", ["/commander"], ["/wall/1", "/supervisor"]),
    ("adm", ["/wall/3", "/supervisor", "/commander"], []),
])
def test_roles_decide_the_pages(client: FlaskClient, user: str, allowed: list, refused: list) -> None:
    login(client, user)
    for path in allowed:
        assert client.get(path).status_code == 200, path
    for path in refused:
        assert client.get(path).status_code == 403, path


def test_forged_callback_for_a_forbidden_page_renders_nothing_useful(client: FlaskClient) -> None:
    login(client, "cmd")
    body = {"output": "cc-root.children", "outputs": {"id": "cc-root", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": "/wall/1"}],
            "changedPropIds": ["url.pathname"]}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200
    text = r.get_data(as_text=True)
    assert "may not open" in text and "cc-layer-bus" not in text


def test_live_ticket_is_signed_for_the_user(client: FlaskClient) -> None:
    login(client, "sup")
    data = client.get("/api/live/ticket").get_json()
    assert verify_ticket(SECRET, data["ticket"]) == {"u": "sup", "r": "supervisor"}
    assert verify_ticket("another-secret", data["ticket"]) is None


def test_wall_device_token_logs_in_for_a_year_until_revoked(client: FlaskClient, store: Store) -> None:
    token = store.create_device_token("wall-7")
    assert client.get("/device/login?token=wrong").status_code == 401
    r = client.get(f"/device/login?token={token}&next=/wall/2")
    assert r.headers["Location"] == "/wall/2"
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    assert cookie.expires - datetime.now(UTC) > timedelta(days=300)
    assert client.get("/wall/2").status_code == 200
    store.revoke_device_token("wall-7")
    assert client.get("/wall/2").status_code == 302


def test_logout_ends_the_session(client: FlaskClient, store: Store) -> None:
    login(client, "op")
    client.get("/logout")
    assert client.get("/wall/1").status_code == 302
    assert store.audit_entries(action="logout")[0].username == "op"


def test_repeated_failures_are_throttled(client: FlaskClient, store: Store) -> None:
    for _ in range(5):
        assert login(client, "op", "guess").status_code == 200
    r = login(client, "op")  # even the right password waits now
    assert r.status_code == 429 and "Too many failed sign-ins" in r.get_data(as_text=True)
    assert store.audit_entries(action="login_throttled")
    assert login(client, "sup").status_code == 302  # other users are not locked out


def test_responses_carry_security_headers(client: FlaskClient) -> None:
    r = client.get("/login")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
