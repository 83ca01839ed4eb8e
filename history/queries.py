"""Read side of history: replay (the picture as it was at T, and the changes between two times) and
trends (bucketed min/avg/max computed in SQL, so a 30-day chart returns a few hundred points).

State at T, per layer: the latest row per entity with T - window_s < ts <= T (config/history.yaml),
left out when that row says the entity was gone. PostgreSQL: DISTINCT ON; SQLite: MAX() with bare
columns (SQLite takes them from the row holding the maximum).

PostgreSQL reads the day partitions of hist_states by name (the days a window or a step touches,
those that exist), with conditions on `ts` only. Measured over an hour of 10,000 entities: through
the parent, the `slot` bounds that pruned the days were also index conditions of the primary key
(layer, entity_id, slot), and on a partition without statistics (a new day's, until autovacuum
analyzes it; the benchmark's freshly filled hour) the planner walked that whole index for them: a
step took ~490 ms instead of ~30 (BRIN on ts). On a leaf with `ts` conditions alone only BRIN (or a
scan) fits, and `enable_seqscan = off` makes it BRIN also where there are no statistics at all
(without them BRIN's cost assumes no correlation and the planner scanned the whole partition: 2.8 s).
The session also gets work_mem for "latest per entity" (its sort of ~100,000 bus rows spilled to
disk at 4 MB) and no JIT (compiling cost ~50 ms a query, more than it saved on these).

Every replay answer says which recorded gaps (hist_gaps: stream entries trimmed before the writer
read them) touch it: `gaps`, a list of {stream, from, to, entries} (empty: nothing known lost).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
import sqlalchemy as sa

from history.db import HistoryStore
from history.partitions import day_name, day_of
from spine.layers import LAYERS

EVENTS_AT = 200  # the event list at T: its newest, as the live list holds (RECENT_EVENTS_KEEP)
EVENTS_BACK_MS = 86_400_000
ALARMS_BACK_MS = 30 * 86_400_000  # an alarm row older than this is not looked at (retention-like)
MAX_STEP_ROWS = 50_000
MAX_BUCKETS = 2000
FIELD = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # a props field a trend may read (goes into SQL text)
CLOSED_INCIDENT = ("resolved", "closed", "cancelled")
PG_SESSION = ("SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off", "SET LOCAL enable_seqscan = off")


def _doc(text: str, raw: bool) -> Any:
    """A stored document: decoded, or (`raw`) as msgspec.Raw, which msgspec.json.encode copies into
    a response as it is (the API's way: decoding 17,000 documents for one step was most of its cost)."""
    return msgspec.Raw(text) if raw else msgspec.json.decode(text)


def _docs(rows: Any, raw: bool = False) -> list[Any]:
    return [_doc(r.doc, raw) for r in rows]


def _pg_session(conn: Any) -> None:
    for sql in PG_SESSION:
        conn.exec_driver_sql(sql)


def _leaves(conn: Any, spans: dict[str, tuple[int, int]]) -> dict[str, list[str]]:
    """PostgreSQL: per layer, the hist_states day partitions holding slots in [lo, hi] that exist
    (one catalog query). Names from the layer registry and day numbers only, never from input."""
    want = {layer: [f"hist_states_{layer}_{day_name(d)}" for d in range(day_of(max(lo, 0)), day_of(hi) + 1)]
            for layer, (lo, hi) in spans.items() if layer in LAYERS and hi >= lo}
    names = [n for ns in want.values() for n in ns]
    if not names:
        return {}
    have = {r[0] for r in conn.exec_driver_sql(
        "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname = ANY(%(n)s)", {"n": names})}
    return {layer: [n for n in ns if n in have] for layer, ns in want.items()}


def gaps_between(store: HistoryStore, t1: int, t2: int, conn: Any = None) -> list[dict]:
    """Recorded gaps that overlap [t1, t2] (a moment: t1 == t2)."""
    q = sa.text("SELECT stream, from_ts, to_ts, entries FROM hist_gaps WHERE to_ts >= :a AND from_ts <= :b "
                "ORDER BY from_ts LIMIT 100")
    if conn is None:
        with store.reader.connect() as c:
            return gaps_between(store, t1, t2, c)
    return [{"stream": r.stream, "from": r.from_ts, "to": r.to_ts, "entries": r.entries}
            for r in conn.execute(q, {"a": t1, "b": t2})]


def state_at(store: HistoryStore, t: int, layers: tuple[str, ...] = LAYERS,
             raw: bool = False) -> dict[str, list[Any]]:
    out: dict[str, list[dict]] = {}
    with store.reader.connect() as conn:
        leaves: dict[str, list[str]] = {}
        if store.pg:
            _pg_session(conn)
            leaves = _leaves(conn, {layer: (t - int(store.cfg.layer(layer).window_s * 1000)
                                            - store.cfg.layer(layer).every_ms, t) for layer in layers})
        for layer in layers:
            lc = store.cfg.layer(layer)
            lo = t - int(lc.window_s * 1000)
            if store.pg:  # the day partitions by name, ts conditions only (see the module's doc)
                if not leaves.get(layer):
                    out[layer] = []
                    continue
                union = " UNION ALL ".join(f"SELECT entity_id, ts, gone, doc FROM {name} "
                                           "WHERE ts > :lo AND ts <= :t" for name in leaves[layer])
                # COLLATE "C": byte order is all DISTINCT ON needs, and sorting ~100,000 ids
                # with the database's collation (C.UTF-8 here) took 5x longer (630 vs 110 ms).
                sql = (f'SELECT DISTINCT ON (entity_id COLLATE "C") entity_id, ts, gone, doc '
                       f'FROM ({union}) u ORDER BY entity_id COLLATE "C", ts DESC')
            else:  # the newest time per entity from the index alone, then one seek per entity
                sql = ("SELECT h.gone, h.doc FROM (SELECT entity_id, MAX(ts) AS mts FROM hist_states "
                       "INDEXED BY ix_hist_states_layer_ts WHERE layer = :l AND ts > :lo AND ts <= :t "
                       "GROUP BY entity_id) m JOIN hist_states h ON h.layer = :l "
                       "AND h.entity_id = m.entity_id AND h.ts = m.mts")
            rows = conn.execute(sa.text(sql), {"l": layer, "lo": lo, "t": t, "slo": lo - lc.every_ms})
            out[layer] = [_doc(r.doc, raw and layer != "incident") for r in rows if not r.gone]
    return out


def alarms_at(store: HistoryStore, t: int, raw: bool = False) -> list[Any]:
    """Alarms not NORM at T: each alarm's latest recorded row at or before T."""
    if store.pg:
        sql = ("SELECT DISTINCT ON (alarm_id) alarm_id, ts, state, doc FROM hist_alarms "
               "WHERE ts > :lo AND ts <= :t ORDER BY alarm_id, ts DESC, state")
    else:
        sql = ("SELECT alarm_id, MAX(ts) AS ts, state, doc FROM hist_alarms "
               "WHERE ts > :lo AND ts <= :t GROUP BY alarm_id")
    with store.reader.connect() as conn:
        rows = conn.execute(sa.text(sql), {"lo": t - ALARMS_BACK_MS, "t": t})
        return [_doc(r.doc, raw) for r in rows if r.state != "NORM"]


def events_at(store: HistoryStore, t: int, limit: int = EVENTS_AT, raw: bool = False) -> list[Any]:
    """The event list at T: newest first. PostgreSQL (BRIN: no order to read the newest first
    from) looks back 10 min, then 1 h, 6 h, 24 h until it has `limit`: at 10 events/s a whole day
    is ~860,000 rows to sort for 200; SQLite reads its ts index backwards and stops at `limit`."""
    q = sa.text("SELECT doc FROM hist_events WHERE ts > :lo AND ts <= :t ORDER BY ts DESC, id DESC LIMIT :n")
    backs = (600_000, 3_600_000, 6 * 3_600_000, EVENTS_BACK_MS) if store.pg else (EVENTS_BACK_MS,)
    with store.reader.connect() as conn:
        if store.pg:
            _pg_session(conn)
        for back in backs:
            rows = conn.execute(q, {"lo": t - back, "t": t, "n": limit}).all()
            if len(rows) >= limit:
                break
        return _docs(rows, raw)


def picture_at(store: HistoryStore, t: int, raw: bool = False) -> dict[str, Any]:
    """Everything a replayed screen shows at T (incidents are always decoded: filtered on status)."""
    layers = state_at(store, t, raw=raw)
    incidents = [u for u in layers.get("incident", [])
                 if (u.get("props") or {}).get("status") not in CLOSED_INCIDENT]
    return {"t": t, "layers": layers, "alarms": alarms_at(store, t, raw), "incidents": incidents,
            "events": events_at(store, t, raw=raw), "gaps": gaps_between(store, t, t)}


def steps(store: HistoryStore, t1: int, t2: int, limit: int = MAX_STEP_ROWS,
          raw: bool = False) -> dict[str, Any]:
    """What changed in (t1, t2], oldest first: entity updates (a gone one says so), events and
    alarm rows. `truncated` when there were more than `limit` updates (ask for a shorter span)."""
    with store.reader.connect() as conn:
        ups = []
        if store.pg:  # every layer's day partitions in one query, ts conditions only (module doc)
            _pg_session(conn)
            leaves = _leaves(conn, {layer: (t1 - store.cfg.layer(layer).every_ms, t2) for layer in LAYERS})
            names = [n for ns in leaves.values() for n in ns]
            if names:
                union = " UNION ALL ".join(f"SELECT ts, doc FROM {n} WHERE ts > :a AND ts <= :b"
                                           for n in names)
                ups = conn.execute(sa.text(f"SELECT ts, doc FROM ({union}) u ORDER BY ts LIMIT :n"),
                                   {"a": t1, "b": t2, "n": limit + 1}).all()
        else:
            for layer in LAYERS:  # per layer: each reads its own range of the (layer, ts, entity) index
                ups += conn.execute(sa.text("SELECT ts, doc FROM hist_states WHERE layer = :l AND ts > :a "
                                            "AND ts <= :b ORDER BY ts LIMIT :n"),
                                    {"l": layer, "a": t1, "b": t2, "n": limit + 1}).all()
            ups.sort(key=lambda r: r.ts)
        evs = conn.execute(sa.text("SELECT doc FROM hist_events WHERE ts > :a AND ts <= :b "
                                   "ORDER BY ts LIMIT :n"), {"a": t1, "b": t2, "n": limit}).all()
        als = conn.execute(sa.text("SELECT doc FROM hist_alarms WHERE ts > :a AND ts <= :b "
                                   "ORDER BY ts LIMIT :n"), {"a": t1, "b": t2, "n": limit}).all()
        gaps = gaps_between(store, t1, t2, conn)
    return {"from": t1, "to": t2, "updates": _docs(ups[:limit], raw), "events": _docs(evs, raw),
            "alarms": _docs(als, raw), "truncated": len(ups) > limit, "gaps": gaps}


# ---- trends ---------------------------------------------------------------------------------------
def bucket_ms(t0: int, t1: int, buckets: int) -> int:
    buckets = max(1, min(buckets, MAX_BUCKETS))
    return max(1000, -(-(t1 - t0) // buckets))


def _value_sql(store: HistoryStore, field: str | None) -> str:
    """SQL for the number a trend reads: the row's `v` column, or a numeric props field."""
    if field is None:
        return "v"
    if not FIELD.match(field):
        raise ValueError("bad field name")
    if store.pg:
        return (f"CASE WHEN jsonb_typeof(doc::jsonb->'props'->'{field}') = 'number' "
                f"THEN (doc::jsonb->'props'->>'{field}')::float8 END")
    return (f"CASE WHEN json_type(doc, '$.props.{field}') IN ('integer', 'real') "
            f"THEN json_extract(doc, '$.props.{field}') END")


def _points(rows: Any, t0: int, size: int) -> list[dict]:
    return [{"t": t0 + int(r.b) * size, "min": r.mn, "avg": r.av, "max": r.mx, "n": r.n} for r in rows]


def series(store: HistoryStore, layer: str, entity: str, t0: int, t1: int, buckets: int = 300,
           field: str | None = None) -> dict[str, Any]:
    """One entity's number over [t0, t1): min/avg/max per bucket."""
    size = bucket_ms(t0, t1, buckets)
    val = _value_sql(store, field)
    sql = sa.text(f"SELECT (ts - :t0) / :size AS b, MIN(x) AS mn, AVG(x) AS av, MAX(x) AS mx, "
                  f"COUNT(x) AS n FROM (SELECT ts, {val} AS x FROM hist_states WHERE layer = :l "
                  f"AND entity_id = :e AND ts >= :t0 AND ts < :t1 AND NOT gone) s "
                  f"WHERE x IS NOT NULL GROUP BY b ORDER BY b")
    with store.reader.connect() as conn:
        rows = conn.execute(sql, {"t0": t0, "t1": t1, "size": size, "l": layer, "e": entity})
        return {"layer": layer, "entity": entity, "field": field or "v", "bucket_ms": size,
                "points": _points(rows, t0, size)}


def latest_key(store: HistoryStore, layer: str, entity: str, t: int) -> str | None:
    """The trend key (a sensor's kind...) of an entity's latest state at or before T."""
    q = sa.text("SELECT k FROM hist_states WHERE layer = :l AND entity_id = :e AND ts <= :t "
                "ORDER BY ts DESC LIMIT 1")
    with store.reader.connect() as conn:
        return conn.execute(q, {"l": layer, "e": entity, "t": t}).scalar()


def bus_delays(store: HistoryStore, t0: int, t1: int, buckets: int = 300,
               max_routes: int = 50) -> dict[str, Any]:
    """Average, min and max delay (s) of the buses of each route, per bucket; the routes with the
    most samples first (at most `max_routes`)."""
    size = bucket_ms(t0, t1, buckets)
    sql = sa.text("SELECT k, (ts - :t0) / :size AS b, MIN(v) AS mn, AVG(v) AS av, MAX(v) AS mx, "
                  "COUNT(v) AS n FROM hist_states WHERE layer = 'bus' AND ts >= :t0 AND ts < :t1 "
                  "AND v IS NOT NULL AND k IS NOT NULL GROUP BY k, b ORDER BY k, b")
    routes: dict[str, list[dict]] = {}
    with store.reader.connect() as conn:
        for r in conn.execute(sql, {"t0": t0, "t1": t1, "size": size}):
            routes.setdefault(r.k, []).append({"t": t0 + int(r.b) * size, "min": r.mn, "avg": r.av,
                                               "max": r.mx, "n": r.n})
    top = sorted(routes, key=lambda k: -sum(p["n"] for p in routes[k]))[:max_routes]
    return {"bucket_ms": size, "routes": {k: routes[k] for k in sorted(top)}}


def alarm_rates(store: HistoryStore, t0: int, t1: int, buckets: int = 300) -> dict[str, Any]:
    """Alarm activations (distinct alarm and activation time) per bucket and priority."""
    size = bucket_ms(t0, t1, buckets)
    sql = sa.text("SELECT priority, (active_since - :t0) / :size AS b, COUNT(*) AS n FROM "
                  "(SELECT DISTINCT alarm_id, active_since, priority FROM hist_alarms WHERE "
                  "active_since >= :t0 AND active_since < :t1) a GROUP BY priority, b ORDER BY b")
    out: dict[str, list[dict]] = {}
    with store.reader.connect() as conn:
        for r in conn.execute(sql, {"t0": t0, "t1": t1, "size": size}):
            out.setdefault(r.priority, []).append({"t": t0 + int(r.b) * size, "n": r.n})
    return {"bucket_ms": size, "priorities": out}
