"""The alarm store: SQL engines, migrations at start, and every write (events, timers, actions).

Every write is one transaction that changes the alarm rows, appends their history rows (state
changes and operator actions, with who, when and why) and appends one outbox row with what is to be
published. Nothing is published from here: the service publishes committed outbox rows (service.py),
so a change reaches the screens only after it is in SQL, and one committed is never lost.

Writers never lose an update to each other (the service's consumers, the web's actions): SQLite
transactions start with BEGIN IMMEDIATE (one writer at a time, waiting up to 30 s), PostgreSQL
locks the alarm rows it reads (SELECT ... FOR UPDATE) and commits outbox rows in id order (a lock on
the outbox table until commit), so the publisher's cursor never skips a row committed late.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from alarms import states
from alarms.config import AlarmConfig
from alarms.rules import Match, match
from alarms.schema import VERSION_TABLE, alarm_changes, alarm_events, alarm_outbox, alarm_silences, alarms
from alarms.states import Alarm, Change, NotAllowed

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
IN_CHUNK = 400  # values per IN (...) list: far below every driver's parameter limit
RETRIES = 5


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- engines and migrations ---------------------------------------------------------------------
def make_engine(url: str, writer: bool = True) -> Engine:
    """An engine; on SQLite a `writer` engine starts every transaction with BEGIN IMMEDIATE, a reader
    engine leaves them deferred (WAL readers never wait for the writer, nor take its lock)."""
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @sa_event.listens_for(engine, "connect")
        def _sqlite_setup(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints, safe on crash
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @sa_event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # Writers: one at a time, so no update is lost. Readers: a plain deferred BEGIN.
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=4, max_overflow=4)


_migrated: set[tuple[str, str]] = set()
_migrate_lock = threading.Lock()


def migrate(engine: Engine) -> None:
    """Bring the alarm tables to the latest migration (idempotent; run at every service start)."""
    migrate_tables(engine, MIGRATIONS, VERSION_TABLE)


def migrate_tables(engine: Engine, migrations: Path, version_table: str) -> None:
    """Bring one part's tables (its own Alembic folder and version table: alarms, incidents,
    history) to their latest migration; idempotent, and cheap when already there."""
    from alembic import command
    from alembic.config import Config

    key = (str(engine.url), version_table)
    with _migrate_lock:
        if key in _migrated:
            return
        cfg = Config()
        cfg.set_main_option("script_location", str(migrations))
        if _at_head(engine, cfg, version_table):  # the usual start: nothing to do, no write lock taken
            _migrated.add(key)
            return
        for attempt in range(3):  # two processes starting together: one may lose the race, once
            try:
                with engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "head")
                break
            except (IntegrityError, OperationalError, sa.exc.ProgrammingError):
                if attempt == 2:
                    raise
                time.sleep(0.5)
        _migrated.add(key)


def _at_head(engine: Engine, cfg: Any, version_table: str) -> bool:
    """Whether the database is at the latest migration, read without the writer's lock (on SQLite an
    upgrade's transaction holds it, which stalled another service's writes for a second at start)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(cfg).get_current_head()
    reader = make_engine(str(engine.url.render_as_string(hide_password=False)), writer=False) \
        if engine.dialect.name == "sqlite" else engine
    try:
        with reader.connect() as conn:
            current = MigrationContext.configure(conn, opts={"version_table": version_table}
                                                 ).get_current_revision()
    except sa.exc.SQLAlchemyError:
        return False
    finally:
        if reader is not engine:
            reader.dispose()
    return current == head


# ---- rows <-> the pure machine -----------------------------------------------------------------
def to_machine(row: dict) -> Alarm:
    return Alarm(priority=row["priority"], active=row["active"], acked=row["acked"],
                 shelve=row["shelve"], shelved_until=row["shelved_until"], suppressed=row["suppressed"],
                 oos=row["oos"], count=row["count"], active_since=row["active_since"],
                 cond_ts=row["cond_ts"],
                 transitions=tuple(int(t) for t in row["transitions"].split(",") if t),
                 chattering=row["chattering"])


def _from_machine(row: dict, a: Alarm) -> None:
    row.update(priority=a.priority, active=a.active, acked=a.acked, shelve=a.shelve,
               shelved_until=a.shelved_until, suppressed=a.suppressed, oos=a.oos, count=a.count,
               active_since=a.active_since, cond_ts=a.cond_ts, chattering=a.chattering,
               transitions=",".join(str(t) for t in a.transitions), state=a.state)
    if a.shelve is None:
        row["shelved_by"] = None
    if not a.suppressed:
        row["suppress_reason"] = None


DOC_FIELDS = ("id", "key", "source", "condition", "rule", "kind", "layer", "priority", "state", "active",
              "acked", "shelve", "shelved_until", "shelved_by", "suppressed", "suppress_reason", "oos",
              "chattering", "count", "total", "first_ts", "last_ts", "active_since", "updated_ts",
              "title", "msg", "params", "lat", "lon")


def doc(row: dict) -> dict:
    """The alarm as the API and the live channel show it (params decoded from their JSON)."""
    out = {k: row.get(k) for k in DOC_FIELDS}
    out["params"] = _params_of(row.get("params"))
    return out


def _params_of(raw: str | None) -> dict | None:
    if not raw:
        return None
    try:
        got = json.loads(raw)
    except ValueError:
        return None
    return got if isinstance(got, dict) else None


def _message(ev: Any) -> tuple[str | None, str | None]:
    """The event's message key and its params as JSON (both validated by the contract already)."""
    msg = getattr(ev, "msg", None)
    params = getattr(ev, "params", None)
    return (msg[:200] if msg else None), (json.dumps(params, ensure_ascii=False) if params else None)


# ---- suppression by design and silences ------------------------------------------------------
@dataclass
class Silence:
    id: int
    source: str
    condition: str
    layer: str
    ends_ts: int
    reason: str

    def matches(self, row: dict) -> bool:
        return (fnmatch.fnmatchcase(row["source"], self.source)
                and fnmatch.fnmatchcase(row["condition"], self.condition)
                and self.layer in ("*", row["layer"]))


@dataclass
class Context:
    """What the system state says is to be hidden: refreshed by the service every few seconds."""

    offline_cameras: set[str] = field(default_factory=set)
    stale_layers: set[str] = field(default_factory=set)
    silences: list[Silence] = field(default_factory=list)

    def reason(self, row: dict, cfg: AlarmConfig) -> str | None:
        sup = cfg.suppression
        if sup.camera_offline and row["kind"] == "video" and row["source"] in self.offline_cameras:
            return "camera offline"
        if sup.stale_feed and row["kind"] == "threshold" and row["layer"] in self.stale_layers:
            return f"{row['layer']} feed stale"
        # A silence is planned work, not a way around the shelving policy: an alarm of a priority
        # that may never be shelved (critical) is never silenced either.
        for s in self.silences if cfg.shelvable(row["priority"]) else ():
            if s.matches(row):
                return f"silence #{s.id}: {s.reason}"[:200]
        return None


@dataclass
class Actor:
    name: str = "system"
    remote: str = ""


SYSTEM = Actor()


class _Tx:
    """One transaction's bookkeeping: changed rows, history rows, event rows, the outbox payload."""

    def __init__(self, conn: Connection, now: int) -> None:
        self.conn = conn
        self.now = now
        self.dirty: dict[int, dict] = {}
        self.changes: list[dict] = []
        self.events: list[dict] = []
        self.event_ids: list[str] = []

    def record(self, row: dict, change: Change | None, actor: Actor = SYSTEM, reason: str = "",
               ts: int | None = None) -> None:
        """Mark the row changed and append its history row (`ts`: when it happened, for a
        condition change the event's own time; default now)."""
        if change is None:
            return
        row["updated_ts"] = self.now
        self.dirty[row["id"]] = row
        if change.kind == "repeat":
            return
        self.changes.append({"alarm_id": row["id"], "ts": self.now if ts is None else ts, "kind": change.kind,
                             "before": change.before, "after": change.after, "priority": row["priority"],
                             "actor": actor.name[:80], "reason": reason[:500], "remote": actor.remote[:64]})


# Built once: a statement made per call is compiled per call (most of a batch's cost, measured).
_COLS = [col.name for col in alarms.columns if col.name not in ("id", "key")]
_UPDATE = (alarms.update().where(alarms.c.id == sa.bindparam("b_id"))
           .values({c: sa.bindparam(f"b_{c}") for c in _COLS}))
_INSERT = alarms.insert().returning(alarms.c.id)
_OUTBOX = alarm_outbox.insert()


class AlarmStore:
    def __init__(self, url: str, cfg: AlarmConfig, engine: Engine | None = None) -> None:
        self.url = url
        self.cfg = cfg
        self.engine = engine or make_engine(url)
        self.pg = self.engine.dialect.name == "postgresql"
        self.reader = self.engine if self.pg or engine is not None else make_engine(url, writer=False)
        self.chatter = (cfg.chattering.transitions, int(cfg.chattering.window_s * 1000))
        self.never_shelved = tuple(p for p, c in cfg.priorities.items() if not c.shelvable)

    def migrate(self) -> None:
        migrate(self.engine)

    # -- the transaction frame -------------------------------------------------------------------
    @contextmanager
    def _tx(self, now: int | None = None) -> Iterator[_Tx]:
        with self.engine.begin() as conn:
            tx = _Tx(conn, now or now_ms())
            yield tx
            self._flush(tx)

    def _retrying(self, fn: Callable[[], Any]) -> Any:
        """Run a whole transaction again after a conflict (two services raising the same new
        alarm; a deadlock or serialization failure). Each try starts from fresh reads."""
        for attempt in range(RETRIES):
            try:
                return fn()
            except (IntegrityError, OperationalError) as exc:
                if attempt == RETRIES - 1:
                    raise
                log.info("alarm transaction conflicted (%s); retrying", type(exc).__name__)
                time.sleep(0.01 * (attempt + 1))
        return None

    def _flush(self, tx: _Tx) -> None:
        conn = tx.conn
        if tx.dirty:
            conn.execute(_UPDATE, [{"b_id": r["id"], **{f"b_{c}": r[c] for c in _COLS}}
                                   for r in tx.dirty.values()])
        if tx.events:
            conn.execute(alarm_events.insert(), tx.events)
        if tx.changes:
            conn.execute(alarm_changes.insert(), tx.changes)
        if tx.dirty or tx.event_ids:
            if self.pg:  # outbox ids become visible in commit order (see the module's doc)
                conn.exec_driver_sql("LOCK TABLE alarm_outbox IN SHARE ROW EXCLUSIVE MODE")
            payload = {"t": "alarms", "ts": tx.now, "a": [doc(r) for r in tx.dirty.values()],
                       "ev": tx.event_ids}
            conn.execute(_OUTBOX, {"ts": tx.now, "payload": msgspec.json.encode(payload).decode()})

    def _rows(self, conn: Connection, where: Any) -> list[dict]:
        q = sa.select(alarms).where(where)
        if self.pg:
            q = q.with_for_update()
        return [dict(r._mapping) for r in conn.execute(q)]

    def _by_keys(self, conn: Connection, keys: Iterable[str]) -> dict[str, dict]:
        keys = sorted(set(keys))  # one lock order for every writer: no deadlock between two services
        out: dict[str, dict] = {}
        for i in range(0, len(keys), IN_CHUNK):
            for r in self._rows(conn, alarms.c.key.in_(keys[i:i + IN_CHUNK])):
                out[r["key"]] = r
        return out

    # -- events ------------------------------------------------------------------------------------
    def ingest(self, items: list[tuple[str, Any]], ctx: Context | None = None,
               now: int | None = None) -> int:
        """Apply events (stream entry id, spine.contract.Event) in one transaction; an event id seen
        before is skipped, so a redelivered entry changes nothing. Returns the events applied."""
        ctx = ctx or Context()
        todo: list[tuple[str, Any, Match]] = []
        seen_here: set[str] = set()
        for entry, ev in items:
            m = match(self.cfg, ev)
            if m is not None and ev.id not in seen_here:
                seen_here.add(ev.id)
                todo.append((entry, ev, m))
        if not todo:
            return 0
        return self._retrying(lambda: self._ingest(todo, ctx, now or now_ms()))

    def _ingest(self, todo: list[tuple[str, Any, Match]], ctx: Context, now: int) -> int:
        with self._tx(now) as tx:
            conn = tx.conn
            ids = [ev.id for _, ev, _ in todo]
            seen: set[str] = set()
            for i in range(0, len(ids), IN_CHUNK):
                seen.update(conn.execute(sa.select(alarm_events.c.event_id)
                                         .where(alarm_events.c.event_id.in_(ids[i:i + IN_CHUNK]))).scalars())
            fresh = [t for t in todo if t[1].id not in seen]
            rows = self._by_keys(conn, (m.key for _, _, m in fresh))
            applied = 0
            for entry, ev, m in fresh:
                row = rows.get(m.key)
                if row is None:
                    if not m.active:
                        continue  # a clear for an alarm never raised: nothing to do
                    row = self._create(conn, m, ev, now)
                    rows[m.key] = row
                reason = ctx.reason(row, self.cfg)
                a, ch = states.suppress(to_machine(row), reason is not None)
                if ch:
                    row["suppress_reason"] = reason
                    _from_machine(row, a)
                    tx.record(row, ch)
                a, ch = states.condition(a, m.active, ev.ts, m.priority, self.chatter, self.never_shelved)
                _from_machine(row, a)
                row["total"] += 1
                row["last_ts"] = max(row["last_ts"], ev.ts)
                if m.active:
                    msg, params = _message(ev)
                    row.update(title=ev.title[:200] or row["title"], msg=msg, params=params,
                               lat=ev.lat, lon=ev.lon)
                tx.record(row, ch or Change("repeat", row["state"], row["state"]), ts=ev.ts)
                tx.events.append({"event_id": ev.id, "alarm_id": row["id"], "ts": ev.ts,
                                  "received_ts": now, "entry": entry[:40]})
                tx.event_ids.append(ev.id)
                applied += 1
            return applied

    def _create(self, conn: Connection, m: Match, ev: Any, now: int) -> dict:
        row = {"key": m.key, "source": m.source, "condition": m.condition, "rule": m.rule.name[:64],
               "kind": m.rule.kind, "layer": ev.layer, "priority": m.priority or "low", "state": "NORM",
               "active": False, "acked": True, "shelve": None, "shelved_until": None, "shelved_by": None,
               "suppressed": False, "suppress_reason": None, "oos": False, "chattering": False,
               "transitions": "", "count": 0, "total": 0, "first_ts": ev.ts, "last_ts": ev.ts,
               "cond_ts": 0, "active_since": None, "updated_ts": now, "title": ev.title[:200],
               "msg": _message(ev)[0], "params": _message(ev)[1], "lat": ev.lat, "lon": ev.lon}
        row["id"] = conn.execute(_INSERT, row).scalar_one()  # one statement, compiled once
        return row

    # -- timers: grouping quiet time, one-off auto clear, shelve expiry, suppression, chattering --
    def tick(self, ctx: Context | None = None, now: int | None = None) -> int:
        """Everything time or system state decides; returns the alarms changed."""
        ctx = ctx or Context()
        return self._retrying(lambda: self._tick(ctx, now or now_ms()))

    def _tick(self, ctx: Context, now: int) -> int:
        quiet_ms = int(self.cfg.grouping.quiet_s * 1000)
        auto = {r.name: int(r.auto_clear_s * 1000) for r in self.cfg.rules}
        # Only rows a timer or the system state may change (a full scan every half second was most
        # of the service's time with a thousand open alarms, measured).
        c = alarms.c
        due = [c.shelve.is_not(None), c.suppressed == sa.true(), c.chattering == sa.true(),
               sa.and_(c.active == sa.true(), c.kind.in_(("video", "event")),
                       c.last_ts <= now - min(quiet_ms, *auto.values()))]
        if ctx.silences:
            due.append(sa.true())
        else:
            if ctx.offline_cameras:
                due.append(c.source.in_(sorted(ctx.offline_cameras)[:IN_CHUNK]))
            if ctx.stale_layers:
                due.append(c.layer.in_(sorted(ctx.stale_layers)))
        with self._tx(now) as tx:
            for row in self._rows(tx.conn, sa.and_(c.state != "NORM", sa.or_(*due))):
                a = to_machine(row)
                reason = ctx.reason(row, self.cfg)
                if (reason is not None) != a.suppressed or (reason and reason != row["suppress_reason"]):
                    a, ch = states.suppress(a, reason is not None)
                    row["suppress_reason"] = reason
                    _from_machine(row, a)
                    tx.record(row, ch)
                    if ch is None:  # only the reason changed
                        tx.dirty[row["id"]] = row
                a, ch = states.expire(a, now)
                _from_machine(row, a)
                tx.record(row, ch)
                if a.active and row["kind"] in ("video", "event"):
                    limit = quiet_ms if row["kind"] == "video" else auto.get(row["rule"], quiet_ms)
                    if now - row["last_ts"] >= limit:
                        a, ch = states.condition(a, False, max(now, a.cond_ts), None, self.chatter)
                        _from_machine(row, a)
                        tx.record(row, ch, reason="quiet time" if row["kind"] == "video" else "auto clear")
                calmed = states.calm(a, now, self.chatter) if a.chattering else a
                if calmed != a:
                    _from_machine(row, calmed)
                    row["updated_ts"] = now
                    tx.dirty[row["id"]] = row
            return len(tx.dirty)

    # -- operator actions --------------------------------------------------------------------------
    def _act(self, ids: list[int], actor: Actor, reason: str,
             fn: Callable[[Alarm, dict], tuple[Alarm, Change | None]], now: int | None) -> dict:
        """Apply an action to each alarm; returns {"done": [docs], "refused": {id: why}}."""
        ids = sorted({int(i) for i in ids})

        def run() -> dict:
            done, refused = [], {}
            with self._tx(now) as tx:
                rows = {r["id"]: r for r in self._rows(tx.conn, alarms.c.id.in_(ids))} if ids else {}
                for i in ids:
                    row = rows.get(i)
                    if row is None:
                        refused[i] = "no such alarm"
                        continue
                    try:
                        a, ch = fn(to_machine(row), row)
                    except NotAllowed as exc:
                        refused[i] = str(exc)
                        continue
                    _from_machine(row, a)
                    tx.record(row, ch, actor, reason)
                    done.append(row)
            return {"done": [doc(r) for r in done], "refused": refused}

        return self._retrying(run)

    def acknowledge(self, ids: list[int], actor: Actor, comment: str = "", now: int | None = None) -> dict:
        return self._act(ids, actor, comment, lambda a, _: states.acknowledge(a), now)

    def shelve(self, ids: list[int], actor: Actor, reason: str, kind: str, minutes: float | None,
               now: int | None = None) -> dict:
        t = now or now_ms()
        max_ms = self.cfg.shelving.max_minutes * 60_000
        until = None if minutes is None else t + int(minutes * 60_000)

        def fn(a: Alarm, row: dict) -> tuple[Alarm, Change]:
            out = states.shelve(a, kind, t, until, self.cfg.shelvable(a.priority), max_ms)  # type: ignore[arg-type]
            row["shelved_by"] = actor.name[:64]
            return out

        return self._act(ids, actor, reason, fn, t)

    def unshelve(self, ids: list[int], actor: Actor, reason: str = "", now: int | None = None) -> dict:
        return self._act(ids, actor, reason, lambda a, _: states.unshelve(a), now)

    def out_of_service(self, ids: list[int], actor: Actor, on: bool, reason: str,
                       now: int | None = None) -> dict:
        return self._act(ids, actor, reason, lambda a, _: states.out_of_service(a, on), now)

    # -- silences ------------------------------------------------------------------------------------
    def add_silence(self, actor: Actor, reason: str, minutes: float, source: str = "*",
                    condition: str = "*", layer: str = "*", now: int | None = None) -> int:
        t = now or now_ms()
        with self.engine.begin() as conn:
            return conn.execute(alarm_silences.insert().values(
                source=source[:128], condition=condition[:128], layer=layer[:16], starts_ts=t,
                ends_ts=t + int(minutes * 60_000), reason=reason[:500], created_by=actor.name[:80],
                created_ts=t).returning(alarm_silences.c.id)).scalar_one()

    def cancel_silence(self, silence_id: int, actor: Actor, now: int | None = None) -> bool:
        t = now or now_ms()
        with self.engine.begin() as conn:
            res = conn.execute(alarm_silences.update().where(
                alarm_silences.c.id == silence_id, alarm_silences.c.cancelled_ts.is_(None),
                alarm_silences.c.ends_ts > t).values(cancelled_ts=t, cancelled_by=actor.name[:80]))
            return res.rowcount == 1

    def silences(self, now: int | None = None, active_only: bool = True) -> list[dict]:
        t = now or now_ms()
        q = sa.select(alarm_silences).order_by(alarm_silences.c.id.desc()).limit(500)
        if active_only:
            q = q.where(alarm_silences.c.cancelled_ts.is_(None), alarm_silences.c.ends_ts > t,
                        alarm_silences.c.starts_ts <= t)
        with self.reader.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def active_silences(self, now: int | None = None) -> list[Silence]:
        return [Silence(r["id"], r["source"], r["condition"], r["layer"], r["ends_ts"], r["reason"])
                for r in self.silences(now)]

    # -- reads ---------------------------------------------------------------------------------------
    def list_alarms(self, *, states_in: Iterable[str] | None = None, priority: Iterable[str] | None = None,
                    layer: str | None = None, source: str | None = None, include_normal: bool = False,
                    limit: int = 500) -> list[dict]:
        q = sa.select(alarms)
        if states_in:
            q = q.where(alarms.c.state.in_(list(states_in)))
        elif not include_normal:
            q = q.where(alarms.c.state != "NORM")
        if priority:
            q = q.where(alarms.c.priority.in_(list(priority)))
        if layer:
            q = q.where(alarms.c.layer == layer)
        if source:
            q = q.where(alarms.c.source == source)
        # Unacknowledged first, then by priority (highest first), then newest: in SQL, before the
        # limit, so a flood of more than `limit` alarms still lists the unacknowledged critical ones.
        order = {"UNACK": 0, "RTNUN": 1, "ACKED": 2, "SHLVD": 3, "DSUPR": 4, "OOSRV": 5, "NORM": 6}
        q = q.order_by(sa.case(order, value=alarms.c.state, else_=7),
                       sa.case({p: -r for p, r in states.RANK.items()}, value=alarms.c.priority, else_=0),
                       alarms.c.last_ts.desc())
        with self.reader.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q.limit(max(1, min(limit, 5000))))]
        return [doc(r) for r in rows]

    def get(self, alarm_id: int, history: int = 100) -> dict | None:
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(alarms).where(alarms.c.id == alarm_id)).first()
            if row is None:
                return None
            hist = conn.execute(sa.select(alarm_changes).where(alarm_changes.c.alarm_id == alarm_id)
                                .order_by(alarm_changes.c.id.desc()).limit(history))
            return {**doc(dict(row._mapping)), "history": [dict(h._mapping) for h in hist]}

    def changes_since(self, since_ms: int, kinds: Iterable[str] | None = None) -> list[dict]:
        q = (sa.select(alarm_changes.c.alarm_id, alarm_changes.c.ts, alarm_changes.c.kind,
                       alarm_changes.c.after, alarm_changes.c.priority, alarms.c.key)
             .join(alarms, alarms.c.id == alarm_changes.c.alarm_id).where(alarm_changes.c.ts >= since_ms)
             .order_by(alarm_changes.c.id))
        if kinds:
            q = q.where(alarm_changes.c.kind.in_(list(kinds)))
        with self.reader.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def open_docs(self) -> list[dict]:
        return self.list_alarms(limit=5000)

    # -- outbox --------------------------------------------------------------------------------------
    def outbox_after(self, after: int, limit: int = 200) -> list[tuple[int, str]]:
        with self.reader.connect() as conn:
            return [(r.id, r.payload) for r in conn.execute(
                sa.select(alarm_outbox.c.id, alarm_outbox.c.payload).where(alarm_outbox.c.id > after)
                .order_by(alarm_outbox.c.id).limit(limit))]

    def outbox_trim(self, upto: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(alarm_outbox.delete().where(alarm_outbox.c.id <= upto))

    def dispose(self) -> None:
        self.engine.dispose()
        self.reader.dispose()


def kpis(store: AlarmStore, hours: float = 24.0, now: int | None = None) -> dict:
    """The operator-load figures over the last `hours` (alarms.kpis.compute on this store's rows)."""
    from alarms.kpis import compute

    end = now or now_ms()
    start = end - int(hours * 3_600_000)
    return compute(store.changes_since(start), store.open_docs(), start, end, store.cfg)
