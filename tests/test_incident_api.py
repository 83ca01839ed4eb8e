"""The incident HTTP API on the real web app (issue 11 points 1, 3, 5, 7): login, the form token on
every POST, rights by role (config/roles.yaml incident_actions), the audited force-resolve, bounded
and typed input, the CAP download and the after-action pages."""

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
from incidents import cap
from spine.contract import Event
from tests.webtools import FAST_HASHER

SECRET = "incident-api-test-secret"
USERS = (("op", "operator"), ("sup", "supervisor"), ("cmd", "commander"), ("adm", "admin"))
BELL = {"lat": 37.4895, "lon": 126.7242}


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    s = load_settings()
    s.database.url = sqlite_url
    return s


@pytest.fixture
def store(sqlite_url: str) -> Store:
    s = Store(sqlite_url, FAST_HASHER)
    for name, role in USERS:
        s.add_user(name, f"{name}-password", role)
    return s


@pytest.fixture
def alarm_id(settings: Settings) -> int:
    a = AlarmStore(settings.database.resolved_url(), load_alarm_config())
    a.migrate()
    now = int(time.time() * 1000)
    a.ingest([("1-1", Event(v=1, id="ev-1", type="bell", severity="critical", ts=now, layer="sensor",
                            entity="bell-7", lat=BELL["lat"], lon=BELL["lon"], title="비상벨 7"))])
    (row,) = a.list_alarms()
    a.dispose()
    return row["id"]


@pytest.fixture
def client(store: Store, settings: Settings, alarm_id: int) -> FlaskClient:
    return create_app(settings, store, SECRET).server.test_client()


def login(client: FlaskClient, name: str) -> str:
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    r = client.post("/login", data={"username": name, "password": f"{name}-password", "csrf": csrf})
    assert r.status_code == 302
    return client.get("/api/incidents/meta").get_json()["csrf"]


def post(client: FlaskClient, path: str, token: str, body: object) -> tuple[int, dict]:
    r = client.post(path, json=body, headers={"X-CSRF-Token": token})
    return r.status_code, r.get_json(silent=True) or {}


def test_anonymous_and_tokenless_requests_are_refused(client: FlaskClient) -> None:
    assert client.get("/api/incidents").status_code == 401
    assert client.post("/api/incidents", json={"type": "fire", **BELL}).status_code == 401
    login(client, "op")
    assert client.post("/api/incidents", json={"type": "fire", **BELL}).status_code == 400  # no token
    assert client.get("/incidents/1/report").status_code == 403  # operators: no reports


def test_from_alarm_in_one_action_then_work_the_sop(client: FlaskClient, store: Store, alarm_id: int) -> None:
    token = login(client, "op")
    code, inc = post(client, "/api/incidents/from-alarm", token, {"alarm_id": alarm_id})
    assert code == 200 and inc["type"] == "emergency_bell" and inc["alarms"] == [alarm_id]
    assert inc["district_name"] == "부평구" and inc["geocode"] == "2823700000"  # from config/districts.yaml
    assert inc["cameras"][0]["camera_id"] == "vis-bupyeong-01"  # the nearest, with its PTZ preset
    assert post(client, "/api/incidents/from-alarm", token, {"alarm_id": alarm_id})[0] == 409  # once
    iid = inc["id"]
    assert post(client, f"/api/incidents/{iid}/steps/call", token, {"note": "통화됨"})[0] == 200
    code, out = post(client, f"/api/incidents/{iid}/steps/situation", token, {"answer": "nope"})
    assert code == 409 and "answers" in out["error"]
    assert post(client, f"/api/incidents/{iid}/steps/situation", token, {"answer": "crime"})[0] == 200
    assert post(client, f"/api/incidents/{iid}/comment", token, {"text": "<b>용의자</b> 북쪽 도주"})[0] == 200
    one = client.get(f"/api/incidents/{iid}").get_json()
    assert one["state"] == "in_progress" and one["owner"] == "op"
    steps = {s["id"]: s for s in one["sop_view"]["steps"]}
    assert steps["share112"]["status"] == "open" and steps["share119"]["status"] == "n/a"
    assert [t["kind"] for t in one["timeline"]][:3] == ["created", "alarm_linked", "cameras"]
    assert any(t["kind"] == "comment" and t["text"] == "<b>용의자</b> 북쪽 도주" for t in one["timeline"])
    # an operator may not force, nor share, nor merge
    code, out = post(client, f"/api/incidents/{iid}/state", token, {"state": "resolved", "force": True})
    assert code == 403
    code, out = post(client, f"/api/incidents/{iid}/state", token, {"state": "resolved"})
    assert code == 409 and "share112" in out["error"]
    assert post(client, f"/api/incidents/{iid}/shares", token, {"agency": "112"})[0] == 403
    assert [e.action for e in store.audit_entries(action="incident_from_alarm")] == ["incident_from_alarm"]


def test_commander_force_resolves_and_it_is_audited(client: FlaskClient, store: Store) -> None:
    token = login(client, "cmd")
    code, inc = post(client, "/api/incidents", token, {"type": "fire", **BELL, "title": "창고 화재"})
    assert code == 200
    iid = inc["id"]
    code, out = post(client, f"/api/incidents/{iid}/state", token,
                     {"state": "resolved", "force": True, "reason": "현장 진화 완료"})
    assert code == 200 and out["state"] == "resolved"
    entry = store.audit_entries(action="incident_state")[0]
    assert entry.username == "cmd" and entry.target == f"incident:{iid}" and '"force":true' in entry.detail
    tl = client.get(f"/api/incidents/{iid}").get_json()["timeline"]
    assert any(t["kind"] == "force_resolve" and t["actor"] == "cmd" for t in tl)


def test_shares_cap_download_and_reports(client: FlaskClient, store: Store) -> None:
    token = login(client, "sup")
    iid = post(client, "/api/incidents", token, {"type": "flood", **BELL, "title": "지하차도 침수"})[1]["id"]
    code, first = post(client, f"/api/incidents/{iid}/shares", token, {"agency": "119"})
    assert code == 200 and first["msg_type"] == "Alert" and first["status"] == "sent"
    code, upd = post(client, f"/api/incidents/{iid}/shares", token, {"agency": "119", "msg_type": "Update"})
    assert code == 200 and upd["references"][0].split(",")[1] == first["identifier"]
    xml = client.get(f"/api/incidents/{iid}/shares/{upd['id']}.xml")
    assert xml.status_code == 200 and xml.mimetype == "application/xml"
    assert cap.validate(xml.get_data()) == []
    preview = client.get(f"/api/incidents/{iid}/cap?agency=119&type=Cancel")
    assert preview.status_code == 200 and cap.validate(preview.get_data()) == []
    assert client.get(f"/api/incidents/{iid}/cap?agency=999").status_code == 400
    csv_r = client.get(f"/api/incidents/{iid}/report.csv")
    assert csv_r.status_code == 200 and "share" in csv_r.get_data(as_text=True)
    page = client.get(f"/incidents/{iid}/report")
    assert page.status_code == 200 and "지하차도 침수" in page.get_data(as_text=True)
    assert client.get("/incidents/999/report").status_code == 404
    assert {e.action for e in store.audit_entries()} >= {"incident_share", "incident_report"}


def test_merge_and_assign_need_command_rights(client: FlaskClient) -> None:
    token = login(client, "op")
    a = post(client, "/api/incidents", token, {"type": "other", **BELL})[1]["id"]
    b = post(client, "/api/incidents", token, {"type": "other", **BELL})[1]["id"]
    assert post(client, f"/api/incidents/{a}/merge", token, {"into": b})[0] == 403
    client.get("/logout")
    token = login(client, "sup")
    code, out = post(client, f"/api/incidents/{a}/merge", token, {"into": b, "reason": "중복"})
    assert code == 200 and out["id"] == b
    assert post(client, f"/api/incidents/{a}/merge", token, {"into": a})[0] == 409
    assert post(client, f"/api/incidents/{b}/assign", token, {"owner": "cmd"})[1]["owner"] == "cmd"
    listed = client.get("/api/incidents").get_json()["incidents"]
    assert [i["id"] for i in listed] == [b]  # the merged one is closed
    code, out = post(client, f"/api/incidents/{b}/cameras", token, {"camera_id": "vis-songdo-01"})
    assert code == 200 and out["cameras"][-1]["camera_id"] == "vis-songdo-01"  # added by hand, ranked last
    assert post(client, f"/api/incidents/{b}/cameras", token, {"camera_id": "vis-songdo-01"})[0] == 409
    assert post(client, f"/api/incidents/{b}/cameras", token, {"camera_id": "no-such"})[0] == 404
    assert post(client, f"/api/incidents/{b}/cameras", token, {"camera_id": "../etc"})[0] == 400
    kept = post(client, f"/api/incidents/{b}/cameras/nearest", token, {})[1]["cameras"]
    assert "vis-songdo-01" in [c["camera_id"] for c in kept]  # a recompute keeps it
    out = post(client, f"/api/incidents/{b}/cameras", token, {"camera_id": "vis-songdo-01", "on": False})[1]
    assert "vis-songdo-01" not in [c["camera_id"] for c in out["cameras"]]
    near = client.get("/api/incidents/nearest-cameras?lat=37.4893&lon=126.7241&count=2").get_json()
    assert near["cameras"][0]["camera_id"] == "vis-bupyeong-01"


@pytest.mark.parametrize("body", [
    [], "x", {"type": "fire"}, {"type": "fire", "lat": 91, "lon": 126}, {"type": "FIRE", **BELL},
    {"type": "fire", **BELL, "title": "x" * 201}, {"type": "fire", **BELL, "evil": 1},
    {"type": "fire", "lat": "nan", "lon": 126}, {"type": "nope", **BELL},
])
def test_hostile_bodies_are_refused(client: FlaskClient, body: object) -> None:
    token = login(client, "op")
    code, out = post(client, "/api/incidents", token, body)
    assert code in (400, 409), out
    assert client.get("/api/incidents").get_json()["incidents"] == []


def test_unknown_ids_and_bad_paths(client: FlaskClient) -> None:
    token = login(client, "cmd")
    assert client.get("/api/incidents/99").status_code == 404
    assert client.get("/api/incidents/99999999999").status_code == 404  # past the int converter
    assert post(client, "/api/incidents/99/comment", token, {"text": "x"})[0] == 404
    assert post(client, "/api/incidents/99/steps/" + "a" * 60, token, {})[0] in (404, 405)  # no route
    assert client.get("/api/incidents/nearest-cameras?lat=x&lon=1").status_code == 400


def test_control_characters_never_fail_a_request_or_a_message(client: FlaskClient) -> None:
    token = login(client, "sup")
    body = {"type": "fire", **BELL, "title": "화재\x00\x1b[31m\ufffe"}
    code, inc = post(client, "/api/incidents", token, body)
    assert code == 200 and inc["title"] == "화재[31m"
    assert post(client, f"/api/incidents/{inc['id']}/comment", token, {"text": "\x01\x02 메모"})[0] == 200
    code, share = post(client, f"/api/incidents/{inc['id']}/shares", token, {"agency": "112"})
    assert code == 200
    xml = client.get(f"/api/incidents/{inc['id']}/shares/{share['id']}.xml").get_data()
    assert cap.validate(xml) == []
