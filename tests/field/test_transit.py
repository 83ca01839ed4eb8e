"""GTFS-realtime: parsing, hostile input, fade/gone, and a real protobuf feed over HTTP into Redis."""

from __future__ import annotations

import json
import math
import time

import pytest
import redis
from google.transit import gtfs_realtime_pb2 as rt
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.simulator.http_wire import WireHttpServer
from feeds.transit.adapter import SHAPES_KEY, TransitAdapter
from feeds.transit.config import TransitConfig
from feeds.transit.static import write_static
from spine.health import assess
from tests.field.conftest import wait_for

BUPYEONG = (37.4895, 126.7248)


def feed(vehicles: list[dict], delays: dict[str, int] | None = None) -> bytes:
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = int(time.time())
    for v in vehicles:
        e = msg.entity.add()
        e.id = v["id"]
        e.vehicle.vehicle.id = v["id"]
        e.vehicle.trip.trip_id = v.get("trip", "t1")
        e.vehicle.trip.route_id = v.get("route", "r1")
        e.vehicle.position.latitude = v.get("lat", BUPYEONG[0])
        e.vehicle.position.longitude = v.get("lon", BUPYEONG[1])
        if "bearing" in v:
            e.vehicle.position.bearing = v["bearing"]
        if "speed" in v:
            e.vehicle.position.speed = v["speed"]
        e.vehicle.occupancy_status = rt.VehiclePosition.FEW_SEATS_AVAILABLE
        e.vehicle.timestamp = v.get("ts", int(time.time()))
    for trip, d in (delays or {}).items():
        e = msg.entity.add()
        e.id = "tu-" + trip
        e.trip_update.trip.trip_id = trip
        stu = e.trip_update.stop_time_update.add()
        stu.stop_sequence = 1
        stu.arrival.delay = d
    return msg.SerializeToString()


def static() -> bytes:
    return write_static(
        {
            "routes.txt": [{"route_id": "r1", "route_short_name": "506", "route_color": "1565C0"}],
            "trips.txt": [{"route_id": "r1", "trip_id": "t1", "shape_id": "s1", "direction_id": 0}],
            "shapes.txt": [
                {
                    "shape_id": "s1",
                    "shape_pt_lat": 37.48 + i * 0.001,
                    "shape_pt_lon": 126.72,
                    "shape_pt_sequence": i,
                }
                for i in range(5)
            ]
            + [{"shape_id": "s1", "shape_pt_lat": "x", "shape_pt_lon": 1, "shape_pt_sequence": 9}],
            "stops.txt": [{"stop_id": "a", "stop_name": "부평역", "stop_lat": 37.49, "stop_lon": 126.72}],
        }
    )


def test_props_and_static(redis_url: str, rclient: redis.Redis, area) -> None:
    a = TransitAdapter(redis.Redis.from_url(redis_url), TransitConfig(), area)
    a.load_static(static())
    assert a.rejects.counts["gtfs_static:shapes"] == 1
    assert a.ingest(feed([{"id": "bus-1", "bearing": 450.0, "speed": 10.0}], {"t1": 125})) == 1
    a.flush()
    p = json.loads(rclient.hget("cc:v1:state:bus", "bus-1"))["props"]
    assert p == {
        **p,
        "route": "506",
        "route_shape": "s1",
        "trip": "t1",
        "heading": 90,
        "delay_s": 125,
        "occupancy": "FEW_SEATS_AVAILABLE",
        "speed_kmh": 36,
    }
    assert json.loads(rclient.hget(SHAPES_KEY, "s1"))["route"] == "506"


def test_hostile_input_is_counted(redis_url: str, area) -> None:
    a = TransitAdapter(redis.Redis.from_url(redis_url), TransitConfig(), area)
    good = feed([{"id": "ok"}])
    assert a.ingest(b"\xff\xfe garbage") == 0
    assert a.ingest(good[: len(good) // 2]) == 0  # truncated
    bad = feed(
        [
            {"id": "null-island", "lat": 0.0, "lon": 0.0},
            {"id": "seoul-swap", "lat": 126.7, "lon": 37.4},
            {"id": "future", "ts": int(time.time()) + 3600},
            {"id": "nan", "bearing": math.nan},
            {"id": "rocket", "speed": 300.0},
            {"id": "tokyo", "lat": 35.68, "lon": 139.76},
        ]
    )
    assert a.ingest(bad) == 0
    c = a.rejects.counts
    assert c["outside_service_area"] == 2 and c["invalid:position"] == 1 and c["future_timestamp"] == 1
    assert c["out_of_range:bearing"] == 1 and c["out_of_range:speed"] == 1
    assert c["malformed_protobuf"] + c["invalid:header"] >= 2
    assert a.ingest(good) == 1  # still running


def test_a_fix_within_the_skew_cannot_freeze_a_bus(redis_url: str, rclient: redis.Redis, area) -> None:
    """A fix dated 4 min ahead (inside max_future_s) used to hold the bus until real time caught up."""
    a = TransitAdapter(redis.Redis.from_url(redis_url), TransitConfig(), area)
    assert a.ingest(feed([{"id": "b1", "ts": int(time.time()) + 240}])) == 1
    a.flush()
    moved = (BUPYEONG[0] + 0.002, BUPYEONG[1] + 0.002)
    time.sleep(1.1)  # GTFS-rt time is in whole seconds: the next real fix is at least a second later
    assert a.ingest(feed([{"id": "b1", "lat": moved[0], "lon": moved[1], "ts": int(time.time()) + 1}])) == 1
    a.flush()
    state = json.loads(rclient.hget("cc:v1:state:bus", "b1"))
    assert (state["lat"], state["lon"]) == pytest.approx(moved)
    assert state["ts"] <= time.time() * 1000 + 2000  # never shown as newer than now


def test_fade_then_gone(redis_url: str, rclient: redis.Redis, area) -> None:
    a = TransitAdapter(redis.Redis.from_url(redis_url), TransitConfig(), area)
    a.ingest(
        feed([{"id": "old", "ts": int(time.time()) - 100}, {"id": "older", "ts": int(time.time()) - 170}])
    )
    a.tick()
    a.flush()
    assert json.loads(rclient.hget("cc:v1:state:bus", "old"))["props"]["stale"] is True
    a.cfg = TransitConfig(gone_s=150)  # as if 30 s more had passed for "older"
    a.tick()
    a.flush()
    assert rclient.hget("cc:v1:state:bus", "older") is None  # gone=True removes it from the state
    assert rclient.hget("cc:v1:state:bus", "old") is not None


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_never_crash(data: bytes) -> None:
    from feeds.transit.realtime import parse_feed

    parse_feed(data, lambda r, d: None)


def test_real_feed_over_http_reaches_redis(redis_url: str, rclient: redis.Redis, area) -> None:
    state = {"n": 0}

    def vehicles(q):
        state["n"] += 1
        return feed([{"id": f"v{i}", "lat": 37.45 + i * 0.001} for i in range(50)]), "application/x-protobuf"

    server = WireHttpServer({"/vp.pb": vehicles, "/static.zip": lambda q: (static(), "application/zip")})
    server.start()
    cfg = TransitConfig(
        urls=[f"http://127.0.0.1:{server.port}/vp.pb"],
        period_s=0.2,
        static_url=f"http://127.0.0.1:{server.port}/static.zip",
    )
    a = TransitAdapter(redis.Redis.from_url(redis_url), cfg, area)
    a.start()
    try:
        wait_for(lambda: rclient.hlen("cc:v1:state:bus") == 50)
        assert json.loads(rclient.hget("cc:v1:state:bus", "v3"))["src"] == "gtfs_rt"
        assert rclient.hexists(SHAPES_KEY, "s1")
        wait_for(lambda: state["n"] >= 3)
    finally:
        a.stop()
        server.stop()
    assert a.stats.messages >= 150 and a.rejects.total >= 1  # the bad static shape row


def test_missing_static_gtfs_or_one_dead_url_does_not_stop_live_positions(
        redis_url: str, rclient: redis.Redis, area, tmp_path) -> None:
    live = tmp_path / "vp.pb"
    live.write_bytes(feed([{"id": "bus-7"}]))
    cfg = TransitConfig(urls=[str(tmp_path / "trip_updates_down.pb"), str(live)],
                        static_url=str(tmp_path / "no-static.zip"), period_s=1)
    a = TransitAdapter(redis.Redis.from_url(redis_url), cfg, area)
    a.connect()  # static GTFS missing: logged, retried later, never raised
    a.run_once()  # the first URL fails, the second still delivers
    a.flush()
    assert rclient.hget("cc:v1:state:bus", "bus-7") is not None
    cfg_all_down = TransitConfig(urls=[str(tmp_path / "down.pb")], period_s=1)
    b = TransitAdapter(redis.Redis.from_url(redis_url), cfg_all_down, area)
    with pytest.raises(OSError):  # every source down: the run loop reports it and backs off
        b.run_once()


def no_position_feed(ids: list[str]) -> bytes:
    """Vehicles as a subway feed reports them: trip and stop, but no GPS position."""
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = int(time.time())
    for vid in ids:
        e = msg.entity.add()
        e.id = vid
        e.vehicle.vehicle.id = vid
        e.vehicle.trip.trip_id = "t1"
        e.vehicle.stop_id = "a"
        e.vehicle.timestamp = int(time.time())
    return msg.SerializeToString()


def test_health_tells_frozen_all_rejected_and_live_feeds_apart(
        redis_url: str, rclient: redis.Redis, area) -> None:
    """Three real feeds over HTTP: one frozen years ago, one whose every vehicle has no position,
    one live. Health used to call all three `ok` (the first two with the map showing nothing)."""
    years_ago = int(time.time()) - 3 * 365 * 86_400
    pb = "application/x-protobuf"

    def live(q):  # built at each poll, so its vehicles are as fresh as a live feed's
        msg = rt.FeedMessage.FromString(feed([{"id": "live-1"}, {"id": "live-2"}]))
        msg.MergeFromString(no_position_feed(["car-9"]))
        return msg.SerializeToString(), pb

    routes = {
        "/frozen.pb": lambda q: (feed([{"id": f"f{i}", "ts": years_ago} for i in range(5)]), pb),
        "/subway.pb": lambda q: (no_position_feed([f"car-{i}" for i in range(8)]), pb),
        "/live.pb": live,
    }
    server = WireHttpServer(routes)
    server.start()
    adapters = {}
    try:
        for name in ("frozen", "subway", "live"):
            cfg = TransitConfig(urls=[f"http://127.0.0.1:{server.port}/{name}.pb"], period_s=0.2,
                                contract_s=1.0)
            adapters[name] = TransitAdapter(redis.Redis.from_url(redis_url), cfg, area)
            adapters[name].start()
        time.sleep(1.5)  # past one contract period: the grace for a source that never delivered
        frozen = wait_for(lambda: (h := assess(adapters["frozen"], 0.0)).state == "stale" and h)
        subway = wait_for(lambda: (h := assess(adapters["subway"], 0.0)).state == "error" and h)
        live = wait_for(lambda: (h := assess(adapters["live"], 0.0)).state == "ok" and h)
    finally:
        for a in adapters.values():
            a.stop()
        server.stop()
    # The frozen feed's fixes are not shown, so they are not counted as delivered either.
    assert frozen.messages == 0 and frozen.rejects == 0
    assert all(rclient.hget("cc:v1:state:bus", f"f{i}") is None for i in range(5))
    # Every subway car refused for want of a position: an error naming that reason.
    assert subway.error.startswith("every record rejected: missing:position")
    assert subway.notes["missing:position"] >= 8 and subway.rejects == 0 and subway.messages == 0
    # The live feed stays ok; its one positionless car is a note, not a reject, and not on the map.
    assert live.messages >= 2 and live.rejects == 0 and live.notes["missing:position"] >= 1
    assert live.error == "" and live.source_age_s is not None and live.source_age_s < 30
    assert rclient.hget("cc:v1:state:bus", "car-9") is None
    assert rclient.hget("cc:v1:state:bus", "live-1") is not None
