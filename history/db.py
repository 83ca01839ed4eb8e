"""The history store: engines, migrations, the writer's idempotent batch write, retention.

A batch (states, events, alarm changes) is one transaction of INSERT ... ON CONFLICT DO NOTHING on
the rows' natural keys (history/schema.py), so a stream entry delivered twice writes nothing twice.
On PostgreSQL the day partitions the batch needs are made first (history/partitions.py).
Queries for the APIs are in history/queries.py.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from alarms.db import make_engine, migrate_tables
from history.config import HistoryConfig
from history.partitions import DAY_MS, Partitions, day_name, day_of
from history.schema import VERSION_TABLE, hist_alarms, hist_events, hist_gaps, hist_states
from spine.layers import LAYERS

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DELETE_CHUNK = 5000  # SQLite retention: rows per DELETE, so the writer's lock is held briefly

__all__ = ["HistoryStore", "make_engine", "migrate"]

def migrate(engine: Engine) -> None:
    """Bring the history tables to the latest migration (idempotent; run at every writer start)."""
    migrate_tables(engine, MIGRATIONS, VERSION_TABLE)


def _insert(engine: Engine, table: sa.Table) -> Any:
    dialect = postgresql if engine.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


class HistoryStore:
    def __init__(self, url: str, cfg: HistoryConfig, engine: Engine | None = None) -> None:
        self.url = url
        self.cfg = cfg
        self.engine = engine or make_engine(url)
        self.pg = self.engine.dialect.name == "postgresql"
        self.reader = self.engine if self.pg or engine is not None else make_engine(url, writer=False)
        self.parts = Partitions()
        self._ins = {t.name: _insert(self.engine, t) for t in (hist_states, hist_events, hist_alarms)}

    def migrate(self) -> None:
        migrate(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
        if self.reader is not self.engine:
            self.reader.dispose()

    # -- the writer's batch ----------------------------------------------------------------------
    def write(self, states: list[dict], events: list[dict], alarms: list[dict]) -> int:
        """One transaction; returns the rows offered (duplicates are skipped by the database)."""
        if not (states or events or alarms):
            return 0
        with self.engine.begin() as conn:
            if self.pg:
                for layer, day in {(r["layer"], day_of(r["slot"])) for r in states}:
                    self.parts.ensure(conn, "hist_states", layer, day)
                for layer, day in {(r["layer"], day_of(r["ts"])) for r in events}:
                    self.parts.ensure(conn, "hist_events", layer, day)
                for day in {day_of(r["ts"]) for r in alarms}:
                    self.parts.ensure(conn, "hist_alarms", None, day)
            if states:
                conn.execute(self._ins["hist_states"], states)
            if events:
                conn.execute(self._ins["hist_events"], events)
            if alarms:
                conn.execute(self._ins["hist_alarms"], alarms)
        return len(states) + len(events) + len(alarms)

    def summarize(self, now_ms: int) -> int:
        """PostgreSQL: summarize the BRIN ranges filled since the last call in today's partitions.
        An unsummarized range matches every query, so without this a query over the last minutes
        read all of today's partition (measured: a replay step took ~900 ms instead of ~30).
        Returns the ranges summarized."""
        if not self.pg:
            return 0
        like = f"%\\_{day_name(day_of(now_ms))}"
        done = 0
        with self.engine.begin() as conn:
            names = [r[0] for r in conn.exec_driver_sql(
                "SELECT i.indexrelid::regclass::text FROM pg_index i "
                "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_class x ON x.oid = i.indexrelid "
                "JOIN pg_am a ON a.oid = x.relam WHERE a.amname = 'brin' AND t.relname LIKE %(p)s "
                "AND t.relkind = 'r'", {"p": like})]
            for name in names:
                done += conn.exec_driver_sql("SELECT brin_summarize_new_values(%(i)s::regclass)",
                                             {"i": name}).scalar_one()
        return done

    def write_gap(self, stream: str, t_from: int, t_to: int, entries: int | None, now_ms: int) -> None:
        """Record a span lost to trimming (its own transaction: recorded before the read that skips
        it). One row per stream and start; the same start found again extends the span."""
        dialect = postgresql if self.pg else sqlite
        ins = dialect.insert(hist_gaps).values(stream=stream, from_ts=t_from, to_ts=t_to, entries=entries,
                                               detected_ts=now_ms)
        to_max = sa.func.greatest if self.pg else sa.func.max
        ins = ins.on_conflict_do_update(index_elements=["stream", "from_ts"], set_={
            "to_ts": to_max(hist_gaps.c.to_ts, ins.excluded.to_ts),
            "entries": sa.case((ins.excluded.entries.is_(None), hist_gaps.c.entries),
                               else_=sa.func.coalesce(hist_gaps.c.entries, 0) + ins.excluded.entries),
            "detected_ts": ins.excluded.detected_ts})
        with self.engine.begin() as conn:
            conn.execute(ins)

    # -- retention -------------------------------------------------------------------------------
    def first_kept_day(self, days: int, now_ms: int) -> int:
        """Retention keeps `days` whole UTC days: today and the days - 1 before it."""
        return day_of(now_ms) - days + 1

    def cutoffs(self, now_ms: int) -> dict[tuple[str, str | None], int]:
        """(table, layer) -> the first kept time (ms, a day boundary)."""
        out: dict[tuple[str, str | None], int] = {}
        for layer in LAYERS:
            out[("hist_states", layer)] = self.first_kept_day(self.cfg.layer(layer).retention_days,
                                                              now_ms) * DAY_MS
            out[("hist_events", layer)] = self.first_kept_day(self.cfg.event_retention_days(layer),
                                                              now_ms) * DAY_MS
        out[("hist_alarms", None)] = self.first_kept_day(self.cfg.alarms.retention_days, now_ms) * DAY_MS
        return out

    def _gap_cutoff(self, now_ms: int) -> int:
        """Gaps are kept as long as the longest-kept rows they could concern."""
        return min(self.cutoffs(now_ms).values())

    def enforce_retention(self, now_ms: int) -> dict[str, int]:
        """Drop (PostgreSQL: whole day partitions) or delete (SQLite: in chunks) what is past
        retention. Returns partitions dropped / rows deleted per table."""
        done: dict[str, int] = defaultdict(int)
        with self.engine.begin() as conn:  # a few rows at most: a plain DELETE on both databases
            n = conn.execute(hist_gaps.delete().where(hist_gaps.c.to_ts < self._gap_cutoff(now_ms))).rowcount
        if n:
            done["hist_gaps"] += n
        for (table, layer), cutoff in self.cutoffs(now_ms).items():
            if self.pg:
                with self.engine.begin() as conn:
                    parent = table if layer is None else f"{table}_{layer}"
                    done[table] += len(self.parts.drop_before(conn, parent, cutoff // DAY_MS))
                continue
            col = "slot" if table == "hist_states" else "ts"
            where = f"{col} < :cut" + (" AND layer = :layer" if layer is not None else "")
            sql = sa.text(f"DELETE FROM {table} WHERE rowid IN "
                          f"(SELECT rowid FROM {table} WHERE {where} LIMIT {DELETE_CHUNK})")
            while True:
                with self.engine.begin() as conn:
                    n = conn.execute(sql, {"cut": cutoff, "layer": layer}).rowcount
                done[table] += n
                if n < DELETE_CHUNK:
                    break
        return dict(done)
