"""The incident store: SQL engines and migrations, and every write (create, state, SOP steps, merge,
cameras, shares) with its timeline rows and one outbox row, in one transaction.

This module is the store's public face: callers import IncidentStore and the names below from here.
The store is written in parts, one job each, put together here as mixins of IncidentStore:

- incidents/store_base.py: engines, migrations, the states, the transaction frame (timeline rows
  and the one outbox row of a write), incident rows and the incident document;
- incidents/store_create.py: opening incidents (by hand, from an alarm, automatically) and
  linking alarms;
- incidents/store_state.py: state, owner, priority, comments, drone request, merge;
- incidents/store_sop.py: SOP steps, automatic action steps and the timers (tick);
- incidents/store_cameras.py: the nearest cameras and cameras by hand;
- incidents/store_shares.py: CAP shares to the agencies;
- incidents/store_agency.py: agency links (handed out, listed, revoked);
- incidents/store_reads.py: the queue, one incident, the timeline, linked alarms and the outbox.

Like the alarm store (alarms/db.py, whose engine set-up this reuses): SQLite writers BEGIN
IMMEDIATE, PostgreSQL locks the incident rows it changes (SELECT ... FOR UPDATE) and the outbox
until commit, so the incident service (incidents/service.py) publishes committed changes in order
and never before they are in SQL. The web writes here and never publishes.

The timeline is append-only: every action, comment, state change, step, escalation and share is a
row with who, when (epoch ms, UTC) and from where; nothing updates or deletes a timeline row.
"""

from __future__ import annotations

from incidents.store_agency import AgencyLinksMixin, link_status
from incidents.store_base import (
    MIGRATIONS,
    MOVES,
    OPEN_STATES,
    RETRIES,
    STATE_NAMES,
    STATES,
    SYSTEM,
    VERSION_TABLE,
    Actor,
    NotFound,
    Refused,
    State,
    migrate,
    now_ms,
)
from incidents.store_cameras import MANUAL_RANK
from incidents.store_create import CreateMixin
from incidents.store_reads import LIST_MAX, ReadsMixin
from incidents.store_state import StateMixin

__all__ = [
    "LIST_MAX",
    "MANUAL_RANK",
    "MIGRATIONS",
    "MOVES",
    "OPEN_STATES",
    "RETRIES",
    "STATES",
    "STATE_NAMES",
    "SYSTEM",
    "VERSION_TABLE",
    "Actor",
    "IncidentStore",
    "NotFound",
    "Refused",
    "State",
    "link_status",
    "migrate",
    "now_ms",
]


class IncidentStore(CreateMixin, StateMixin, ReadsMixin, AgencyLinksMixin):
    """The incident store: every part's methods on one object (StoreBase.__init__ takes the URL,
    the configuration, the SOPs, the cameras and optionally a district lookup and an engine)."""
