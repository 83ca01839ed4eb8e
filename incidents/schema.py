"""The incident tables (SQLAlchemy Core). They change only through a migration in
incidents/migrations (own version table `incidents_alembic_version`); a test checks they match.

Times are epoch milliseconds (UTC). The timeline is append-only: rows are inserted, never updated
or deleted (the store has no statement that would).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

incidents = Table(
    "incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("type", String(48), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", String(2000), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("state", String(12), nullable=False),  # new in_progress on_hold resolved closed
    Column("owner", String(80)),
    Column("hold_until", BigInteger),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("district", String(48)),  # config/districts.yaml id
    Column("district_name", String(48)),
    Column("geocode", String(10), nullable=False),  # 행정구역코드
    Column("sop", String(48)),
    Column("sop_started_ts", BigInteger),
    Column("parent_id", Integer, ForeignKey("incidents.id")),  # a sub-incident's parent
    Column("merged_into", Integer, ForeignKey("incidents.id")),
    Column("level", Integer, nullable=False),  # the worst open step alert level (0: on time)
    Column("opened_ts", BigInteger, nullable=False),
    Column("updated_ts", BigInteger, nullable=False),
    Column("resolved_ts", BigInteger),
    Column("closed_ts", BigInteger),
    Column("created_by", String(80), nullable=False),
    Index("ix_incidents_state", "state"),
)

# An alarm activation linked to an incident: (alarm id, activation time) once, so an automatic
# incident is opened once per activation however often the service looks.
incident_alarms = Table(
    "incident_alarms",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("alarm_id", Integer, nullable=False),
    Column("activation_ts", BigInteger, nullable=False),
    Column("linked_ts", BigInteger, nullable=False),
    Column("title", String(200), nullable=False),
    Index("ux_incident_alarms_activation", "alarm_id", "activation_ts", unique=True),
    Index("ix_incident_alarms_incident", "incident_id"),
)

incident_cameras = Table(
    "incident_cameras",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("camera_id", String(64), primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("distance_m", Float, nullable=False),
    Column("in_view", Integer, nullable=False),  # 0/1
    Column("preset", String(64)),
    Column("added_ts", BigInteger, nullable=False),
    Column("added_by", String(80), nullable=False),
)

incident_steps = Table(
    "incident_steps",
    metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id"), primary_key=True),
    Column("step_id", String(48), primary_key=True),
    Column("status", String(8)),  # done | skipped | NULL (only an alert level noted)
    Column("answer", String(48)),
    Column("ts", BigInteger),
    Column("actor", String(80)),
    Column("note", String(500)),
    Column("alerted", Integer, nullable=False),  # the alert level already announced
)

incident_timeline = Table(
    "incident_timeline",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("actor", String(80), nullable=False),
    Column("text", String(2000), nullable=False),
    Column("data", Text, nullable=False),  # JSON object
    Column("remote", String(64), nullable=False),
    Index("ix_incident_timeline_incident", "incident_id", "id"),
)

incident_shares = Table(
    "incident_shares",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("agency", String(16), nullable=False),  # 112 | 119 | public
    Column("msg_type", String(8), nullable=False),  # Alert | Update | Cancel
    Column("identifier", String(120), nullable=False, unique=True),
    Column("sent", String(32), nullable=False),  # the CAP sent value (+09:00)
    Column("references", String(2000), nullable=False),
    Column("status", String(8), nullable=False),  # draft | sent
    Column("xml", Text, nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("sent_ts", BigInteger),
    Index("ix_incident_shares_incident", "incident_id"),
)

incident_outbox = Table(
    "incident_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    sqlite_autoincrement=True,
)

# The incident pane of each wall screen (config/walls.yaml number): at most one per wall, replaced
# by the next "send to wall", removed by "clear" (incidents/walls.py).
incident_wall_panes = Table(
    "incident_wall_panes",
    metadata,
    Column("wall", Integer, primary_key=True, autoincrement=False),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("actor", String(80), nullable=False),
)

# Agency links handed out (incidents/agency.py): the token names its row by `key` (random), so a
# supervisor or commander can revoke a link before it expires; the page and every open stream read
# the row again (dashboard/incidents_api.py). Rows are kept after expiry, for the after-action record.
incident_agency_links = Table(
    "incident_agency_links",
    metadata,
    Column("key", String(32), primary_key=True),
    Column("incident_id", Integer, ForeignKey("incidents.id"), nullable=False),
    Column("agency", String(8), nullable=False),  # 112 | 119
    Column("created_ts", BigInteger, nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("expires_ts", BigInteger, nullable=False),
    Column("revoked_ts", BigInteger),
    Column("revoked_by", String(80)),
    Index("ix_incident_agency_links_incident", "incident_id"),
)
