"""The drone adapter: MAVLink 2 over UDP -> drone layer (position, heading, altitude, battery, mode,
camera footprint).

We own the UDP socket and feed datagrams to pymavlink's parser instead of using
mavlink_connection(), so a test or the benchmark can push bytes through exactly the same path and a
bad CRC or truncated frame is counted rather than silently skipped.
"""

from __future__ import annotations

import math
import socket
import time
from dataclasses import dataclass, field

import redis
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from feeds.adapter import Adapter, ServiceArea
from feeds.drone.config import DroneConfig
from feeds.drone.footprint import footprint

WATCHED = {"HEARTBEAT", "GLOBAL_POSITION_INT", "ATTITUDE", "BATTERY_STATUS", "SYS_STATUS",
           "MOUNT_ORIENTATION"}
MAX_DATAGRAM = 65535


@dataclass
class _Vehicle:
    sysid: int
    mode: str | None = None
    armed: bool | None = None
    mav_type: int | None = None
    lat: float | None = None
    lon: float | None = None
    alt_msl_m: float | None = None
    rel_alt_m: float | None = None
    heading: float | None = None
    speed_ms: float | None = None
    yaw_deg: float | None = None
    battery_pct: float | None = None
    voltage_v: float | None = None
    gimbal_pitch: float | None = None
    last_pub: float = 0.0
    last_seen: float = 0.0  # monotonic time of its last valid message
    extra: dict = field(default_factory=dict)


def _mode_name(mav_type: int, autopilot: int, custom_mode: int, base_mode: int) -> str:
    if not base_mode & mavlink2.MAV_MODE_FLAG_CUSTOM_MODE_ENABLED:
        return "MANUAL" if base_mode & mavlink2.MAV_MODE_FLAG_MANUAL_INPUT_ENABLED else "UNKNOWN"
    if autopilot == mavlink2.MAV_AUTOPILOT_ARDUPILOTMEGA:
        table = mavutil.mode_mapping_bynumber(mav_type) or {}
        return table.get(custom_mode, f"MODE_{custom_mode}")
    return f"MODE_{custom_mode}"


class DroneAdapter(Adapter):
    source = "mavlink"
    layer = "drone"

    def __init__(self, client: redis.Redis, cfg: DroneConfig, area: ServiceArea | None = None) -> None:
        super().__init__(client, cfg.contract_s, area)
        self.cfg = cfg
        host, _, port = cfg.listen.rpartition(":")
        self.listen = (host or "127.0.0.1", int(port))
        self.sock: socket.socket | None = None
        self.vehicles: dict[int, _Vehicle] = {}
        # robust_parsing: a bad frame comes back as MAVLink_bad_data (counted) instead of raising.
        self.parser = mavlink2.MAVLink(None, srcSystem=255, srcComponent=190)
        self.parser.robust_parsing = True

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1] if self.sock else self.listen[1]

    def connect(self) -> None:
        if self.sock is None:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            s.bind(self.listen)
            s.settimeout(0.25)
            self.sock = s
            self.listen = s.getsockname()[:2]  # keep a port picked by the OS across reconnects
            self.log.info("MAVLink listening on udp://%s:%d", self.listen[0], self.port)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def run_once(self) -> None:
        assert self.sock is not None
        try:
            data, _ = self.sock.recvfrom(MAX_DATAGRAM)
        except TimeoutError:
            return
        self.ingest(data)

    def ingest(self, raw: bytes, **context: str) -> int:
        try:
            msgs = self.parser.parse_buffer(raw) or []
        except Exception as exc:
            self.reject("malformed_mavlink", f"{type(exc).__name__}: {exc}")
            self.parser.buf = bytearray()  # drop the partial frame that confused the parser
            self.parser.buf_index = 0
            return 0
        accepted = 0
        with self._lock:
            for m in msgs:
                kind = m.get_type()
                if kind == "BAD_DATA":
                    reason = getattr(m, "reason", "bad data")
                    self.reject("bad_frame", str(reason)[:120])
                    continue
                if kind not in WATCHED:
                    continue
                if self._apply(m, kind):
                    accepted += 1
        if accepted:
            self.accepted(accepted, int(time.time() * 1000))
        return accepted

    def _apply(self, m: object, kind: str) -> bool:
        sysid = m.get_srcSystem()  # type: ignore[attr-defined]
        if not 1 <= sysid <= 254:
            self.reject("invalid:sysid", str(sysid))
            return False
        v = self.vehicles.get(sysid)
        if v is None:
            v = self.vehicles[sysid] = _Vehicle(sysid)
        v.last_seen = time.monotonic()
        if kind == "HEARTBEAT":
            if m.type == mavlink2.MAV_TYPE_GCS:  # type: ignore[attr-defined]
                return False  # a ground station's heartbeat is not a drone
            v.mav_type = m.type  # type: ignore[attr-defined]
            v.mode = _mode_name(m.type, m.autopilot, m.custom_mode, m.base_mode)  # type: ignore[attr-defined]
            v.armed = bool(m.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED)  # type: ignore[attr-defined]
            return True
        if kind == "ATTITUDE":
            yaw = m.yaw  # type: ignore[attr-defined]
            if not math.isfinite(yaw) or abs(yaw) > 2 * math.pi + 0.01:
                self.reject("out_of_range:yaw", str(yaw))
                return False
            v.yaw_deg = math.degrees(yaw) % 360
            return True
        if kind in ("BATTERY_STATUS", "SYS_STATUS"):
            pct = m.battery_remaining  # type: ignore[attr-defined]
            if pct == -1:
                return True
            if not 0 <= pct <= 100:
                self.reject("out_of_range:battery", str(pct))
                return False
            v.battery_pct = float(pct)
            if kind == "BATTERY_STATUS" and m.voltages[0] not in (65535, 0):  # type: ignore[attr-defined]
                v.voltage_v = round(m.voltages[0] / 1000, 2)  # type: ignore[attr-defined]
            return True
        if kind == "MOUNT_ORIENTATION":
            pitch = m.pitch  # type: ignore[attr-defined]
            if not (math.isfinite(pitch) and -180 <= pitch <= 180):
                self.reject("out_of_range:gimbal_pitch", str(pitch))
                return False
            v.gimbal_pitch = max(-90.0, min(30.0, pitch))
            return True
        # GLOBAL_POSITION_INT
        lat, lon = m.lat / 1e7, m.lon / 1e7  # type: ignore[attr-defined]
        if not self.in_area(lat, lon, f"sysid {sysid}"):
            return False
        rel = m.relative_alt / 1000  # type: ignore[attr-defined]
        if not -500 <= rel <= 10_000:
            self.reject("out_of_range:altitude", f"sysid {sysid}: {rel} m")
            return False
        v.lat, v.lon, v.rel_alt_m, v.alt_msl_m = lat, lon, rel, m.alt / 1000  # type: ignore[attr-defined]
        v.speed_ms = math.hypot(m.vx, m.vy) / 100  # type: ignore[attr-defined]
        hdg = m.hdg  # type: ignore[attr-defined]
        v.heading = hdg / 100 if hdg != 65535 and 0 <= hdg <= 35999 else v.yaw_deg
        self._publish(v)
        return True

    def tick(self) -> None:
        """A drone that stopped talking leaves the map (with its footprint) after gone_s."""
        now = time.monotonic()
        for sysid, v in list(self.vehicles.items()):
            if now - v.last_seen > self.cfg.gone_s:
                if v.lat is not None and v.lon is not None:
                    self.publisher.update("drone", f"drone-{sysid}", v.lat, v.lon, {}, gone=True)
                del self.vehicles[sysid]

    def _publish(self, v: _Vehicle) -> None:
        now = time.monotonic()
        if now - v.last_pub < 1.0 / self.cfg.publish_hz:
            return
        v.last_pub = now
        cam = self.cfg.camera
        heading = v.heading if v.heading is not None else 0.0
        pitch = v.gimbal_pitch if v.gimbal_pitch is not None else cam.gimbal_pitch_deg
        fp = footprint(v.lat, v.lon, v.rel_alt_m or 0.0, heading, cam.hfov_deg, cam.vfov_deg, pitch,
                       cam.max_range_m)
        props = {"name": self.cfg.names.get(v.sysid, f"Drone {v.sysid}"), "sysid": v.sysid,
                 "heading": None if v.heading is None else round(v.heading),
                 "alt_m": round(v.rel_alt_m or 0.0, 1), "alt_msl_m": round(v.alt_msl_m or 0.0, 1),
                 "speed_ms": round(v.speed_ms or 0.0, 1), "battery_pct": v.battery_pct,
                 "voltage_v": v.voltage_v, "mode": v.mode, "armed": v.armed,
                 "gimbal_pitch": round(pitch, 1), "footprint": fp}
        self.publisher.update("drone", f"drone-{v.sysid}", v.lat, v.lon, props)  # type: ignore[arg-type]
