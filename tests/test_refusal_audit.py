"""Refusal audit rows are sampled (dashboard/web_counters.py): a signed-in client that repeats a
refused request writes one row per (principal, reason, path prefix) and minute, the rest counted
(GET /api/health/web) and summed up in one summary row when the minute has closed."""

from __future__ import annotations

import re

import pytest
from flask.testing import FlaskClient
from sqlalchemy import text

from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.audit_limit import SUMMARY_ACTION
from dashboard.store import Store
from dashboard.web_counters import EXTENSION, RefusalSampler, WebCounters, path_prefix
from tests.webtools import FAST_HASHER

SECRET = "refusal-audit-test-secret"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _sampler(max_keys: int = 10_000) -> tuple[RefusalSampler, list[tuple], Clock, WebCounters]:
    rows: list[tuple] = []
    clock = Clock()
    counters = WebCounters()
    s = RefusalSampler(lambda *row: rows.append(row), max_keys=max_keys, clock=clock, counters=counters)
    return s, rows, clock, counters


def test_first_refusal_of_a_minute_is_a_row_the_rest_counted_then_summed_up() -> None:
    s, rows, clock, counters = _sampler()
    for i in range(100):
        s.refused("police", "user:police", "refused", "role without pages", "/api/", f"/api/x{i}", "10.0.0.1")
    assert rows == [("police", "refused", "/api/x0", "10.0.0.1", "role without pages")]
    assert counters.snapshot() == {"refusals": 100, "refusal_rows": 1, "refusals_suppressed": 99}
    # Another reason or prefix is another key: its own first row.
    s.refused("police", "user:police", "refused", "role without pages", "/video/", "/video/c.mjpg", "10.9")
    assert len(rows) == 2
    # The minute closes: the next row of the key writes the summary first, then the new minute's row.
    clock.t += 61
    s.refused("police", "user:police", "refused", "role without pages", "/api/", "/api/again", "10.0.0.1")
    summary, again = rows[2], rows[3]
    assert summary[1] == SUMMARY_ACTION and summary[2] == "refused /api/" and summary[3] == "10.0.0.1"
    assert summary[4].startswith("99 more refused of user:police (role without pages) under /api/ within 60")
    assert "/api/x1" in summary[4] and "/api/x99" not in summary[4]  # a few targets, bounded
    assert again[2] == "/api/again"
    assert counters.get("refusal_summaries") == 1


def test_a_closed_minute_is_summed_up_by_a_sweep_without_its_key() -> None:
    s, rows, clock, _ = _sampler()
    for _ in range(3):
        s.refused("a", "user:a", "agency_refused", "revoked", "/agency/", "incident:1")
    clock.t += 60
    s.sweep()
    assert [r[1] for r in rows] == ["agency_refused", SUMMARY_ACTION]
    assert rows[1][4].startswith("2 more agency_refused of user:a (revoked)")
    s.sweep()
    assert len(rows) == 2  # once


def test_keys_are_bounded_and_paths_cannot_make_new_ones() -> None:
    assert path_prefix("/api/alarms") == "/api/" and path_prefix("/video/x.mjpg") == "/video/"
    assert path_prefix("/abc1/x") == path_prefix("/abc2") == path_prefix("/") == "/*"
    s, rows, _, _ = _sampler(max_keys=100)
    for i in range(1000):
        s.refused("u", f"user:u{i}", "refused", "role without pages", "/*", f"/p{i}")
        s.refused("u", f"user:u{i}", "refused", "role without pages", "/*", f"/p{i}")
    assert len(s._minutes) <= 100
    s.flush()
    written = sum(1 for r in rows if r[1] == "refused")
    summaries = sum(int(r[4].split()[0]) for r in rows if r[1] == SUMMARY_ACTION)
    assert written == 1000 and summaries == 1000  # nothing lost: each second refusal is in a summary


@pytest.fixture
def app_client(sqlite_url: str) -> tuple[object, Store]:
    store = Store(sqlite_url, FAST_HASHER)
    store.add_user("police", "police-password", "agency_112")
    store.add_user("op", "op-password", "operator")
    settings: Settings = load_settings()
    settings.database.url = sqlite_url
    return create_app(settings, store, SECRET), store


def _login(c: FlaskClient, name: str) -> None:
    page = c.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert c.post("/login", data={"username": name, "password": f"{name}-password",
                                  "csrf": csrf}).status_code == 302


def test_the_guard_writes_one_row_a_minute_for_a_repeating_client(app_client: tuple[object, Store]) -> None:
    app, store = app_client
    c = app.server.test_client()  # type: ignore[attr-defined]
    _login(c, "police")
    for i in range(40):
        assert c.get(f"/api/alarms?i={i}").status_code == 403
        assert c.get(f"/no-such-{i}").status_code == 403
    with store.engine.connect() as conn:
        refused = conn.execute(text("SELECT target, detail FROM audit_log WHERE action = 'refused'")).all()
    assert sorted(refused) == [("/api/alarms", "role without pages"), ("/no-such-0", "role without pages")]
    app.server.extensions[EXTENSION].flush()  # type: ignore[attr-defined]
    with store.engine.connect() as conn:
        summed = conn.execute(text("SELECT target, detail FROM audit_log WHERE action = :a"),
                              {"a": SUMMARY_ACTION}).all()
    assert sorted(t for t, _ in summed) == ["refused /*", "refused /api/"]
    assert all(d.startswith("39 more refused of user:police") for _, d in summed)
    op = app.server.test_client()  # type: ignore[attr-defined]
    _login(op, "op")
    counters = op.get("/api/health/web").get_json()["counters"]
    assert counters["refusals_suppressed"] >= 78 and counters["refusal_summaries"] >= 2
    assert c.get("/api/health/web").status_code == 403  # an agency role: refused like every API
