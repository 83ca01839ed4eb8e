"""Access ends when it should, over real HTTP against the web server waitress runs.

A copy of a session cookie (a second tab, a shared kiosk, a thief) is replayed after logout, after
`app.py user passwd`, `user disable` and `device-token revoke` run as real CLI processes: every
page, API and ticket refuses it within 5 s, and the CLI changes are in the audit log as
"cli:<os user>".
"""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from tests.webtools import FAST_HASH_ENV, FAST_HASHER, Client, serve

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sessions-http-secret"


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'web.db'}"


@pytest.fixture
def store(db: str) -> Store:
    s = Store(db, FAST_HASHER)
    s.add_user("op", "op-password", "operator")
    s.add_user("sup", "sup-password", "supervisor")
    return s


@pytest.fixture
def port(store: Store) -> Iterator[int]:
    app = create_app(load_settings(), store, SECRET)
    with serve(app.server, threads=8) as p:
        yield p


def cli(db: str, *args: str, stdin: str = "") -> str:
    env = {**os.environ, **FAST_HASH_ENV, "DATABASE_URL": db}
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), *args], input=stdin, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def refused_within(client: Client, cookie: str, seconds: float = 5.0) -> float:
    """Seconds until a replayed cookie opens neither a page nor a ticket (fails after `seconds`)."""
    start = time.monotonic()
    while True:
        page, _, _ = client.request("GET", "/wall/1", cookie=cookie)
        ticket, _, _ = client.request("GET", "/api/live/ticket", cookie=cookie)
        if page == 302 and ticket == 401:
            return time.monotonic() - start
        assert time.monotonic() - start < seconds, f"still served: page {page}, ticket {ticket}"
        time.sleep(0.2)


def audited(store: Store, action: str) -> list[tuple[str, str]]:
    return [(e.username, e.target) for e in store.audit_entries(action=action)]


def signed_in(port: int, name: str) -> tuple[Client, str]:
    client = Client(port)
    assert client.login(name, f"{name}-password") == 302
    assert client.request("GET", "/wall/1")[0] == 200
    assert client.request("GET", "/api/live/ticket")[0] == 200
    return client, client.cookie_header()


def test_logout_post_ends_the_session_for_every_copy_of_the_cookie(port: int, store: Store) -> None:
    client, copied = signed_in(port, "op")
    assert client.request("GET", "/logout")[0] == 200  # asks, does not sign out
    assert client.request("GET", "/wall/1", cookie=copied)[0] == 200
    assert client.request("POST", "/logout", {})[0] == 400  # no form token
    assert client.request("GET", "/wall/1", cookie=copied)[0] == 200
    status, headers, _ = client.request("POST", "/logout", {"csrf": client.csrf("/logout")})
    assert status == 302 and headers["Location"] == "/login"
    assert refused_within(client, copied) < 1.0  # the next request, not a cookie expiry
    assert audited(store, "logout") == [("op", "")]


def test_cli_password_change_ends_every_session_of_the_user(port: int, store: Store, db: str) -> None:
    first, first_cookie = signed_in(port, "op")
    second, second_cookie = signed_in(port, "op")
    other, other_cookie = signed_in(port, "sup")
    out = cli(db, "user", "passwd", "op", "--password-stdin", stdin="a-new-password\n")
    assert "2 session(s) ended" in out
    assert refused_within(first, first_cookie) < 5.0
    assert refused_within(second, second_cookie) < 5.0
    assert other.request("GET", "/wall/1", cookie=other_cookie)[0] == 200  # another user keeps theirs
    assert first.login("op", "op-password") == 200  # the old password is gone
    assert first.login("op", "a-new-password") == 302
    assert audited(store, "user_passwd") == [(f"cli:{getpass.getuser()}", "op")]


def test_cli_disable_ends_sessions_and_refuses_logins_until_enabled(port: int, store: Store, db: str) -> None:
    client, copied = signed_in(port, "op")
    cli(db, "user", "disable", "op")
    assert refused_within(client, copied) < 5.0
    status, _, page = client.request("POST", "/login", {"username": "op", "password": "op-password",
                                                         "csrf": client.csrf()})
    assert status == 200 and "사용자 이름 또는 비밀번호가 틀렸습니다." in page  # Korean by default
    cli(db, "user", "enable", "op")
    assert client.request("GET", "/wall/1", cookie=copied)[0] == 302  # enabling revives no session
    assert client.login("op", "op-password") == 302
    actor = f"cli:{getpass.getuser()}"
    assert audited(store, "user_disable") == [(actor, "op")]
    assert audited(store, "user_enable") == [(actor, "op")]


def test_cli_token_revocation_ends_the_screens_sessions(port: int, store: Store, db: str) -> None:
    out = cli(db, "device-token", "create", "wall-9")
    token = re.search(r"token=([A-Za-z0-9_-]+)", out).group(1)
    screen = Client(port)
    status, _, _ = screen.request("GET", f"/device/login?token={token}&next=/wall/1")
    assert status == 302 and "remember_token" in screen.cookies
    assert screen.request("GET", "/api/live/ticket")[0] == 200
    full = screen.cookie_header()
    after_reboot = f"remember_token={screen.cookies['remember_token']}"  # the year-long cookie alone
    assert screen.request("GET", "/wall/1", cookie=after_reboot)[0] == 200
    cli(db, "device-token", "revoke", "wall-9")
    assert refused_within(screen, full) < 5.0
    assert refused_within(screen, after_reboot) < 5.0
    assert screen.request("GET", f"/device/login?token={token}")[0] == 401
    actor = f"cli:{getpass.getuser()}"
    assert audited(store, "device_token_create") == [(actor, "wall-9")]
    assert audited(store, "device_token_revoke") == [(actor, "wall-9")]
    assert [s.revoked_reason for s in store.sessions_of("wall-9", "device")] == ["token_revoked"]
