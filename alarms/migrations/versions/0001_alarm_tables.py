"""The alarm tables: alarms, their events, changes (history and audit), silences, outbox.

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
        "alarms",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(300), nullable=False, unique=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("condition", sa.String(128), nullable=False),
        sa.Column("rule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("state", sa.String(5), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("acked", sa.Boolean, nullable=False),
        sa.Column("shelve", sa.String(8)),
        sa.Column("shelved_until", sa.BigInteger),
        sa.Column("shelved_by", sa.String(64)),
        sa.Column("suppressed", sa.Boolean, nullable=False),
        sa.Column("suppress_reason", sa.String(200)),
        sa.Column("oos", sa.Boolean, nullable=False),
        sa.Column("chattering", sa.Boolean, nullable=False),
        sa.Column("transitions", sa.String(400), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("total", sa.Integer, nullable=False),
        sa.Column("first_ts", sa.BigInteger, nullable=False),
        sa.Column("last_ts", sa.BigInteger, nullable=False),
        sa.Column("cond_ts", sa.BigInteger, nullable=False),
        sa.Column("active_since", sa.BigInteger),
        sa.Column("updated_ts", sa.BigInteger, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("lat", sa.Float),
        sa.Column("lon", sa.Float),
    )
    op.create_index("ix_alarms_state", "alarms", ["state"])
    op.create_table(
        "alarm_events",
        sa.Column("event_id", sa.String(128), primary_key=True),
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("received_ts", sa.BigInteger, nullable=False),
        sa.Column("entry", sa.String(40), nullable=False),
    )
    op.create_index("ix_alarm_events_alarm_ts", "alarm_events", ["alarm_id", "ts"])
    op.create_table(
        "alarm_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id"), nullable=False),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("before", sa.String(5), nullable=False),
        sa.Column("after", sa.String(5), nullable=False),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("remote", sa.String(64), nullable=False),
    )
    op.create_index("ix_alarm_changes_ts", "alarm_changes", ["ts"])
    op.create_index("ix_alarm_changes_alarm_ts", "alarm_changes", ["alarm_id", "ts"])
    op.create_table(
        "alarm_silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("condition", sa.String(128), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("starts_ts", sa.BigInteger, nullable=False),
        sa.Column("ends_ts", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(80), nullable=False),
        sa.Column("created_ts", sa.BigInteger, nullable=False),
        sa.Column("cancelled_by", sa.String(80)),
        sa.Column("cancelled_ts", sa.BigInteger),
    )
    op.create_table(
        "alarm_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sqlite_autoincrement=True,  # ids never reused after a trim: the publish cursor relies on it
    )


def downgrade() -> None:
    for table in ("alarm_outbox", "alarm_silences", "alarm_changes", "alarm_events", "alarms"):
        op.drop_table(table)
