"""Send to wall (issue 11 points 3 and 4): POST /api/incidents/<id>/wall on the real web app (rights,
form token, audit, timeline, hostile wall numbers), GET /api/walls/<n>/pane, and the incident
service on a real Redis under its own ACL user: a bell's automatic incident goes to bell_wall, the
pane hash and the channel notice follow every send and clear."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from alarms.config import load_alarm_config
from alarms.db import AlarmStore
from alarms.service import AlarmService
from dashboard.store import Store
from incidents import walls
from incidents.db import Actor
from incidents.service import IncidentService, make_store
from spine import channels
from spine.contract import Event
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.test_incident_api import BELL, client, login, post, settings, store  # noqa: F401 (fixtures)
from tests.test_incident_api import alarm_id as alarm_id


def _new(c: FlaskClient, token: str) -> int:
    body = {"type": "emergency_bell", **BELL, "title": "비상벨 <b>7</b>"}
    code, inc = post(c, "/api/incidents", token, body)
    assert code == 200
    return inc["id"]


def test_send_and_clear_need_command_rights_a_token_and_are_audited(
        client: FlaskClient, store: Store) -> None:  # noqa: F811
    assert client.get("/api/walls/1/pane").status_code == 401
    token = login(client, "op")
    iid = _new(client, token)
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 1})[0] == 403  # operator: no command
    client.get("/logout")
    token = login(client, "cmd")
    r = client.post(f"/api/incidents/{iid}/wall", json={"wall": 1})  # no form token
    assert r.status_code == 400
    assert client.get("/api/walls/1/pane").get_json()["pane"] is None
    code, out = post(client, f"/api/incidents/{iid}/wall", token, {"wall": 1})
    assert code == 200 and out["pane"]["wall"] == 1
    pane = client.get("/api/walls/1/pane").get_json()["pane"]
    assert pane["incident"] == iid and pane["title"] == "비상벨 <b>7</b>" and pane["priority"] == "critical"
    assert pane["cameras"][0]["camera_id"] == "vis-bupyeong-01" and 1 <= len(pane["cameras"]) <= 3
    assert client.get("/api/walls/2/pane").get_json()["pane"] is None  # only the wall it was sent to
    entry = store.audit_entries(action="incident_wall")[0]
    assert entry.username == "cmd" and entry.target == f"incident:{iid}" and '"wall":1' in entry.detail
    # clearing another wall is a refusal by the rules; clearing its own wall removes the pane
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 2, "on": False})[0] == 409
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 1, "on": False})[0] == 200
    assert client.get("/api/walls/1/pane").get_json()["pane"] is None
    assert len(store.audit_entries(action="incident_wall")) == 2
    tl = client.get(f"/api/incidents/{iid}").get_json()["timeline"]
    kinds = [(t["kind"], t["actor"], t["data"].get("wall")) for t in tl if t["kind"].startswith("wall")]
    assert kinds == [("wall", "cmd", 1), ("wall_cleared", "cmd", 1)]


def test_a_resolved_incident_leaves_the_wall_and_a_closed_one_cannot_be_sent(
        client: FlaskClient) -> None:  # noqa: F811
    token = login(client, "cmd")
    iid = _new(client, token)
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 3})[0] == 200
    assert post(client, f"/api/incidents/{iid}/state", token, {"state": "resolved", "force": True})[0] == 200
    assert client.get("/api/walls/3/pane").get_json()["pane"] is None
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 3})[0] == 409


@pytest.mark.parametrize("body", [
    {"wall": 0}, {"wall": -1}, {"wall": 10000}, {"wall": 2**63}, {"wall": "1"}, {"wall": 1.5},
    {"wall": True}, {"wall": None}, {"wall": [1]}, {}, {"wall": 1, "extra": 1}, {"wall": 1, "on": "no"},
    ["wall", 1], "1",
])
def test_hostile_wall_bodies_are_refused(client: FlaskClient, body: object) -> None:  # noqa: F811
    token = login(client, "cmd")
    iid = _new(client, token)
    code, out = post(client, f"/api/incidents/{iid}/wall", token, body)
    assert code == 400, (body, out)


def test_unknown_walls_and_incidents(client: FlaskClient) -> None:  # noqa: F811
    token = login(client, "cmd")
    iid = _new(client, token)
    assert post(client, f"/api/incidents/{iid}/wall", token, {"wall": 9999})[0] == 404  # not configured
    assert post(client, "/api/incidents/99999/wall", token, {"wall": 1})[0] == 404
    assert client.get("/api/walls/9999/pane").status_code == 404
    assert client.get("/api/walls/99999/pane").status_code == 404  # past the route's bound
    assert client.get("/api/walls/-1/pane").status_code == 404
    assert client.get("/api/walls/1x/pane").status_code == 404


def _until(cond, steps, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for s in steps:
            s()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_a_bell_goes_to_bell_wall_and_the_hash_follows(
        redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'wall.db'}"
    alarms = AlarmStore(db, load_alarm_config())
    alarm_svc = AlarmService(redis_server.url_for("alarms"), alarms, consumer="t")
    alarm_svc.start()
    st = make_store(db)
    assert st.cfg.bell_wall == 1
    svc = IncidentService(redis_server.url_for("incidents"), st)  # under the incident service's ACL user
    svc.start()
    admin = connect(redis_server.url)
    admin.delete(channels.WALL_PANES_KEY)
    sub = admin.pubsub()
    sub.subscribe(channels.INCIDENT_CHANNEL)
    notices: list[dict] = []

    def drain() -> None:
        while (m := sub.get_message(timeout=0.0)) is not None:
            if m["type"] == "message":
                notices.extend(x for x in json.loads(m["data"]).get("x", []) if x.get("t") == "wall")

    pub = Publisher(connect(redis_server.url_for("feeds")), src="bells")
    pub.event(Event(v=1, id="wall-press-1", type="bell", severity="critical", ts=int(time.time() * 1000),
                    layer="sensor", entity="bell-wall-1", lat=BELL["lat"], lon=BELL["lon"],
                    title="안심비상벨"))
    assert pub.flush()
    _until(lambda: admin.hget(channels.WALL_PANES_KEY, "1") is not None, [alarm_svc.step, svc.step, drain])
    pane = json.loads(admin.hget(channels.WALL_PANES_KEY, "1"))
    assert pane["cameras"][0]["camera_id"] == "vis-bupyeong-01" and 1 <= len(pane["cameras"]) <= 3
    iid = pane["incident"]
    assert walls.pane(st, 1)["incident"] == iid
    tl = st.timeline(iid)
    assert any(t["kind"] == "wall" and t["actor"] == "system:auto" for t in tl)
    _until(lambda: any(n["incident"] == iid and n["pane"] for n in notices), [svc.step, drain])
    walls.clear(st, iid, 1, Actor("cmd"))
    _until(lambda: admin.hget(channels.WALL_PANES_KEY, "1") is None, [svc.step, drain])
    _until(lambda: any(n["incident"] == iid and n["pane"] is None for n in notices), [drain])
    # a restart rewrites the hash from SQL
    walls.send(st, iid, 2, Actor("cmd"))
    admin.delete(channels.WALL_PANES_KEY)
    svc.rebuild_open()
    assert json.loads(admin.hget(channels.WALL_PANES_KEY, "2"))["incident"] == iid
    st.dispose()
    alarms.dispose()
