"""MAVLink: footprint geometry, real pymavlink packets over UDP into Redis, hostile bytes."""

from __future__ import annotations

import json
import time

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from feeds.drone.adapter import DroneAdapter
from feeds.drone.config import DroneConfig
from feeds.drone.footprint import footprint, ground_extent
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
