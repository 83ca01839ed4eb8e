"""Issue 7 point 2: gateway rejects by reason and source are readable at /api/health (login required)
and on the supervisor page's panel, from the stats a real gateway writes to Redis."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path

import flask
import pytest
import redis
from flask_login import LoginManager, UserMixin

from dashboard.feeds_api import install_feed_routes
from spine import channels
from spine.contract import RejectLog, now_ms
from tests.gateway_support import start_gateway, stop_gateway

ROOT = Path(__file__).resolve().parent.parent

HOSTILE = "cc:v1:entity:<img src=x onerror=alert(1)>"


class _User(UserMixin):
    id = "op"


def _app(redis_url: str) -> flask.Flask:
    app = flask.Flask("health-test")
    app.secret_key = "x"
    lm = LoginManager(app)
    lm.request_loader(lambda req: _User() if req.headers.get("X-Test-User") else None)
    install_feed_routes(app, redis_url)
    return app


async def _gateway_with_rejects(redis_url: str) -> None:
    """Run a real gateway, feed it bad messages, and leave its stats in Redis."""
    gw, task = await start_gateway(redis_url, stats_interval_s=0.1)
    client = redis.Redis.from_url(redis_url)
    try:
        client.publish(channels.entity_channel("bus"), b"[" * 1000 + b"]" * 1000)
        client.publish(channels.entity_channel("bus"), b"{nope")
        client.publish(HOSTILE, b"{}")
        for _ in range(100):
            rows = client.hvals(channels.GATEWAY_STATS_KEY)
            if rows and json.loads(rows[0])["rejects_total"] == 3:
                break
            await asyncio.sleep(0.05)
        assert gw.rejects.total == 3
    finally:
        await stop_gateway(task)


async def test_api_health_has_feeds_summary_and_gateway_rejects(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(channels.HEALTH_KEY, mapping={
        "gtfs_rt": json.dumps({"state": "ok", "age_s": 1, "contract_s": 30}),
        "airkorea": json.dumps({"state": "stale", "age_s": 4000, "contract_s": 3600}),
        "layer:air": json.dumps({"stale": True}),
        "broken": b"[" * 5000,  # a bad value is left out, not a 500
    })
    await _gateway_with_rejects(redis_url)
    web = _app(redis_url).test_client()
    assert web.get("/api/health").status_code == 401
    h = web.get("/api/health", headers={"X-Test-User": "1"}).get_json()
    assert h["gtfs_rt"]["state"] == "ok" and h["layer:air"] == {"stale": True} and "broken" not in h
    assert h["_summary"] == {"feeds": 2, "by_state": {"ok": 1, "stale": 1}, "stale_layers": ["air"]}
    gw = h["_gateway"]
    assert gw["live"] == 1 and len(gw["instances"]) == 1
    assert gw["rejects"]["total"] == 3
    assert gw["rejects"]["by_reason"] == {"too_deep": 1, "malformed_json": 1, "unknown_layer": 1}
    assert gw["rejects"]["by_source"] == {"cc:v1:entity:bus": {"too_deep": 1, "malformed_json": 1},
                                          HOSTILE: {"unknown_layer": 1}}


async def test_a_silent_gateway_instance_is_marked_not_live(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.hset(channels.GATEWAY_STATS_KEY, "old-host:1:8765",
                json.dumps({"ts": now_ms() - 60_000, "rejects": {"too_deep": 2}, "rejects_total": 2}))
    h = _app(redis_url).test_client().get("/api/health", headers={"X-Test-User": "1"}).get_json()
    assert h["_gateway"]["live"] == 0
    assert h["_gateway"]["instances"]["old-host:1:8765"]["live"] is False
    assert h["_gateway"]["rejects"]["by_reason"] == {"too_deep": 2}


async def test_supervisor_panel_shows_rejects_as_text(redis_url: str) -> None:
    from dash import html

    from widgets import rejects_panel

    await _gateway_with_rejects(redis_url)
    app = _app(redis_url)
    with app.app_context():
        children = rejects_panel._refresh(1)
    texts: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, str):
            texts.append(node)
        elif isinstance(node, list | tuple):
            for c in node:
                walk(c)
        elif node is not None:
            assert type(node).__module__.startswith("dash.html"), f"not a plain HTML component: {node!r}"
            walk(getattr(node, "children", None))

    walk(children)
    assert "3 rejected since start · 1 gateway reporting" in texts
    assert HOSTILE in texts  # the hostile source name is a text node, never markup
    assert any("too_deep 1" in t for t in texts)
    # What the web process itself refused in stored values is on the panel too.
    web = rejects_panel.render({"live": 1, "rejects": {}}, {"total": 2, "by_reason": {"not_finite": 2}})
    assert "web: 2 stored values refused (not_finite 2)" in [getattr(c, "children", None) for c in web]
    # The panel is on the supervisor page and its callback is registered with Dash. Checked in a
    # fresh interpreter: the first Dash app a process builds takes the global callbacks for itself,
    # so in a full test run another test's app may already have taken them.
    probe = ("import dash._callback as c, widgets.rejects_panel; "
             "assert 'cc-rejects-body.children' in c.GLOBAL_CALLBACK_MAP")
    subprocess.run([sys.executable, "-c", probe], cwd=ROOT, check=True, timeout=60)
    from dash.development.base_component import Component

    from config.settings import Settings
    from layouts import supervisor
    from spine.geography import load_edition

    page = supervisor.layout(Settings(), load_edition(None), "op")
    ids: list[str] = []

    def collect(node: object) -> None:
        if isinstance(node, list | tuple):
            for c in node:
                collect(c)
        elif isinstance(node, Component):
            ids.append(getattr(node, "id", None) or "")
            collect(getattr(node, "children", None))

    collect(page)
    assert "cc-rejects-body" in ids and "cc-rejects-tick" in ids
    assert isinstance(rejects_panel.rejects_panel(), html.Div)


# ---- D3: a bad value written to a hash or history never makes a route answer invalid JSON or 500 ------

BAD_VALUES = {  # field: (raw value, reason it is counted under)
    "nan": (b'{"state":"ok","lag_s":NaN}', "not_finite"),
    "inf": (b'{"state":"ok","age_s":-Infinity}', "not_finite"),
    "overflow": (b'{"state":"ok","age_s":1e999}', "not_finite"),
    "deep": (b"[" * 5000 + b"]" * 5000, "too_deep"),
    "utf8": (b'{"state":"\xff\xfe"}', "bad_utf8"),
    "huge": (b'{"state":"ok","n":123456789012345678901234567890}', "huge_number"),
}


def _strict_json(body: bytes) -> object:
    """Parse as a browser's JSON.parse would: NaN and Infinity are errors."""
    def refuse(token: str) -> object:
        raise ValueError(f"not JSON: {token}")
    return json.loads(body, parse_constant=refuse)


def _fresh_rejects(monkeypatch: pytest.MonkeyPatch) -> RejectLog:
    from dashboard import feeds_api

    log = RejectLog(logging.getLogger("web-test"))
    monkeypatch.setattr(feeds_api, "WEB_REJECTS", log)
    return log


async def test_api_health_leaves_out_and_counts_nan_deep_and_bad_utf8_values(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    rejects = _fresh_rejects(monkeypatch)
    client = redis.Redis.from_url(redis_url)
    client.hset(channels.HEALTH_KEY, mapping={"gtfs_rt": json.dumps({"state": "ok", "age_s": 1}),
                                              **{k: v for k, (v, _) in BAD_VALUES.items()}})
    client.hset(channels.GATEWAY_STATS_KEY, "gw-nan", b'{"ts":NaN,"rejects":{"x":Infinity}}')
    web = _app(redis_url).test_client()
    for _ in range(2):  # every page polls; a bad value is counted once
        resp = web.get("/api/health", headers={"X-Test-User": "1"})
        assert resp.status_code == 200
        h = _strict_json(resp.data)
    assert h["gtfs_rt"] == {"state": "ok", "age_s": 1} and not set(BAD_VALUES) & set(h)
    assert h["_summary"]["feeds"] == 1 and h["_gateway"]["instances"] == {}
    expected = {channels.HEALTH_KEY: dict(Counter(r for _, r in BAD_VALUES.values())),
                channels.GATEWAY_STATS_KEY: {"not_finite": 1}}
    assert rejects.by_source == expected
    assert h["_web"]["rejects"]["by_source"] == expected
    # The web process's own counters (sampled refusals, busy history slots) ride along.
    from dashboard.web_counters import COUNTERS

    before = h["_web"]["counters"].get("history_busy_total", 0)
    COUNTERS.add("history_busy_total", 3)
    h = _strict_json(web.get("/api/health", headers={"X-Test-User": "1"}).data)
    assert h["_web"]["counters"]["history_busy_total"] == before + 3


async def test_transit_shapes_leave_out_bad_values(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from feeds.transit.adapter import SHAPES_KEY

    rejects = _fresh_rejects(monkeypatch)
    client = redis.Redis.from_url(redis_url)
    good = {"route": "7", "color": "#2dd4bf", "coords": [[37.45, 126.7], [37.46, 126.71]]}
    client.hset(SHAPES_KEY, mapping={"s1": json.dumps(good), "s-nan": b'{"coords":[[NaN,126.7]]}',
                                     "s-deep": b'{"coords":' + b"[" * 3000 + b"]" * 3000 + b"}",
                                     "s-utf8": b'{"route":"\xc3\x28"}', b"\xff": json.dumps(good)})
    resp = _app(redis_url).test_client().get("/api/transit/shapes", headers={"X-Test-User": "1"})
    assert resp.status_code == 200
    assert _strict_json(resp.data) == {"s1": good}
    assert rejects.by_source == {SHAPES_KEY: {"not_finite": 1, "too_deep": 1, "bad_utf8": 2}}


async def test_air_history_leaves_out_bad_points_instead_of_a_500(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from feeds.air.history import history_key

    rejects = _fresh_rejects(monkeypatch)
    client = redis.Redis.from_url(redis_url)
    t = now_ms() - 3_600_000
    key = history_key("Songdo")
    client.zadd(key, {json.dumps({"t": t, "pm10": 31}): t, b'{"t":1,"pm10":NaN}': t + 1,
                      b"[" * 1000 + b"]" * 1000: t + 2, b'{"t":2,"station":"\xff"}': t + 3,
                      b"7": t + 4})
    web = _app(redis_url).test_client()
    for _ in range(2):
        resp = web.get("/api/air/air-Songdo/history", headers={"X-Test-User": "1"})
        assert resp.status_code == 200
        assert _strict_json(resp.data)["points"] == [{"t": t, "pm10": 31}]
    assert rejects.by_source == {key: {"not_finite": 1, "too_deep": 1, "bad_utf8": 1, "invalid": 1}}
