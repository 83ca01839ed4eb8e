"""The Incheon simulator: inside real geography, deterministic for a seed, plausible values."""

from __future__ import annotations

from datetime import UTC, datetime

from feeds.simulator.air import AirNetwork, pm_grade
from feeds.simulator.buses import BusFleet
from feeds.simulator.cameras import CameraInventory
from feeds.simulator.drone import Drone
from feeds.simulator.sensors import SensorNetwork
from feeds.simulator.world import distance_m, district_index, places


def positions(fleet: BusFleet) -> list[tuple[float, float]]:
    return [fleet.state(b)[:2] for b in fleet.buses]


def test_same_seed_same_city() -> None:
    a, b = BusFleet(300, seed=7), BusFleet(300, seed=7)
    for fleet in (a, b):
        for bus in fleet.buses:
            fleet.advance(bus, 1.0)
    assert positions(a) == positions(b)
    assert positions(BusFleet(300, seed=8)) != positions(a)


def test_buses_run_on_routes_inside_incheon() -> None:
    fleet = BusFleet(2000, seed=42)
    assert len(fleet.buses) == 2000
    assert len({b.id for b in fleet.buses}) == 2000
    index = district_index()
    inside = sum(index.district_at(lat, lon) is not None for lat, lon in positions(fleet))
    # Legs between stops are straight lines, so a few cross a creek or the shore.
    assert inside / 2000 > 0.9
    props = fleet.state(fleet.buses[0])[2]
    assert {"route", "heading", "speed_kmh", "delay_s", "occupancy", "next_stop"} <= set(props)


def test_buses_move_at_bus_speeds() -> None:
    fleet = BusFleet(200, seed=1)
    before = positions(fleet)
    for bus in fleet.buses:
        fleet.advance(bus, 10.0)
    moved = [distance_m(p, q) for p, q in zip(before, positions(fleet), strict=True)]
    assert max(moved) <= 14 * 10 + 1  # never faster than 50 km/h
    assert sum(m > 0 for m in moved) > 100  # most are moving, some dwell at stops


def test_cameras_sit_in_their_district() -> None:
    inv = CameraInventory(300, seed=42)
    index = district_index()
    for cam in inv.cameras:
        assert cam.props["district"] in {d.name_ko for d in index.districts_at(cam.lat, cam.lon)}
    kinds = {c.props["type"] for c in inv.cameras}
    assert kinds == {"crime_prevention", "traffic", "disaster"}


def test_air_network_is_the_35_real_stations_with_diurnal_values() -> None:
    net = AirNetwork(seed=42)
    night = net.readings(datetime(2026, 11, 22, 18, 0, tzinfo=UTC))  # 03:00 KST
    noon = net.readings(datetime(2026, 11, 22, 5, 0, tzinfo=UTC))  # 14:00 KST
    assert len(noon) == 35
    assert {r[0] for r in noon} >= {"송도", "부평역", "백령도"}
    o3 = {r[0]: r[3]["o3"] for r in noon}
    o3_night = {r[0]: r[3]["o3"] for r in night}
    assert sum(o3.values()) > sum(o3_night.values()) * 1.5  # afternoon ozone peak
    for _, _, _, p in noon:
        assert p["pm25"] <= p["pm10"]
        assert p["grade"] == pm_grade(p["pm10"], p["pm25"])


def test_pm_grade_uses_the_worse_of_the_2018_bands() -> None:
    assert pm_grade(30, 15) == "좋음"
    assert pm_grade(31, 10) == "보통"
    assert pm_grade(20, 36) == "나쁨"
    assert pm_grade(151, 20) == "매우나쁨"
    assert pm_grade(None, None) is None


def test_sensor_threshold_crossing_raises_one_event_not_a_chatter() -> None:
    net = SensorNetwork(seed=3)
    level = next(s for s in net.sensors if s.kind == "water_level")
    net.storm = 0.0
    events = []
    for step in range(40):
        # Hold the value just around the threshold: one event, however it wobbles.
        level.baseline = level.threshold * (1.02 if step % 2 else 0.99)
        _, evs = net.step(30.0, 1_000 + step)
        events += [e for e in evs if e.entity == level.id]
    assert len(events) == 1
    assert events[0].severity == "medium" and events[0].layer == "sensor"


def test_drone_orbits_gyeyangsan() -> None:
    hill = next(p for p in places() if p.id == "gyeyangsan")
    drone = Drone()
    for _ in range(100):
        lat, lon, props = drone.step(0.5)
        assert abs(distance_m((lat, lon), (hill.lat, hill.lon)) - 700) < 5
    assert props["alt_m"] == 120 and 20 <= props["battery_pct"] <= 100


def test_the_demo_overlay_urls_are_what_the_simulator_serves(monkeypatch) -> None:
    """The demo reaches the adapters by configuration only, so the overlay's URLs must be the
    simulator's real endpoints: fetch each one from a running simulator wire server."""
    import urllib.request

    from config.root import load_config
    from feeds.simulator.wire import WireSimulator
    from spine.servers.managed import free_port

    monkeypatch.setenv("CC_PROFILE", "demo")
    monkeypatch.setenv("CC_SIMULATOR__HTTP_PORT", str(free_port()))
    monkeypatch.setenv("CC_SIMULATOR__BUSES", "20")
    monkeypatch.setenv("CC_SIMULATOR__CAMERAS", "5")
    root = load_config()
    wire = WireSimulator(root.settings.simulator)
    wire.http.start()
    try:
        feeds = root.feeds
        urls = [*feeds.transit.urls, feeds.transit.static_url, feeds.air.url,
                (feeds.air.backfill_url or "").replace("{station}", "%EB%B6%80%ED%8F%89")]
        for url in urls:
            assert url and url.startswith(f"http://127.0.0.1:{root.settings.simulator.http_port}/")
            with urllib.request.urlopen(url, timeout=5) as r:
                assert r.status == 200 and len(r.read()) > 100, url
    finally:
        wire.http.stop()
