"""The trends and replay HTTP API on the real web app: login and roles, bounded and typed queries,
server-side downsampling (a 30-day series is a few hundred points computed in SQL) with the
thresholds of config/feeds.yaml, bus delays per route, alarm rates, replay and steps."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
from flask.testing import FlaskClient

from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from history.config import load_history_config
from history.db import HistoryStore
from tests.webtools import FAST_HASHER

SECRET = "history-api-test-secret"
USERS = (("op", "operator"), ("sup", "supervisor"), ("cmd", "commander"), ("mnt", "maintenance"))
NOW = int(time.time() * 1000)
HOUR = 3_600_000
DAY = 24 * HOUR
SENSOR = "sen-water_level-01"  # flood stages 2.3 / 3.0 / 3.5 / 4.0 in config/feeds.yaml


def _state(layer: str, eid: str, ts: int, props: dict, k: str | None = None, v: float | None = None) -> dict:
    doc = {"v": 1, "layer": layer, "id": eid, "ts": ts, "seq": 1, "lat": 37.4, "lon": 126.7, "props": props}
    return {"layer": layer, "entity_id": eid, "slot": ts, "ts": ts, "lat": 37.4, "lon": 126.7, "gone": False,
            "k": k, "v": v, "doc": json.dumps(doc)}


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    s = load_settings()
    s.database.url = sqlite_url
    return s


@pytest.fixture
def history(settings: Settings) -> HistoryStore:
    h = HistoryStore(settings.database.resolved_url(), load_history_config())
    h.migrate()
    rows = []
    for i in range(30 * 24):  # 30 days of hourly water levels: 1.0 .. 1.0 + 719 / 1000
        ts = NOW - 30 * DAY + i * HOUR
        rows.append(_state("sensor", SENSOR, ts, {"kind": "water_level", "value": 1.0 + i / 1000},
                           "water_level", 1.0 + i / 1000))
    for i in range(360):  # the last hour every 10 s, rising to 3.59 m (past 관심 and 주의)
        ts = NOW - HOUR + 1 + i * 10_000  # (+1: not the hourly row's key)
        rows.append(_state("sensor", SENSOR, ts, {"kind": "water_level", "value": 2.0 + i / 225},
                           "water_level", 2.0 + i / 225))
    for i in range(60):
        ts = NOW - HOUR + i * 60_000
        rows.append(_state("air", "air-1", ts, {"pm10": 40.0, "pm25": 20.0 + i}, None, 40.0))
        for b in range(4):
            route = "7" if b < 2 else "9"
            rows.append(_state("bus", f"b{b}", ts + b, {"route": route, "delay_s": 60.0 * (b + 1)},
                               route, 60.0 * (b + 1)))
    alarms = [{"alarm_id": i, "ts": NOW - HOUR + i * 60_000, "state": "UNACK",
               "priority": "high" if i % 2 else "low", "layer": "sensor",
               "active_since": NOW - HOUR + i * 60_000, "doc": json.dumps({"id": i, "state": "UNACK"})}
              for i in range(1, 11)]
    h.write(rows, [], alarms)
    return h


@pytest.fixture
def client(sqlite_url: str, settings: Settings, history: HistoryStore) -> FlaskClient:
    store = Store(sqlite_url, FAST_HASHER)
    for name, role in USERS:
        store.add_user(name, f"{name}-password", role)
    app = create_app(settings, store, SECRET)
    app.server.config["cc_store"] = store
    return app.server.test_client()


def login(client: FlaskClient, name: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302


ROUTES = ("/api/history/series?layer=sensor&id=x", "/api/history/bus-delays", "/api/history/alarm-rates",
          f"/api/history/replay?t={NOW}", f"/api/history/steps?from={NOW - 1000}&to={NOW}")


def test_login_then_role(client: FlaskClient) -> None:
    for url in ROUTES:
        assert client.get(url).status_code == 401
    login(client, "op")  # the wall permission: trends (popups), not replay
    assert [client.get(u).status_code for u in ROUTES] == [200, 200, 200, 403, 403]
    login(client, "sup")
    assert [client.get(u).status_code for u in ROUTES] == [200] * 5
    login(client, "cmd")
    assert [client.get(u).status_code for u in ROUTES] == [200] * 5


def test_a_30_day_series_is_downsampled_in_sql_with_thresholds(client: FlaskClient) -> None:
    login(client, "sup")
    t0 = time.perf_counter()
    r = client.get(f"/api/history/series?layer=sensor&id={SENSOR}&from={NOW - 30 * DAY}&to={NOW + 1000}"
                   "&buckets=300").get_json()
    elapsed = time.perf_counter() - t0
    assert elapsed < 2.0
    pts = r["points"]
    assert 250 <= len(pts) <= 300 and r["bucket_ms"] == -(-(30 * DAY + 1000) // 300)
    assert sum(p["n"] for p in pts) == 30 * 24 + 360  # every row, each in one bucket
    assert all(p["min"] <= p["avg"] <= p["max"] for p in pts)
    assert pts[-1]["max"] == pytest.approx(2.0 + 359 / 225)
    levels = {t["name"]: t["level"] for t in r["thresholds"]}
    assert levels == {"관심": 2.3, "주의": 3.0, "경계": 3.5, "심각": 4.0}
    # The last hour at 1-minute buckets: min/avg/max of six 10-s readings each.
    r = client.get(f"/api/history/series?layer=sensor&id={SENSOR}&from={NOW - HOUR}&to={NOW}&buckets=60"
                   ).get_json()
    first = r["points"][0]
    assert first["n"] == 7  # the hourly reading at exactly from, and six 10-s ones
    assert first["min"] == pytest.approx(1.719)
    assert first["max"] == pytest.approx(2.0 + 5 / 225)
    assert first["avg"] == pytest.approx((1.719 + sum(2.0 + i / 225 for i in range(6))) / 7)


def test_air_series_by_pollutant_with_grade_bands(client: FlaskClient) -> None:
    login(client, "op")
    r = client.get(f"/api/history/series?layer=air&id=air-1&field=pm25&from={NOW - HOUR}&to={NOW}"
                   "&buckets=60").get_json()
    assert [p["avg"] for p in r["points"]] == [20.0 + i for i in range(60)]
    assert [t["band"] for t in r["thresholds"]] == [[0, 15], [16, 35], [36, 75], [76, 500]]


def test_bus_delays_per_route_and_alarm_rates(client: FlaskClient) -> None:
    login(client, "sup")
    r = client.get(f"/api/history/bus-delays?from={NOW - HOUR}&to={NOW}&buckets=10").get_json()
    assert set(r["routes"]) == {"7", "9"}
    assert {p["avg"] for p in r["routes"]["7"]} == {90.0} and {p["avg"] for p in r["routes"]["9"]} == {210.0}
    assert sum(p["n"] for p in r["routes"]["9"]) == 120
    r = client.get(f"/api/history/alarm-rates?from={NOW - HOUR}&to={NOW}&buckets=10").get_json()
    assert sum(p["n"] for p in r["priorities"]["high"]) == 5
    assert sum(p["n"] for p in r["priorities"]["low"]) == 5


def test_replay_and_steps(client: FlaskClient) -> None:
    login(client, "cmd")
    pic = client.get(f"/api/history/replay?t={NOW - 30 * 60_000}").get_json()
    assert {u["id"] for u in pic["layers"]["bus"]} == {"b0", "b1", "b2", "b3"}
    assert [u["props"]["value"] for u in pic["layers"]["sensor"]] == [pytest.approx(2.0 + 179 / 225)]
    assert {a["id"] for a in pic["alarms"]} == set(range(1, 11))
    audit = client.application.config["cc_store"].audit_entries(10, action="history_replay")
    assert [(e.username, e.target) for e in audit] == [("cmd", str(NOW - 30 * 60_000))]
    st = client.get(f"/api/history/steps?from={NOW - 30 * 60_000}&to={NOW - 29 * 60_000}").get_json()
    assert sorted(u["id"] for u in st["updates"]) == ["air-1", "b0", "b1", "b2", "b3", *[SENSOR] * 6]


@pytest.mark.parametrize("query", [
    "/api/history/series?layer=ufo&id=x",
    "/api/history/series?layer=sensor",
    "/api/history/series?layer=sensor&id=x&field=value;drop%20table",
    "/api/history/series?layer=sensor&id=x&field=A",
    f"/api/history/series?layer=sensor&id={'x' * 129}",
    f"/api/history/bus-delays?from={NOW - 40 * DAY}&to={NOW}",
    f"/api/history/bus-delays?from={NOW}&to={NOW - HOUR}",
    "/api/history/bus-delays?buckets=5",
    "/api/history/bus-delays?buckets=1e9",
    "/api/history/alarm-rates?range=1y",
    "/api/history/replay?t=-1",
    "/api/history/replay?t=abc",
    f"/api/history/steps?from={NOW - HOUR}&to={NOW}",
    f"/api/history/steps?from={NOW}&to={NOW - 1}",
])
def test_bad_queries_are_400_with_a_reason(client: FlaskClient, query: str) -> None:
    login(client, "sup")
    r = client.get(query)
    assert r.status_code == 400, query
    assert r.get_json()["problems"]


def _client_of(client: FlaskClient, name: str) -> FlaskClient:
    c = client.application.test_client()
    login(c, name)
    return c


def test_history_queries_are_bounded_per_user_and_per_process(client: FlaskClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Queries held inside SQL take the slots; one more from the same user, then one more from
    anyone, is 503 with Retry-After at once, counted; the slots come back when the queries end."""
    import dashboard.history_api as api
    from dashboard.web_counters import COUNTERS

    slots = client.application.extensions[api.SLOTS_EXTENSION]
    slots.total, slots.per_user = 3, 2
    release, entered = threading.Event(), threading.Semaphore(0)
    real = api.queries.bus_delays

    def held(*args: object, **kwargs: object) -> dict:
        entered.release()
        assert release.wait(20)
        return real(*args, **kwargs)

    monkeypatch.setattr(api.queries, "bus_delays", held)
    url = "/api/history/bus-delays?range=1h&buckets=10"
    codes: list[int] = []

    def run(c: FlaskClient) -> None:
        codes.append(c.get(url).status_code)

    sup1, sup2, cmd = _client_of(client, "sup"), _client_of(client, "sup"), _client_of(client, "cmd")
    before = COUNTERS.snapshot()
    threads = [threading.Thread(target=run, args=(c,)) for c in (sup1, sup2)]
    try:
        for t in threads:
            t.start()
        assert entered.acquire(timeout=10) and entered.acquire(timeout=10)
        third = _client_of(client, "sup").get(f"/api/history/replay?t={NOW}")  # any history route
        assert third.status_code == 503 and third.headers["Retry-After"] == "2"
        assert "per user" in third.get_json()["error"]
        threads.append(threading.Thread(target=run, args=(cmd,)))
        threads[-1].start()
        assert entered.acquire(timeout=10)
        assert slots.running() == 3
        full = _client_of(client, "op").get("/api/history/alarm-rates?range=1h&buckets=10")
        assert full.status_code == 503 and full.headers["Retry-After"] == "2"
    finally:
        release.set()
        for t in threads:
            t.join(20)
    assert codes == [200, 200, 200]
    assert slots.running() == 0
    after = COUNTERS.snapshot()
    assert after["history_busy_user"] - before.get("history_busy_user", 0) == 1
    assert after["history_busy_total"] - before.get("history_busy_total", 0) == 1
    assert sup1.get(url).status_code == 200  # the slots came back
    assert client.application.test_client().get("/api/health/web").status_code == 401
    seen = sup1.get("/api/health/web").get_json()["counters"]
    assert seen["history_busy_user"] >= 1 and seen["history_busy_total"] >= 1


def test_a_failing_query_gives_its_slot_back(client: FlaskClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboard.history_api as api

    slots = client.application.extensions[api.SLOTS_EXTENSION]
    slots.per_user = 1

    def broken(*args: object, **kwargs: object) -> dict:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(api.queries, "alarm_rates", broken)
    client.application.config["PROPAGATE_EXCEPTIONS"] = False
    login(client, "sup")
    assert client.get("/api/history/alarm-rates?range=1h").status_code == 500
    assert slots.running() == 0
    assert client.get("/api/history/bus-delays?range=1h").status_code == 200


def test_replay_steps_are_audited_once_per_10_minute_span_per_user(client: FlaskClient) -> None:
    """A replay played for 20 minutes at 1x (1,200 steps of 1 s) writes 3 rows, not 1,200: one per
    distinct 10-minute span of history touched, per user; another user's steps have their own."""
    store = client.application.config["cc_store"]
    login(client, "sup")
    start = (NOW - 2 * HOUR) // 600_000 * 600_000 + 300_000  # the middle of a span
    for i in range(0, 1200, 5):  # every 5th tick is enough to cross the same spans
        r = client.get(f"/api/history/steps?from={start + i * 1000}&to={start + (i + 1) * 1000}")
        assert r.status_code == 200
    rows = store.audit_entries(100, action="history_steps")
    spans = sorted(int(e.target) for e in rows)
    first = start // 600_000 * 600_000
    assert spans == [first, first + 600_000, first + 1_200_000]
    assert {e.username for e in rows} == {"sup"}
    # Seeking back into a span already seen writes nothing; a 10-minute step across two new spans, two.
    client.get(f"/api/history/steps?from={start}&to={start + 1000}")
    far = first - DAY
    client.get(f"/api/history/steps?from={far + 300_000}&to={far + 900_000}")
    assert len(store.audit_entries(100, action="history_steps")) == 5
    login(client, "cmd")
    client.get(f"/api/history/steps?from={start}&to={start + 1000}")
    assert [e.username for e in store.audit_entries(1, action="history_steps")] == ["cmd"]


def test_steps_audit_forgets_after_an_hour_and_is_bounded() -> None:
    from dashboard.history_api import StepsAudit

    rows: list[tuple] = []
    t = [0.0]
    audit = StepsAudit(lambda *r: rows.append(r), max_keys=50, clock=lambda: t[0])
    assert audit.touched("a", "user:a", 0, 1000, "") == 1
    assert audit.touched("a", "user:a", 1000, 2000, "") == 0
    t[0] = 3600.0
    assert audit.touched("a", "user:a", 2000, 3000, "") == 1  # an hour later: written again
    for i in range(500):
        audit.touched("a", "user:a", i * 600_000, i * 600_000 + 1, "")
    assert len(audit._seen) <= 50
