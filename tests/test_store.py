"""Users, device tokens, login sessions and the audit log on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text, update

from dashboard.store import LoginSession, Store, _now, password_hasher
from tests.webtools import FAST_HASHER


def test_users_are_stored_with_hashed_passwords(db_url: str) -> None:
    store = Store(db_url)  # production cost: argon2id, 64 MiB, 3 passes, 4 lanes
    store.add_user("kim", "correct horse", "supervisor")
    with store.engine.connect() as c:
        stored = c.execute(text("select password_hash from users where username='kim'")).scalar()
    assert "correct horse" not in stored and stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert store.authenticate("kim", "correct horse").role == "supervisor"
    assert store.authenticate("kim", "wrong password") is None
    assert store.authenticate("nobody", "correct horse") is None


def test_user_rules(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER)
    store.add_user("lee", "longenough", "operator")
    with pytest.raises(ValueError, match="exists"):
        store.add_user("lee", "longenough", "operator")
    with pytest.raises(ValueError, match="role"):
        store.add_user("park", "longenough", "janitor")
    with pytest.raises(ValueError, match="8 characters"):
        store.add_user("park", "short", "operator")
    store.set_password("lee", "anotherone")
    assert store.authenticate("lee", "anotherone")


def test_device_tokens_are_hashed_and_revocable(db_url: str) -> None:
    store = Store(db_url)
    token = store.create_device_token("wall-1")
    with store.engine.connect() as c:
        assert c.execute(text("select token_sha256 from device_tokens")).scalar() != token
    row = store.check_device_token(token)
    assert row.name == "wall-1" and row.role == "operator"
    assert store.check_device_token(token + "x") is None
    assert store.revoke_device_token("wall-1")
    assert store.check_device_token(token) is None


def test_audit_log_keeps_who_did_what(db_url: str) -> None:
    store = Store(db_url)
    store.audit("kim", "login", remote_addr="10.0.0.5")
    store.audit("kim", "view_camera", target="cam-0001")
    entries = store.audit_entries()
    assert [(e.username, e.action, e.target) for e in entries] == [
        ("kim", "view_camera", "cam-0001"), ("kim", "login", "")]
    assert store.audit_entries(action="login")[0].remote_addr == "10.0.0.5"


def test_a_cheaper_hash_is_upgraded_at_the_next_login(db_url: str) -> None:
    Store(db_url, FAST_HASHER).add_user("cho", "cho-password", "operator")
    store = Store(db_url, password_hasher(time_cost=2, memory_kib=16, parallelism=1))
    assert store.authenticate("cho", "cho-password") is not None
    with store.engine.connect() as c:
        stored = c.execute(text("select password_hash from users where username='cho'")).scalar()
    assert "m=16,t=2,p=1" in stored
    assert store.authenticate("cho", "cho-password") is not None


def test_sessions_end_with_logout_password_change_and_disabling(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER)
    store.add_user("kim", "kim-password", "supervisor")
    store.add_user("lee", "lee-password", "operator")
    a, b, c = (store.create_session("kim", "user", "10.0.0.1") for _ in range(3))
    other = store.create_session("lee", "user")
    assert len({a, b, c}) == 3 and all(len(x) >= 40 for x in (a, b, c))
    assert store.active_session(a).role == "supervisor"
    assert store.valid_sessions([a, b, c, other]) == {a, b, c, other}
    assert store.revoke_session(a, "logout")
    assert store.valid_sessions([a, b, c, other]) == {b, c, other}
    assert store.set_password("kim", "kim-password-2") == 2
    assert store.valid_sessions([a, b, c, other]) == {other}
    d = store.create_session("kim", "user")
    assert store.set_active("kim", False) == 1
    assert store.active_session(d) is None and store.authenticate("kim", "kim-password-2") is None
    assert store.set_active("kim", True) == 0
    assert store.valid_sessions([d]) == set()  # enabling again revives nothing
    assert store.authenticate("kim", "kim-password-2") is not None
    reasons = {row.id: row.revoked_reason for row in store.sessions_of("kim")}
    assert reasons == {a: "logout", b: "password_changed", c: "password_changed", d: "user_disabled"}
    assert store.valid_sessions([other]) == {other}


def test_device_sessions_end_with_their_token(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER)
    store.create_device_token("wall-1", "operator")
    store.create_device_token("wall-2", "operator")
    one, two = store.create_session("wall-1", "device"), store.create_session("wall-2", "device")
    assert store.active_session(one).kind == "device"
    assert store.revoke_device_token("wall-1")
    assert store.valid_sessions([one, two]) == {two}
    # A user named like the screen does not make the screen's session valid (kinds do not mix).
    store.add_user("wall-1", "some-password", "admin")
    assert store.valid_sessions([one]) == set()


def test_old_sessions_expire_and_last_seen_is_kept(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER, user_session_hours=1)
    store.add_user("kim", "kim-password", "operator")
    old, new = store.create_session("kim", "user"), store.create_session("kim", "user")
    with store.session() as s, s.begin():
        s.execute(update(LoginSession).where(LoginSession.id == old)
                  .values(created_at=_now() - timedelta(hours=2), last_seen=_now() - timedelta(hours=2)))
    assert store.valid_sessions([old, new]) == {new}
    with store.session() as s, s.begin():
        s.execute(update(LoginSession).where(LoginSession.id == new)
                  .values(last_seen=_now() - timedelta(minutes=5)))
    assert store.active_session(new) is not None
    [row] = [r for r in store.sessions_of("kim") if r.id == new]
    assert row.last_seen.replace(tzinfo=None) > (_now() - timedelta(minutes=1)).replace(tzinfo=None)


def test_valid_sessions_takes_any_input_without_failing(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER)
    store.add_user("kim", "kim-password", "operator")
    real = [store.create_session("kim", "user") for _ in range(3)]
    junk = ["", "x" * 10_000, "' or 1=1 --", "\x00", None, 42, b"bytes", *(f"n{i}" for i in range(1200))]
    assert store.valid_sessions([*junk, *real]) == set(real)  # 1,200+ ids: bounded IN lists
    assert store.valid_sessions(iter(real[:1])) == {real[0]}
    assert store.active_session("x" * 10_000) is None and store.active_session("") is None
    assert not store.revoke_session("no-such-session")


def test_hostile_names_are_refused_or_recorded_never_raised(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER)
    for name in ("kim\x00", "x" * 500, ""):
        assert store.authenticate(name, "whatever-password") is None
        store.audit(name, "login_failed", target="t\x00" * 200, remote_addr="1" * 200)
    rows = store.audit_entries(action="login_failed")
    assert len(rows) == 3 and all("\x00" not in r.username and len(r.target) <= 128 for r in rows)


def test_long_ended_sessions_are_pruned(db_url: str) -> None:
    store = Store(db_url, FAST_HASHER, user_session_hours=1)
    store.add_user("kim", "kim-password", "operator")
    store.create_device_token("wall-1")
    ended, expired, live = (store.create_session("kim", "user") for _ in range(3))
    screen = store.create_session("wall-1", "device")
    store.revoke_session(ended)
    long_ago = _now() - timedelta(days=100)
    with store.session() as s, s.begin():
        s.execute(update(LoginSession).where(LoginSession.id == ended).values(revoked_at=long_ago))
        s.execute(update(LoginSession).where(LoginSession.id.in_([expired, screen]))
                  .values(created_at=long_ago, last_seen=long_ago))
    assert store.prune_sessions() == 2
    left = {r.id for r in store.sessions_of("kim")} | {r.id for r in store.sessions_of("wall-1", "device")}
    assert left == {live, screen}  # a wall's session lasts a year even when the wall was off


def test_hash_cost_comes_from_the_web_settings(sqlite_url: str) -> None:
    from config.settings import WebSettings, load_settings

    assert (WebSettings().argon2_time_cost, WebSettings().argon2_memory_kib) == (3, 65536)  # production
    settings = load_settings()
    settings.database.url = sqlite_url
    settings.web = WebSettings(argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1, session_hours=2)
    store = Store.from_settings(settings)
    store.add_user("kim", "kim-password", "operator")
    with store.engine.connect() as c:
        assert "m=8,t=1,p=1" in c.execute(text("select password_hash from users")).scalar()
    assert store.user_session_max == timedelta(hours=2)
    with pytest.raises(ValueError, match="8 x argon2_parallelism"):
        WebSettings(argon2_memory_kib=8, argon2_parallelism=4)
