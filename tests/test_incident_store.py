"""The incident store on SQLite and PostgreSQL (issue 11 points 1, 3, 7): incidents from an alarm
(by hand and automatically, once per activation), states and resolve rules with the audited
force-resolve, SOP actions, timers and escalation in the timeline, merge, sub-incidents, the
nearest cameras, and the after-action report."""

from __future__ import annotations

import csv
import io
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from alarms.config import load_alarm_config
from alarms.db import AlarmStore
from incidents import report
from incidents.cameras import bearing_deg, distance_m, in_cone, nearest_cameras
from incidents.config import load_incident_config
from incidents.db import Actor, IncidentStore, Refused, migrate
from incidents.schema import incident_timeline, metadata
from incidents.sop import load_sops
from spine.contract import Event
from tests.conftest import PG_URL, _pg_reachable

PG_ADMIN = PG_URL.rsplit("/", 1)[0] + "/postgres"
OP, CMD = Actor("op", "10.0.0.1"), Actor("cmd", "10.0.0.2")
BELL = (37.48950, 126.72420)


@dataclass
class Cam:
    id: str
    name: str
    lat: float
    lon: float
    heading: float
    fov: float
    enabled: bool = True
    mount: str | None = None


# Around the bell: one looking at it, one nearer looking away, one far away, one on a drone.
CAMS = [Cam("c-looking", "looking", 37.48990, 126.72420, 180, 60),  # 44 m north, facing south
        Cam("c-away", "away", 37.48960, 126.72420, 0, 60),  # 11 m north, facing north
        Cam("c-far", "far", 37.50000, 126.72420, 180, 60),  # 1.2 km
        Cam("c-drone", "drone", 37.48951, 126.72421, 0, 360, mount="drone-1")]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def incident_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """SQLite in a temporary folder, or a PostgreSQL database of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'incidents.db'}"
        return
    if not _pg_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 in CI")
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"incidents_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def make_stores(url: str, cameras: list | None = None) -> tuple[AlarmStore, IncidentStore]:
    alarms = AlarmStore(url, load_alarm_config())
    alarms.migrate()
    store = IncidentStore(url, load_incident_config(), load_sops(), CAMS if cameras is None else cameras,
                          district_at=lambda lat, lon: ("bupyeong", "부평구"))
    store.migrate()
    return alarms, store


def press(alarms: AlarmStore, n: int, ts: int, entity: str = "bell-1") -> None:
    alarms.ingest([(f"1-{n}", Event(v=1, id=f"press-{entity}-{n}", type="bell", severity="critical", ts=ts,
                                    layer="sensor", entity=entity, lat=BELL[0], lon=BELL[1],
                                    title="<script>x</script> 비상벨"))], now=ts)


@pytest.fixture
def stores(incident_db: str) -> Iterator[tuple[AlarmStore, IncidentStore]]:
    a, s = make_stores(incident_db)
    yield a, s
    s.dispose()
    a.dispose()


def kinds(store: IncidentStore, iid: int) -> list[str]:
    return [t["kind"] for t in store.timeline(iid)]


def test_a_bell_alarm_opens_one_incident_per_activation(stores: tuple[AlarmStore, IncidentStore]) -> None:
    alarms, store = stores
    t0 = int(time.time() * 1000)
    press(alarms, 1, t0)
    made = store.auto_from_alarms(now=t0 + 100)
    assert len(made) == 1
    press(alarms, 2, t0 + 1000)  # pressed again while the alarm is active: the same activation
    assert store.auto_from_alarms(now=t0 + 1200) == []
    inc = store.get(made[0])
    assert (inc["type"], inc["priority"], inc["state"], inc["sop"]) == ("emergency_bell", "critical", "new",
                                                                        "emergency_bell")
    assert (inc["district_name"], inc["geocode"]) == ("부평구", "2823700000")
    assert len(inc["alarms"]) == 1
    # the SOP's automatic step put the nearest cameras on it at once: in view first, drone left out
    assert [c["camera_id"] for c in inc["cameras"]] == ["c-looking", "c-away"]
    assert inc["cameras"][0]["in_view"] and not inc["cameras"][1]["in_view"]
    assert kinds(store, made[0])[:3] == ["created", "alarm_linked", "cameras"]
    # the alarm clears (auto clear 300 s) and is pressed again: a new activation, a new incident
    alarms.tick(now=t0 + 1000 + 301_000)
    press(alarms, 3, t0 + 400_000)
    again = store.auto_from_alarms(now=t0 + 400_100)
    assert len(again) == 1 and again != made
    with pytest.raises(Refused, match="already linked"):
        store.link_alarm(made[0], inc["alarms"][0], OP)


def test_resolve_needs_the_required_steps_and_force_is_in_the_timeline(
        stores: tuple[AlarmStore, IncidentStore]) -> None:
    _, store = stores
    iid = store.create("emergency_bell", *BELL, OP, title="by hand")["id"]
    with pytest.raises(Refused, match="step call"):
        store.set_state(iid, "resolved", OP)
    store.step(iid, "call", "done", OP, note="통화 연결")
    got = store.get(iid)
    assert (got["state"], got["owner"]) == ("in_progress", "op")  # working the SOP takes it on
    store.step(iid, "situation", "done", OP, answer="false_alarm")
    view = {s["id"]: s["status"] for s in store.get(iid)["sop_view"]["steps"]}
    assert view["share112"] == "n/a" and view["false_log"] == "open"
    with pytest.raises(Refused, match="false_log"):
        store.set_state(iid, "resolved", OP)
    forced = store.set_state(iid, "resolved", CMD, reason="현장 종료 확인", force=True)
    assert forced["state"] == "resolved"
    tl = store.timeline(iid)
    fr = next(t for t in tl if t["kind"] == "force_resolve")
    assert fr["actor"] == "cmd" and fr["remote"] == "10.0.0.2" and "step false_log" in fr["data"]["missing"]
    with pytest.raises(Refused, match="cannot become"):
        store.set_state(iid, "on_hold", OP)
    store.set_state(iid, "closed", CMD)
    with pytest.raises(Refused, match="closed"):
        store.step(iid, "close_note", "done", OP)
    store.comment(iid, "사후 검토 메모", OP)  # notes after closing stay possible (after-action review)
    # the timeline only grows: the store has no statement that changes or removes a row
    rows = store.timeline(iid)
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert {"created", "cameras", "step", "state", "force_resolve"} <= {r["kind"] for r in rows}


def test_timers_escalate_once_per_stage_and_hold_expires(stores: tuple[AlarmStore, IncidentStore]) -> None:
    _, store = stores
    t0 = int(time.time() * 1000)
    iid = store.create("emergency_bell", *BELL, OP, now=t0)["id"]
    rows = len(store.outbox_after(0, 1000))
    assert store.tick(now=t0 + 29_000) == 0
    assert "step_overdue" not in kinds(store, iid)
    assert len(store.outbox_after(0, 1000)) == rows  # nothing due: nothing written, nothing published
    store.tick(now=t0 + 31_000)  # call: due 30 s, stage 1 at once (supervisor)
    store.tick(now=t0 + 32_000)
    k = kinds(store, iid)
    assert k.count("step_overdue") == 1 and k.count("escalated") == 1
    assert store.get(iid, now=t0 + 32_000)["level"] == 2
    store.tick(now=t0 + 91_000)  # stage 2 after 60 s more (commander)
    esc = [t for t in store.timeline(iid) if t["kind"] == "escalated"]
    assert [e["data"]["notify"] for e in esc] == [["supervisor"], ["commander"]]
    # on hold for a while, then back in progress by itself
    store.set_state(iid, "on_hold", OP, hold_minutes=1, now=t0 + 100_000)
    store.tick(now=t0 + 159_000)
    assert store.get(iid)["state"] == "on_hold"
    store.tick(now=t0 + 161_000)
    assert store.get(iid)["state"] == "in_progress"
    assert store.timeline(iid)[-1]["text"] == "hold expired"


def test_merge_sub_incidents_and_priority(stores: tuple[AlarmStore, IncidentStore]) -> None:
    alarms, store = stores
    t0 = int(time.time() * 1000)
    press(alarms, 1, t0, "bell-a")
    press(alarms, 2, t0, "bell-b")
    a, b = store.auto_from_alarms(now=t0)
    store.set_priority(b, "high", CMD, "test")
    kid = store.create("fire_119_dispatch", *BELL, OP, parent_id=a)["id"]
    merged = store.merge(a, b, CMD, reason="같은 현장")
    assert merged["id"] == b and merged["priority"] == "critical"  # the higher priority wins
    assert len(merged["alarms"]) == 2
    src = store.get(a)
    assert (src["state"], src["merged_into"]) == ("closed", b)
    assert store.get(kid)["parent_id"] == b
    with pytest.raises(Refused, match="sub-incident"):  # an open sub-incident blocks resolving
        store.set_state(b, "resolved", CMD, force=False)
    assert "merged_in" in kinds(store, b) and "merged" in kinds(store, a)
    with pytest.raises(Refused, match="only open incidents"):
        store.merge(a, b, CMD)


def test_action_steps_request_the_drone_and_prepare_shares(stores: tuple[AlarmStore, IncidentStore]) -> None:
    _, store = stores
    iid = store.create("fire", *BELL, OP)["id"]
    r = store.step(iid, "share119", "done", OP)
    assert r["result"]["share"]["agency"] == "119" and r["result"]["share"]["status"] == "draft"
    assert store.step(iid, "drone", "done", OP)["result"] == {"drone": "requested"}
    payloads = [p for _, p in store.outbox_after(0, 1000)]
    assert any('"drone_request"' in p for p in payloads)
    shares = store.shares(iid)
    sent = store.send_share(iid, shares[0]["id"], CMD)
    assert sent["status"] == "sent"
    with pytest.raises(Refused, match="already sent"):
        store.send_share(iid, shares[0]["id"], CMD)


def test_the_schema_matches_the_migration(incident_db: str) -> None:
    engine = sa.create_engine(incident_db)
    migrate(engine)
    insp = sa.inspect(engine)
    for table in metadata.sorted_tables:
        cols = {c["name"] for c in insp.get_columns(table.name)}
        assert cols == {c.name for c in table.columns}, table.name
    engine.dispose()
    assert incident_timeline.name == "incident_timeline"


def test_nearest_cameras_rank_view_cone_and_preset() -> None:
    cfg = load_incident_config()
    assert distance_m(37.0, 127.0, 37.0, 127.0) == 0
    assert abs(distance_m(37.0, 127.0, 37.001, 127.0) - 111.2) < 0.5
    assert abs(bearing_deg(37.0, 127.0, 37.001, 127.0) - 0) < 0.01
    assert abs(bearing_deg(37.0, 127.0, 37.0, 127.001) - 90) < 0.01
    assert in_cone(37.0, 127.0, 0, 60, 80, 37.0005, 127.0)  # 56 m straight ahead
    assert not in_cone(37.0, 127.0, 180, 60, 80, 37.0005, 127.0)  # behind
    assert not in_cone(37.0, 127.0, 0, 60, 80, 37.001, 127.0)  # ahead but past the cone's reach
    assert in_cone(37.0, 127.0, 350, 30, 80, 37.0005, 127.00005)  # across north (wrap-around)
    ranked = nearest_cameras(*BELL, CAMS, cfg, count=5)
    assert [r.camera_id for r in ranked] == ["c-looking", "c-away"]  # c-far outside 1 km, drone left out
    assert nearest_cameras(*BELL, CAMS, cfg, count=1)[0].camera_id == "c-looking"
    # a PTZ preset configured for the spot (config/incidents.yaml) counts as seeing it
    preset_cam = Cam("vis-bupyeong-01", "ptz", 37.4893, 126.7240, 135, 70)
    got = nearest_cameras(37.4890, 126.7246, [*CAMS, preset_cam], cfg, count=5)
    assert got[0].camera_id == "vis-bupyeong-01" and got[0].preset == "3"


def test_after_action_report_csv_and_html(stores: tuple[AlarmStore, IncidentStore]) -> None:
    alarms, store = stores
    t0 = int(time.time() * 1000)
    press(alarms, 1, t0)
    (iid,) = store.auto_from_alarms(now=t0)
    # a formula, markup, and a NUL (PostgreSQL refuses it in text)
    store.comment(iid, "=HYPERLINK(\"http://x\") <img src=x onerror=alert(1)>\x00\x07", OP)
    store.step(iid, "call", "done", OP)
    store.step(iid, "situation", "done", OP, answer="crime")
    store.step(iid, "share112", "done", OP)
    store.share(iid, "112", CMD, "Update", note="추가 영상")
    data = report.collect(store, iid)
    table = list(csv.reader(io.StringIO(report.to_csv(data).lstrip("\ufeff"))))
    sections = {r[0] for r in table[1:]}
    assert {"incident", "alarm", "sop_step", "camera", "share", "timeline"} <= sections
    comment = next(r for r in table if r[0] == "timeline" and r[2] == "comment")
    assert comment[4].startswith("'=")  # a formula is defused for spreadsheets
    step = next(r for r in table if r[0] == "sop_step" and "step=situation" in r[5])
    assert "answer=crime" in step[5] and step[3] == "op"
    assert [r[2] for r in table if r[0] == "share"] == ["Alert", "Update"]
    page = report.to_html(data)
    assert "<img" not in page and "<script>x" not in page and "&lt;img" in page
    assert "상황 종료 보고서" in page and "<script" not in page


def test_the_queue_is_ordered_before_its_limit(stores: tuple[AlarmStore, IncidentStore]) -> None:
    """Medium incidents opened first, then a critical one: a list of 3 holds the critical one first,
    then the oldest of the rest (ordered in SQL before the limit, not after)."""
    _, store = stores
    t0 = 1_800_000_000_000
    medium = [store.create("fine_dust", *BELL, OP, title=f"m{i}", now=t0 + i)["id"] for i in range(6)]
    crit = store.create("emergency_bell", *BELL, OP, title="c", now=t0 + 100)["id"]
    got = [i["id"] for i in store.list(limit=3)]
    assert got == [crit, medium[0], medium[1]]


def test_agency_links_are_stored_and_revoked_once(stores: tuple[AlarmStore, IncidentStore]) -> None:
    """The revocation the web relies on (incidents/db.py): one row per link, revoked once, by whom;
    another incident's key is not found; an expired link has nothing left to revoke."""
    _, store = stores
    t0 = int(time.time() * 1000)
    cmd = Actor("cmd", "127.0.0.1")
    a = store.create("emergency_bell", BELL[0], BELL[1], cmd, title="a")["id"]
    b = store.create("emergency_bell", BELL[0], BELL[1], cmd, title="b")["id"]
    store.agency_link(a, "112", t0 + 600_000, cmd, now=t0, key="k-live")
    store.agency_link(a, "119", t0 + 1_000, cmd, now=t0, key="k-short")
    store.agency_link(b, "112", t0 + 600_000, cmd, now=t0, key="k-other")
    with pytest.raises(Refused):
        store.agency_link(a, "112", t0 + 600_000, cmd, key="")
    with pytest.raises(Refused, match="no such agency link"):
        store.revoke_agency_link(a, "k-other", Actor("sup", "10.0.0.2"))
    store.revoke_agency_link(a, "k-live", Actor("sup", "10.0.0.2"), now=t0 + 5_000)
    with pytest.raises(Refused, match="already revoked by sup"):
        store.revoke_agency_link(a, "k-live", cmd)
    with pytest.raises(Refused, match="expired"):
        store.revoke_agency_link(a, "k-short", cmd, now=t0 + 2_000)
    got = {x["key"]: (x["status"], x["revoked_by"]) for x in store.agency_links(a, now=t0 + 6_000)}
    assert got == {"k-live": ("revoked", "sup"), "k-short": ("expired", None)}
    assert store.agency_link_row("k-other")["revoked_ts"] is None
    assert store.agency_link_row("x" * 40) is None and store.agency_link_row("nope") is None
    last = store.timeline(a)[-1]
    assert last["kind"] == "share" and last["data"]["revoked"] is True and last["remote"] == "10.0.0.2"


def test_migration_0003_upgrades_a_database_with_incidents(tmp_path: Path) -> None:
    """A database at 0002 with an incident in it gains the links table; downgrade and upgrade again."""
    from alembic import command
    from alembic.config import Config

    from incidents.db import MIGRATIONS, VERSION_TABLE

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
        conn.execute(sa.text(
            "INSERT INTO incidents (type, title, description, priority, state, lat, lon, geocode, level, "
            "opened_ts, updated_ts, created_by) VALUES ('x', 't', '', 'low', 'new', 37.4, 126.7, "
            "'2800000000', 0, 1, 1, 'cmd')"))
    assert "incident_agency_links" not in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
    assert "incident_agency_links" in sa.inspect(engine).get_table_names()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
        command.upgrade(cfg, "head")
        assert conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar() == "0003"
        assert conn.execute(sa.text("SELECT count(*) FROM incidents")).scalar() == 1
    engine.dispose()
