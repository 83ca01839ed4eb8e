"""Alembic environment of the history tables (run by history.db.migrate with a connection of its own).
A version table of its own (history_alembic_version), so these never meet another part's migrations."""

from __future__ import annotations

from alembic import context

from history.schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only history.db.migrate runs these
    raise RuntimeError("run the history migrations through history.db.migrate(engine)")
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
