"""Shared by the history tests: a database per test (SQLite file, or a PostgreSQL database of its own,
since other tests share and drop the `test` database), and a writer driven to an empty backlog."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from history.writer import HistoryWriter
from spine import channels
from tests.conftest import PG_URL, _pg_reachable

PG_ADMIN = PG_URL.rsplit("/", 1)[0] + "/postgres"


def make_db(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'history.db'}"
        return
    if not _pg_reachable():
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not reachable at 127.0.0.1:5432 in CI")
        pytest.skip("no PostgreSQL at 127.0.0.1:5432")
    name = f"history_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f"CREATE DATABASE {name}"))
    yield PG_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as c:
        c.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def drain(writer: HistoryWriter, timeout: float = 30.0) -> None:
    """Step the writer until both streams have nothing new or pending for its group."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        writer.step()
        busy = False
        for stream in writer.streams:  # updates, events and (where this user may) alarm changes
            last = writer.r.xinfo_stream(stream)["last-generated-id"]
            for g in writer.r.xinfo_groups(stream):
                if g["name"] == channels.HISTORY_GROUP.encode() and (
                        g["pending"] or g["last-delivered-id"] != last):
                    busy = True
        if not busy and not writer.alarm_rows:
            writer.step()  # a last round picks up alarm messages already on the socket
            return
    raise AssertionError("the writer did not catch up")


def count(store, table: str, where: str = "1=1", **params) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT COUNT(*) FROM {table} WHERE {where}"), params).scalar_one()
