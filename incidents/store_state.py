"""Changes to an incident's record: its state (resolving needs the SOP's required steps and closed
sub-incidents, or the force), owner, priority, comments, a drone request, and merging two incidents."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from incidents import cap, sop
from incidents.schema import incident_alarms, incident_cameras, incidents
from incidents.store_base import MOVES, OPEN_STATES, STATE_NAMES, STATES, Actor, Refused
from incidents.store_sop import SopMixin


class StateMixin(SopMixin):
    """State, owner, priority, comments and merges of existing incidents."""

    # -- state, owner, priority, comments ------------------------------------------------------------------
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


def _rank(priority: str) -> int:
    return ("low", "medium", "high", "critical").index(priority) if priority in cap.GRADES else 0
