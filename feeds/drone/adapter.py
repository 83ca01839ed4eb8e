"""The drone adapter: MAVLink 2 over UDP -> drone layer (position, heading, altitude, battery, mode,
camera footprint).

We own the UDP socket and feed datagrams to pymavlink's parser instead of using
mavlink_connection(), so a test or the benchmark can push bytes through exactly the same path and a
bad CRC or truncated frame is counted rather than silently skipped.

One link carries several vehicles and, per vehicle, several components (autopilot, camera, gimbal,
companion computer) plus ground stations. Only a vehicle's autopilot component, recognised by its
HEARTBEAT's type and autopilot fields, speaks for the vehicle; the others are noted, not rejected.
A vehicle without a GPS fix is never drawn at (0, 0): it stays at its last good position, marked.
"""

from __future__ import annotations

import math
import socket
from collections import Counter
from dataclasses import dataclass, field

import redis
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink2

from feeds.adapter import Adapter, Clock, ServiceArea
from feeds.drone.config import DroneConfig
from feeds.drone.footprint import footprint
from spine.publisher import Publisher

WATCHED = {"HEARTBEAT", "GLOBAL_POSITION_INT", "GPS_RAW_INT", "GPS2_RAW", "ATTITUDE", "BATTERY_STATUS",
           "SYS_STATUS", "MOUNT_ORIENTATION"}
MAX_DATAGRAM = 65535
UINT16_MAX = 65535


def _consts(*names: str) -> frozenset[int]:
    # getattr: an older dialect without one of these types simply lacks it.
    return frozenset(v for n in names if (v := getattr(mavlink2, f"MAV_TYPE_{n}", None)) is not None)


# Heartbeat types of things that are not a flying (or driving) vehicle: a ground station, a tracker on
# the ground, and the peripherals a vehicle carries (camera, gimbal, companion computer, ...). Their
# heartbeats share the vehicle's system id; letting them speak for it is the bug of issue 8.
NOT_A_VEHICLE = _consts("GCS", "ANTENNA_TRACKER", "ONBOARD_CONTROLLER", "GIMBAL", "ADSB", "CAMERA",
                        "CHARGING_STATION", "FLARM", "SERVO", "ODID", "BATTERY", "PARACHUTE", "LOG", "OSD",
                        "IMU", "GPS", "WINCH", "ILLUMINATOR", "GRIPPER")
# GPS_FIX_TYPE_*: 0 no GPS, 1 no fix, 2 2D ... 8 PPP; 2 and better place the vehicle.
FIX_NAMES = {0: "no GPS", 1: "no fix", 2: "2D fix", 3: "3D fix", 4: "DGPS fix", 5: "RTK float",
             6: "RTK fixed", 7: "static fix", 8: "PPP fix"}
GOOD_FIX = mavlink2.GPS_FIX_TYPE_2D_FIX
NO_FIX_TEXT = "no GPS fix"


def is_autopilot(mav_type: int, autopilot: int) -> bool:
    """A heartbeat that speaks for the vehicle: a real autopilot on a vehicle-type component."""
    return autopilot != mavlink2.MAV_AUTOPILOT_INVALID and mav_type not in NOT_A_VEHICLE


def pack_voltage(cells: list[int], ext: list[int] | None = None) -> float | None:
    """BATTERY_STATUS pack voltage in volts, per the MAVLink spec: cells are mV, UINT16_MAX = not
    measured; a pack that only knows its total puts it in cell 0 (overflowing into cell 1 past
    65534 mV), so the sum of the measured cells is the pack voltage either way. voltages_ext uses 0
    for unused cells."""
    mv = [c for c in cells if c != UINT16_MAX]
    mv += [c for c in (ext or []) if c not in (0, UINT16_MAX)]
    if not mv or sum(mv) == 0:
        return None
    return round(sum(mv) / 1000, 2)


@dataclass
class _Component:
    """What one (system, component) said about itself in its last heartbeat."""

    mav_type: int
    autopilot: int
    last_seen: float


@dataclass
class _Vehicle:
    sysid: int
    autopilot_comp: int | None = None  # the component whose heartbeat is the autopilot's
    mode: str | None = None
    armed: bool | None = None
    mav_type: int | None = None
    lat: float | None = None  # the last GOOD position (never a no-fix one)
    lon: float | None = None
    fix_at_ms: int | None = None  # wall time of that position
    alt_msl_m: float | None = None
    rel_alt_m: float | None = None
    heading: float | None = None
    speed_ms: float | None = None
    yaw_deg: float | None = None
    gps_fix: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # GPS msg -> (fix, sats)
    zero_position: bool = False  # GLOBAL_POSITION_INT said 0, 0: no estimate yet
    no_fix_since: float | None = None  # monotonic
    battery: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # kind -> (pct, V)
    gimbal_pitch: float | None = None
    last_pub: float = 0.0
    held: bool = False  # a change not yet published (rate limit): tick() publishes it
    last_seen: float = 0.0  # monotonic time of its autopilot's last valid message
    extra: dict = field(default_factory=dict)

    @property
    def has_fix(self) -> bool:
        # Without any GPS message we trust GLOBAL_POSITION_INT unless it is exactly (0, 0).
        if self.gps_fix and max(f for f, _ in self.gps_fix.values()) < GOOD_FIX:
            return False
        return not self.zero_position

    def gps_text(self) -> str | None:
        if not self.has_fix:
            return NO_FIX_TEXT
        if not self.gps_fix:
            return None
        fix, sats = max(self.gps_fix.values(), key=lambda fs: fs[0])  # the receiver in use
        text = FIX_NAMES.get(fix, str(fix))
        return text if sats is None else f"{text}, {sats} sats"

    def battery_now(self) -> tuple[float | None, float | None]:
        # BATTERY_STATUS (battery 0) first, SYS_STATUS for what it lacks; -1 % keeps the voltage.
        bs = self.battery.get("BATTERY_STATUS", (None, None))
        ss = self.battery.get("SYS_STATUS", (None, None))
        return (bs[0] if bs[0] is not None else ss[0], bs[1] if bs[1] is not None else ss[1])


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

    def __init__(self, client: redis.Redis, cfg: DroneConfig, area: ServiceArea | None = None, *,
                 clock: Clock | None = None, publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        host, _, port = cfg.listen.rpartition(":")
        self.listen = (host or "127.0.0.1", int(port))
        self.sock: socket.socket | None = None
        self.vehicles: dict[int, _Vehicle] = {}
        self.components: dict[tuple[int, int], _Component] = {}
        # Things an operator or integrator must know that are not rejects: ground-station heartbeats,
        # messages from a vehicle's peripherals, positions held back for want of a GPS fix.
        self.notes: Counter[str] = Counter()
        self._health_note = ""  # the text we last put in stats.error (we clear only our own)
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
            self.accepted(accepted, int(self.clock.time() * 1000))
        return accepted

    def _heartbeat(self, m: object, sysid: int, compid: int) -> bool:
        mav_type, autopilot = m.type, m.autopilot  # type: ignore[attr-defined]
        now = self.clock.monotonic()
        if mav_type == mavlink2.MAV_TYPE_GCS:
            self.notes["gcs_heartbeat"] += 1  # a ground station on the link: expected, not a drone
            return False
        if not 1 <= sysid <= 254:
            self.reject("invalid:sysid", f"{sysid} (heartbeat type {mav_type})")
            return False
        self.components[(sysid, compid)] = _Component(mav_type, autopilot, now)
        if not is_autopilot(mav_type, autopilot):
            self.notes["component_heartbeat"] += 1  # camera, gimbal, companion computer...
            return False
        v = self.vehicles.get(sysid)
        if v is None:
            v = self.vehicles[sysid] = _Vehicle(sysid)
        if v.autopilot_comp is None or (
                v.autopilot_comp != compid and compid == mavlink2.MAV_COMP_ID_AUTOPILOT1):
            # Two autopilot-looking components in one system: MAVLink's AUTOPILOT1 id wins.
            v.autopilot_comp = compid
        elif v.autopilot_comp != compid:
            self.notes["second_autopilot_heartbeat"] += 1
            return False
        v.last_seen = now
        v.mav_type = mav_type
        v.mode = _mode_name(mav_type, autopilot, m.custom_mode, m.base_mode)  # type: ignore[attr-defined]
        v.armed = bool(m.base_mode & mavlink2.MAV_MODE_FLAG_SAFETY_ARMED)  # type: ignore[attr-defined]
        if v.lat is not None and not v.has_fix:
            self._publish(v)  # keeps a no-fix vehicle's mode current even if positions stopped
        return True

    def _vehicle_of(self, sysid: int, compid: int) -> _Vehicle | None:
        """The vehicle whose autopilot sent this, or None for a peripheral's or an unknown sender's
        message. Before any autopilot heartbeat, component 1 (MAV_COMP_ID_AUTOPILOT1) is trusted."""
        v = self.vehicles.get(sysid)
        if v is not None and v.autopilot_comp is not None:
            return v if compid == v.autopilot_comp else None
        if compid != mavlink2.MAV_COMP_ID_AUTOPILOT1:
            return None
        if v is None:
            v = self.vehicles[sysid] = _Vehicle(sysid)
        return v

    def _apply(self, m: object, kind: str) -> bool:
        sysid = m.get_srcSystem()  # type: ignore[attr-defined]
        compid = m.get_srcComponent()  # type: ignore[attr-defined]
        if kind == "HEARTBEAT":
            return self._heartbeat(m, sysid, compid)
        if not 1 <= sysid <= 254:
            if sysid == 255:
                self.notes["gcs_message"] += 1  # a ground station's own telemetry (its position, ...)
                return False
            self.reject("invalid:sysid", str(sysid))
            return False
        v = self._vehicle_of(sysid, compid)
        if v is None:
            self.notes["non_autopilot_message"] += 1
            return False
        v.last_seen = self.clock.monotonic()
        if kind in ("GPS_RAW_INT", "GPS2_RAW"):
            fix = m.fix_type  # type: ignore[attr-defined]
            if not 0 <= fix <= 8:
                self.reject("out_of_range:gps_fix", f"sysid {sysid}: {fix}")
                return False
            had = v.has_fix
            sats = m.satellites_visible  # type: ignore[attr-defined]
            v.gps_fix[kind] = (fix, None if sats == 255 else sats)  # 255 = unknown
            self._fix_changed(v, had)
            return True
        if kind == "ATTITUDE":
            yaw = m.yaw  # type: ignore[attr-defined]
            if not math.isfinite(yaw) or abs(yaw) > 2 * math.pi + 0.01:
                self.reject("out_of_range:yaw", str(yaw))
                return False
            v.yaw_deg = math.degrees(yaw) % 360
            return True
        if kind in ("BATTERY_STATUS", "SYS_STATUS"):
            if kind == "BATTERY_STATUS" and m.id != 0:  # type: ignore[attr-defined]
                return True  # a second pack: battery 0 is the one shown
            pct = m.battery_remaining  # type: ignore[attr-defined]
            if pct != -1 and not 0 <= pct <= 100:
                self.reject("out_of_range:battery", str(pct))
                return False
            if kind == "BATTERY_STATUS":
                volts = pack_voltage(list(m.voltages), list(getattr(m, "voltages_ext", None) or []))  # type: ignore[attr-defined]
            else:
                mv = m.voltage_battery  # type: ignore[attr-defined]
                volts = None if mv in (0, UINT16_MAX) else round(mv / 1000, 2)
            # -1 = remaining unknown (ArduPilot without a capacity set): the voltage is still true.
            v.battery[kind] = (None if pct == -1 else float(pct), volts)
            return True
        if kind == "MOUNT_ORIENTATION":
            pitch = m.pitch  # type: ignore[attr-defined]
            if not (math.isfinite(pitch) and -180 <= pitch <= 180):
                self.reject("out_of_range:gimbal_pitch", str(pitch))
                return False
            v.gimbal_pitch = max(-90.0, min(30.0, pitch))
            return True
        # GLOBAL_POSITION_INT
        had = v.has_fix
        v.zero_position = m.lat == 0 and m.lon == 0  # type: ignore[attr-defined]
        self._fix_changed(v, had)
        if not v.has_fix:
            # Not a reject (nothing is wrong with the frame) and never (0, 0): the vehicle stays at
            # its last good position marked "no GPS fix", or off the map if it never had one.
            self.notes["no_gps_fix"] += 1
            if v.lat is not None:
                self._publish(v)
            return False
        lat, lon = m.lat / 1e7, m.lon / 1e7  # type: ignore[attr-defined]
        if not self.in_area(lat, lon, f"sysid {sysid}"):
            return False
        rel = m.relative_alt / 1000  # type: ignore[attr-defined]
        if not -500 <= rel <= 10_000:
            self.reject("out_of_range:altitude", f"sysid {sysid}: {rel} m")
            return False
        v.lat, v.lon, v.rel_alt_m, v.alt_msl_m = lat, lon, rel, m.alt / 1000  # type: ignore[attr-defined]
        v.fix_at_ms = int(self.clock.time() * 1000)
        v.speed_ms = math.hypot(m.vx, m.vy) / 100  # type: ignore[attr-defined]
        hdg = m.hdg  # type: ignore[attr-defined]
        v.heading = hdg / 100 if hdg != 65535 and 0 <= hdg <= 35999 else v.yaw_deg
        self._publish(v)
        return True

    def _fix_changed(self, v: _Vehicle, had: bool) -> None:
        now = v.has_fix
        if had and not now:
            v.no_fix_since = self.clock.monotonic()
            if v.lat is not None:
                self._publish(v, force=True)  # the marker says "no GPS fix" at once, not at the next fix
        elif now:
            v.no_fix_since = None
        elif v.no_fix_since is None:
            v.no_fix_since = self.clock.monotonic()

    def no_fix_text(self) -> str:
        """What feed health says while any vehicle has no GPS fix ("" when all have one)."""
        now = self.clock.monotonic()
        parts = []
        for sysid, v in sorted(self.vehicles.items()):
            if v.has_fix or v.no_fix_since is None:
                continue
            since = f"{now - v.no_fix_since:.0f} s"
            where = "at its last good position" if v.lat is not None else "never had one, not on the map"
            parts.append(f"drone-{sysid} {since} ({where})")
        return f"{NO_FIX_TEXT}: " + "; ".join(parts) if parts else ""

    def tick(self) -> None:
        """A drone that stopped talking leaves the map (with its footprint) after gone_s; feed health
        carries the vehicles without a GPS fix."""
        now = self.clock.monotonic()
        with self._lock:
            for sysid, v in list(self.vehicles.items()):
                if now - v.last_seen > self.cfg.gone_s:
                    if v.lat is not None and v.lon is not None:
                        self.publisher.update("drone", f"drone-{sysid}", v.lat, v.lon, {}, gone=True)
                    del self.vehicles[sysid]
                elif v.held:
                    self._publish(v)
            for key, c in list(self.components.items()):
                if now - c.last_seen > self.cfg.gone_s:
                    del self.components[key]
            text = self.no_fix_text()
            # stats.error also carries transport errors (set by the life cycle): replace only our own.
            if self.stats.error in ("", self._health_note):
                self.stats.error = text
            self._health_note = text

    def _publish(self, v: _Vehicle, force: bool = False) -> None:
        now = self.clock.monotonic()
        if v.lat is None or v.lon is None:
            return
        if not force and now - v.last_pub < 1.0 / self.cfg.publish_hz:
            v.held = True  # else the last fix before a pause would never reach the map
            return
        v.last_pub, v.held = now, False
        cam = self.cfg.camera
        heading = v.heading if v.heading is not None else 0.0
        pitch = v.gimbal_pitch if v.gimbal_pitch is not None else cam.gimbal_pitch_deg
        fp = footprint(v.lat, v.lon, v.rel_alt_m or 0.0, heading, cam.hfov_deg, cam.vfov_deg, pitch,
                       cam.max_range_m)
        pct, volts = v.battery_now()
        fix = v.has_fix
        props = {"name": self.cfg.names.get(v.sysid, f"Drone {v.sysid}"), "sysid": v.sysid,
                 "heading": None if v.heading is None else round(v.heading),
                 "alt_m": round(v.rel_alt_m or 0.0, 1), "alt_msl_m": round(v.alt_msl_m or 0.0, 1),
                 "speed_ms": round(v.speed_ms or 0.0, 1) if fix else None, "battery_pct": pct,
                 "voltage_v": volts, "mode": v.mode, "armed": v.armed,
                 "gimbal_pitch": round(pitch, 1), "gps": v.gps_text(), "gps_fix": fix,
                 "last_fix": v.fix_at_ms,
                 # A footprint drawn from a stale position would point at ground the camera is not seeing.
                 "footprint": fp if fix else None}
        self.publisher.update("drone", f"drone-{v.sysid}", v.lat, v.lon, props)  # type: ignore[arg-type]
