"""The alarm HTTP API on the real web app: who may do what (config/roles.yaml alarm_actions), the form
token on every POST, audit rows (alarm history and the app's audit log), bounded and typed input."""

from __future__ import annotations

import re
import time

import pytest
from flask.testing import FlaskClient

from alarms.config import load_alarm_config
from alarms.db import AlarmStore
from config.settings import Settings, load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store
from spine.contract import Event
from tests.webtools import FAST_HASHER

SECRET = "alarm-api-test-secret"
USERS = (("op", "operator"), ("sup", "supervisor"), ("cmd", "commander"), ("adm", "admin"),
         ("mnt", "maintenance"))


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    for name, role in USERS:
        s.add_user(name, f"{name}-password", role)
    return s


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    s = load_settings()
    s.database.url = sqlite_url  # the alarm tables live beside the users, as in the stack
    return s


@pytest.fixture
def alarms(settings: Settings) -> AlarmStore:
    a = AlarmStore(settings.database.resolved_url(), load_alarm_config())
    a.migrate()
    now = int(time.time() * 1000)

    def e(i: int, entity: str, typ: str, sev: str) -> tuple[str, Event]:
        return (f"1-{i}", Event(v=1, id=f"ev-{i}", type=typ, severity=sev, ts=now, layer="sensor",
                                entity=entity, lat=37.4, lon=126.6, title=f"<b>{entity}</b>",
                                props={"rule": "warn"}))

    a.ingest([e(1, "sen-1", "threshold", "high"), e(2, "sen-2", "threshold", "low"),
              e(3, "bell-1", "bell", "critical")])
    return a


@pytest.fixture
def client(store: Store, settings: Settings, alarms: AlarmStore) -> FlaskClient:
    return create_app(settings, store, SECRET).server.test_client()


def login(client: FlaskClient, name: str) -> str:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302
    meta = client.get("/api/alarms/meta").get_json()
    return meta["csrf"]


def ids_by_source(client: FlaskClient) -> dict[str, int]:
    return {a["source"]: a["id"] for a in client.get("/api/alarms").get_json()["alarms"]}


def test_anonymous_requests_are_refused(client: FlaskClient) -> None:
    assert client.get("/api/alarms").status_code == 401
    assert client.post("/api/alarms/ack", json={"ids": [1]}).status_code == 401


def test_list_is_ordered_and_filtered(client: FlaskClient) -> None:
    login(client, "op")
    rows = client.get("/api/alarms").get_json()["alarms"]
    assert [r["priority"] for r in rows] == ["critical", "high", "low"]  # unacknowledged, by priority
    assert rows[1]["title"] == "<b>sen-1</b>"  # JSON text: the page renders it as text, never HTML
    only = client.get("/api/alarms?priority=high,bogus&state=UNACK").get_json()["alarms"]
    assert [r["source"] for r in only] == ["sen-1"]
    assert client.get("/api/alarms/999999").status_code == 404


def test_acknowledge_needs_the_form_token_and_is_audited(client: FlaskClient, store: Store,
                                                         alarms: AlarmStore) -> None:
    token = login(client, "op")
    ids = ids_by_source(client)
    assert client.post("/api/alarms/ack", json={"ids": [ids["sen-1"]]}).status_code == 400
    assert client.post("/api/alarms/ack", json={"ids": [ids["sen-1"]]},
                       headers={"X-CSRF-Token": "forged"}).status_code == 400
    r = client.post("/api/alarms/ack", json={"ids": [ids["sen-1"], ids["sen-2"], 424242],
                                             "comment": "crew informed"},
                    headers={"X-CSRF-Token": token})
    body = r.get_json()
    assert r.status_code == 200 and {d["state"] for d in body["done"]} == {"ACKED"}
    assert body["refused"] == {"424242": "no such alarm"}
    hist = alarms.get(ids["sen-1"])["history"][0]
    assert (hist["kind"], hist["actor"], hist["reason"]) == ("ack", "op", "crew informed")
    row = store.audit_entries(action="alarm_ack")[0]
    assert row.username == "op" and "crew informed" in row.detail
    # A second acknowledgement is refused with a reason, and changes nothing.
    again = client.post("/api/alarms/ack", json={"ids": [ids["sen-1"]]}, headers={"X-CSRF-Token": token})
    assert "only an unacknowledged" in again.get_json()["refused"][str(ids["sen-1"])]


@pytest.mark.parametrize(("user", "path", "status"), [
    ("op", "/api/alarms/shelve", 403), ("cmd", "/api/alarms/ack", 403),
    ("sup", "/api/alarms/out-of-service", 403), ("adm", "/api/alarms/out-of-service", 403),
    ("op", "/api/alarms/silences", 403), ("mnt", "/api/alarms/shelve", 403),
])
def test_roles(client: FlaskClient, user: str, path: str, status: int) -> None:
    token = login(client, user)
    body = {"ids": [1], "reason": "x", "minutes": 10} if "silences" not in path else \
        {"minutes": 10, "reason": "x"}
    assert client.post(path, json=body, headers={"X-CSRF-Token": token}).status_code == status


def test_shelve_needs_a_reason_and_never_takes_critical(client: FlaskClient, alarms: AlarmStore) -> None:
    token = login(client, "sup")
    ids = ids_by_source(client)
    h = {"X-CSRF-Token": token}
    r = client.post("/api/alarms/shelve", json={"ids": [ids["sen-1"]], "minutes": 30}, headers=h)
    assert r.status_code == 400 and "reason" in r.get_json()["problems"][0]
    r = client.post("/api/alarms/shelve", json={"ids": [ids["sen-1"]], "minutes": 100000, "reason": "x"},
                    headers=h)
    assert r.status_code == 400  # beyond the bound of the request model
    r = client.post("/api/alarms/shelve", json={"ids": [ids["sen-1"]], "minutes": 600, "reason": "x"},
                    headers=h)
    assert "limited to 480 minutes" in r.get_json()["refused"][str(ids["sen-1"])]
    r = client.post("/api/alarms/shelve", json={"ids": [ids["sen-1"], ids["bell-1"]], "minutes": 30,
                                                "reason": "road works"}, headers=h)
    body = r.get_json()
    assert [d["state"] for d in body["done"]] == ["SHLVD"]
    assert "never be shelved" in body["refused"][str(ids["bell-1"])]
    shelved = client.get("/api/alarms?state=SHLVD").get_json()["alarms"]
    assert shelved[0]["shelved_by"] == "sup" and shelved[0]["shelved_until"] > time.time() * 1000
    r = client.post("/api/alarms/unshelve", json={"ids": [ids["sen-1"]]}, headers=h)
    assert r.get_json()["done"][0]["state"] == "UNACK"


def test_out_of_service_is_maintenance_only_with_a_reason(client: FlaskClient, store: Store) -> None:
    token = login(client, "mnt")
    ids = ids_by_source(client)
    h = {"X-CSRF-Token": token}
    r = client.post("/api/alarms/out-of-service", json={"ids": [ids["sen-2"]]}, headers=h)
    assert r.status_code == 400
    r = client.post("/api/alarms/out-of-service", json={"ids": [ids["sen-2"]], "reason": "sensor swap"},
                    headers=h)
    assert r.get_json()["done"][0]["state"] == "OOSRV"
    r = client.post("/api/alarms/return-to-service", json={"ids": [ids["sen-2"]]}, headers=h)
    assert r.get_json()["done"][0]["state"] == "UNACK"
    assert [e.action for e in store.audit_entries(limit=2)] == ["alarm_in_service", "alarm_oos"]


@pytest.mark.parametrize("body", [{"ids": []}, {"ids": ["x"]}, {"ids": list(range(1, 502))},
                                  {"ids": [1], "comment": "x" * 501}, {"ids": [1], "extra": 1}, [1, 2],
                                  {"ids": [2**40]}])
def test_hostile_bodies_are_refused(client: FlaskClient, body: object) -> None:
    token = login(client, "op")
    r = client.post("/api/alarms/ack", json=body, headers={"X-CSRF-Token": token})
    assert r.status_code == 400


def test_form_posts_work_like_json(client: FlaskClient) -> None:
    token = login(client, "op")
    ids = ids_by_source(client)
    r = client.post("/api/alarms/ack", data={"ids": f"{ids['sen-1']},{ids['sen-2']}", "csrf": token})
    assert r.status_code == 200 and len(r.get_json()["done"]) == 2


def test_silences_and_kpis(client: FlaskClient, store: Store) -> None:
    token = login(client, "sup")
    h = {"X-CSRF-Token": token}
    r = client.post("/api/alarms/silences", json={"source": "sen-*", "minutes": 60, "reason": "works"},
                    headers=h)
    sid = r.get_json()["id"]
    assert [s["id"] for s in client.get("/api/alarms/silences").get_json()["silences"]] == [sid]
    assert client.post(f"/api/alarms/silences/{sid}/cancel", headers=h).status_code == 200
    assert client.post(f"/api/alarms/silences/{sid}/cancel", headers=h).status_code == 404
    assert client.get("/api/alarms/silences").get_json()["silences"] == []
    w = client.get("/api/alarms/kpis?hours=2160").get_json()["window"]  # at most a week, else 24 h
    assert w["end_ms"] - w["start_ms"] == 24 * 3_600_000
    k = client.get("/api/alarms/kpis?hours=1").get_json()
    assert k["window"]["end_ms"] - k["window"]["start_ms"] == 3_600_000 and k["total"] == 3
    assert k["priorities"]["critical"]["count"] == 1 and k["eemua"]["level"]
    meta = client.get("/api/alarms/meta").get_json()
    assert meta["may"] == {"acknowledge": True, "shelve": True, "silence": True, "out_of_service": False}
