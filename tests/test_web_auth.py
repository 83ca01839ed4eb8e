"""Every page, API and callback refuses anonymous access; pages declare the permission they need;
sessions end on the server (logout is a POST with the form token)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from config.settings import Settings, load_settings
from dashboard import pages
from dashboard.app_factory import create_app
from dashboard.auth import safe_next
from dashboard.store import Store
from spine.tickets import verify_ticket
from tests.webtools import FAST_HASHER

SECRET = "web-test-secret"


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    for name, role in (("op", "operator"), ("sup", "supervisor"), ("cmd", "commander"), ("adm", "admin")):
        s.add_user(name, f"{name}-password", role)
    return s


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture
def client(store: Store, settings: Settings) -> FlaskClient:
    app = create_app(settings, store, SECRET)
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
    # Korean is the default language of a page before sign-in
    assert r.status_code == 200 and "사용자 이름 또는 비밀번호가 틀렸습니다." in r.get_data(as_text=True)
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


@pytest.mark.parametrize("nxt", ["/\\evil.example", "/\\/evil.example/x", "/wall/1\\..\\x",
                                 "/\t/evil.example", "/\n/evil.example", "/\r//evil.example",
                                 "/wall/\x00", "/wall/\x7f", "/wall/\x85", "\\\\evil.example"])
def test_a_backslash_or_control_character_in_next_is_refused(client: FlaskClient, nxt: str) -> None:
    """Browsers read `/\\host` as `//host` and drop tab and newline: each would leave the site."""
    assert safe_next(nxt, "/fallback") == "/fallback"
    r = login(client, "op", nxt=nxt)
    assert r.headers["Location"] == "/wall/1"


def test_plain_paths_with_queries_are_still_accepted_as_next() -> None:
    for ok in ("/wall/2", "/replay?t=1&x=%5C", "/commander#inc-3", "/supervisor/%E2%82%A9"):
        assert safe_next(ok, "/fallback") == ok


@pytest.mark.parametrize(("user", "allowed", "refused"), [
    ("op", ["/wall/1"], ["/supervisor", "/commander"]),
    ("sup", ["/wall/1", "/supervisor"], ["/commander"]),
    ("cmd", ["/commander"], ["/wall/1", "/supervisor"]),
    ("adm", ["/wall/3", "/wall/activity/4", "/supervisor", "/commander"], []),
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
    text = json.dumps(r.get_json(), ensure_ascii=False)  # Dash escapes non-ASCII; read it decoded
    assert "commander 역할은 이 페이지를 열 수 없습니다" in text and "cc-layer-bus" not in text


def test_live_ticket_is_signed_for_the_user_and_bound_to_the_session(client: FlaskClient,
                                                                      store: Store) -> None:
    login(client, "sup")
    first = verify_ticket(SECRET, client.get("/api/live/ticket").get_json()["ticket"])
    data = client.get("/api/live/ticket").get_json()
    second = verify_ticket(SECRET, data["ticket"])
    assert set(second) == {"u", "r", "sid", "k", "j"}
    assert (second["u"], second["r"], second["k"]) == ("sup", "supervisor", "user")
    [session_row] = store.sessions_of("sup")
    assert second["sid"] == first["sid"] == session_row.id  # the server-side session
    assert store.valid_sessions([second["sid"]]) == {second["sid"]}
    assert first["j"] != second["j"]  # each ticket has its own id, for the gateway's single use
    assert verify_ticket("another-secret", data["ticket"]) is None


def test_no_ticket_after_the_session_ends(client: FlaskClient, store: Store) -> None:
    login(client, "sup")
    assert client.get("/api/live/ticket").status_code == 200
    store.set_password("sup", "a-new-password")
    r = client.get("/api/live/ticket")
    assert r.status_code == 401 and "ticket" not in r.get_json()


def test_wall_device_token_logs_in_for_a_year_until_revoked(client: FlaskClient, store: Store) -> None:
    token = store.create_device_token("wall-7")
    assert client.get("/device/login?token=wrong").status_code == 401
    r = client.get(f"/device/login?token={token}&next=/wall/2")
    assert r.headers["Location"] == "/wall/2"
    cookie = client.get_cookie("remember_token")
    assert cookie is not None
    assert cookie.expires - datetime.now(UTC) > timedelta(days=300)
    assert client.get("/wall/2").status_code == 200
    ticket = verify_ticket(SECRET, client.get("/api/live/ticket").get_json()["ticket"])
    assert (ticket["u"], ticket["k"]) == ("wall-7", "device")
    store.revoke_device_token("wall-7")
    assert client.get("/wall/2").status_code == 302
    assert client.get("/api/live/ticket").status_code == 401
    assert store.valid_sessions([ticket["sid"]]) == set()


def _form_token(client: FlaskClient, path: str = "/logout") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


def test_logout_by_get_does_nothing(client: FlaskClient, store: Store) -> None:
    login(client, "op")
    r = client.get("/logout")  # an <img src=/logout> on any page sends this
    assert r.status_code == 200 and 'method="post"' in r.get_data(as_text=True)
    assert client.get("/wall/1").status_code == 200
    assert client.get("/api/live/ticket").status_code == 200
    assert store.audit_entries(action="logout") == []


def test_logout_without_the_form_token_is_refused(client: FlaskClient, store: Store) -> None:
    login(client, "op")
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf": "forged"}).status_code == 400
    assert client.get("/wall/1").status_code == 200
    assert store.audit_entries(action="logout") == []


def test_logout_ends_the_session_on_the_server(client: FlaskClient, store: Store) -> None:
    login(client, "op")
    copied = client.get_cookie("session").value  # what a second tab, or a thief, still holds
    r = client.post("/logout", data={"csrf": _form_token(client)})
    assert r.status_code == 302 and r.headers["Location"] == "/login"
    assert client.get("/wall/1").status_code == 302
    assert store.audit_entries(action="logout")[0].username == "op"
    client.set_cookie("session", copied)
    assert client.get("/wall/1").status_code == 302
    assert client.get("/api/live/ticket").status_code == 401
    assert [row.revoked_reason for row in store.sessions_of("op")] == ["logout"]


def _components(node: object, kind: str) -> list[dict]:
    """Every Dash component of a type in a callback response's JSON."""
    found = []
    if isinstance(node, dict):
        if node.get("type") == kind:
            found.append(node["props"])
        for value in node.values():
            found += _components(value, kind)
    elif isinstance(node, list):
        for value in node:
            found += _components(value, kind)
    return found


def test_sign_out_on_pages_is_a_post_with_the_form_token(client: FlaskClient) -> None:
    login(client, "sup")
    body = {"output": "cc-root.children", "outputs": {"id": "cc-root", "property": "children"},
            "inputs": [{"id": "url", "property": "pathname", "value": "/supervisor"}],
            "changedPropIds": ["url.pathname"]}
    forms = _components(client.post("/_dash-update-component", json=body).get_json(), "Form")
    [form] = [f for f in forms if f.get("action") == "/logout"]  # the other one switches language
    assert (form["action"], form["method"]) == ("/logout", "POST")
    button = form["children"]["props"]
    assert button["name"] == "csrf" and button["type"] == "submit"
    assert client.post("/logout", data={"csrf": button["value"]}).status_code == 302
    assert client.get("/supervisor").status_code == 302


def test_a_new_login_gets_a_new_session(client: FlaskClient, store: Store) -> None:
    login(client, "op")
    first = client.get_cookie("session").value
    login(client, "op")
    assert len(store.sessions_of("op")) == 2
    client.set_cookie("session", first)  # the earlier session is still valid: logins do not cross
    assert client.get("/wall/1").status_code == 200


@pytest.mark.parametrize("path", ["/wall/abc", "/supervisor/extra", "/nowhere", "/wall/1/2"])
def test_paths_no_page_declares_are_not_found(client: FlaskClient, path: str) -> None:
    login(client, "adm")
    assert client.get(path).status_code == 404


def test_a_page_declares_its_permission_and_both_gates_follow_it(client: FlaskClient) -> None:
    from dash import html

    pages.register_page("/test-declared/<int:n>", "commander",
                        lambda ctx, n: html.Div(f"declared page {n} for {ctx.username}"))
    try:
        login(client, "op")
        assert client.get("/test-declared/7").status_code == 403
        login(client, "cmd")
        assert client.get("/test-declared/7").status_code == 200
        body = {"output": "cc-root.children", "outputs": {"id": "cc-root", "property": "children"},
                "inputs": [{"id": "url", "property": "pathname", "value": "/test-declared/7"}],
                "changedPropIds": ["url.pathname"]}
        assert "declared page 7 for cmd" in client.post("/_dash-update-component",
                                                        json=body).get_data(as_text=True)
    finally:
        pages._pages.pop("/test-declared/<int:n>", None)
        pages._map = None


def test_every_layout_module_declares_its_pages() -> None:
    pages.discover()
    declared = {p.template: p.permission for p in pages.registered()}
    assert declared["/wall/<int(max=9999):screen>"] == "wall"
    assert declared["/wall/activity"] == "wall"
    assert declared["/supervisor"] == "supervisor"
    assert declared["/commander"] == "commander"
    assert pages.match("/wall/activity/9")[1] == {"tiles": 9}
    assert pages.match("/wall/3/")[1] == {"screen": 3}
    assert pages.match("/wall/" + "9" * 600) is None


def test_repeated_failures_are_throttled(client: FlaskClient, store: Store) -> None:
    for _ in range(5):
        assert login(client, "op", "guess").status_code == 200
    r = login(client, "op")  # even the right password waits now
    assert r.status_code == 429 and "로그인 실패가 너무 많습니다." in r.get_data(as_text=True)
    assert store.audit_entries(action="login_throttled")
    assert login(client, "sup").status_code == 302  # other users are not locked out


def test_responses_carry_security_headers(client: FlaskClient) -> None:
    r = client.get("/login")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]


def test_login_throttle_memory_is_bounded() -> None:
    from dashboard.auth import LoginThrottle

    throttle = LoginThrottle(max_failures=5, window_s=300, max_keys=100)
    for i in range(1000):  # made-up names from many addresses
        throttle.failed(f"name-{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(throttle._failures) <= 100
    for _ in range(5):
        throttle.failed("kim", "10.9.9.9")
    assert throttle.wait_s("kim", "10.9.9.9") > 0  # the recent guesser is still held back
    assert throttle.wait_s("never-seen", "10.9.9.9") == 0 and len(throttle._failures) <= 100


def test_a_wall_that_signs_out_loses_its_year_long_cookie(client: FlaskClient, store: Store) -> None:
    token = store.create_device_token("wall-8")
    client.get(f"/device/login?token={token}")
    assert client.get_cookie("remember_token") is not None
    assert client.post("/logout", data={"csrf": _form_token(client)}).status_code == 302
    assert client.get_cookie("remember_token") is None
    assert client.get("/wall/1").status_code == 302


def test_the_login_redirect_keeps_every_query_parameter_and_survives_control_characters(
        client: FlaskClient) -> None:
    from urllib.parse import parse_qs, urlsplit

    r = client.get("/replay?t=1&x=2")
    assert r.status_code == 302
    assert parse_qs(urlsplit(r.headers["Location"]).query)["next"] == ["/replay?t=1&x=2"]
    r = client.get("/a%0Ab")  # a newline in the path must not reach the Location header (was a 500)
    assert r.status_code == 302 and "\n" not in r.headers["Location"]


def test_a_request_body_over_the_bound_is_refused_before_any_handler(client: FlaskClient) -> None:
    login(client, "sup")
    big = b"{" + b" " * (1 << 20) + b"}"
    r = client.post("/api/alarms/ack", data=big, content_type="application/json")
    assert r.status_code == 413
