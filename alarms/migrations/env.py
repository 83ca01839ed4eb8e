"""Alembic environment of the alarm tables (run by alarms.db.migrate with a connection of its own).

A version table of its own (alarms_alembic_version), so these migrations never meet another
part's, whatever else shares the database.
"""

from __future__ import annotations

from alembic import context

from alarms.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only alarms.db.migrate runs these
    raise RuntimeError("run the alarm migrations through alarms.db.migrate(url)")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
