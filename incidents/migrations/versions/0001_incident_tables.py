"""The incident tables: incidents, linked alarms and cameras, SOP steps, timeline, shares, outbox.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incident_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(48), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("description", sa.String(2000), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("owner", sa.String(80)),
        sa.Column("hold_until", sa.BigInteger),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("district", sa.String(48)),
        sa.Column("district_name", sa.String(48)),
        sa.Column("geocode", sa.String(10), nullable=False),
        sa.Column("sop", sa.String(48)),
        sa.Column("sop_started_ts", sa.BigInteger),
        sa.Column("parent_id", sa.Integer, sa.ForeignKey("incidents.id")),
        sa.Column("merged_into", sa.Integer, sa.ForeignKey("incidents.id")),
        sa.Column("level", sa.Integer, nullable=False),
        sa.Column("opened_ts", sa.BigInteger, nullable=False),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
        sa.Column("resolved_ts", sa.BigInteger),
        sa.Column("closed_ts", sa.BigInteger),
        sa.Column("created_by", sa.String(80), nullable=False),
    )
    op.create_index("ix_incidents_state", "incidents", ["state"])
    op.create_table(
        "incident_alarms",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("alarm_id", sa.Integer, nullable=False),
        sa.Column("activation_ts", sa.BigInteger, nullable=False),
        sa.Column("linked_ts", sa.BigInteger, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
    )
    op.create_index(
        "ux_incident_alarms_activation", "incident_alarms", ["alarm_id", "activation_ts"], unique=True
    )
    op.create_index("ix_incident_alarms_incident", "incident_alarms", ["incident_id"])
    op.create_table(
        "incident_cameras",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("camera_id", sa.String(64), primary_key=True),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("distance_m", sa.Float, nullable=False),
        sa.Column("in_view", sa.Integer, nullable=False),
        sa.Column("preset", sa.String(64)),
        sa.Column("added_ts", sa.BigInteger, nullable=False),
        sa.Column("added_by", sa.String(80), nullable=False),
    )
    op.create_table(
        "incident_shares",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("agency", sa.String(16), nullable=False),
        sa.Column("msg_type", sa.String(8), nullable=False),
        sa.Column("identifier", sa.String(120), nullable=False, unique=True),
        sa.Column("sent", sa.String(32), nullable=False),
        sa.Column("references", sa.String(2000), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("xml", sa.Text, nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("sent_ts", sa.BigInteger),
    )
    op.create_index("ix_incident_shares_incident", "incident_shares", ["incident_id"])
    op.create_table(
        "incident_steps",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), primary_key=True),
        sa.Column("step_id", sa.String(48), primary_key=True),
        sa.Column("status", sa.String(8)),
        sa.Column("answer", sa.String(48)),
        sa.Column("ts", sa.BigInteger),
        sa.Column("actor", sa.String(80)),
        sa.Column("note", sa.String(500)),
        sa.Column("alerted", sa.Integer, nullable=False),
    )
    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id"), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("text", sa.String(2000), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("remote", sa.String(64), nullable=False),
    )
    op.create_index("ix_incident_timeline_incident", "incident_timeline", ["incident_id", "id"])


def downgrade() -> None:
    op.drop_table("incident_timeline")
    op.drop_table("incident_steps")
    op.drop_table("incident_shares")
    op.drop_table("incident_cameras")
    op.drop_table("incident_alarms")
    op.drop_table("incidents")
    op.drop_table("incident_outbox")
