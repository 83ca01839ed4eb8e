"""The incident service on a real Redis with the parts' own ACL users (issue 11 points 1 and 4's
path): a bell press published by a producer becomes an alarm (alarm service), then an incident
(incident service, automatically), published on the incident channel, in the open-incident hash
and as an entity of the map's "incident" layer; a web action (SQL only) reaches the same channel,
and a closed incident leaves the hash and the map."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import redis as redis_lib

from alarms.config import load_alarm_config
from alarms.db import AlarmStore
from alarms.service import AlarmService
from incidents.db import Actor
from incidents.service import IncidentService, make_store
from spine import channels
from spine.contract import Event
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis


def _until(cond, steps, timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        for s in steps:
            s()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError("condition not met in time")


def test_bell_press_to_incident_on_the_channel_and_the_map(
        redis_url: str, redis_server: EmbeddedRedis, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'stack.db'}"
    alarms = AlarmStore(db, load_alarm_config())
    alarm_svc = AlarmService(redis_server.url_for("alarms"), alarms, consumer="t")
    alarm_svc.start()
    store = make_store(db)
    svc = IncidentService(redis_server.url_for("incidents"), store)
    svc.start()
    admin = connect(redis_server.url)
    sub = admin.pubsub()
    sub.subscribe(channels.INCIDENT_CHANNEL, channels.entity_channel("incident"))
    got: list[tuple[str, dict]] = []

    def drain() -> None:
        while (m := sub.get_message(timeout=0.0)) is not None:
            if m["type"] == "message":
                got.append((m["channel"].decode(), json.loads(m["data"])))

    pub = Publisher(connect(redis_server.url_for("feeds")), src="bells")
    t0 = time.monotonic()
    pub.event(Event(v=1, id="press-1", type="bell", severity="critical", ts=int(time.time() * 1000),
                    layer="sensor", entity="bell-9", lat=37.4895, lon=126.7242, title="안심비상벨 9"))
    assert pub.flush()

    def incident_msgs() -> list[dict]:
        return [m for ch, m in got
                if ch == channels.INCIDENT_CHANNEL and m.get("t") == "incidents" and m["i"]]

    _until(lambda: bool(incident_msgs()), [alarm_svc.step, svc.step, drain])
    latency_ms = (time.monotonic() - t0) * 1000
    first = incident_msgs()[0]["i"][0]
    assert first["type"] == "emergency_bell" and first["cameras"][0]["camera_id"] == "vis-bupyeong-01"
    iid = first["id"]
    assert json.loads(admin.hget(channels.INCIDENTS_OPEN_KEY, str(iid)))["state"] == "new"
    _until(lambda: admin.hget(channels.state_key("incident"), f"incident-{iid}") is not None, [svc.step])
    ent = json.loads(admin.hget(channels.state_key("incident"), f"incident-{iid}"))
    assert ent["layer"] == "incident"
    assert ent["props"]["status"] == "new" and ent["props"]["severity"] == "critical"
    print(f"bell press -> incident on the channel: {latency_ms:.0f} ms")
    assert latency_ms < 5000

    # A web action writes SQL only; the service publishes it, and a closed incident leaves.
    store.set_state(iid, "resolved", Actor("cmd"), force=True)
    store.set_state(iid, "closed", Actor("cmd"))
    _until(lambda: admin.hget(channels.INCIDENTS_OPEN_KEY, str(iid)) is None
           and admin.hget(channels.state_key("incident"), f"incident-{iid}") is None, [svc.step, drain])
    ns = [m["n"] for ch, m in got if ch == channels.INCIDENT_CHANNEL and "n" in m]
    assert ns == sorted(ns) and len(ns) == len(set(ns))  # each outbox row once, in order
    # the incident user cannot write what is not its own
    with pytest.raises(redis_lib.exceptions.NoPermissionError):
        svc.r.hset(channels.state_key("camera"), "x", "y")
    # a restart publishes nothing twice and rebuilds the hash from SQL
    before = len(ns)
    svc2 = IncidentService(redis_server.url_for("incidents"), store)
    svc2.start()
    svc2.step()
    drain()
    assert len([m for ch, m in got if ch == channels.INCIDENT_CHANNEL and "n" in m]) == before
    assert any(m.get("t") == "resync" for ch, m in got if ch == channels.INCIDENT_CHANNEL)
    sub.close()
    store.dispose()
    alarms.dispose()


def test_the_part_runs_as_its_own_process_and_user(redis_url: str, redis_server: EmbeddedRedis,
                                                   tmp_path: Path) -> None:
    """`app.py --only incidents` as the stack starts it: its own Redis user, SQLite by DATABASE_URL."""
    import os
    import subprocess
    import sys

    db = f"sqlite:///{tmp_path / 'part.db'}"
    admin = connect(redis_server.url)
    sub = admin.pubsub()
    sub.subscribe(channels.INCIDENT_CHANNEL)
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "REDIS_URL": redis_server.url_for("incidents"), "DATABASE_URL": db,
           "CC_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen([sys.executable, str(root / "app.py"), "--only", "incidents"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        seen: list[dict] = []

        def drain() -> None:
            while (m := sub.get_message(timeout=0.05)) is not None:
                if m["type"] == "message":
                    seen.append(json.loads(m["data"]))

        _until(lambda: any(m.get("t") == "resync" for m in seen), [drain], timeout_s=30)
        store = make_store(db)  # the web's side: SQL only
        iid = store.create("fire", 37.4895, 126.7242, Actor("op"), title="공장 화재")["id"]
        _until(lambda: any(i["id"] == iid for m in seen for i in m.get("i", [])), [drain])
        store.dispose()
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        sub.close()
