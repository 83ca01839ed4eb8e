"""The simulated drone sending real MAVLink 2 packets over UDP (as an ArduCopter would)."""

from __future__ import annotations

import contextlib
import math
import socket
import time

from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from feeds.simulator.drone import Drone

MODES = {v: k for k, v in mavutil.mode_mapping_acm.items()}


class _UdpOut:
    def __init__(self, addr: tuple[str, int]) -> None:
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def write(self, data: bytes) -> None:
        with contextlib.suppress(OSError):  # no listener yet: UDP telemetry is fire-and-forget
            self.sock.sendto(data, self.addr)


class MavlinkWire:
    def __init__(self, drone: Drone, addr: tuple[str, int], sysid: int = 1) -> None:
        self.drone = drone
        self.out = _UdpOut(addr)
        self.mav = mavlink2.MAVLink(self.out, srcSystem=sysid, srcComponent=1)
        self.boot = time.monotonic()
        self._slow_due = 0.0

    def send(self, lat: float, lon: float, props: dict, dt: float) -> None:
        """One fast cycle (position, attitude) and, once a second, heartbeat, battery, gimbal."""
        ms = int((time.monotonic() - self.boot) * 1000) & 0xFFFFFFFF
        hdg = float(props.get("heading") or 0)
        speed = float(props.get("speed_ms") or 0)
        alt = float(props.get("alt_m") or 0)
        vn, ve = speed * math.cos(math.radians(hdg)), speed * math.sin(math.radians(hdg))
        self.mav.global_position_int_send(ms, int(lat * 1e7), int(lon * 1e7), int((alt + 30) * 1000),
                                          int(alt * 1000), int(vn * 100), int(ve * 100), 0,
                                          int(hdg * 100) % 36000)
        yaw = math.radians(hdg if hdg <= 180 else hdg - 360)
        self.mav.attitude_send(ms, 0.0, -0.05 if speed else 0.0, yaw, 0.0, 0.0, 0.0)
        now = time.monotonic()
        if now >= self._slow_due:
            self._slow_due = now + 1.0
            mode = MODES.get(str(props.get("mode", "AUTO")), 3)
            armed = mavlink2.MAV_MODE_FLAG_SAFETY_ARMED if alt > 0.5 else 0
            self.mav.heartbeat_send(mavlink2.MAV_TYPE_QUADROTOR, mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA,
                                    mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED | armed, mode,
                                    mavlink2.MAV_STATE_ACTIVE)
            pct = int(props.get("battery_pct") or 0)
            cells = [min(4200, 3500 + 7 * pct)] * 4 + [65535] * 6
            self.mav.battery_status_send(0, mavlink2.MAV_BATTERY_FUNCTION_ALL, mavlink2.MAV_BATTERY_TYPE_LIPO,
                                         2500, cells, 1500, -1, -1, pct)
            self.mav.mount_orientation_send(ms, 0.0, -60.0, 0.0, hdg)
