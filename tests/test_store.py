"""Users, device tokens and the audit log on SQLite and on PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dashboard.store import Store


def test_users_are_stored_with_hashed_passwords(db_url: str) -> None:
    store = Store(db_url)
    store.add_user("kim", "correct horse", "supervisor")
    with store.engine.connect() as c:
        stored = c.execute(text("select password_hash from users where username='kim'")).scalar()
    assert "correct horse" not in stored and stored.startswith("$argon2")
    assert store.authenticate("kim", "correct horse").role == "supervisor"
    assert store.authenticate("kim", "wrong password") is None
    assert store.authenticate("nobody", "correct horse") is None


def test_user_rules(db_url: str) -> None:
    store = Store(db_url)
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
