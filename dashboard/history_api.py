"""JSON routes for history: trends and replay (docs/history.md).

    install_history_routes(server, settings, store)     (one line in dashboard/app_factory.py)

    GET /api/history/series?layer=sensor&id=<entity>&field=value&from=<ms>&to=<ms>&buckets=300
        one sensor's / air station's (any entity's) number, min/avg/max per bucket, and its
        thresholds: a sensor's configured rules (config/feeds.yaml), an air pollutant's grade bands
        (spine/layers.py AIR_BREAKPOINTS). `range=1h|6h|24h|7d|30d` instead of from/to: up to now.
    GET /api/history/bus-delays?from&to|range&buckets    delay per route, per bucket
    GET /api/history/alarm-rates?from&to|range&buckets   alarm activations per priority, per bucket
    GET /api/history/replay?t=<ms>     the picture at T: every layer's entities, open alarms, open
                                       incidents, the event list (one audit row: CCTV data is in it)
    GET /api/history/steps?from=<ms>&to=<ms>   the changes in (from, to], at most 10 min apart

Login first (401), then the role (403): trends need any page permission (wall, supervisor or
commander: operators see them in popups), replay the supervisor or commander permission (roles.yaml).
Query values are parsed and bounded (pydantic; 400 with one line per problem). Ranges: 1 min to 31
days; buckets 10..2000, so a 30-day chart is at most 2,000 points computed in SQL.

Concurrency: every query (series, bus-delays, alarm-rates, replay, steps) holds one of this web
process's history slots while it runs: at most a quarter of the waitress threads (8 of 32) in all
and 4 per principal. Beyond either: 503 at once with Retry-After (a page retries), counted under
`history_busy_total` / `history_busy_user` in GET /api/health/web. So a replay played fast, a
30-day chart opened on many screens, or a script can never take the threads that answer logins,
pages and the live tickets.

Audit: replay (a seek) is one row per request; steps (played once a second while replaying) one
row per principal per distinct 10-minute span of history first touched (StepsAudit).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any, Literal

import msgspec
from flask import Flask, Response, jsonify, request
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.settings import Settings
from dashboard.store import Store
from dashboard.web_counters import COUNTERS, WebCounters
from history import queries
from history.config import load_history_config
from history.db import HistoryStore
from spine.layers import AIR_BREAKPOINTS, LAYERS

log = logging.getLogger(__name__)
MINUTE_MS = 60_000
DAY_MS = 86_400_000
MAX_RANGE_MS = 31 * DAY_MS
MAX_STEP_MS = 10 * MINUTE_MS
RANGES = {"1h": 3_600_000, "6h": 6 * 3_600_000, "24h": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS}
Ms = Annotated[int, Field(ge=0, le=10**14)]
EntityId = Annotated[str, Field(min_length=1, max_length=128)]
TREND_PERMS = ("wall", "supervisor", "commander")
REPLAY_PERMS = ("supervisor", "commander")


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RangeQuery(_Query):
    range: Literal["1h", "6h", "24h", "7d", "30d"] | None = None
    from_: Ms | None = Field(None, alias="from")
    to: Ms | None = None
    buckets: int = Field(300, ge=10, le=queries.MAX_BUCKETS)

    @model_validator(mode="after")
    def _span(self) -> RangeQuery:
        now = int(time.time() * 1000)
        if self.from_ is None:
            self.to = self.to or now
            self.from_ = self.to - RANGES[self.range or "1h"]
        elif self.to is None:
            self.to = now
        if not MINUTE_MS <= self.to - self.from_ <= MAX_RANGE_MS:
            raise ValueError("the range must be 1 minute to 31 days")
        return self


class SeriesQuery(RangeQuery):
    layer: Literal[LAYERS]  # type: ignore[valid-type]
    id: EntityId
    field: Annotated[str, Field(pattern=queries.FIELD.pattern)] | None = None


class ReplayQuery(_Query):
    t: Ms


class StepsQuery(_Query):
    from_: Ms = Field(alias="from")
    to: Ms

    @model_validator(mode="after")
    def _span(self) -> StepsQuery:
        if not 0 <= self.to - self.from_ <= MAX_STEP_MS:
            raise ValueError("steps span 0 to 10 minutes (from <= to)")
        return self


def _json(doc: dict[str, Any]) -> Response:
    """Stored documents go out as they were stored (msgspec.Raw), not decoded and encoded again."""
    return Response(msgspec.json.encode(doc), mimetype="application/json")


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}"[:200] for e in exc.errors()][:20]


RETRY_AFTER_S = 2
PER_USER = 4  # a supervisor page loads two trend charts at once, plus a popup or a replay tab
SLOTS_EXTENSION = "cc_history_slots"  # server.extensions key: this process's HistorySlots (tests)


class HistorySlots:
    """How many history queries run now, in all and per principal (one web process)."""

    def __init__(self, total: int, per_user: int = PER_USER, counters: WebCounters = COUNTERS) -> None:
        self.total = total
        self.per_user = per_user
        self.counters = counters
        self._lock = threading.Lock()
        self._running = 0
        self._by_user: dict[str, int] = {}

    def acquire(self, principal: str) -> str | None:
        """None: a slot is held (release it); "user" or "total": refused, counted."""
        with self._lock:
            if self._by_user.get(principal, 0) >= self.per_user:
                refused = "user"
            elif self._running >= self.total:
                refused = "total"
            else:
                self._running += 1
                self._by_user[principal] = self._by_user.get(principal, 0) + 1
                return None
        self.counters.add(f"history_busy_{refused}")
        return refused

    def release(self, principal: str) -> None:
        with self._lock:
            self._running -= 1
            left = self._by_user.get(principal, 1) - 1
            if left > 0:
                self._by_user[principal] = left
            else:
                self._by_user.pop(principal, None)  # the map holds only principals with a query running

    def running(self) -> int:
        with self._lock:
            return self._running


STEPS_SPAN_MS = 10 * MINUTE_MS
STEPS_REMEMBER_S = 3600.0


class StepsAudit:
    """Replay stepping audited without one row per 1-second tick: one `history_steps` row per
    principal per distinct 10-minute span of history (aligned to the clock: 14:20-14:30) first
    touched, remembered for an hour in this process.

    Why spans of history and not one row per user per N minutes of wall-clock time: the audit
    question is "who saw the CCTV events of 14:20-14:30 on the 3rd", which a span row answers
    exactly whatever the play speed; a row per wall-clock window would say that someone replayed but
    at 60x would cover ten hours of history in one row. A span is 10 minutes because a steps request
    is at most 10 minutes (MAX_STEP_MS), so one request touches at most two spans: at 1x, one row per
    10 minutes of replay; at most 144 rows per user per day of history watched, however it is played
    or sought back and forth (a span seen again after an hour is written again). Memory is bounded
    (max_keys, least recently touched forgotten first)."""

    def __init__(self, write: Any, remember_s: float = STEPS_REMEMBER_S, max_keys: int = 20_000,
                 clock: Any = time.monotonic) -> None:
        self._write = write  # Store.audit
        self.remember_s = remember_s
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, int], float] = {}  # insertion order = touch order (re-inserted)

    def touched(self, username: str, principal: str, from_ms: int, to_ms: int, remote: str) -> int:
        """Audit the spans (from_ms, to_ms] touches that this principal has not touched lately."""
        now = self._clock()
        new: list[int] = []
        with self._lock:
            for span in range(from_ms // STEPS_SPAN_MS, to_ms // STEPS_SPAN_MS + 1):
                key = (principal, span)
                seen = self._seen.pop(key, None)
                if seen is None or now - seen >= self.remember_s:
                    new.append(span)
                    seen = now
                self._seen[key] = seen  # to the end: the most recently touched
            while len(self._seen) > self.max_keys:
                self._seen.pop(next(iter(self._seen)))
        for span in new:
            start = span * STEPS_SPAN_MS
            self._write(username, "history_steps", str(start), remote,
                        f"replay steps in {start}..{start + STEPS_SPAN_MS} (first touched; one row per "
                        f"10-minute span per user an hour)")
        return len(new)


class _Lazy:
    """The history store, made (and migrated) at first use: the web starts even while SQL is slow."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: HistoryStore | None = None
        self._lock = threading.Lock()

    def get(self) -> HistoryStore:
        with self._lock:
            if self._store is None:
                store = HistoryStore(self.url, load_history_config())
                store.migrate()
                self._store = store
            return self._store


def _sensor_rules() -> tuple[dict[str, list[dict]], dict[str, list[dict]]]:
    """(sensor id -> rules, kind -> rules) from config/feeds.yaml; empty when it cannot be read."""
    try:
        from feeds.field import load_feeds_config

        cfg = load_feeds_config().sensors
    except Exception as exc:  # thresholds are a decoration of the chart: never a failed route
        log.warning("sensor thresholds unavailable (%s)", exc)
        return {}, {}

    def rules(rs: Any) -> list[dict]:
        return [{"name": r.name, "level": r.level, "direction": r.direction, "metric": r.metric,
                 "severity": r.severity} for r in rs or []]

    by_id = {sid: rules(s.rules) for sid, s in cfg.sensors.items() if s.rules is not None}
    kinds = {name: rules(k.rules) for name, k in cfg.kinds.items()}
    kind_of = {sid: s.kind for sid, s in cfg.sensors.items() if s.kind}
    for sid, kind in kind_of.items():
        by_id.setdefault(sid, kinds.get(kind, []))
    return by_id, kinds


def thresholds(layer: str, entity: str, field: str | None, rules: tuple[dict, dict],
               kind: str | None = None) -> list[dict]:
    if layer == "sensor" and field in (None, "value"):
        by_id, kinds = rules
        return by_id.get(entity) or kinds.get(kind or "", [])
    if layer == "air" and (field or "pm10") in AIR_BREAKPOINTS:
        grades = ("좋음", "보통", "나쁨", "매우나쁨")
        return [{"name": g, "level": hi, "direction": "above", "band": [lo, hi]}
                for g, (lo, hi) in zip(grades, AIR_BREAKPOINTS[field or "pm10"], strict=True)]
    return []


def install_history_routes(server: Flask, settings: Settings, app_store: Store | None = None) -> None:
    lazy = _Lazy(settings.database.resolved_url())
    rules = _sensor_rules()
    # A quarter of the threads: video streams take at most half (web.video_streams_total), so a
    # quarter always remains for logins, pages, tickets and the other APIs.
    slots = server.extensions[SLOTS_EXTENSION] = HistorySlots(max(1, settings.web.threads // 4))
    steps_audit = StepsAudit(app_store.audit) if app_store is not None else None

    def principal() -> str:
        return getattr(current_user, "principal", f"user:{current_user.name}")

    def bounded(run: Any) -> Any:
        """Run the query in one of the history slots, or answer 503 with Retry-After at once."""
        who = principal()
        refused = slots.acquire(who)
        if refused is not None:
            why = (f"at most {slots.per_user} history queries at once per user" if refused == "user"
                   else "the server is answering as many history queries as it may")
            resp = jsonify(error=why)
            resp.status_code = 503
            resp.headers["Retry-After"] = str(RETRY_AFTER_S)
            return resp
        try:
            return run()
        finally:
            slots.release(who)

    def refuse(perms: tuple[str, ...]) -> Any:
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        held = settings.roles.get(current_user.role, [])
        if not any(p in held for p in perms):
            return jsonify(error=f"role {current_user.role} may not see history"), 403
        return None

    def parsed(model: type[_Query]) -> Any:
        try:
            return model(**request.args.to_dict())
        except ValidationError as exc:
            return jsonify(error="bad query", problems=_problems(exc)), 400

    @server.get("/api/history/series")
    def history_series():
        if (bad := refuse(TREND_PERMS)) is not None:
            return bad
        q = parsed(SeriesQuery)
        if not isinstance(q, SeriesQuery):
            return q

        def run() -> Any:
            out = queries.series(lazy.get(), q.layer, q.id, q.from_, q.to, q.buckets, q.field)
            kind = queries.latest_key(lazy.get(), q.layer, q.id, q.to) if q.layer == "sensor" else None
            out["thresholds"] = thresholds(q.layer, q.id, q.field, rules, kind)
            return jsonify({**out, "from": q.from_, "to": q.to})

        return bounded(run)

    @server.get("/api/history/bus-delays")
    def history_bus_delays():
        if (bad := refuse(TREND_PERMS)) is not None:
            return bad
        q = parsed(RangeQuery)
        if not isinstance(q, RangeQuery):
            return q
        return bounded(lambda: jsonify({**queries.bus_delays(lazy.get(), q.from_, q.to, q.buckets),
                                        "from": q.from_, "to": q.to}))

    @server.get("/api/history/alarm-rates")
    def history_alarm_rates():
        if (bad := refuse(TREND_PERMS)) is not None:
            return bad
        q = parsed(RangeQuery)
        if not isinstance(q, RangeQuery):
            return q
        return bounded(lambda: jsonify({**queries.alarm_rates(lazy.get(), q.from_, q.to, q.buckets),
                                        "from": q.from_, "to": q.to}))

    @server.get("/api/history/replay")
    def history_replay():
        if (bad := refuse(REPLAY_PERMS)) is not None:
            return bad
        q = parsed(ReplayQuery)
        if not isinstance(q, ReplayQuery):
            return q

        def run() -> Response:
            if app_store is not None:  # who looked back at which moment (CCTV events are in the picture)
                app_store.audit(current_user.name, "history_replay", str(q.t), request.remote_addr or "")
            return _json(queries.picture_at(lazy.get(), q.t, raw=True))

        return bounded(run)

    @server.get("/api/history/steps")
    def history_steps():
        if (bad := refuse(REPLAY_PERMS)) is not None:
            return bad
        q = parsed(StepsQuery)
        if not isinstance(q, StepsQuery):
            return q

        def run() -> Response:
            if steps_audit is not None:  # the spans of history seen, not every 1-second tick
                steps_audit.touched(current_user.name, principal(), q.from_, q.to, request.remote_addr or "")
            return _json(queries.steps(lazy.get(), q.from_, q.to, raw=True))

        return bounded(run)
