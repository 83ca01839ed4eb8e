"""The history tables: entity states, events, alarm changes. PostgreSQL: partitioned by layer, then
by day (history/partitions.py makes the day partitions), BRIN on time; SQLite: plain tables.

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

PG = [
    """CREATE TABLE hist_states (
        layer varchar(16) NOT NULL, entity_id varchar(128) NOT NULL, slot bigint NOT NULL,
        ts bigint NOT NULL, lat double precision NOT NULL, lon double precision NOT NULL,
        gone boolean NOT NULL, k varchar(64), v double precision, doc text NOT NULL,
        PRIMARY KEY (layer, entity_id, slot)) PARTITION BY LIST (layer)""",
    "CREATE INDEX ix_hist_states_ts ON hist_states USING brin (ts)",
    """CREATE TABLE hist_events (
        layer varchar(16) NOT NULL, id varchar(128) NOT NULL, ts bigint NOT NULL,
        type varchar(64) NOT NULL, severity varchar(8) NOT NULL, entity varchar(128) NOT NULL,
        doc text NOT NULL, PRIMARY KEY (layer, id, ts)) PARTITION BY LIST (layer)""",
    "CREATE INDEX ix_hist_events_ts ON hist_events USING brin (ts)",
    """CREATE TABLE hist_alarms (
        alarm_id integer NOT NULL, ts bigint NOT NULL, state varchar(5) NOT NULL,
        priority varchar(8) NOT NULL, layer varchar(16) NOT NULL, active_since bigint,
        doc text NOT NULL, PRIMARY KEY (alarm_id, ts, state)) PARTITION BY RANGE (ts)""",
    "CREATE INDEX ix_hist_alarms_ts ON hist_alarms USING brin (ts)",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for sql in PG:
            op.execute(sql)
        return
    op.create_table(
        "hist_states",
        sa.Column("layer", sa.String(16), primary_key=True),
        sa.Column("entity_id", sa.String(128), primary_key=True),
        sa.Column("slot", sa.BigInteger, primary_key=True),
        sa.Column("ts", sa.BigInteger, nullable=False),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("gone", sa.Boolean, nullable=False),
        sa.Column("k", sa.String(64)),
        sa.Column("v", sa.Float),
        sa.Column("doc", sa.Text, nullable=False),
    )
    # (layer, ts, entity_id): replay's "latest per entity in a window" reads only this index, then
    # seeks each entity's row; steps read a layer's time range. PostgreSQL gets the same from its
    # layer partitions and BRIN on ts.
    op.create_index("ix_hist_states_layer_ts", "hist_states", ["layer", "ts", "entity_id"])
    op.create_index("ix_hist_states_entity_ts", "hist_states", ["layer", "entity_id", "ts"])
    op.create_table(
        "hist_events",
        sa.Column("layer", sa.String(16), primary_key=True),
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("entity", sa.String(128), nullable=False),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index("ix_hist_events_ts", "hist_events", ["ts"])
    op.create_table(
        "hist_alarms",
        sa.Column("alarm_id", sa.Integer, primary_key=True),
        sa.Column("ts", sa.BigInteger, primary_key=True),
        sa.Column("state", sa.String(5), primary_key=True),
        sa.Column("priority", sa.String(8), nullable=False),
        sa.Column("layer", sa.String(16), nullable=False),
        sa.Column("active_since", sa.BigInteger),
        sa.Column("doc", sa.Text, nullable=False),
    )
    op.create_index("ix_hist_alarms_ts", "hist_alarms", ["ts"])


def downgrade() -> None:
    for table in ("hist_alarms", "hist_events", "hist_states"):
        op.drop_table(table)
