"""PostgreSQL day partitions of the history tables: made before rows need them, dropped whole when
their day is past retention (no bulk DELETE, no VACUUM: ddl-partitioning in the PostgreSQL manual).

hist_states and hist_events are partitioned by layer (LIST), each layer by day (RANGE on slot / ts),
so every layer keeps its own retention; hist_alarms by day. Names carry the UTC day:
hist_states_bus_20261202. Layer names come from the fixed registry (spine.layers.LAYERS), never
from input, and are checked again here because they go into DDL.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

from sqlalchemy.engine import Connection

DAY_MS = 86_400_000
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,15}$")
_DAY = re.compile(r"_(\d{8})$")
# table -> the range column of its day partitions
RANGE_COL = {"hist_states": "slot", "hist_events": "ts", "hist_alarms": "ts"}


def day_of(ts_ms: int) -> int:
    """The UTC day number (days since 1970-01-01) of a time."""
    return ts_ms // DAY_MS


def day_name(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).strftime("%Y%m%d")


def name_day(name: str) -> int | None:
    m = _DAY.search(name)
    if not m:
        return None
    d = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
    return int(d.timestamp()) // 86400


class Partitions:
    """Which partitions exist (cached: a batch costs no catalogue query once its days are made)."""

    def __init__(self) -> None:
        self.known: set[str] = set()

    def ensure(self, conn: Connection, table: str, layer: str | None, day: int) -> None:
        if layer is not None and not _NAME.match(layer):
            raise ValueError(f"bad layer name {layer!r}")
        parent = table if layer is None else f"{table}_{layer}"
        name = f"{parent}_{day_name(day)}"
        if name in self.known:
            return
        if layer is not None and parent not in self.known:
            conn.exec_driver_sql(
                f"CREATE TABLE IF NOT EXISTS {parent} PARTITION OF {table} FOR VALUES IN ('{layer}') "
                f"PARTITION BY RANGE ({RANGE_COL[table]})")
            self.known.add(parent)
        lo, hi = day * DAY_MS, (day + 1) * DAY_MS
        conn.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {parent} "
                             f"FOR VALUES FROM ({lo}) TO ({hi})")
        self.known.add(name)

    @staticmethod
    def leaves(conn: Connection, parent: str) -> list[str]:
        rows = conn.exec_driver_sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %(p)s", {"p": parent})
        return [r[0] for r in rows]

    def drop_before(self, conn: Connection, parent: str, first_kept_day: int) -> list[str]:
        """Drop the day partitions of `parent` older than `first_kept_day`; their names."""
        dropped = []
        for name in self.leaves(conn, parent):
            day = name_day(name)
            if day is not None and day < first_kept_day and name.startswith(parent + "_"):
                conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
                self.known.discard(name)
                dropped.append(name)
        return dropped


def today() -> int:
    return day_of(int(time.time() * 1000))
