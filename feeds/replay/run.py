"""One replay: read the capture files, drive the source's live adapter with them, report.

The loop is the live one (feeds.adapter.Adapter.run): per record, ingest() then tick() then flush();
the publisher writes lines instead of Redis. At the end the adapter gets one more tick a moment
later (a rate-limited change still held goes out, as the next live iteration would send it), and
health is assessed (spine.health.assess) at the replay clock's "now".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec

from feeds.adapter import Adapter, ServiceArea
from feeds.config import FeedsConfig
from feeds.replay.bodies import Paging, read_airkorea, read_gtfs
from feeds.replay.capture import CapturePublisher, Emit, entity_line
from feeds.replay.clock import Mode, ReplayClock, plausible
from feeds.replay.mavlink_log import read_mavlink
from feeds.replay.mqtt_log import read_mqtt_log
from feeds.replay.records import Record, Tally
from spine.health import assess

SOURCES = ("gtfs_rt", "airkorea", "mavlink", "mqtt_sensors", "frigate")
MAX_FILE_BYTES = 256 * 1024 * 1024  # a capture is read whole; a bigger one is split by the integrator


class UsageError(Exception):
    """A problem with the command line or its files: one line on stderr, exit status 2."""


@dataclass
class Outside:
    """Where the positions refused as outside the service area lie (to suggest an --area)."""

    n: int = 0
    south: float = math.inf
    west: float = math.inf
    north: float = -math.inf
    east: float = -math.inf

    def add(self, lat: float, lon: float) -> None:
        self.n += 1
        self.south, self.north = min(self.south, lat), max(self.north, lat)
        self.west, self.east = min(self.west, lon), max(self.east, lon)

    def box(self) -> str:
        pad = 0.01
        return (f"{self.south - pad:.2f},{self.west - pad:.2f},"
                f"{self.north + pad:.2f},{self.east + pad:.2f}")


@dataclass
class Replay:
    source: str
    clock: ReplayClock
    adapter: Adapter
    publisher: CapturePublisher
    tally: Tally = field(default_factory=Tally)
    outside: Outside = field(default_factory=Outside)
    paging: Paging | None = None
    crashes: Counter[str] = field(default_factory=Counter)
    captured_until: float | None = None  # the newest capture time of any record


def _make_adapter(source: str, cfg: FeedsConfig, area: ServiceArea | None, clock: ReplayClock,
                  pub: CapturePublisher) -> Adapter:
    if source == "gtfs_rt":
        from feeds.transit.adapter import TransitAdapter

        return TransitAdapter(None, cfg.transit, area, clock=clock, publisher=pub)  # type: ignore[arg-type]
    if source == "airkorea":
        from feeds.air.adapter import AirAdapter

        return AirAdapter(None, cfg.air, area, clock=clock, publisher=pub)  # type: ignore[arg-type]
    if source == "mavlink":
        from feeds.drone.adapter import DroneAdapter

        return DroneAdapter(None, cfg.drone, area, clock=clock, publisher=pub)  # type: ignore[arg-type]
    if source == "mqtt_sensors":
        from feeds.sensors.adapter import SensorAdapter

        return SensorAdapter(None, cfg.sensors, area, clock=clock, publisher=pub)  # type: ignore[arg-type]
    from feeds.replay.frigate import make_frigate

    return make_frigate(cfg, area, clock, pub)


def read_files(source: str, files: list[Path]) -> list[tuple[str, bytes]]:
    out = []
    for f in files:
        try:
            size = f.stat().st_size
            if size > MAX_FILE_BYTES:
                raise UsageError(f"{f}: {size} bytes, over the {MAX_FILE_BYTES // 2**20} MiB a replay reads")
            with f.open("rb") as fh:  # bounded read: a pipe or device has no size to check beforehand
                data = fh.read(MAX_FILE_BYTES + 1)
            if len(data) > MAX_FILE_BYTES:
                raise UsageError(f"{f}: over the {MAX_FILE_BYTES // 2**20} MiB a replay reads")
            out.append((str(f), data))
        except OSError as exc:
            raise UsageError(f"cannot read {f}: {exc.strerror or exc}") from exc
    return out


def _records(rp: Replay, name: str, data: bytes) -> Iterator[Record]:
    if rp.source == "gtfs_rt":
        return read_gtfs(data, rp.tally, name)
    if rp.source == "airkorea":
        return read_airkorea(data, rp.tally, name, rp.paging)
    if rp.source == "mavlink":
        return read_mavlink(data, rp.tally, name)
    return read_mqtt_log(data, rp.tally, name)


def _reading_times(records: list[Record]) -> None:
    """A log line without a delivery time (plain `mosquitto_sub -v`): the feed clock takes the time
    the observation itself carries (peeked; the adapter parses it again and counts what is wrong)."""
    from feeds.sensors.observation import parse

    for r in records:
        if r.t_s is None:
            try:
                reading = parse(r.context.get("topic", ""), r.data, lambda reason, detail: None)
            except (ValueError, RecursionError):  # only a peek: the adapter meets the payload again
                reading = None
            r.t_s = None if reading is None else reading.t_ms / 1000


def _watch_area(rp: Replay) -> None:
    """Remember where refused positions lie; the check itself stays the adapter's."""
    check = rp.adapter.in_area

    def in_area(lat: float, lon: float, what: str) -> bool:
        ok = check(lat, lon, what)
        if not ok and rp.adapter.area is not None and math.isfinite(lat) and math.isfinite(lon) \
                and -90 <= lat <= 90 and -180 <= lon <= 180 and not rp.adapter.area.contains(lat, lon):
            rp.outside.add(lat, lon)
        return ok

    rp.adapter.in_area = in_area  # type: ignore[method-assign]


def replay(source: str, files: list[tuple[str, bytes]], cfg: FeedsConfig, area: ServiceArea | None,
           mode: Mode, emit: Emit) -> dict[str, Any]:
    """Run the replay; emit() gets every output line, the summary (returned) last."""
    tally = Tally()
    clock = ReplayClock(mode)
    paging = Paging() if source == "airkorea" else None
    # The records first (captures are read whole anyway): the adapter starts at the capture's time.
    shell = SimpleNamespace(source=source, tally=tally, paging=paging)
    records = [r for name, data in files for r in _records(shell, name, data)]  # type: ignore[arg-type]
    if source == "mqtt_sensors":
        _reading_times(records)
    elif source == "frigate":
        from feeds.replay.frigate import frigate_times

        frigate_times(records, cfg)
    clock.advance(next((r.t_s for r in records if r.t_s is not None), None))
    pub = CapturePublisher(emit, src=f"replay-{source}")
    adapter = _make_adapter(source, cfg, area, clock, pub)
    adapter.stats.connected = True  # the capture was a live connection; a dead one is not replayable
    rp = Replay(source, clock, adapter, pub, tally, paging=paging,
                captured_until=max((r.t_s for r in records if plausible(r.t_s)), default=None))
    _watch_area(rp)
    subscribed = _subscribed(source, cfg, adapter)
    for rec in records:
        clock.advance(rec.t_s)
        if subscribed is not None and not subscribed(rec.context.get("topic", "")):
            tally.problem("capture:topic_not_subscribed")  # live never receives it
            continue
        try:
            adapter.ingest(rec.data, **rec.context)
        except Exception as exc:  # an adapter bug, not the capture's fault: counted, replay goes on
            rp.crashes[f"{type(exc).__name__}: {exc}"[:200]] += 1
        _step(adapter)
    hz = getattr(getattr(adapter, "cfg", None), "publish_hz", None)
    clock.skip(1.0 / hz if hz else 0.0)
    _step(adapter)
    _unplaced(rp, emit)
    return summary(rp)


def _subscribed(source: str, cfg: FeedsConfig, adapter: Adapter) -> Callable[[str], bool] | None:
    """What the live feed subscribes to, for an MQTT source (a capture of `#` holds more)."""
    if source == "mqtt_sensors":
        prefix = cfg.sensors.topic_prefix + "v1.1/"  # live: <prefix>v1.1/#
        return lambda topic: topic.startswith(prefix)
    if source == "frigate":  # live: <prefix>/events, /reviews, /available, /stats of each server
        topics = {t for srv in adapter.servers.values() for t in adapter._topics(srv)}  # type: ignore[attr-defined]
        return topics.__contains__
    return None


_SUBSCRIPTIONS = {"mqtt_sensors": "feeds.sensors.topic_prefix + v1.1/#",
                  "frigate": "<prefix>/events, /reviews, /available, /stats of each feeds.frigate server"}


def _step(adapter: Adapter) -> None:
    adapter.tick()
    adapter.flush()


def _unplaced(rp: Replay, emit: Emit) -> None:
    """Vehicles the control room lists without a map position (a drone that never had a GPS fix):
    the adapter keeps them off the map; the replay shows them once, with lat/lon null."""
    for sysid, v in sorted(getattr(rp.adapter, "vehicles", {}).items()):
        if getattr(v, "lat", 0) is None:
            pct, volts = v.battery_now()
            emit(entity_line("drone", f"drone-{sysid}", None, None, {
                "name": rp.adapter.cfg.names.get(sysid, f"Drone {sysid}"), "sysid": sysid,  # type: ignore[attr-defined]
                "mode": v.mode, "armed": v.armed, "gps": v.gps_text(), "gps_fix": v.has_fix,
                "battery_pct": pct, "voltage_v": volts, "on_map": False}))
            rp.publisher.lines += 1  # `updates` counts every entity line


def health(adapter: Adapter, clock: ReplayClock) -> dict[str, Any]:
    """spine.health.assess at the replay clock's "now", for arrivals and for the data's own age."""
    st = adapter.stats
    now = clock.monotonic()
    wall_ms = int(clock.time() * 1000)
    rate = st.messages / max(now - st.started_at, 1.0)
    h = assess(adapter, rate, now, wall_ms)
    if h.state == "starting":
        # A capture shorter than the contract with nothing accepted: judged as the health panel
        # would judge it once the contract period had passed (stale, or error with the main reason).
        h = assess(adapter, rate, st.started_at + adapter.contract_s + 1, wall_ms)
    return msgspec.to_builtins(h)


NOTE_TEXT: dict[str, Callable[[int], str]] = {
    "unknown_station": lambda n: f"{n} row(s) of stations not in the station registry (unknown_station): "
                                 "point feeds.air.stations_url at the deployment's getMsrstnList",
    "unknown_sensor": lambda n: f"{n} observation(s) of sensors not configured and not self-described "
                                "(unknown_sensor): add them to feeds.sensors.sensors or set accept_unknown",
    "bad_frame": lambda n: f"{n} MAVLink frame(s) could not be parsed (bad CRC, unknown message or "
                           "truncated): bad_frame",
    "malformed_mavlink": lambda n: f"{n} MAVLink chunk(s) confused the parser (malformed_mavlink)",
    "malformed_protobuf": lambda n: f"{n} file(s) are not a GTFS-realtime FeedMessage (malformed_protobuf)",
    "malformed_json": lambda n: f"{n} payload(s)/file(s) are not JSON (malformed_json)",
    "future_timestamp": lambda n: f"{n} record(s) dated ahead of the replay clock beyond the allowed skew "
                                  "(future_timestamp)",
    "missing:position": lambda n: f"{n} vehicle report(s) without a position: not on the map (a note, "
                                  "not a fault of the feed)",
    "unmapped_camera": lambda n: f"{n} Frigate message(s) of cameras no server maps (unmapped_camera): add "
                                 "them to feeds.frigate.servers.<name>.cameras (a cameras.yaml id or a site)",
    "unknown_map_camera": lambda n: f"{n} Frigate message(s) of cameras mapped to an id config/cameras.yaml "
                                    "lacks (unknown_map_camera)",
}


def _notes(rp: Replay, h: dict[str, Any]) -> list[str]:
    a = rp.adapter
    notes = list(rp.tally.notes)
    if rp.outside.n:
        notes.append(f"{rp.outside.n} position(s) outside the service area (outside_service_area), "
                     f"within {rp.outside.box()} [S,W,N,E]: if that is the deployment's city, replay with "
                     f"--area {rp.outside.box()} (and set feeds.service_area for live)")
    counts = dict(a.rejects.counts)
    for reason, text in NOTE_TEXT.items():
        if counts.get(reason):
            notes.append(text(counts[reason]))
    if rp.tally.problems.get("capture:topic_not_subscribed"):
        notes.append(f"{rp.tally.problems['capture:topic_not_subscribed']} message(s) on topics the live "
                     f"feed does not subscribe to ({_SUBSCRIPTIONS.get(rp.source, '')}): skipped")
    if rp.paging is not None:
        pg = rp.paging
        if pg.total is not None and pg.received < pg.total:
            notes.append(f"incomplete AirKorea response: {pg.received} of totalCount {pg.total} rows in "
                         f"{pg.pages} page(s): capture the other pages (pageNo=2...) and pass them all")
        if pg.totals and len(pg.totals) > 1:
            notes.append(f"the pages disagree on totalCount ({sorted(pg.totals)}): not one query?")
    notes.extend(getattr(a, "notes", []) if isinstance(getattr(a, "notes", None), list) else [])
    drone_notes = getattr(a, "notes", None)
    if isinstance(drone_notes, Counter):
        texts = {"gcs_heartbeat": "ground-station heartbeat(s) (type GCS): expected, not a vehicle",
                 "gcs_message": "message(s) from system 255 (a ground station): ignored",
                 "component_heartbeat": "heartbeat(s) of a vehicle's peripherals (camera, gimbal, "
                                        "companion computer): they do not speak for the vehicle",
                 "non_autopilot_message": "message(s) from non-autopilot components: ignored",
                 "second_autopilot_heartbeat": "heartbeat(s) of a second autopilot in one system: ignored",
                 "no_gps_fix": "position report(s) without a GPS fix: never drawn at (0, 0)"}
        for k, n in sorted(drone_notes.items()):
            notes.append(f"{n} {texts.get(k, k)}")
        text = a.no_fix_text()  # type: ignore[attr-defined]
        if text:
            notes.append(text)
    for what, n in rp.crashes.items():
        notes.append(f"the adapter raised {n} time(s) on this capture (a bug to report): {what}")
    old = rp.captured_until is not None and rp.clock.time() - rp.captured_until > 2 * a.contract_s
    if a.stats.messages == 0:
        notes.append(f"nothing in the capture reached the map: health would show {h['state']}"
                     + (f" ({h['error']})" if h.get("error") else ""))
        if rp.clock.mode == "now" and old:
            when = datetime.fromtimestamp(rp.captured_until or 0, UTC).strftime("%Y-%m-%d %H:%M UTC")
            notes.append(f"replayed on wall time (--clock now), the capture (up to {when}) is too old to "
                         "show; --clock feed replays it as it was seen then")
    elif rp.clock.mode == "now" \
            and (h.get("source_age_s") or 0) > 2 * a.contract_s:
        notes.append("replayed on wall time (--clock now): the capture's data is old, so health is "
                     "stale; --clock feed replays it as it was seen then")
    return notes


def summary(rp: Replay) -> dict[str, Any]:
    h = health(rp.adapter, rp.clock)
    rejected = {**dict(rp.adapter.rejects.counts), **dict(rp.tally.problems)}
    return {"summary": {
        "source": rp.source, "clock": rp.clock.mode, "records": rp.tally.records,
        "accepted": rp.adapter.stats.messages, "rejected": dict(sorted(rejected.items())),
        "updates": rp.publisher.lines, "events": rp.publisher.event_lines,
        "health": h, "notes": _notes(rp, h)}}
