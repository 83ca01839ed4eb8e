"""The incident store's frame: engines and migrations, the states, the transaction that gathers a
write's timeline rows and its one outbox row, and the incident document every write returns.

The other parts of the store (incidents/store_*.py) are mixins on StoreBase, one job each;
incidents/db.py puts them together as IncidentStore and is where callers import from.

Like the alarm store (alarms/db.py, whose engine set-up this reuses): SQLite writers BEGIN
IMMEDIATE, PostgreSQL locks the incident rows it changes (SELECT ... FOR UPDATE) and the outbox
until commit, so the incident service (incidents/service.py) publishes committed changes in order
and never before they are in SQL. The web writes here and never publishes.

The timeline is append-only: every action, comment, state change, step, escalation and share is a
row with who, when (epoch ms, UTC) and from where (_Tx.log); nothing updates or deletes a timeline row.
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
from incidents import cap, sop
from incidents.config import IncidentConfig
from incidents.schema import (
    incident_alarms,
    incident_cameras,
    incident_outbox,
    incident_timeline,
    incidents,
)

# The facade's name, as before the split, so log settings and filters for "incidents.db" still apply.
log = logging.getLogger("incidents.db")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "incidents_alembic_version"
RETRIES = 5
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


class StoreBase:
    """The engines, the transaction frame and the incident document; no action of its own."""

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

    # -- incident rows: locked in a write (_row, _open: not closed), unlocked for reads (_read_row) ----
    def _row(self, conn: Connection, incident_id: int) -> dict:
        q = sa.select(incidents).where(incidents.c.id == incident_id)
        if self.pg:
            q = q.with_for_update()
        row = conn.execute(q).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return dict(row._mapping)

    def _read_row(self, conn: Connection, incident_id: int) -> dict:
        row = conn.execute(sa.select(incidents).where(incidents.c.id == incident_id)).first()
        if row is None:
            raise NotFound(f"no incident {incident_id}")
        return dict(row._mapping)

    def _open(self, conn: Connection, incident_id: int) -> dict:
        inc = self._row(conn, incident_id)
        if inc["state"] == "closed":
            raise Refused(f"incident {incident_id} is closed")
        return inc


def _json(data: dict) -> str:
    raw = json.dumps(data, ensure_ascii=False)
    return raw if len(raw) <= 8000 else json.dumps({"truncated": True, "keys": sorted(data)[:20]})


def _district_at(lat: float, lon: float) -> tuple[str, str] | None:
    """The configured district under the point (spine.geography), or None off the map."""
    try:
        from spine.geography import district_index

        d = district_index().district_at(lat, lon)
    except Exception as exc:
        log.warning("no district lookup (%s)", exc)
        return None
    return None if d is None else (d.id, d.name_ko)
