"""The history tables (SQLAlchemy Core). They change only through a migration in history/migrations,
which the writer runs at start; on PostgreSQL the migration makes them partitioned (by layer, then by
day; see history/partitions.py) with BRIN indexes on time, on SQLite plain tables with B-tree indexes.

Times are epoch milliseconds UTC. Every primary key is the row's idempotency key: a stream entry
delivered twice (a writer killed before its XACK) writes nothing new (INSERT ... ON CONFLICT DO NOTHING).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()
VERSION_TABLE = "history_alembic_version"

# One row per entity per downsampling slot: `slot` is ts floored to the layer's interval (every
# reading and on-change layers: slot = ts). Primary key (layer, entity_id, slot): the first update
# of a slot wins, whoever writes it and however often it is delivered.
hist_states = Table(
    "hist_states", metadata,
    Column("layer", String(16), primary_key=True),
    Column("entity_id", String(128), primary_key=True),
    Column("slot", BigInteger, primary_key=True),
    Column("ts", BigInteger, nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("gone", Boolean, nullable=False),
    Column("k", String(64)),  # the series key of trends: a bus's route, a sensor's kind
    Column("v", Float),  # the layer's main number: delay_s, a sensor value, an air station's pm10
    Column("doc", Text, nullable=False),  # the update as published (JSON)
    Index("ix_hist_states_layer_ts", "layer", "ts", "entity_id"),  # PostgreSQL: BRIN (ts) instead
    Index("ix_hist_states_entity_ts", "layer", "entity_id", "ts"),
)

hist_events = Table(
    "hist_events", metadata,
    Column("layer", String(16), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("ts", BigInteger, primary_key=True),
    Column("type", String(64), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("entity", String(128), nullable=False),
    Column("doc", Text, nullable=False),
    Index("ix_hist_events_ts", "ts"),
)

# Every alarm change seen on the alarm channel (and the open set at each start / resync).
hist_alarms = Table(
    "hist_alarms", metadata,
    Column("alarm_id", Integer, primary_key=True),
    Column("ts", BigInteger, primary_key=True),  # the alarm's updated_ts
    Column("state", String(5), primary_key=True),
    Column("priority", String(8), nullable=False),
    Column("layer", String(16), nullable=False),
    Column("active_since", BigInteger),
    Column("doc", Text, nullable=False),
    Index("ix_hist_alarms_ts", "ts"),
)

# Spans of time whose stream entries were trimmed before the writer read them (a writer away longer
# than a stream holds): replay answers name the gaps they touch. One row per stream and start; a
# span found to reach further later extends its row. Small: never partitioned.
hist_gaps = Table(
    "hist_gaps", metadata,
    Column("stream", String(16), primary_key=True),  # updates, events, alarms
    Column("from_ts", BigInteger, primary_key=True),  # the last entry read before the loss (0: none)
    Column("to_ts", BigInteger, nullable=False),  # the first entry kept after it
    Column("entries", BigInteger),  # how many were lost, where Redis could count them
    Column("detected_ts", BigInteger, nullable=False),
    Index("ix_hist_gaps_to", "to_ts"),
)
