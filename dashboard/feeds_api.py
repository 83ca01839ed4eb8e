"""JSON routes for the field feeds: a station's 24 h air history and the feed-health hash.

    install_feed_routes(server, redis_url)
    GET /api/air/<station_id>/history   {"station", "scale", "points": [{"t", "pm10", "pm25", ...}]}
    GET /api/health                     {"<source>": {...}, "layer:<layer>": {...}}
    GET /api/transit/shapes             {"<shape_id>": {"route", "color", "coords": [[lat, lon]...]}}

Login required on every route (401 JSON otherwise), checked here as well as by the app's guard so
the routes stay safe if they are mounted on a server without it.
"""

from __future__ import annotations

import json
import time
from typing import Any

from flask import Flask, jsonify

from dashboard.auth import api_login_required
from feeds.air.history import load as load_history
from feeds.transit.adapter import SHAPES_KEY
from spine.channels import HEALTH_KEY
from spine.publisher import REDIS_DOWN, connect

HISTORY_HOURS = 24


def _decode_hash(raw: dict[bytes, bytes]) -> dict[str, Any]:
    out = {}
    for k, v in raw.items():
        try:
            out[k.decode()] = json.loads(v)
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def install_feed_routes(server: Flask, redis_url: str) -> None:
    client = connect(redis_url)

    @server.get("/api/air/<station_id>/history")
    @api_login_required
    def air_history(station_id: str):
        name = station_id.removeprefix("air-").strip()
        if not name or len(name) > 40:
            return jsonify(error="unknown station"), 404
        since = int(time.time() * 1000) - HISTORY_HOURS * 3_600_000
        try:
            points = load_history(client, name, since)
        except REDIS_DOWN:
            return jsonify(error="live store unavailable"), 503
        return jsonify(station=name, scale="KR CAI (통합대기환경지수)", hours=HISTORY_HOURS, points=points)

    def hash_json(key: str):
        try:
            return jsonify(_decode_hash(client.hgetall(key)))
        except REDIS_DOWN:
            return jsonify(error="live store unavailable"), 503

    @server.get("/api/health")
    @api_login_required
    def feed_health():
        return hash_json(HEALTH_KEY)

    @server.get("/api/transit/shapes")
    @api_login_required
    def transit_shapes():
        return hash_json(SHAPES_KEY)
