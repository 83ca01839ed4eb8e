"""JSON routes for the field feeds: a station's 24 h air history and the feed-health hash.

    install_feed_routes(server, redis_url)
    GET /api/air/<station_id>/history   {"station", "scale", "points": [{"t", "pm10", "pm25", ...}]}
    GET /api/health                     {"<source>": {...}, "layer:<layer>": {...},
                                         "_summary": {...}, "_gateway": {...}, "_web": {...}}
                                        (see health_report)
    GET /api/transit/shapes             {"<shape_id>": {"route", "color", "coords": [[lat, lon]...]}}

Login required on every route (401 JSON otherwise), checked here as well as by the app's guard so
the routes stay safe if they are mounted on a server without it.

Every value read from Redis is decoded like a live message (spine.contract.decode_value): a value
with NaN/Infinity, deep nesting, invalid UTF-8 or a huge number is left out and counted once (by
key, field and value) in WEB_REJECTS, shown under "_web" in /api/health.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any

from flask import Flask, jsonify

from dashboard.auth import api_login_required
from dashboard.web_counters import COUNTERS as WEB_COUNTERS
from feeds.air.history import load as load_history
from feeds.transit.adapter import SHAPES_KEY
from spine.channels import GATEWAY_STATS_KEY, HEALTH_KEY
from spine.contract import Rejected, RejectLog, decode_value
from spine.publisher import REDIS_DOWN, connect

HISTORY_HOURS = 24


MAX_VALUE_BYTES = 1024 * 1024


# Rejected values read by this web process (counted once per key, field and value, though every page
# polls /api/health): readable under "_web" in /api/health.
WEB_REJECTS = RejectLog(logging.getLogger(__name__))


def _decode_hash(raw: dict[bytes, bytes], key: str) -> dict[str, Any]:
    """Each field's JSON; a field whose name or value fails the contract's checks is left out, counted."""
    out = {}
    for k, v in raw.items():
        try:
            name = k.decode()
        except UnicodeDecodeError:
            if WEB_REJECTS.first_time((key, k, b"")):
                WEB_REJECTS.add("bad_utf8", "field name is not UTF-8", key)
            continue
        try:
            out[name] = decode_value(v, MAX_VALUE_BYTES)
        except Rejected as exc:
            if WEB_REJECTS.first_time((key, k, v)):
                WEB_REJECTS.add(exc.reason, exc.detail, key)
    return out


GATEWAY_STALE_S = 10.0  # an instance writes every 2 s; silent this long, it is stopped or wedged
EXTENSION = "cc_live_redis"  # server.extensions key: the Redis client these routes (and panels) read


def _gateway_health(rows: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """Per instance: age, live or not, clients; rejects by reason and by source summed over instances.

    Counts are since each instance started (a restart starts from zero); stopped instances stay
    listed, marked not live, until their field is overwritten or removed by an operator."""
    instances: dict[str, Any] = {}
    by_reason: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    for name, st in sorted(rows.items()):
        if not isinstance(st, dict):
            continue
        ts = st.get("ts")
        age_s = round((now_ms - ts) / 1000, 1) if isinstance(ts, int | float) else None
        instances[name] = {"age_s": age_s, "live": age_s is not None and age_s <= GATEWAY_STALE_S,
                           "redis_up": st.get("redis_up"), "clients": st.get("clients"),
                           "rejects_total": st.get("rejects_total", 0)}
        by_reason.update({k: v for k, v in (st.get("rejects") or {}).items() if isinstance(v, int)})
        for source, reasons in (st.get("rejects_by_source") or {}).items():
            if isinstance(reasons, dict):
                by_source.setdefault(str(source), Counter()).update(
                    {k: v for k, v in reasons.items() if isinstance(v, int)})
    return {"instances": instances, "live": sum(1 for i in instances.values() if i["live"]),
            "rejects": {"total": sum(by_reason.values()), "by_reason": dict(by_reason.most_common()),
                        "by_source": {s: dict(c) for s, c in sorted(by_source.items())}}}


def gateway_report(client: Any) -> dict[str, Any]:
    """The "_gateway" part of /api/health on its own (the supervisor's rejects panel). Raises REDIS_DOWN."""
    rows = _decode_hash(client.hgetall(GATEWAY_STATS_KEY), GATEWAY_STATS_KEY)
    return _gateway_health(rows, int(time.time() * 1000))


def health_report(client: Any) -> dict[str, Any]:
    """Feed health as the adapters write it (top-level "<source>" and "layer:<layer>" entries, read
    by the pages), plus "_summary" (feeds per state, stale layers) and "_gateway" (live instances and
    message rejects by reason and source) and "_web" (values this web process read from Redis and left
    out; its sampled refusals and busy history queries, dashboard/web_counters.py).
    Underscored keys are never a feed name. Raises REDIS_DOWN."""
    feeds = _decode_hash(client.hgetall(HEALTH_KEY), HEALTH_KEY)
    gateway = gateway_report(client)
    states = Counter(str(v.get("state")) for k, v in feeds.items()
                     if not k.startswith("layer:") and isinstance(v, dict))
    stale = sorted(k.removeprefix("layer:") for k, v in feeds.items()
                   if k.startswith("layer:") and isinstance(v, dict) and v.get("stale"))
    return {**{k: v for k, v in feeds.items() if not k.startswith("_")},
            "_summary": {"feeds": sum(states.values()), "by_state": dict(states), "stale_layers": stale},
            "_gateway": gateway,
            "_web": {"rejects": WEB_REJECTS.summary(), "counters": WEB_COUNTERS.snapshot()}}


def install_feed_routes(server: Flask, redis_url: str) -> None:
    client = connect(redis_url)
    server.extensions[EXTENSION] = client

    @server.get("/api/air/<station_id>/history")
    @api_login_required
    def air_history(station_id: str):
        name = station_id.removeprefix("air-").strip()
        if not name or len(name) > 40:
            return jsonify(error="unknown station"), 404
        since = int(time.time() * 1000) - HISTORY_HOURS * 3_600_000
        try:
            points = load_history(client, name, since, WEB_REJECTS)
        except REDIS_DOWN:
            return jsonify(error="live store unavailable"), 503
        return jsonify(station=name, scale="KR CAI (통합대기환경지수)", hours=HISTORY_HOURS, points=points)

    def hash_json(key: str):
        try:
            return jsonify(_decode_hash(client.hgetall(key), key))
        except REDIS_DOWN:
            return jsonify(error="live store unavailable"), 503

    @server.get("/api/health")
    @api_login_required
    def feed_health():
        try:
            return jsonify(health_report(client))
        except REDIS_DOWN:
            return jsonify(error="live store unavailable"), 503

    @server.get("/api/transit/shapes")
    @api_login_required
    def transit_shapes():
        return hash_json(SHAPES_KEY)
