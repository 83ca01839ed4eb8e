"""Opening incidents (by hand, from an alarm, or automatically for the alarms of an auto rule) and
linking alarms to them: one activation of an alarm belongs to at most one incident."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from alarms.schema import alarms as alarm_table
from incidents import cap
from incidents.schema import incident_alarms, incidents
from incidents.store_base import OPEN_STATES, Actor, NotFound, Refused, _Tx
from incidents.store_sop import SopMixin


class CreateMixin(SopMixin):
    """New incidents and their alarms; a new incident runs its SOP's automatic steps at once."""

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
