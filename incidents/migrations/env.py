"""Alembic environment of the incident tables (run by incidents.db.migrate with its connection).

A version table of its own (incidents_alembic_version), apart from the alarms' and the app's.
"""

from __future__ import annotations

from alembic import context

from incidents.schema import metadata

VERSION_TABLE = "incidents_alembic_version"

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only incidents.db.migrate runs these
    raise RuntimeError("run the incident migrations through incidents.db.migrate(engine)")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
