"""Reads of the store: the queue of open incidents, one incident with its SOP view, timeline and
shares, the timeline alone, the linked alarms, and the outbox the incident service publishes from
(and trims)."""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from alarms.schema import alarms as alarm_table
from incidents.schema import incident_alarms, incident_outbox, incident_timeline, incidents
from incidents.store_base import OPEN_STATES, now_ms
from incidents.store_sop import SopMixin

LIST_MAX = 500


class ReadsMixin(SopMixin):
    """The queue, the incident page's document, the timeline and the outbox."""

    # -- reads ------------------------------------------------
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
