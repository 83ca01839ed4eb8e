"""The alarm tables (SQLAlchemy Core). They change only through a migration in alarms/migrations,
which the service runs at start; the models here must match the latest migration (a test checks).

Times are epoch milliseconds (BigInteger), UTC by definition, the same unit as the events.
"""

from __future__ import annotations

from sqlalchemy import (
                        BigInteger,
                        Boolean,
                        Column,
                        Float,
                        ForeignKey,
                        Index,
                        Integer,
                        MetaData,
                        String,
                        Table,
                        Text,
)

metadata = MetaData()
VERSION_TABLE = "alarms_alembic_version"  # Alembic's, of these migrations only (alarms/migrations)

alarms = Table(
    "alarms", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(300), nullable=False, unique=True),  # source|condition: one alarm each
    Column("source", String(128), nullable=False),
    Column("condition", String(128), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # threshold | video | event
    Column("layer", String(16), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("state", String(5), nullable=False),  # NORM UNACK ACKED RTNUN SHLVD DSUPR OOSRV
    Column("active", Boolean, nullable=False),
    Column("acked", Boolean, nullable=False),
    Column("shelve", String(8)),  # timed | oneshot
    Column("shelved_until", BigInteger),
    Column("shelved_by", String(64)),
    Column("suppressed", Boolean, nullable=False),
    Column("suppress_reason", String(200)),
    Column("oos", Boolean, nullable=False),
    Column("chattering", Boolean, nullable=False),
    Column("transitions", String(400), nullable=False),  # condition-change times in the window
    Column("count", Integer, nullable=False),  # events since this activation
    Column("total", Integer, nullable=False),  # events ever
    Column("first_ts", BigInteger, nullable=False),
    Column("last_ts", BigInteger, nullable=False),
    Column("cond_ts", BigInteger, nullable=False),
    Column("active_since", BigInteger),
    Column("updated_ts", BigInteger, nullable=False),
    Column("title", String(200), nullable=False),
    Column("msg", String(200)),  # the event's catalogue key and params (JSON): shown per language
    Column("params", Text),
    Column("lat", Float),
    Column("lon", Float),
    Index("ix_alarms_state", "state"),
)

# Every event that touched an alarm, once: the key of idempotency (a redelivered stream entry is
# recognised by its event id) and the alarm's journal.
alarm_events = Table(
    "alarm_events", metadata,
    Column("event_id", String(128), primary_key=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("received_ts", BigInteger, nullable=False),
    Column("entry", String(40), nullable=False),  # the stream entry id it came in
    Index("ix_alarm_events_alarm_ts", "alarm_id", "ts"),
)

# Every state change and every operator action: the history and the audit (who, when, why).
alarm_changes = Table(
    "alarm_changes", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alarm_id", Integer, ForeignKey("alarms.id"), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("kind", String(24), nullable=False),
    Column("before", String(5), nullable=False),
    Column("after", String(5), nullable=False),
    Column("priority", String(8), nullable=False),
    Column("actor", String(80), nullable=False),  # system, or the user / screen that acted
    Column("reason", String(500), nullable=False),
    Column("remote", String(64), nullable=False),
    Index("ix_alarm_changes_ts", "ts"),
    Index("ix_alarm_changes_alarm_ts", "alarm_id", "ts"),
)

alarm_silences = Table(
    "alarm_silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(128), nullable=False),  # fnmatch patterns; "*" matches all
    Column("condition", String(128), nullable=False),
    Column("layer", String(16), nullable=False),
    Column("starts_ts", BigInteger, nullable=False),
    Column("ends_ts", BigInteger, nullable=False),
    Column("reason", String(500), nullable=False),
    Column("created_by", String(80), nullable=False),
    Column("created_ts", BigInteger, nullable=False),
    Column("cancelled_by", String(80)),
    Column("cancelled_ts", BigInteger),
)

# Transactional outbox: what to publish, written in the same transaction as the change, so a
# change is never published before it is committed nor lost when the service dies between the two.
alarm_outbox = Table(
    "alarm_outbox", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    sqlite_autoincrement=True,  # ids never reused after a trim: the publish cursor relies on it
)
