"""MAVLink: footprint geometry, real pymavlink packets over UDP into Redis, hostile bytes."""

from __future__ import annotations

import json
import socket
import time

import msgspec
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from feeds.drone.adapter import DroneAdapter, pack_voltage
from feeds.drone.config import DroneConfig
from feeds.drone.footprint import footprint, ground_extent
from spine.health import assess
from spine.layers import DroneProps
from tests.field.conftest import wait_for

HILL = (37.5532, 126.7146)


def test_footprint_matches_the_worked_example() -> None:
    near, far, w1, _ = ground_extent(100, 73.7, 53.1, -90, 5000)
    assert far - near == pytest.approx(100, abs=0.5) and w1 == pytest.approx(150, abs=0.5)
    near, far, _, _ = ground_extent(100, 73.7, 53.1, -45, 5000)
    assert near == pytest.approx(33.3, abs=0.1) and far == pytest.approx(300, abs=0.5)
    assert ground_extent(100, 73.7, 53.1, 0, 1500)[1] == 1500  # horizon: clamped
    corners = footprint(*HILL, 120, 90, 73.7, 53.1, -60, 1500)
    assert len(corners) == 4 and all(c[1] > HILL[1] for c in corners[2:])  # facing east: far side east
    assert footprint(*HILL, 0.2, 0, 73.7, 53.1, -60, 1500) is None


def _packets(lat: float = HILL[0], lon: float = HILL[1], sysid: int = 1) -> list[bytes]:
    mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=1)
    return [
        mav.heartbeat_encode(
            mavlink2.MAV_TYPE_QUADROTOR,
            mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
            mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink2.MAV_MODE_FLAG_SAFETY_ARMED,
            3,
            mavlink2.MAV_STATE_ACTIVE,
        ).pack(mav),
        mav.attitude_encode(1000, 0, 0, 1.57, 0, 0, 0).pack(mav),
        mav.battery_status_encode(0, 0, 0, 2500, [4000] * 4 + [65535] * 6, 100, -1, -1, 76).pack(mav),
        mav.global_position_int_encode(
            1000, int(lat * 1e7), int(lon * 1e7), 150000, 120000, 900, 0, 0, 9000
        ).pack(mav),
    ]


def test_udp_from_pymavlink_reaches_redis(redis_url: str, rclient: redis.Redis, area) -> None:
    a = DroneAdapter(redis.Redis.from_url(redis_url), DroneConfig(listen="127.0.0.1:0"), area)
    a.connect()
    a.stats.connected = True
    a.start()
    try:
        out = mavutil.mavlink_connection(f"udpout:127.0.0.1:{a.port}", source_system=1)
        mav = out.mav
        mav.heartbeat_send(
            mavlink2.MAV_TYPE_QUADROTOR,
            mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
            mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED,
            6,
            mavlink2.MAV_STATE_ACTIVE,
        )
        mav.battery_status_send(0, 0, 0, 2500, [4000] * 4 + [65535] * 6, 100, -1, -1, 55)
        time.sleep(0.05)
        mav.global_position_int_send(
            1000, int(HILL[0] * 1e7), int(HILL[1] * 1e7), 150000, 120000, 900, 0, 0, 9000
        )
        out.write(b"\xfd\x09\x00\x00\x00\x01\x01garbage-not-a-frame")
        upd = wait_for(lambda: rclient.hget("cc:v1:state:drone", "drone-1"))
        p = json.loads(upd)["props"]
        assert p["mode"] == "RTL" and p["battery_pct"] == 55 and p["alt_m"] == 120 and p["heading"] == 90
        assert len(p["footprint"]) == 4 and all(len(c) == 2 for c in p["footprint"])
        # The link goes silent: after gone_s the drone (and its footprint) leaves the map.
        a.cfg = a.cfg.model_copy(update={"gone_s": 0.2})
        wait_for(lambda: rclient.hget("cc:v1:state:drone", "drone-1") is None, timeout=5)
    finally:
        a.stop()


def test_hostile_frames_are_counted(redis_url: str, area) -> None:
    a = DroneAdapter(redis.Redis.from_url(redis_url), DroneConfig(), area)
    good = _packets()
    corrupt = bytearray(good[3])
    corrupt[-3] ^= 0xFF  # break the CRC
    assert a.ingest(bytes(corrupt)) == 0
    assert a.ingest(good[3][:10]) == 0  # truncated: waits for the rest, publishes nothing
    a.parser.buf, a.parser.buf_index = bytearray(), 0
    assert a.ingest(b"".join(_packets(lat=35.1, lon=129.0))) == 3  # Busan: position rejected
    assert a.rejects.counts["outside_service_area"] == 1
    assert a.rejects.total >= 2
    assert a.ingest(b"".join(good)) == 4  # still parsing


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    a = DroneAdapter.__new__(DroneAdapter)
    DroneAdapter.__init__(a, redis.Redis(port=1), DroneConfig())  # never flushed: no Redis needed
    a.ingest(data)
    a.ingest(b"".join(_packets()))


# ---- issue 8: components, ground stations, GPS fix, unknown battery percentage, several vehicles ----

ARMED_LOITER = (mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | mavlink2.MAV_MODE_FLAG_SAFETY_ARMED, 5)


class _Sender:
    """One MAVLink component on its own UDP socket, framing with pymavlink as a real one would."""

    def __init__(self, port: int, sysid: int, compid: int) -> None:
        self.mav = mavlink2.MAVLink(None, srcSystem=sysid, srcComponent=compid)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.port = port

    def send(self, *msgs: object) -> None:
        self.sock.sendto(b"".join(m.pack(self.mav) for m in msgs), ("127.0.0.1", self.port))  # type: ignore[attr-defined]

    def heartbeat(self, mav_type: int, autopilot: int, base_mode: int = 0, custom_mode: int = 0) -> None:
        self.send(self.mav.heartbeat_encode(mav_type, autopilot, base_mode, custom_mode,
                                            mavlink2.MAV_STATE_ACTIVE))

    def position(self, lat: float, lon: float, rel_alt_m: float = 80.0) -> None:
        self.send(self.mav.global_position_int_encode(1000, round(lat * 1e7), round(lon * 1e7),
                                                      int((rel_alt_m + 30) * 1000), int(rel_alt_m * 1000),
                                                      300, 400, 0, 4500))

    def gps(self, fix: int, lat: float = 0.0, lon: float = 0.0, sats: int = 12, second: bool = False) -> None:
        args = (1000, fix, round(lat * 1e7), round(lon * 1e7), 0, 120, 200, 0, 0, sats)
        self.send(self.mav.gps2_raw_encode(*args, 0, 0) if second else self.mav.gps_raw_int_encode(*args))

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def live(redis_url: str, area):
    a = DroneAdapter(redis.Redis.from_url(redis_url), DroneConfig(listen="127.0.0.1:0", publish_hz=50,
                                                                   names={1: "Drone 1", 3: "Drone 3"}), area)
    a.connect()
    a.stats.connected = True
    a.start()
    senders: list[_Sender] = []

    def sender(sysid: int, compid: int) -> _Sender:
        senders.append(_Sender(a.port, sysid, compid))
        return senders[-1]

    yield a, sender
    a.stop()
    for s in senders:
        s.close()


def _state(rclient: redis.Redis, sysid: int) -> dict | None:
    raw = rclient.hget("cc:v1:state:drone", f"drone-{sysid}")
    return None if raw is None else json.loads(raw)


def _props_at(rclient: redis.Redis, sysid: int, lat: float) -> dict:
    """The props of the drone's state once it shows latitude `lat`, checked against the layer's struct."""
    upd = wait_for(lambda: (s := _state(rclient, sysid)) and abs(s["lat"] - lat) < 1e-6 and s)
    msgspec.convert(upd["props"], DroneProps)  # what the gateway would accept
    return upd["props"]


def test_components_and_ground_station_do_not_speak_for_the_vehicle(live, rclient: redis.Redis) -> None:
    """Two vehicles, each with a companion computer and a camera heartbeating between the autopilot's
    messages, and a ground station (system 255): every fix shows each autopilot's own mode and armed
    state, a companion's own position is not the vehicle's, and nothing here is a reject."""
    a, sender = live
    ap1, cam1, cc1 = sender(1, 1), sender(1, mavlink2.MAV_COMP_ID_CAMERA), sender(1, 191)
    ap3, cam3, cc3 = sender(3, 1), sender(3, mavlink2.MAV_COMP_ID_CAMERA), sender(3, 191)
    gcs = sender(255, 190)
    for i in range(4):
        ap1.heartbeat(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA, *ARMED_LOITER)
        ap3.heartbeat(mavlink2.MAV_TYPE_HEXAROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
                      mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED, 6)  # RTL, disarmed
        # What real peripherals send: a camera claiming "armed", a companion with manual input set,
        # a ground station; none has an autopilot.
        for cam in (cam1, cam3):
            cam.heartbeat(mavlink2.MAV_TYPE_CAMERA, mavlink2.MAV_AUTOPILOT_INVALID,
                          mavlink2.MAV_MODE_FLAG_SAFETY_ARMED)
        for cc in (cc1, cc3):
            cc.heartbeat(mavlink2.MAV_TYPE_ONBOARD_CONTROLLER, mavlink2.MAV_AUTOPILOT_INVALID,
                         mavlink2.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED)
        gcs.heartbeat(mavlink2.MAV_TYPE_GCS, mavlink2.MAV_AUTOPILOT_INVALID,
                      mavlink2.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED)
        cc1.position(HILL[0] + 0.05, HILL[1])  # a companion's own estimate: not the vehicle's
        time.sleep(0.02)
        lat1, lat3 = HILL[0] + i * 0.001, HILL[0] - i * 0.001
        ap1.position(lat1, HILL[1])
        ap3.position(lat3, HILL[1] + 0.01)
        p1, p3 = _props_at(rclient, 1, lat1), _props_at(rclient, 3, lat3)
        assert (p1["mode"], p1["armed"], p1["name"]) == ("LOITER", True, "Drone 1")
        assert (p3["mode"], p3["armed"], p3["name"]) == ("RTL", False, "Drone 3")
    assert set(a.vehicles) == {1, 3} and a.vehicles[1].autopilot_comp == 1
    assert a.rejects.total == 0, dict(a.rejects.counts)
    assert a.notes["gcs_heartbeat"] == 4 and a.notes["component_heartbeat"] == 16
    assert a.notes["non_autopilot_message"] == 4


def test_no_gps_fix_is_never_plotted_at_zero(live, rclient: redis.Redis, area) -> None:
    """GPS_RAW_INT fix 0 with lat = lon = 0: off the map, not a reject, and health says why. After a 3D
    fix, a lost fix keeps the marker at the last good position marked "no GPS fix"; GPS2_RAW counts."""
    a, sender = live
    ap = sender(1, 1)
    ap.heartbeat(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA, *ARMED_LOITER)
    ap.gps(mavlink2.GPS_FIX_TYPE_NO_GPS, sats=0)
    ap.position(0.0, 0.0, 0.0)
    wait_for(lambda: a.notes["no_gps_fix"] >= 1)
    h = wait_for(lambda: (x := assess(a, 0.0)).error and x)
    assert "no GPS fix" in h.error and "drone-1" in h.error and "not on the map" in h.error
    assert a.rejects.total == 0 and _state(rclient, 1) is None

    ap.gps(mavlink2.GPS_FIX_TYPE_3D_FIX, *HILL, sats=14)
    ap.position(*HILL)
    p = _props_at(rclient, 1, HILL[0])
    assert p["gps"] == "3D fix, 14 sats" and p["gps_fix"] is True and len(p["footprint"]) == 4
    wait_for(lambda: assess(a, 0.0).error == "")  # the note leaves with the problem

    ap.gps(mavlink2.GPS_FIX_TYPE_NO_FIX, sats=3)
    ap.position(HILL[0] + 0.02, HILL[1] + 0.02)  # dead reckoning drifting off: not shown as true
    ap.position(0.0, 0.0)
    wait_for(lambda: a.notes["no_gps_fix"] >= 3)
    time.sleep(0.3)
    s = _state(rclient, 1)
    assert (s["lat"], s["lon"]) == HILL  # never (0, 0), never the drift
    assert s["props"]["gps"] == "no GPS fix" and s["props"]["gps_fix"] is False
    assert s["props"].get("footprint") is None and s["props"]["mode"] == "LOITER"
    assert "at its last good position" in wait_for(lambda: assess(a, 0.0).error)
    assert a.rejects.total == 0

    ap.gps(mavlink2.GPS_FIX_TYPE_RTK_FIXED, HILL[0] + 0.001, HILL[1], sats=20, second=True)
    ap.position(HILL[0] + 0.001, HILL[1])
    assert _props_at(rclient, 1, HILL[0] + 0.001)["gps"] == "RTK fixed, 20 sats"


def test_unknown_percentage_keeps_the_voltage(live, rclient: redis.Redis) -> None:
    """ArduPilot without a battery capacity: battery_remaining = -1 with 16.2 V in SYS_STATUS and in
    BATTERY_STATUS cell 0 (the pack total, other cells UINT16_MAX)."""
    a, sender = live
    ap = sender(1, 1)
    ap.heartbeat(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA, *ARMED_LOITER)
    ap.send(ap.mav.sys_status_encode(0, 0, 0, 500, 16200, 1200, -1, 0, 0, 0, 0, 0, 0))
    ap.position(*HILL)
    p = _props_at(rclient, 1, HILL[0])
    assert p["voltage_v"] == 16.2 and p.get("battery_pct") is None
    ap.send(ap.mav.battery_status_encode(0, 0, 0, 2500, [16150] + [65535] * 9, 100, -1, -1, -1))
    ap.position(HILL[0] + 0.001, HILL[1])
    p = _props_at(rclient, 1, HILL[0] + 0.001)
    assert p["voltage_v"] == 16.15 and p.get("battery_pct") is None
    # Per-cell voltages (4S at 4.0 V) are summed to the pack's, and a known percentage is shown.
    ap.send(ap.mav.battery_status_encode(0, 0, 0, 2500, [4000] * 4 + [65535] * 6, 100, -1, -1, 76))
    ap.position(HILL[0] + 0.002, HILL[1])
    p = _props_at(rclient, 1, HILL[0] + 0.002)
    assert p["voltage_v"] == 16.0 and p["battery_pct"] == 76
    assert a.rejects.total == 0


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["camera", "companion", "gcs", "gimbal", "autopilot_armed",
                                 "autopilot_disarmed", "position"]), min_size=1, max_size=40))
def test_any_interleaving_shows_the_autopilots_state(order: list[str]) -> None:
    a = DroneAdapter(redis.Redis(port=1), DroneConfig(publish_hz=50))  # nothing flushed: no Redis needed
    mavs = {c: mavlink2.MAVLink(None, srcSystem=255 if c == "gcs" else 1, srcComponent=comp)
            for c, comp in (("camera", 100), ("companion", 191), ("gcs", 190), ("gimbal", 154), ("ap", 1))}
    peripherals = {"camera": mavlink2.MAV_TYPE_CAMERA, "companion": mavlink2.MAV_TYPE_ONBOARD_CONTROLLER,
                   "gcs": mavlink2.MAV_TYPE_GCS, "gimbal": mavlink2.MAV_TYPE_GIMBAL}
    expected: tuple[str, bool] | None = None
    for step in order:
        if step in peripherals:
            m = mavs[step].heartbeat_encode(peripherals[step], mavlink2.MAV_AUTOPILOT_INVALID,
                                            mavlink2.MAV_MODE_FLAG_SAFETY_ARMED, 0, 0)
            a.ingest(m.pack(mavs[step]))
        elif step == "position":
            ap = mavs["ap"]
            a.ingest(ap.global_position_int_encode(0, int(HILL[0] * 1e7), int(HILL[1] * 1e7), 0, 0, 0, 0, 0,
                                                   0).pack(ap))
        else:
            armed = step == "autopilot_armed"
            flags = mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | (mavlink2.MAV_MODE_FLAG_SAFETY_ARMED * armed)
            ap = mavs["ap"]
            a.ingest(ap.heartbeat_encode(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                         flags, 5 if armed else 9, 0).pack(ap))
            expected = ("LOITER" if armed else "LAND", armed)
        v = a.vehicles.get(1)
        got = None if v is None or v.mode is None else (v.mode, v.armed)
        assert got == expected
    assert a.rejects.total == 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 65535), min_size=10, max_size=10),
       st.lists(st.integers(0, 65535), min_size=4, max_size=4))
def test_pack_voltage_follows_the_spec(cells: list[int], ext: list[int]) -> None:
    measured = [c for c in cells if c != 65535] + [c for c in ext if c not in (0, 65535)]
    got = pack_voltage(cells, ext)
    if not measured or sum(measured) == 0:
        assert got is None
    else:
        assert got == round(sum(measured) / 1000, 2)
