"""Service area from configuration (issue 8, point 4): a city outside Korea by configuration alone.

The real stack is run as a deployment would: the configuration root reads CC_ overrides, FieldRunner
builds the one area and starts the adapters, GTFS-realtime arrives over HTTP and an observation through
the MQTT broker. Incheon positions must be rejected and the foreign city's accepted.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis
from google.transit import gtfs_realtime_pb2 as rt
from hypothesis import given, settings
from hypothesis import strategies as st

from config.settings import ConfigError
from feeds.config import AreaConfig
from feeds.field import FieldRunner, load_feeds_config
from feeds.sensors.observation import topic_for
from feeds.simulator.http_wire import WireHttpServer
from spine.geography import service_area
from tests.field.conftest import wait_for

LISBON_BOX = [38.69, -9.23, 38.80, -9.09]  # S, W, N, E
LISBON = (38.7105, -9.1366)  # Baixa
INCHEON = (37.4895, 126.7248)  # Bupyeong
PORTLAND = (45.5152, -122.6784)
# A rough outline of central Portland, Oregon, as a deployment's own boundary file
PORTLAND_RING = [[-122.75, 45.45], [-122.55, 45.45], [-122.55, 45.60], [-122.75, 45.60], [-122.75, 45.45]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _vp(vehicles: dict[str, tuple[float, float]]) -> bytes:
    msg = rt.FeedMessage()
    msg.header.gtfs_realtime_version = "2.0"
    msg.header.timestamp = int(time.time())
    for vid, (lat, lon) in vehicles.items():
        e = msg.entity.add()
        e.id = vid
        e.vehicle.vehicle.id = vid
        e.vehicle.trip.trip_id = "t1"
        e.vehicle.position.latitude = lat
        e.vehicle.position.longitude = lon
        e.vehicle.timestamp = int(time.time())
    return msg.SerializeToString()


def _obs(lat: float, lon: float) -> bytes:
    return json.dumps({
        "phenomenonTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "result": 1.5,
        "Datastream": {"name": "river", "unitOfMeasurement": {"symbol": "m"},
                       "ObservedProperty": {"name": "water_level"}},
        "FeatureOfInterest": {"feature": {"type": "Point", "coordinates": [lon, lat]}},
    }).encode()


def _only_feeds(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """Configuration alone: the shipped files plus CC_ overrides, as an installer would set them."""
    monkeypatch.delenv("CC_PROFILE", raising=False)
    base = {"CC_FEEDS__AIR__ENABLED": "false", "CC_FEEDS__DRONE__ENABLED": "false",
            "CC_FEEDS__SENSORS__ENABLED": "false", "CC_FEEDS__TRANSIT__ENABLED": "false"}
    for k, v in {**base, **env}.items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def wire() -> Iterator[WireHttpServer]:
    server = WireHttpServer({"/vp.pb": lambda q: (_vp({"sa-lisbon": LISBON, "sa-incheon": INCHEON}),
                                                   "application/x-protobuf")})
    server.start()
    yield server
    server.stop()


def test_lisbon_box_over_real_http(monkeypatch: pytest.MonkeyPatch, redis_url: str, rclient: redis.Redis,
                                   wire: WireHttpServer) -> None:
    _only_feeds(monkeypatch, CC_FEEDS__SERVICE_AREA__BOX=json.dumps(LISBON_BOX),
                CC_FEEDS__TRANSIT__ENABLED="true", CC_FEEDS__TRANSIT__PERIOD_S="0.2",
                CC_FEEDS__TRANSIT__URLS=json.dumps([f"http://127.0.0.1:{wire.port}/vp.pb"]))
    cfg = load_feeds_config()
    assert cfg.service_area.box == tuple(LISBON_BOX)
    with FieldRunner(redis_url, cfg) as runner:
        (transit,) = runner.adapters
        wait_for(lambda: rclient.hget("cc:v1:state:bus", "sa-lisbon"))
        wait_for(lambda: transit.rejects.counts["outside_service_area"] >= 1)
        assert rclient.hget("cc:v1:state:bus", "sa-incheon") is None
        state = json.loads(rclient.hget("cc:v1:state:bus", "sa-lisbon"))
        assert (state["lat"], state["lon"]) == pytest.approx(LISBON, abs=1e-5)


def test_portland_boundary_file_through_the_broker(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                   redis_url: str, rclient: redis.Redis) -> None:
    boundary = tmp_path / "portland.geojson"
    boundary.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"name": "Portland"},
         "geometry": {"type": "Polygon", "coordinates": [PORTLAND_RING]}}]}))
    _only_feeds(monkeypatch, CC_FEEDS__SERVICE_AREA__BOUNDARY_FILE=str(boundary),
                CC_FEEDS__SERVICE_AREA__BUFFER_DEG="0",
                CC_FEEDS__SENSORS__ENABLED="true", CC_FEEDS__SENSORS__ACCEPT_UNKNOWN="true",
                CC_FEEDS__SENSORS__TOPIC_PREFIX="pdx/",
                CC_FEEDS__SENSORS__BROKER_URL=f"mqtt://127.0.0.1:{_free_port()}")
    cfg = load_feeds_config()
    with FieldRunner(redis_url, cfg, workdir=tmp_path / "work") as runner:
        (sensors,) = runner.adapters
        assert runner.broker is not None  # nothing answered: the private broker, as in a deployment
        wait_for(lambda: sensors.subscribed)
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.username_pw_set("sensors", runner.broker.passwords["sensors"])
        pub.connect("127.0.0.1", runner.broker.port)
        pub.loop_start()
        try:
            pub.publish(topic_for("pdx/", "wl-icn"), _obs(*INCHEON), qos=1).wait_for_publish(5)
            pub.publish(topic_for("pdx/", "wl-pdx"), _obs(*PORTLAND), qos=1).wait_for_publish(5)
            wait_for(lambda: sensors.rejects.counts["outside_service_area"] == 1)
            wait_for(lambda: sensors.stats.messages >= 1)
        finally:
            pub.loop_stop()
            pub.disconnect()
    keys = {k.decode() for k in rclient.keys("cc:v1:state:*")}
    found = {f.decode() for k in keys for f in rclient.hkeys(k)}
    assert any("wl-pdx" in f for f in found) and not any("wl-icn" in f for f in found)


def _problems(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    monkeypatch.delenv("CC_PROFILE", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    from config.root import load_config

    with pytest.raises(ConfigError) as err:
        load_config()
    return [ln.strip() for ln in str(err.value).splitlines()[1:]]


def test_problems_are_one_line_each(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _problems(monkeypatch, CC_FEEDS__SERVICE_AREA__BOX="[38.8, -9.23, 38.69, -9.09]") == [
        "- feeds.service_area.box: Value error, [S, W, N, E] needs -90 <= south < north <= 90, "
        "got south=38.8 north=38.69"]
    monkeypatch.delenv("CC_FEEDS__SERVICE_AREA__BOX")
    got = _problems(monkeypatch, CC_FEEDS__SERVICE_AREA__BOX="[38.69, 190, 38.8, 200]")
    assert len(got) == 1 and "west < east <= 180" in got[0]
    missing = tmp_path / "none.geojson"
    monkeypatch.delenv("CC_FEEDS__SERVICE_AREA__BOX")
    assert _problems(monkeypatch, CC_FEEDS__SERVICE_AREA__BOUNDARY_FILE=str(missing)) == [
        f"- feeds.service_area.boundary_file: {str(missing)!r} does not exist (looked at {missing})"]
    points = tmp_path / "points.geojson"
    points.write_text(json.dumps({"type": "Feature", "properties": {},
                                  "geometry": {"type": "Point", "coordinates": [-9.1, 38.7]}}))
    assert _problems(monkeypatch, CC_FEEDS__SERVICE_AREA__BOUNDARY_FILE=str(points)) == [
        f"- feeds.service_area.boundary_file: {str(points)!r} is not a polygonal GeoJSON "
        "(holds no Polygon or MultiPolygon)"]
    got = _problems(monkeypatch, CC_FEEDS__SERVICE_AREA__BOUNDARY_FILE=str(points),
                    CC_FEEDS__SERVICE_AREA__BOX=json.dumps(LISBON_BOX))
    assert got == ["- feeds.service_area: Value error, give either box or boundary_file, not both"]


lat = st.floats(-90, 90, allow_nan=False)
lon = st.floats(-180, 180, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(lat, lon, lat, lon, lat, lon)
def test_box_contains_exactly_its_points(s: float, w: float, n: float, e: float, plat: float,
                                         plon: float) -> None:
    box = [s, w, n, e]
    try:
        cfg = AreaConfig(box=box, buffer_deg=0)
    except ValueError:
        assert not (s < n and w < e)  # refused only when the order is wrong
        return
    area = service_area(0, None, cfg.box)
    assert area.contains(plat, plon) == (s <= plat <= n and w <= plon <= e)
