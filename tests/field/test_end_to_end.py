"""The demo on the wire path end to end: simulator -> GTFS-rt/AirKorea/MQTT/MAVLink -> adapters ->
Redis -> live gateway -> a WebSocket client; plus the health hash and the dashboard JSON routes.

The simulator and the adapters are started apart, as the `simulator` and `feeds` parts are, and the
only thing joining them is the demo overlay of the configuration root (config/overlays/demo.yaml)."""

from __future__ import annotations

import asyncio
import json
import threading

import flask
import msgspec
import redis
from flask_login import LoginManager, UserMixin
from websockets.asyncio.client import connect as ws_connect

from config.root import ConfigRoot
from config.settings import GatewaySettings
from dashboard.feeds_api import install_feed_routes
from feeds.field import FieldRunner
from feeds.simulator.part import SimulatorPart
from gateway import Gateway
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from spine.tickets import issue_ticket
from tests.field.conftest import wait_for
from tests.field.demo import demo_root

SECRET = "test-secret"


def _demo(mosquitto: EmbeddedMosquitto) -> ConfigRoot:
    return demo_root(mosquitto, {
        "CC_SIMULATOR__BUSES": "200", "CC_SIMULATOR__CAMERAS": "20",
        "CC_FEEDS__SENSORS__TOPIC_PREFIX": "e2e/", "CC_FEEDS__HEALTH__INTERVAL_S": "0.5",
        "CC_FEEDS__TRANSIT__PERIOD_S": "0.5",
    })


async def test_demo_reaches_a_websocket_client(
    redis_url: str, mosquitto: EmbeddedMosquitto, tmp_path, port: int
) -> None:
    root = _demo(mosquitto)
    sim = SimulatorPart(redis_url, root.settings.simulator, root.feeds)
    runner = FieldRunner(redis_url, root.feeds, tmp_path)
    gw = Gateway(redis_url, GatewaySettings(port=port, batch_ms=20), SECRET)
    serve = None
    try:
        await asyncio.to_thread(sim.start)
        await asyncio.to_thread(runner.start)
        serve = asyncio.create_task(gw.serve("127.0.0.1", port))
        await asyncio.wait_for(gw.ready.wait(), 10)
        client = redis.Redis.from_url(redis_url)
        await asyncio.to_thread(
            wait_for,
            # The bells fill the sensor layer at once: wait for a sensor beyond them.
            lambda: all(
                client.hlen(f"cc:v1:state:{layer}") > 0 for layer in ("bus", "air", "drone")
            ) and client.hlen("cc:v1:state:sensor") > len(root.feeds.bells.bells),
            20,
        )
        ticket = issue_ticket(SECRET, "op", "supervisor")
        async with ws_connect(f"ws://127.0.0.1:{gw.port}/live?ticket={ticket}") as ws:
            snap = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert snap["t"] == "snapshot"
            by_layer: dict[str, list[dict]] = {}
            for u in snap["u"]:
                by_layer.setdefault(u["layer"], []).append(u)
            assert len(by_layer["bus"]) == 200 and all(u["src"] == "gtfs_rt" for u in by_layer["bus"])
            assert (
                by_layer["drone"][0]["src"] == "mavlink"
                and len(by_layer["drone"][0]["props"]["footprint"]) == 4
            )
            assert {u["src"] for u in by_layer["air"]} == {"airkorea"} and "grade" in by_layer["air"][0][
                "props"
            ]
            # The sensor layer carries two sources: the demo's registered sensors and its emergency bells
            # (config/overlays/demo.yaml), each bell on the map from the start, before any press.
            bells = {u["id"]: u for u in by_layer["sensor"] if u["src"] == "mqtt_bells"}
            sensors = {u["id"] for u in by_layer["sensor"] if u["src"] == "mqtt_sensors"}
            assert set(bells) == set(root.feeds.bells.bells) and len(bells) == 6
            assert all(u["props"]["kind"] == "bell" for u in bells.values())
            assert sensors and sensors <= set(root.feeds.sensors.sensors)
            assert len(by_layer["sensor"]) == len(bells) + len(sensors)
            buses_moved = set()
            while len(buses_moved) < 20:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if frame["t"] == "batch":
                    buses_moved |= {
                        u["id"] for u in frame["u"] if u["layer"] == "bus" and u["src"] == "gtfs_rt"
                    }
        health = await asyncio.to_thread(
            wait_for, lambda: (h := client.hgetall("cc:v1:health")) and len(h) >= 8 and h, 10
        )
        sources = {k.decode(): msgspec.json.decode(v) for k, v in health.items()}
        assert {"gtfs_rt", "airkorea", "mavlink", "mqtt_sensors"} <= set(sources)
        assert sources["gtfs_rt"]["state"] == "ok" and sources["gtfs_rt"]["contract_s"] == 30
        assert sources["mavlink"]["contract_s"] == 2 and sources["layer:bus"]["stale"] is False
        _check_api(redis_url)
    finally:
        if serve:
            serve.cancel()
        await asyncio.to_thread(runner.stop)
        await asyncio.to_thread(sim.stop)


class _User(UserMixin):
    id = "user:op"


def _check_api(redis_url: str) -> None:
    app = flask.Flask("t")
    app.secret_key = "x"
    lm = LoginManager(app)
    lm.request_loader(lambda req: _User() if req.headers.get("X-Test-User") else None)
    install_feed_routes(app, redis_url)
    c = app.test_client()
    assert c.get("/api/health").status_code == 401
    assert c.get("/api/air/air-부평/history").status_code == 401
    h = c.get("/api/health", headers={"X-Test-User": "1"}).get_json()
    assert "gtfs_rt" in h
    hist = c.get("/api/air/air-부평/history", headers={"X-Test-User": "1"}).get_json()
    assert hist["station"] == "부평" and len(hist["points"]) == 24
    shapes = c.get("/api/transit/shapes", headers={"X-Test-User": "1"}).get_json()
    assert len(shapes) == 49


def test_health_marks_a_silent_source_stale(redis_url: str, area) -> None:
    from feeds.drone.adapter import DroneAdapter
    from feeds.drone.config import DroneConfig
    from spine.health import HealthWriter

    client = redis.Redis.from_url(redis_url)
    a = DroneAdapter(client, DroneConfig(listen="127.0.0.1:0", contract_s=0.2), area)
    a.stats.connected = True
    a.accepted(1)
    w = HealthWriter(client, [a])
    assert w.snapshot()["mavlink"].state == "ok"
    threading.Event().wait(0.3)
    assert w.write_once()
    doc = json.loads(client.hget("cc:v1:health", "mavlink"))
    assert doc["state"] == "stale" and json.loads(client.hget("cc:v1:health", "layer:drone"))["stale"]


def test_feeds_started_before_their_sources_catch_up(redis_url: str, mosquitto: EmbeddedMosquitto,
                                                     tmp_path) -> None:
    """The feeds part may come up before the servers it reads (the demo's parts start side by side; a
    real API may be down at start). Once they answer, route lines and the 24 h air history arrive
    within seconds, not after a 5 minute retry or never."""
    root = demo_root(mosquitto, {"CC_SIMULATOR__BUSES": "50", "CC_SIMULATOR__CAMERAS": "5",
                                 "CC_FEEDS__SENSORS__TOPIC_PREFIX": "late/"})
    client = redis.Redis.from_url(redis_url)
    client.delete("cc:v1:transit:shapes", *client.keys("cc:v1:air:history:*"))
    runner = FieldRunner(redis_url, root.feeds, tmp_path).start()
    sim = SimulatorPart(redis_url, root.settings.simulator, root.feeds)
    try:
        threading.Event().wait(2.0)  # the adapters have tried and failed by now
        sim.start()
        wait_for(lambda: client.hlen("cc:v1:transit:shapes") > 0, 20)
        wait_for(lambda: client.zcard("cc:v1:air:history:부평") >= 20, 20)
    finally:
        runner.stop()
        sim.stop()
