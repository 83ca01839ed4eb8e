"""Incident panes on the wall screens: "send to wall" (an incident's title, priority and its three
nearest cameras live on /wall/<n>) and "clear" (docs/incidents.md "Wall panes").

Same pattern as every incident action: one transaction writes the pane row, a timeline row and the
outbox row with a `wall` notice; the incident service then HSETs/HDELs spine.channels
WALL_PANES_KEY and PUBLISHes the notice on the incident channel. The wall page reads
GET /api/walls/<n>/pane (SQL), so a pane is shown only once it is committed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from incidents.db import OPEN_STATES, Actor, IncidentStore, NotFound, Refused
from incidents.schema import incident_wall_panes, incidents

PANE_CAMERAS = 3


def pane_doc(wall: int, doc: dict, ts: int, actor: str) -> dict[str, Any]:
    """What a wall shows: the incident's headline and its best three cameras (ranked, with presets)."""
    return {
        "wall": wall,
        "incident": doc["id"],
        "title": doc["title"],
        "type_label": doc.get("type_label") or doc["type"],
        "priority": doc["priority"],
        "state": doc["state"],
        "cameras": [
            {"camera_id": c["camera_id"], "preset": c.get("preset"), "distance_m": c.get("distance_m")}
            for c in (doc.get("cameras") or [])[:PANE_CAMERAS]
        ],
        "ts": ts,
        "by": actor,
    }


def send(store: IncidentStore, incident_id: int, wall: int, actor: Actor, now: int | None = None) -> dict:
    """Put an open incident's pane on `wall` (replacing whatever pane was there)."""

    def run() -> dict:
        with store._tx(now) as tx:
            inc = store._open(tx.conn, incident_id)
            if inc["state"] not in OPEN_STATES:
                raise Refused(f"incident {incident_id} is {inc['state']}: only an open one goes on a wall")
            old = tx.conn.execute(
                sa.select(incident_wall_panes.c.incident_id).where(incident_wall_panes.c.wall == wall)
            ).scalar()
            tx.conn.execute(incident_wall_panes.delete().where(incident_wall_panes.c.wall == wall))
            tx.conn.execute(
                incident_wall_panes.insert(),
                {"wall": wall, "incident_id": incident_id, "ts": tx.now, "actor": actor.name[:80]},
            )
            tx.log(inc, "wall", actor, "", wall=wall, replaced=old)
            pane = pane_doc(wall, store._doc(tx.conn, inc), tx.now, actor.name[:80])
            tx.notices.append({"t": "wall", "wall": wall, "incident": incident_id, "pane": pane,
                               "ts": tx.now})
            return {**store._doc(tx.conn, inc), "pane": pane}

    return store._retrying(run)


def clear(store: IncidentStore, incident_id: int, wall: int, actor: Actor, now: int | None = None) -> dict:
    """Take this incident's pane off `wall` (409 when the wall shows another one or none)."""

    def run() -> dict:
        with store._tx(now) as tx:
            inc = store._row(tx.conn, incident_id)
            gone = tx.conn.execute(
                incident_wall_panes.delete().where(
                    incident_wall_panes.c.wall == wall, incident_wall_panes.c.incident_id == incident_id
                )
            ).rowcount
            if not gone:
                raise Refused(f"wall {wall} does not show incident {incident_id}")
            tx.log(inc, "wall_cleared", actor, "", wall=wall)
            tx.notices.append({"t": "wall", "wall": wall, "incident": incident_id, "pane": None,
                               "ts": tx.now})
            return store._doc(tx.conn, inc)

    return store._retrying(run)


def pane(store: IncidentStore, wall: int) -> dict | None:
    """The pane of `wall` now, from SQL; none when its incident is no longer open (resolved panes
    leave the wall by themselves)."""
    with store.reader.connect() as conn:
        row = conn.execute(sa.select(incident_wall_panes).where(incident_wall_panes.c.wall == wall)).first()
        if row is None:
            return None
        inc = conn.execute(sa.select(incidents).where(incidents.c.id == row.incident_id)).first()
        if inc is None or inc.state not in OPEN_STATES:
            return None
        return pane_doc(wall, store._doc(conn, dict(inc._mapping)), row.ts, row.actor)


def panes(store: IncidentStore) -> dict[int, dict]:
    """Every wall's pane (the service rewrites the Redis hash from this at start)."""
    with store.reader.connect() as conn:
        walls = list(conn.execute(sa.select(incident_wall_panes.c.wall)).scalars())
    out = {w: p for w in walls if (p := pane(store, w)) is not None}
    return out


def auto_bells(store: IncidentStore, ids: list[int], wall: int | None, types: tuple[str, ...]) -> int:
    """Automatic incidents of the bell types go straight to the configured wall (bell_wall)."""
    if wall is None:
        return 0
    sent = 0
    for iid in ids:
        try:
            with store.reader.connect() as conn:
                kind = conn.execute(sa.select(incidents.c.type).where(incidents.c.id == iid)).scalar()
            if kind in types:
                send(store, iid, wall, Actor("system:auto"))
                sent += 1
        except (NotFound, Refused):
            continue
    return sent
