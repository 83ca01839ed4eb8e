"""A flood of bad sign-ins is throttled and writes a bounded number of audit rows.

Real waitress, real HTTP. Before: device-token guesses were never throttled and every failed
/device/login and every throttled /login wrote its own audit row (1,000 guesses, 1,000 rows).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.audit_limit import SUMMARY_ACTION, AuditSampler
from dashboard.store import Store
from tests.webtools import FAST_HASHER, Client, serve


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    s.add_user("op", "op-password", "operator")
    return s


@pytest.fixture
def port(store: Store) -> Iterator[int]:
    app = create_app(load_settings(), store, "auth-flood-secret")
    with serve(app.server, threads=4) as p:
        yield p


def rows(store: Store) -> int:
    return len(store.audit_entries(limit=100_000))


def test_1000_bad_device_logins_are_throttled_and_audited_boundedly(port: int, store: Store) -> None:
    token = store.create_device_token("wall-3")
    before = rows(store)
    client = Client(port)
    statuses = Counter(client.request("GET", f"/device/login?token=guess-{i}")[0] for i in range(1000))
    assert statuses == {401: 10, 429: 990}
    # 5 failed and 5 throttled rows written one by one; the rest are counted for a summary row.
    assert rows(store) - before <= 12
    assert len(store.audit_entries(action="device_login_failed")) == 5
    assert len(store.audit_entries(action="device_login_throttled")) == 5
    status, headers, _ = client.request("GET", f"/device/login?token={token}")
    assert status == 429 and int(headers["Retry-After"]) > 200  # the address waits out the window
    assert Client(port).request("GET", "/login")[0] == 200  # the server itself answers everyone


def test_1000_throttled_password_logins_write_a_bounded_number_of_rows(port: int, store: Store) -> None:
    client = Client(port)
    csrf = client.csrf()
    before = rows(store)
    statuses = Counter(client.request("POST", "/login", {"username": "op", "password": f"guess-{i}",
                                                         "csrf": csrf})[0] for i in range(1000))
    assert statuses == {200: 5, 429: 995}
    assert rows(store) - before <= 12
    assert len(store.audit_entries(action="login_throttled")) == 5


def test_counted_events_end_as_one_summary_row_per_window(store: Store) -> None:
    now = [1000.0]
    sampler = AuditSampler(store.audit, first=3, window_s=60, clock=lambda: now[0])
    for i in range(500):
        sampler.audit(f"name-{i % 20}", "login_failed", "10.0.0.9")
    assert len(store.audit_entries(action="login_failed")) == 3
    assert store.audit_entries(action=SUMMARY_ACTION) == []
    now[0] += 61  # the window has passed: the next event writes the summary, then itself
    sampler.audit("kim", "login_failed", "10.0.0.9")
    [summary] = store.audit_entries(action=SUMMARY_ACTION)
    assert (summary.target, summary.remote_addr) == ("login_failed", "10.0.0.9")
    assert summary.detail.startswith("497 more login_failed") and "name-3" in summary.detail
    assert len(store.audit_entries(action="login_failed")) == 4


def test_sampler_memory_is_bounded(store: Store) -> None:
    sampler = AuditSampler(store.audit, first=1, window_s=300, max_keys=100)
    for i in range(2000):  # many addresses at once
        sampler.audit("?", "device_login_failed", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(sampler._windows) <= 100
