"""The incident store: SQL engines and migrations, and every write (create, state, SOP steps, merge,
cameras, shares) with its timeline rows and one outbox row, in one transaction.

Like the alarm store (alarms/db.py, whose engine set-up this reuses): SQLite writers BEGIN
IMMEDIATE, PostgreSQL locks the incident rows it changes (SELECT ... FOR UPDATE) and the outbox
until commit, so the incident service (incidents/service.py) publishes committed changes in order
and never before they are in SQL. The web writes here and never publishes.

The timeline is append-only: every action, comment, state change, step, escalation and share is a
row with who, when (epoch ms, UTC) and from where; nothing updates or deletes a timeline row.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from alarms.db import make_engine, migrate_tables
from alarms.schema import alarms as alarm_table
from incidents import cap, sop
from incidents.cameras import nearest_cameras
from incidents.config import IncidentConfig
from incidents.schema import (
    incident_agency_links,
    incident_alarms,
    incident_cameras,
    incident_outbox,
    incident_shares,
    incident_steps,
    incident_timeline,
    incidents,
)

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "incidents_alembic_version"
RETRIES = 5
MANUAL_RANK = 100  # cameras added by hand rank after any recomputed nearest list (1..32)
STATES = ("new", "in_progress", "on_hold", "resolved", "closed")
OPEN_STATES = ("new", "in_progress", "on_hold")
STATE_NAMES = {
    "new": "신규",
    "in_progress": "처리 중",
    "on_hold": "보류",
    "resolved": "해결",
    "closed": "종결",
}
# Allowed moves; resolving also needs the SOP's required steps (or the force_resolve right).
MOVES = {
    "new": {"in_progress", "on_hold", "resolved"},
    "in_progress": {"on_hold", "resolved"},
    "on_hold": {"in_progress", "resolved"},
    "resolved": {"closed", "in_progress"},
    "closed": set(),
}
State = Literal["new", "in_progress", "on_hold", "resolved", "closed"]


def now_ms() -> int:
    return int(time.time() * 1000)


class Refused(Exception):
    """An action the rules do not allow now; the message says why (shown to the operator)."""


class NotFound(Refused):
    pass


# ---- migrations ---------------------------------------------------------------------------------
def migrate(engine: Engine) -> None:
    """Bring the incident tables to the latest migration (idempotent; every service start)."""
    migrate_tables(engine, MIGRATIONS, VERSION_TABLE)


@dataclass
class Actor:
    name: str = "system"
    remote: str = ""


SYSTEM = Actor()


@dataclass
class _Tx:
    conn: Connection
    now: int
    dirty: dict[int, dict] = field(default_factory=dict)
    timeline: list[dict] = field(default_factory=list)
    notices: list[dict] = field(default_factory=list)  # e.g. escalations, drone requests

    def log(self, inc: dict, kind: str, actor: Actor, text: str = "", **data: Any) -> None:
        self.timeline.append(
            {
                "incident_id": inc["id"],
                "ts": self.now,
                "kind": kind,
                "actor": cap.clean(actor.name, 80),
                "text": cap.clean(text, 2000),
                "data": _json(data),
                "remote": cap.clean(actor.remote, 64),
            }
        )
        inc["updated_ts"] = self.now
        self.dirty[inc["id"]] = inc


_COLS = [c.name for c in incidents.columns if c.name != "id"]


class IncidentStore:
    def __init__(
        self,
        url: str,
        cfg: IncidentConfig,
        sops: dict[str, sop.Sop],
        cameras: list[Any] | None = None,
        district_at: Callable[[float, float], tuple[str, str] | None] | None = None,
        engine: Engine | None = None,
    ) -> None:
        self.url = url
        self.cfg = cfg
        self.sops = sops
        self.cameras = cameras or []
        self.district_at = district_at or _district_at
        self.engine = engine or make_engine(url)
        self.pg = self.engine.dialect.name == "postgresql"
        self.reader = self.engine if self.pg or engine is not None else make_engine(url, writer=False)

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    # -- the transaction frame ------------------------------------------------
    @contextmanager
    def _tx(self, now: int | None = None) -> Iterator[_Tx]:
        with self.engine.begin() as conn:
            tx = _Tx(conn, now or now_ms())
            yield tx
            self._flush(tx)

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        for attempt in range(RETRIES):
            try:
                return fn()
            except (IntegrityError, OperationalError):
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        return None

    def _flush(self, tx: _Tx) -> None:
        conn = tx.conn
        for inc in tx.dirty.values():
            conn.execute(
                incidents.update().where(incidents.c.id == inc["id"]).values({c: inc[c] for c in _COLS})
            )
        if tx.timeline:
            conn.execute(incident_timeline.insert(), tx.timeline)
        if tx.dirty or tx.notices:
            if self.pg:  # outbox ids visible in commit order (the publisher's cursor never skips one)
                conn.exec_driver_sql("LOCK TABLE incident_outbox IN SHARE ROW EXCLUSIVE MODE")
            docs = [self._doc(conn, inc) for inc in tx.dirty.values()]
            payload = {"t": "incidents", "ts": tx.now, "i": docs, "x": tx.notices}
            conn.execute(
                incident_outbox.insert(), {"ts": tx.now, "payload": msgspec.json.encode(payload).decode()}
            )

    def _row(self, conn: Connection, incident_id: int) -> dict:
        q = sa.select(incidents).where(incidents.c.id == incident_id)
        if self.pg:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return dict(row._mapping)

    # -- documents ------------------------------------------------
    def _doc(self, conn: Connection, inc: dict) -> dict:
        t = self.cfg.types.get(inc["type"])
        cams = conn.execute(
            sa.select(incident_cameras)
            .where(incident_cameras.c.incident_id == inc["id"])
            .order_by(incident_cameras.c.rank)
        ).all()
        alarm_ids = (
            conn.execute(
                sa.select(incident_alarms.c.alarm_id)
                .where(incident_alarms.c.incident_id == inc["id"])
                .order_by(incident_alarms.c.linked_ts)
            )
            .scalars()
            .all()
        )
        return {
            **{k: inc[k] for k in ("id", *_COLS)},
            "type_label": t.label if t else inc["type"],
            "state_name": STATE_NAMES[inc["state"]],
            "alarms": sorted(set(alarm_ids)),
            "cameras": [
                {
                    "camera_id": c.camera_id,
                    "rank": c.rank,
                    "distance_m": c.distance_m,
                    "in_view": bool(c.in_view),
                    "preset": c.preset,
                }
                for c in cams
            ],
        }

    def _records(self, conn: Connection, incident_id: int) -> tuple[dict[str, sop.Record], dict[str, int]]:
        recs: dict[str, sop.Record] = {}
        alerted: dict[str, int] = {}
        for r in conn.execute(sa.select(incident_steps).where(incident_steps.c.incident_id == incident_id)):
            alerted[r.step_id] = r.alerted
            if r.status in ("done", "skipped"):
                recs[r.step_id] = sop.Record(r.status, r.ts, r.actor or "", r.answer, r.note or "")
        return recs, alerted

    def sop_view(self, conn: Connection, inc: dict, now: int) -> dict | None:
        s = self.sops.get(inc["sop"] or "")
        if s is None:
            return None
        recs, _ = self._records(conn, inc["id"])
        started = inc["sop_started_ts"] or inc["opened_ts"]
        views = sop.evaluate(s, recs, started, now)
        steps = []
        for v in views:
            st = s.step(v.id)
            assert st is not None
            steps.append(
                {
                    "id": v.id,
                    "order": v.order,
                    "title": st.title,
                    "kind": st.kind,
                    "required": st.required,
                    "role": st.role,
                    "detail": st.detail,
                    "action": st.action,
                    "auto": st.auto,
                    "question": st.question,
                    "answers": [a.model_dump() for a in st.answers],
                    "status": v.status,
                    "opened_ts": v.opened_ts,
                    "due_ts": v.due_ts,
                    "overdue": v.overdue,
                    "level": v.level,
                    "answer": v.answer,
                    "done_ts": v.done_ts,
                    "actor": v.actor,
                    "note": recs[v.id].note if v.id in recs else "",
                }
            )
        return {
            "id": s.id,
            "title": s.title,
            "description": s.description,
            "steps": steps,
            "missing_required": sop.missing_required(s, recs, started, now),
        }

    # -- create ------------------------------------------------
    def create(
        self,
        type_: str,
        lat: float,
        lon: float,
        actor: Actor,
        title: str = "",
        description: str = "",
        priority: str | None = None,
        parent_id: int | None = None,
        alarm_id: int | None = None,
        now: int | None = None,
    ) -> dict:
        if type_ not in self.cfg.types:
            raise Refused(f"unknown incident type {type_!r}")

        def run() -> dict:
            with self._tx(now) as tx:
                alarm = self._alarm(tx.conn, alarm_id) if alarm_id is not None else None
                if alarm is not None and self._linked(tx.conn, alarm):
                    raise Refused(
                        f"alarm {alarm_id} is already linked to incident {self._linked(tx.conn, alarm)}"
                    )
                inc = self._insert(
                    tx,
                    type_,
                    lat,
                    lon,
                    actor,
                    title or (alarm or {}).get("title") or "",
                    description,
                    priority,
                    parent_id,
                )
                if alarm is not None:
                    self._link(tx, inc, alarm, actor)
                self._advance(tx, inc)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def create_from_alarm(
        self, alarm_id: int, actor: Actor, type_: str | None = None, now: int | None = None
    ) -> dict:
        """One action: the alarm's point, title and priority; the type configured for its rule."""
        with self.reader.connect() as conn:
            alarm = self._alarm(conn, alarm_id)
        if alarm is None:
            raise NotFound(f"no alarm {alarm_id}")
        if alarm["lat"] is None or alarm["lon"] is None:
            raise Refused(f"alarm {alarm_id} has no position; open the incident by hand on the map")
        t = type_ or self.cfg.auto_type(alarm["rule"]) or "other"
        prio = alarm["priority"] if alarm["priority"] in cap.GRADES else None
        return self.create(
            t,
            alarm["lat"],
            alarm["lon"],
            actor,
            title=alarm["title"],
            priority=prio,
            alarm_id=alarm_id,
            now=now,
        )

    def _insert(
        self,
        tx: _Tx,
        type_: str,
        lat: float,
        lon: float,
        actor: Actor,
        title: str,
        description: str,
        priority: str | None,
        parent_id: int | None,
    ) -> dict:
        t = self.cfg.types[type_]
        if parent_id is not None:
            parent = self._row(tx.conn, parent_id)
            if parent["state"] not in OPEN_STATES:
                raise Refused(
                    f"incident {parent_id} is {parent['state']}: a sub-incident needs an open parent"
                )
        found = self.district_at(lat, lon)
        district, dname = found if found else (None, None)
        inc = {
            "type": type_,
            "title": cap.clean(title, 200).strip() or t.label,
            "description": cap.clean(description, 2000),
            "priority": priority or t.priority,
            "state": "new",
            "owner": None,
            "hold_until": None,
            "lat": lat,
            "lon": lon,
            "district": district,
            "district_name": dname,
            "geocode": self.cfg.geocode(district),
            "sop": t.sop,
            "sop_started_ts": tx.now,
            "parent_id": parent_id,
            "merged_into": None,
            "level": 0,
            "opened_ts": tx.now,
            "updated_ts": tx.now,
            "resolved_ts": None,
            "closed_ts": None,
            "created_by": actor.name[:80],
        }
        inc["id"] = tx.conn.execute(incidents.insert().values(inc).returning(incidents.c.id)).scalar_one()
        tx.log(
            inc,
            "created",
            actor,
            inc["title"],
            type=type_,
            priority=inc["priority"],
            lat=lat,
            lon=lon,
            district=dname,
            sop=t.sop,
            parent_id=parent_id,
        )
        if parent_id is not None:
            tx.log(self._row(tx.conn, parent_id), "sub_incident", actor, inc["title"], child=inc["id"])
        return inc

    # -- alarms ------------------------------------------------
    def _alarm(self, conn: Connection, alarm_id: int | None) -> dict | None:
        row = conn.execute(sa.select(alarm_table).where(alarm_table.c.id == alarm_id)).first()
        return None if row is None else dict(row._mapping)

    @staticmethod
    def _activation(alarm: dict) -> int:
        return alarm["active_since"] or alarm["first_ts"]

    def _linked(self, conn: Connection, alarm: dict) -> int | None:
        return conn.execute(
            sa.select(incident_alarms.c.incident_id).where(
                incident_alarms.c.alarm_id == alarm["id"],
                incident_alarms.c.activation_ts == self._activation(alarm),
            )
        ).scalar()

    def _link(self, tx: _Tx, inc: dict, alarm: dict, actor: Actor) -> None:
        tx.conn.execute(
            incident_alarms.insert().values(
                incident_id=inc["id"],
                alarm_id=alarm["id"],
                activation_ts=self._activation(alarm),
                linked_ts=tx.now,
                title=(alarm["title"] or "")[:200],
            )
        )
        tx.log(
            inc,
            "alarm_linked",
            actor,
            alarm["title"] or "",
            alarm_id=alarm["id"],
            source=alarm["source"],
            condition=alarm["condition"],
            priority=alarm["priority"],
        )

    def link_alarm(self, incident_id: int, alarm_id: int, actor: Actor, now: int | None = None) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                alarm = self._alarm(tx.conn, alarm_id)
                if alarm is None:
                    raise NotFound(f"no alarm {alarm_id}")
                if (other := self._linked(tx.conn, alarm)) is not None:
                    raise Refused(f"alarm {alarm_id} is already linked to incident {other}")
                self._link(tx, inc, alarm, actor)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def auto_from_alarms(self, now: int | None = None) -> list[int]:
        """Open an incident for every active alarm of an auto rule whose activation has none yet."""
        rules = [a.rule for a in self.cfg.auto_from_alarms]
        if not rules:
            return []
        linked = sa.select(incident_alarms.c.alarm_id).where(
            incident_alarms.c.alarm_id == alarm_table.c.id,
            incident_alarms.c.activation_ts
            == sa.func.coalesce(alarm_table.c.active_since, alarm_table.c.first_ts),
        )
        q = (
            sa.select(alarm_table.c.id)
            .where(
                alarm_table.c.active == sa.true(),
                alarm_table.c.rule.in_(rules),
                alarm_table.c.lat.is_not(None),
                ~sa.exists(linked),
            )
            .order_by(alarm_table.c.id)
            .limit(100)
        )
        with self.reader.connect() as conn:
            ids = list(conn.execute(q).scalars())
        made = []
        for aid in ids:
            try:
                made.append(self.create_from_alarm(aid, Actor("system:auto"), now=now)["id"])
            except Refused:
                continue  # linked meanwhile by another service or an operator
            except IntegrityError:
                continue
        return made

    # -- state, owner, priority, comments ------------------------------------------------------------------
    def _open(self, conn: Connection, incident_id: int) -> dict:
        inc = self._row(conn, incident_id)
        if inc["state"] == "closed":
            raise Refused(f"incident {incident_id} is closed")
        return inc

    def set_state(
        self,
        incident_id: int,
        state: str,
        actor: Actor,
        reason: str = "",
        hold_minutes: float | None = None,
        force: bool = False,
        now: int | None = None,
    ) -> dict:
        if state not in STATES:
            raise Refused(f"unknown state {state!r}")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                before = inc["state"]
                if state not in MOVES[before]:
                    raise Refused(
                        f"an incident that is {STATE_NAMES[before]} ({before}) cannot become {state}"
                    )
                data: dict[str, Any] = {"before": before, "after": state}
                if state == "resolved":
                    missing = self._missing(tx.conn, inc, tx.now)
                    if missing and not force:
                        raise Refused(
                            "required SOP steps or sub-incidents are not done: " + ", ".join(missing)
                        )
                    if missing:
                        data["forced"] = True
                        data["missing"] = missing
                        tx.log(inc, "force_resolve", actor, reason, missing=missing)
                    inc["resolved_ts"] = tx.now
                if state == "on_hold":
                    limit = self.cfg.on_hold_max_minutes
                    minutes = min(hold_minutes or limit, limit)
                    inc["hold_until"] = tx.now + int(minutes * 60_000)
                    data["until"] = inc["hold_until"]
                else:
                    inc["hold_until"] = None
                if state == "closed":
                    inc["closed_ts"] = tx.now
                if state == "in_progress" and before == "resolved":
                    inc["resolved_ts"] = None
                if state == "in_progress" and not inc["owner"] and not actor.name.startswith("system"):
                    inc["owner"] = actor.name[:80]  # taking the incident on makes you its owner
                    data["owner"] = inc["owner"]
                inc["state"] = state
                tx.log(inc, "state", actor, reason, **data)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def _missing(self, conn: Connection, inc: dict, now: int) -> list[str]:
        out: list[str] = []
        s = self.sops.get(inc["sop"] or "")
        if s is not None:
            recs, _ = self._records(conn, inc["id"])
            out += [
                f"step {m}"
                for m in sop.missing_required(s, recs, inc["sop_started_ts"] or inc["opened_ts"], now)
            ]
        kids = conn.execute(
            sa.select(incidents.c.id).where(
                incidents.c.parent_id == inc["id"], incidents.c.state.in_(OPEN_STATES)
            )
        ).scalars()
        out += [f"sub-incident {k}" for k in kids]
        return out

    def assign(self, incident_id: int, owner: str, actor: Actor, now: int | None = None) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                before = inc["owner"]
                inc["owner"] = cap.clean(owner, 80).strip() or None
                tx.log(inc, "assign", actor, "", before=before, after=inc["owner"])
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def set_priority(
        self, incident_id: int, priority: str, actor: Actor, reason: str = "", now: int | None = None
    ) -> dict:
        if priority not in cap.GRADES:
            raise Refused(f"unknown priority {priority!r}")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                before, inc["priority"] = inc["priority"], priority
                tx.log(inc, "priority", actor, reason, before=before, after=priority)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def comment(self, incident_id: int, text: str, actor: Actor, now: int | None = None) -> dict:
        if not text.strip():
            raise Refused("an empty comment")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                tx.log(inc, "comment", actor, text)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def request_drone(self, incident_id: int, actor: Actor, now: int | None = None) -> dict:
        """The commander's "request drone" outside any SOP step: the same timeline row and notice
        as the SOP's request_drone action, for an open incident only."""

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                tx.log(inc, "drone_request", actor, "", lat=inc["lat"], lon=inc["lon"])
                tx.notices.append({"t": "drone_request", "incident": inc["id"], "lat": inc["lat"],
                                   "lon": inc["lon"], "ts": tx.now})
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def agency_link(self, incident_id: int, agency: str, expires_ms: int, actor: Actor,
                    now: int | None = None, key: str = "") -> dict:
        """A read-only agency link was handed out (incidents/agency.py): its row (`key`, the token's
        name for it, so it can be revoked) and a `share` timeline row, in one transaction."""
        if not key or len(key) > 32:
            raise Refused("an agency link needs a key of at most 32 characters")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                tx.conn.execute(incident_agency_links.insert().values(
                    key=key, incident_id=inc["id"], agency=agency, created_ts=tx.now,
                    created_by=cap.clean(actor.name, 80), expires_ts=expires_ms))
                tx.log(inc, "share", actor, f"{agency} view link", agency=agency, link=True,
                       expires_ts=expires_ms, link_key=key)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def revoke_agency_link(self, incident_id: int, key: str, actor: Actor, now: int | None = None) -> dict:
        """End an agency link before its expiry: its page and streams are refused from now on (the
        web reads the row at every request and every stream's re-check). 404 for a link that is not
        this incident's; 409 for one already revoked or expired (nothing left to end). A closed
        incident's links may still be revoked: it costs nothing and the record says who did."""

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                q = sa.select(incident_agency_links).where(incident_agency_links.c.key == key,
                                                           incident_agency_links.c.incident_id == incident_id)
                if self.pg:
                    q = q.with_for_update()
                row = tx.conn.execute(q).first()
                if row is None:
                    raise NotFound(f"no such agency link of incident {incident_id}")
                if row.revoked_ts is not None:
                    raise Refused(f"the link was already revoked by {row.revoked_by}")
                if row.expires_ts <= tx.now:
                    raise Refused("the link has already expired")
                tx.conn.execute(incident_agency_links.update()
                                .where(incident_agency_links.c.key == key)
                                .values(revoked_ts=tx.now, revoked_by=cap.clean(actor.name, 80)))
                tx.log(inc, "share", actor, f"{row.agency} view link revoked", agency=row.agency,
                       link=True, revoked=True, link_key=key)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def agency_links(self, incident_id: int, now: int | None = None) -> list[dict]:
        """The incident's agency links, newest first, each with `status`: active, expired or revoked."""
        t = now or now_ms()
        with self.reader.connect() as conn:
            self._read_row(conn, incident_id)
            rows = conn.execute(sa.select(incident_agency_links)
                                .where(incident_agency_links.c.incident_id == incident_id)
                                .order_by(incident_agency_links.c.created_ts.desc()).limit(200)).all()
        return [{**dict(r._mapping), "status": link_status(dict(r._mapping), t)} for r in rows]

    def agency_link_row(self, key: str) -> dict | None:
        """One link's row by its key (one primary-key read: each agency request and stream re-check)."""
        if not key or len(key) > 32:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(incident_agency_links)
                               .where(incident_agency_links.c.key == key)).first()
        return dict(row._mapping) if row is not None else None

    # -- SOP steps ------------------------------------------------------------------------------------------
    def step(
        self,
        incident_id: int,
        step_id: str,
        verb: Literal["done", "skipped"],
        actor: Actor,
        answer: str | None = None,
        note: str = "",
        now: int | None = None,
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                if inc["state"] == "resolved":
                    raise Refused(f"incident {incident_id} is resolved; reopen it first")
                s = self.sops.get(inc["sop"] or "")
                if s is None:
                    raise Refused(f"incident {incident_id} has no SOP")
                recs, alerted = self._records(tx.conn, inc["id"])
                try:
                    st = sop.check_action(
                        s, recs, inc["sop_started_ts"] or inc["opened_ts"], tx.now, step_id, verb, answer
                    )
                except sop.StepRefused as exc:
                    raise Refused(str(exc)) from None
                result = self._act(tx, inc, st, actor) if verb == "done" and st.kind == "action" else {}
                self._record(tx, inc, st, verb, actor, answer, note, alerted)
                if inc["state"] == "new" and not actor.name.startswith("system"):
                    inc["state"] = "in_progress"  # working the SOP takes the incident on
                    inc["owner"] = inc["owner"] or actor.name[:80]
                    tx.log(inc, "state", actor, "", before="new", after="in_progress", owner=inc["owner"])
                self._advance(tx, inc)
                return {**self._doc(tx.conn, inc), "result": result}

        return self._retrying(run)

    def _record(
        self,
        tx: _Tx,
        inc: dict,
        st: sop.Step,
        verb: str,
        actor: Actor,
        answer: str | None,
        note: str,
        alerted: dict[str, int],
    ) -> None:
        values = {
            "status": verb,
            "answer": answer,
            "ts": tx.now,
            "actor": actor.name[:80],
            "note": cap.clean(note, 500),
        }
        if st.id in alerted:
            tx.conn.execute(
                incident_steps.update()
                .where(incident_steps.c.incident_id == inc["id"], incident_steps.c.step_id == st.id)
                .values(values)
            )
        else:
            tx.conn.execute(
                incident_steps.insert().values(incident_id=inc["id"], step_id=st.id, alerted=0, **values)
            )
        label = next((a.label for a in st.answers if a.value == answer), answer)
        tx.log(
            inc,
            "step",
            actor,
            note,
            step=st.id,
            title=st.title,
            status=verb,
            answer=answer,
            answer_label=label,
        )

    def _advance(self, tx: _Tx, inc: dict) -> None:
        """Do the automatic action steps that are open, until none is (one may open the next)."""
        s = self.sops.get(inc["sop"] or "")
        if s is None:
            return
        for _ in range(len(s.steps)):
            recs, alerted = self._records(tx.conn, inc["id"])
            due = [
                s.step(v) for v in sop.open_steps(s, recs, inc["sop_started_ts"] or inc["opened_ts"], tx.now)
            ]
            autos = [st for st in due if st is not None and st.auto]
            if not autos:
                return
            for st in autos:
                self._act(tx, inc, st, SYSTEM)
                self._record(tx, inc, st, "done", SYSTEM, None, "", alerted)

    def _act(self, tx: _Tx, inc: dict, st: sop.Step, actor: Actor) -> dict:
        """What an action step does; its result goes into the timeline and the answer."""
        p = st.params
        if st.action == "nearest_cameras":
            count = int(p.get("count", self.cfg.nearest.count))
            return {"cameras": self._place_cameras(tx, inc, actor, count)}
        if st.action == "request_drone":
            tx.log(inc, "drone_request", actor, st.title, lat=inc["lat"], lon=inc["lon"])
            tx.notices.append(
                {
                    "t": "drone_request",
                    "incident": inc["id"],
                    "lat": inc["lat"],
                    "lon": inc["lon"],
                    "ts": tx.now,
                }
            )
            return {"drone": "requested"}
        if st.action in ("share_112", "share_119", "draft_public_alert"):
            agency = {"share_112": "112", "share_119": "119", "draft_public_alert": "public"}[st.action]
            share = self._share(tx, inc, agency, None, actor, send=False, note=st.title)  # type: ignore[arg-type]
            return {"share": share}
        if st.action == "notify":
            to = str(p.get("to", ""))
            tx.log(inc, "notify", actor, st.title, to=to)
            tx.notices.append(
                {"t": "notify", "incident": inc["id"], "to": to, "text": st.title, "ts": tx.now}
            )
            return {"notified": to}
        return {}

    # -- cameras ------------------------------------------------
    def _place_cameras(self, tx: _Tx, inc: dict, actor: Actor, count: int | None = None) -> list[dict]:
        ranked = nearest_cameras(inc["lat"], inc["lon"], self.cameras, self.cfg, count=count)
        tx.conn.execute(
            incident_cameras.delete().where(
                incident_cameras.c.incident_id == inc["id"], incident_cameras.c.added_by.like("nearest:%")
            )
        )
        kept = set(
            tx.conn.execute(
                sa.select(incident_cameras.c.camera_id).where(incident_cameras.c.incident_id == inc["id"])
            ).scalars()
        )
        rows = [
            {
                "incident_id": inc["id"],
                "camera_id": r.camera_id,
                "rank": r.rank,
                "distance_m": r.distance_m,
                "in_view": int(r.in_view),
                "preset": r.preset,
                "added_ts": tx.now,
                "added_by": cap.clean(f"nearest:{actor.name}", 80),  # recomputed; by hand: the name
            }
            for r in ranked
            if r.camera_id not in kept
        ]
        if rows:
            tx.conn.execute(incident_cameras.insert(), rows)
        docs = [r.doc() for r in ranked]
        tx.log(inc, "cameras", actor, ", ".join(r.camera_id for r in ranked), cameras=docs)
        return docs

    def nearest(
        self, incident_id: int, actor: Actor, count: int | None = None, now: int | None = None
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                self._place_cameras(tx, inc, actor, count)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def set_camera(
        self, incident_id: int, camera_id: str, actor: Actor, on: bool = True, now: int | None = None
    ) -> dict:
        """Add a configured camera by hand (ranked after the others, kept when the nearest are
        recomputed) or remove one."""
        from incidents.cameras import distance_m

        cam = next((c for c in self.cameras if c.id == camera_id), None)
        if cam is None:
            raise NotFound(f"no camera {camera_id!r} in the configuration")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                c = incident_cameras.c
                exists = (
                    tx.conn.execute(
                        sa.select(c.camera_id).where(c.incident_id == incident_id, c.camera_id == camera_id)
                    ).first()
                    is not None
                )
                if on and exists:
                    raise Refused(f"camera {camera_id} is already on incident {incident_id}")
                if not on and not exists:
                    raise Refused(f"camera {camera_id} is not on incident {incident_id}")
                if on:
                    rank = (
                        tx.conn.execute(
                            sa.select(sa.func.coalesce(sa.func.max(c.rank), MANUAL_RANK)).where(
                                c.incident_id == incident_id, c.rank >= MANUAL_RANK
                            )
                        ).scalar_one()
                        + 1
                    )
                    tx.conn.execute(
                        incident_cameras.insert().values(
                            incident_id=incident_id,
                            camera_id=camera_id,
                            rank=rank,
                            in_view=0,
                            preset=None,
                            distance_m=round(distance_m(cam.lat, cam.lon, inc["lat"], inc["lon"]), 1),
                            added_ts=tx.now,
                            added_by=cap.clean(actor.name, 80),
                        )
                    )
                else:
                    tx.conn.execute(
                        incident_cameras.delete().where(
                            c.incident_id == incident_id, c.camera_id == camera_id
                        )
                    )
                tx.log(inc, "camera_added" if on else "camera_removed", actor, camera_id, camera=camera_id)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    # -- merge ------------------------------------------------
    def merge(
        self, source_id: int, target_id: int, actor: Actor, reason: str = "", now: int | None = None
    ) -> dict:
        """The source becomes part of the target: alarms, cameras and sub-incidents move over, the
        source is closed with `merged_into`; both timelines say so."""
        if source_id == target_id:
            raise Refused("an incident cannot be merged into itself")

        def run() -> dict:
            with self._tx(now) as tx:
                a, b = sorted((source_id, target_id))  # one lock order for every writer
                rows = {a: self._row(tx.conn, a), b: self._row(tx.conn, b)}
                src, dst = rows[source_id], rows[target_id]
                for inc in (src, dst):
                    if inc["state"] not in OPEN_STATES:
                        raise Refused(f"incident {inc['id']} is {inc['state']}: only open incidents merge")
                c = tx.conn
                c.execute(
                    incident_alarms.update()
                    .where(incident_alarms.c.incident_id == source_id)
                    .values(incident_id=target_id)
                )
                have = set(
                    c.execute(
                        sa.select(incident_cameras.c.camera_id).where(
                            incident_cameras.c.incident_id == target_id
                        )
                    ).scalars()
                )
                c.execute(
                    incident_cameras.delete().where(
                        incident_cameras.c.incident_id == source_id,
                        incident_cameras.c.camera_id.in_(have or {""}),
                    )
                )
                c.execute(
                    incident_cameras.update()
                    .where(incident_cameras.c.incident_id == source_id)
                    .values(incident_id=target_id)
                )
                c.execute(
                    incidents.update().where(incidents.c.parent_id == source_id).values(parent_id=target_id)
                )
                src.update(state="closed", merged_into=target_id, closed_ts=tx.now, hold_until=None)
                if cap.GRADES and _rank(src["priority"]) > _rank(dst["priority"]):
                    tx.log(dst, "priority", actor, "merge", before=dst["priority"], after=src["priority"])
                    dst["priority"] = src["priority"]
                tx.log(src, "merged", actor, reason, into=target_id)
                tx.log(dst, "merged_in", actor, reason, source=source_id, title=src["title"])
                return self._doc(c, dst)

        return self._retrying(run)

    # -- shares (CAP) ----------------------------------------------------------------------------------------
    def _share(
        self,
        tx: _Tx,
        inc: dict,
        agency: cap.Agency,
        msg_type: cap.MsgType | None,
        actor: Actor,
        send: bool,
        note: str = "",
    ) -> dict:
        earlier = tx.conn.execute(
            sa.select(incident_shares)
            .where(incident_shares.c.incident_id == inc["id"], incident_shares.c.agency == agency)
            .order_by(incident_shares.c.id)
        ).all()
        if msg_type is None:
            msg_type = "Update" if earlier else "Alert"
        if msg_type != "Alert" and not earlier:
            raise Refused(f"no earlier message to {agency} to {msg_type.lower()}: send an Alert first")
        if earlier and earlier[-1].msg_type == "Cancel":
            raise Refused(f"the messages to {agency} were cancelled")
        seq = (
            tx.conn.execute(
                sa.select(sa.func.count())
                .select_from(incident_shares)
                .where(incident_shares.c.incident_id == inc["id"])
            ).scalar_one()
            + 1
        )
        ident = cap.identifier(self.cfg, inc["id"], inc["opened_ts"], seq)
        refs = [cap.reference(self.cfg, e.identifier, e.sent) for e in earlier]
        msg = cap.build(self.cfg, self._doc(tx.conn, inc), msg_type, agency, ident, tx.now, refs, note=note)
        problems = cap.validate(msg.xml)
        if problems:  # never store a message the agencies' systems would refuse
            raise Refused("the CAP message does not validate: " + "; ".join(problems[:3]))
        sid = tx.conn.execute(
            incident_shares.insert()
            .values(
                incident_id=inc["id"],
                agency=agency,
                msg_type=msg_type,
                identifier=ident,
                sent=msg.sent,
                references=" ".join(refs),
                status="sent" if send else "draft",
                xml=msg.xml,
                created_ts=tx.now,
                created_by=actor.name[:80],
                sent_ts=tx.now if send else None,
            )
            .returning(incident_shares.c.id)
        ).scalar_one()
        doc = {
            "id": sid,
            "agency": agency,
            "msg_type": msg_type,
            "identifier": ident,
            "sent": msg.sent,
            "references": refs,
            "status": "sent" if send else "draft",
        }
        tx.log(inc, "share", actor, note, **doc)
        if send:
            tx.notices.append({"t": "share", "incident": inc["id"], **doc})
        return doc

    def share(
        self,
        incident_id: int,
        agency: cap.Agency,
        actor: Actor,
        msg_type: cap.MsgType | None = None,
        send: bool = True,
        note: str = "",
        now: int | None = None,
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                if inc["state"] == "closed" and msg_type != "Cancel":
                    raise Refused(f"incident {incident_id} is closed; only a Cancel can still be sent")
                return self._share(tx, inc, agency, msg_type, actor, send, note)

        return self._retrying(run)

    def send_share(self, incident_id: int, share_id: int, actor: Actor, now: int | None = None) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                row = tx.conn.execute(
                    sa.select(incident_shares).where(
                        incident_shares.c.id == share_id, incident_shares.c.incident_id == incident_id
                    )
                ).first()
                if row is None:
                    raise NotFound(f"no share {share_id} in incident {incident_id}")
                if row.status == "sent":
                    raise Refused(f"share {share_id} was already sent")
                tx.conn.execute(
                    incident_shares.update()
                    .where(incident_shares.c.id == share_id)
                    .values(status="sent", sent_ts=tx.now)
                )
                doc = {
                    "id": share_id,
                    "agency": row.agency,
                    "msg_type": row.msg_type,
                    "identifier": row.identifier,
                    "sent": row.sent,
                    "status": "sent",
                }
                tx.log(inc, "share_sent", actor, "", **doc)
                tx.notices.append({"t": "share", "incident": incident_id, **doc})
                return doc

        return self._retrying(run)

    def shares(self, incident_id: int, with_xml: bool = False) -> list[dict]:
        cols = [c for c in incident_shares.columns if with_xml or c.name != "xml"]
        with self.reader.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(*cols)
                    .where(incident_shares.c.incident_id == incident_id)
                    .order_by(incident_shares.c.id)
                )
            ]

    def cap_message(
        self,
        incident_id: int,
        msg_type: cap.MsgType | None = None,
        agency: cap.Agency = "112",
        now: int | None = None,
    ) -> cap.Message:
        """A message as it would be sent now (nothing stored): the CLI's `incident cap ID`."""
        t = now or now_ms()
        with self.reader.connect() as conn:
            inc = self._read_row(conn, incident_id)
            earlier = conn.execute(
                sa.select(incident_shares)
                .where(incident_shares.c.incident_id == incident_id, incident_shares.c.agency == agency)
                .order_by(incident_shares.c.id)
            ).all()
            doc = self._doc(conn, inc)
            seq = (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(incident_shares)
                    .where(incident_shares.c.incident_id == incident_id)
                ).scalar_one()
                + 1
            )
        kind: cap.MsgType = msg_type or ("Update" if earlier else "Alert")
        if kind != "Alert" and not earlier:
            raise Refused(f"no earlier message to {agency} for this {kind} to reference: send an Alert first")
        refs = [cap.reference(self.cfg, e.identifier, e.sent) for e in earlier]
        return cap.build(
            self.cfg, doc, kind, agency, cap.identifier(self.cfg, incident_id, inc["opened_ts"], seq), t, refs
        )

    # -- timers ------------------------------------------------
    def tick(self, now: int | None = None) -> int:
        """Hold expiry (back to in progress), step timers and staged escalation; returns the
        incidents changed. Everything is read first without a lock; only an incident whose hold
        expired or whose alert level rose is written (a write transaction per open incident every
        second would hold SQLite's writer lock for nothing)."""
        t = now or now_ms()
        due: list[int] = []
        with self.reader.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(incidents).where(incidents.c.state.in_(OPEN_STATES)))
            ]
            for inc in rows:
                if inc["state"] == "on_hold" and inc["hold_until"] is not None and inc["hold_until"] <= t:
                    due.append(inc["id"])
                    continue
                s = self.sops.get(inc["sop"] or "")
                if s is None:
                    continue
                recs, alerted = self._records(conn, inc["id"])
                views = [
                    v
                    for v in sop.evaluate(s, recs, inc["sop_started_ts"] or inc["opened_ts"], t)
                    if v.status == "open"
                ]
                worst = max((v.level for v in views), default=0)
                if worst != inc["level"] or any(v.level > alerted.get(v.id, 0) for v in views):
                    due.append(inc["id"])
        return sum(self._retrying(lambda i=iid: self._tick_one(i, t)) for iid in due)

    def _tick_one(self, incident_id: int, now: int) -> int:
        with self._tx(now) as tx:
            inc = self._row(tx.conn, incident_id)
            if inc["state"] not in OPEN_STATES:
                return 0
            if inc["state"] == "on_hold" and inc["hold_until"] is not None and inc["hold_until"] <= now:
                inc.update(state="in_progress", hold_until=None)
                tx.log(inc, "state", SYSTEM, "hold expired", before="on_hold", after="in_progress")
            s = self.sops.get(inc["sop"] or "")
            if s is not None:
                recs, alerted = self._records(tx.conn, inc["id"])
                worst = 0
                for v in sop.evaluate(s, recs, inc["sop_started_ts"] or inc["opened_ts"], now):
                    if v.status != "open":
                        continue
                    worst = max(worst, v.level)
                    if v.level > alerted.get(v.id, 0):
                        self._alert(tx, inc, s.step(v.id), v, alerted)  # type: ignore[arg-type]
                if worst != inc["level"]:
                    inc["level"] = worst
                    inc["updated_ts"] = now
                    tx.dirty[inc["id"]] = inc
            return int(inc["id"] in tx.dirty)

    def _alert(self, tx: _Tx, inc: dict, st: sop.Step, v: sop.StepView, alerted: dict[str, int]) -> None:
        before = alerted.get(st.id, 0)
        for level in range(before + 1, v.level + 1):
            if level == 1:
                tx.log(inc, "step_overdue", SYSTEM, st.title, step=st.id, due_ts=v.due_ts)
                tx.notices.append({"t": "overdue", "incident": inc["id"], "step": st.id, "ts": tx.now})
            else:
                e = st.escalation[level - 2]
                tx.log(
                    inc, "escalated", SYSTEM, e.text or st.title, step=st.id, stage=level - 1, notify=e.notify
                )
                tx.notices.append(
                    {
                        "t": "escalation",
                        "incident": inc["id"],
                        "step": st.id,
                        "stage": level - 1,
                        "notify": e.notify,
                        "text": e.text or st.title,
                        "ts": tx.now,
                    }
                )
        if st.id in alerted:
            tx.conn.execute(
                incident_steps.update()
                .where(incident_steps.c.incident_id == inc["id"], incident_steps.c.step_id == st.id)
                .values(alerted=v.level)
            )
        else:
            tx.conn.execute(
                incident_steps.insert().values(incident_id=inc["id"], step_id=st.id, alerted=v.level)
            )
        alerted[st.id] = v.level

    # -- reads ------------------------------------------------
    def _read_row(self, conn: Connection, incident_id: int) -> dict:
        row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return dict(row._mapping)

    def list(self, states: list[str] | None = None, limit: int = 500) -> list[dict]:
        # The queue (priority, then the oldest first) is ordered in SQL before the limit, so a list
        # longer than the limit still holds the critical incidents; at most 500 (each row costs two
        # more reads for its document).
        rank = sa.case({p: -i for i, p in enumerate(("low", "medium", "high", "critical"))},
                       value=incidents.c.priority, else_=0)
        q = (sa.select(incidents).where(incidents.c.state.in_(states or list(OPEN_STATES)))
             .order_by(rank, incidents.c.opened_ts))
        with self.reader.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q.limit(max(1, min(limit, LIST_MAX))))]
            return [self._doc(conn, r) for r in rows]

    def get(self, incident_id: int, timeline: int = 200, now: int | None = None) -> dict:
        with self.reader.connect() as conn:
            inc = self._read_row(conn, incident_id)
            doc = self._doc(conn, inc)
            doc["sop_view"] = self.sop_view(conn, inc, now or now_ms())
            doc["children"] = list(
                conn.execute(sa.select(incidents.c.id).where(incidents.c.parent_id == incident_id)).scalars()
            )
            doc["timeline"] = self._timeline(conn, incident_id, timeline)
        doc["shares"] = self.shares(incident_id)
        return doc

    def _timeline(self, conn: Connection, incident_id: int, limit: int | None = None) -> list[dict]:
        q = (
            sa.select(incident_timeline)
            .where(incident_timeline.c.incident_id == incident_id)
            .order_by(incident_timeline.c.id)
        )
        rows = [dict(r._mapping) for r in conn.execute(q)]
        if limit is not None:
            rows = rows[-limit:]
        for r in rows:
            r["data"] = json.loads(r["data"] or "{}")
        return rows

    def timeline(self, incident_id: int) -> list[dict]:
        with self.reader.connect() as conn:
            self._read_row(conn, incident_id)
            return self._timeline(conn, incident_id)

    def linked_alarms(self, incident_id: int) -> list[dict]:
        with self.reader.connect() as conn:
            q = (
                sa.select(
                    incident_alarms.c.alarm_id,
                    incident_alarms.c.activation_ts,
                    incident_alarms.c.linked_ts,
                    alarm_table.c.source,
                    alarm_table.c.condition,
                    alarm_table.c.priority,
                    alarm_table.c.state,
                    alarm_table.c.title,
                )
                .join(alarm_table, alarm_table.c.id == incident_alarms.c.alarm_id, isouter=True)
                .where(incident_alarms.c.incident_id == incident_id)
                .order_by(incident_alarms.c.linked_ts)
            )
            return [dict(r._mapping) for r in conn.execute(q)]

    def open_docs(self) -> list[dict]:
        return self.list(limit=5000)

    # -- outbox ------------------------------------------------
    def outbox_after(self, after: int, limit: int = 200) -> list[tuple[int, str]]:
        with self.reader.connect() as conn:
            return [
                (r.id, r.payload)
                for r in conn.execute(
                    sa.select(incident_outbox.c.id, incident_outbox.c.payload)
                    .where(incident_outbox.c.id > after)
                    .order_by(incident_outbox.c.id)
                    .limit(limit)
                )
            ]

    def outbox_trim(self, upto: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(incident_outbox.delete().where(incident_outbox.c.id <= upto))


def link_status(row: dict, now: int) -> str:
    """An agency link row's status: revoked, expired or active."""
    if row.get("revoked_ts") is not None:
        return "revoked"
    return "expired" if row["expires_ts"] <= now else "active"


def _json(data: dict) -> str:
    raw = json.dumps(data, ensure_ascii=False)
    return raw if len(raw) <= 8000 else json.dumps({"truncated": True, "keys": sorted(data)[:20]})


LIST_MAX = 500


def _rank(priority: str) -> int:
    return ("low", "medium", "high", "critical").index(priority) if priority in cap.GRADES else 0


def _district_at(lat: float, lon: float) -> tuple[str, str] | None:
    """The configured district under the point (spine.geography), or None off the map."""
    try:
        from spine.geography import district_index

        d = district_index().district_at(lat, lon)
    except Exception as exc:
        log.warning("no district lookup (%s)", exc)
        return None
    return None if d is None else (d.id, d.name_ko)
