"""The Frigate adapter: one or more Frigate NVR servers' MQTT -> camera events and camera status.

One paho client per server (each may have its own broker and credentials); paho's network threads
call _ingest(). A message's server is the client it came on, or, through ingest(raw, topic) (tests,
the replay tool), the first configured server whose `<prefix>/` starts the topic.

Frigate sends an `update` for every better snapshot; only what an operator would want to see again
is published: a new object or review, a zone entered, a label or sub label changed, a detection
raised to an alert, the end.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import redis

from feeds.adapter import Adapter, Clock, ServiceArea
from feeds.frigate.config import CameraSite, FrigateConfig, FrigateServerConfig
from feeds.frigate.payload import (
    FRIGATE_ID,
    KINDS,
    OTHER,
    EventMessage,
    ReviewMessage,
    parse,
    sub_label_name,
)
from feeds.frigate.snapshot import snapshot_id
from feeds.sensors.broker import broker_address, redact
from spine.contract import Rejected, validate_event
from spine.layers import N_
from spine.publisher import Publisher

__all__ = ["FrigateAdapter", "map_cameras"]

MAX_TRACKED = 4096  # open objects/reviews remembered per server (to tell meaningful updates)
TRACK_MAX_AGE_S = 6 * 3600  # an object whose `end` never came is forgotten after this
MAX_ZONES = 16
SEVERITY_OF_REVIEW = {"alert": "high", "detection": "medium"}
# Event texts as gettext message ids (translations/), by (zones given, ended); `cls` is a word the
# catalogue translates when it knows it (Frigate's labels, listed here for the extraction).
_EVENT_MSG = {(False, False): N_("{name}: {cls}"), (True, False): N_("{name}: {cls} in {zones}"),
              (False, True): N_("{name}: {cls} ended"), (True, True): N_("{name}: {cls} in {zones} ended")}
LABEL_WORDS = (N_("dog"), N_("cat"), N_("bird"), N_("face"), N_("license_plate"), N_("package"))


@dataclass
class _Seen:
    label: str
    sub_label: str | None
    zones: set[str]
    severity: str | None
    published: int = 0
    at: float = field(default_factory=time.monotonic)


@dataclass
class _Server:
    name: str
    cfg: FrigateServerConfig
    mqtt: mqtt.Client | None = None
    connected: bool = False
    online: bool | None = None  # None: Frigate has not said
    seen_review: bool = False
    tracked: OrderedDict[tuple[str, str], _Seen] = field(default_factory=OrderedDict)


def map_cameras(vision_cameras: object) -> dict[str, CameraSite]:
    """The map's cameras (config/cameras.yaml, vision.config Camera objects) by id."""
    out: dict[str, CameraSite] = {}
    for c in vision_cameras or []:  # type: ignore[attr-defined]
        out[c.id] = CameraSite(id=c.id, name=c.name, district=c.district, type=c.type, lat=c.lat,
                               lon=c.lon, heading=c.heading, fov=c.fov)
    return out


def _ts_ms(t: float | None, now_ms: int) -> int:
    """A Frigate time (epoch seconds) as ms, or now when missing or ahead of our clock."""
    if t is None:
        return now_ms
    ms = int(t * 1000)
    return ms if 0 < ms <= now_ms + 60_000 else now_ms


def _stats_time(stats: dict) -> int | None:
    """Frigate's own clock in a stats message (`service.last_updated`, epoch seconds), if readable."""
    service = stats.get("service")
    t = service.get("last_updated") if isinstance(service, dict) else None
    if isinstance(t, int | float) and not isinstance(t, bool) and 0 < t < 1e11:
        return int(t * 1000)
    return None


class FrigateAdapter(Adapter):
    source = "frigate"
    layer = "camera"

    def __init__(self, client: redis.Redis, cfg: FrigateConfig,
                 cameras: Mapping[str, CameraSite] | None = None, area: ServiceArea | None = None,
                 *, clock: Clock | None = None, publisher: Publisher | None = None) -> None:
        super().__init__(client, cfg.contract_s, area, clock=clock, publisher=publisher)
        self.cfg = cfg
        self.cameras = dict(cameras or {})
        self.servers = {name: _Server(name, s) for name, s in cfg.servers.items()}
        # Longest prefix first, so "frigate/site2" is not taken for "frigate".
        self._by_prefix = sorted(self.servers.values(), key=lambda s: -len(s.cfg.topic_prefix))
        for srv in self.servers.values():
            for camera, target in srv.cfg.cameras.items():
                if isinstance(target, str) and target not in self.cameras:
                    self.log.warning("frigate %s: camera %s is mapped to %s, which config/cameras.yaml "
                                     "does not have: its events will be rejected", srv.name, camera, target)

    @classmethod
    def from_config(cls, client: redis.Redis, cfg: FrigateConfig, area: ServiceArea | None = None
                    ) -> FrigateAdapter:
        """With the map's cameras from the configuration root (config/cameras.yaml)."""
        from vision.config import load_vision_config

        return cls(client, cfg, map_cameras(load_vision_config().cameras), area)

    # --- transport ------------------------------------------------------------------------------
    def connect(self) -> None:
        for srv in self.servers.values():
            if srv.mqtt is None:
                srv.mqtt = self._client(srv)

    def _client(self, srv: _Server) -> mqtt.Client:
        host, port = broker_address(srv.cfg.mqtt_url)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, userdata=srv,
                        client_id=f"cc-frigate-{srv.name}-{uuid.uuid4().hex[:8]}", clean_session=True)
        c.reconnect_delay_set(min_delay=0.5, max_delay=10)
        if srv.cfg.username:
            password = os.environ.get(srv.cfg.password_env) if srv.cfg.password_env else None
            if srv.cfg.password_env and password is None:
                self.log.warning("frigate %s: %s is not set; connecting without a password",
                                 srv.name, srv.cfg.password_env)
            c.username_pw_set(srv.cfg.username, password)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_subscribe = self._on_subscribe
        c.on_message = self._on_message
        c.connect_async(host, port, keepalive=30)
        c.loop_start()
        return c

    def close(self) -> None:
        for srv in self.servers.values():
            if srv.mqtt is not None:
                srv.mqtt.disconnect()
                srv.mqtt.loop_stop()
                srv.mqtt = None
                srv.connected = False

    def _topics(self, srv: _Server) -> list[str]:
        kinds = [k for k in KINDS if not (k == "events" and srv.cfg.publish == "reviews")
                 and not (k == "reviews" and srv.cfg.publish == "events")]
        return [f"{srv.cfg.topic_prefix}/{k}" for k in kinds]

    def _on_connect(self, client: mqtt.Client, srv: _Server, flags: object, reason: object,
                    properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            srv.connected = False
            self.log.warning("frigate %s: broker %s refused: %s", srv.name, redact(srv.cfg.mqtt_url), reason)
            return
        client.subscribe([(t, 1) for t in self._topics(srv)])

    def _on_subscribe(self, client: mqtt.Client, srv: _Server, mid: int, reasons: list,
                      properties: object = None) -> None:
        # Connected once the broker granted the subscriptions (an ACL may refuse them: then say so).
        refused = [str(r) for r in reasons if getattr(r, "is_failure", False)]
        srv.connected = not refused
        if refused:
            self.log.warning("frigate %s: broker refused subscriptions under %s/: %s", srv.name,
                             srv.cfg.topic_prefix, ", ".join(refused))
            return
        self.log.info("frigate %s: subscribed to %s/... at %s", srv.name, srv.cfg.topic_prefix,
                      redact(srv.cfg.mqtt_url))

    def _on_disconnect(self, client: mqtt.Client, srv: _Server, flags: object, reason: object,
                       properties: object = None) -> None:
        srv.connected = False

    def _on_message(self, client: mqtt.Client, srv: _Server, msg: mqtt.MQTTMessage) -> None:
        prefix = srv.cfg.topic_prefix + "/"
        kind = msg.topic[len(prefix):] if msg.topic.startswith(prefix) else ""
        try:
            self._ingest(srv, kind, msg.payload)
        except Exception as exc:  # one bad message never ends paho's thread
            self.reject("internal_error", f"{type(exc).__name__}: {exc}")

    def run_once(self) -> None:
        # Before the wait as well: Adapter.run() resets `connected` and `error` before each step,
        # and health must not read those resets for half a second.
        self._health()
        self._stop.wait(0.5)
        self._health()

    def _health(self) -> None:
        """What health shows: an error naming each server that is offline or not connected."""
        problems = []
        for srv in self.servers.values():
            if srv.online is False:
                problems.append(f"frigate {srv.name}: offline (Frigate's last will)")
            elif srv.mqtt is not None and not srv.connected:
                problems.append(f"frigate {srv.name}: not subscribed at {redact(srv.cfg.mqtt_url)}")
        self.stats.error = "; ".join(problems)[:300]
        # Connected while any server can still speak. A server's own "offline" is shown at once:
        # every server offline is down, some offline is an error naming them (peer_state).
        self.stats.connected = any(s.connected and s.online is not False for s in self.servers.values())
        offline = sum(s.online is False for s in self.servers.values())
        self.stats.peer_state = ("" if not offline else
                                 "down" if offline == len(self.servers) else "partial")

    def tick(self) -> None:
        cutoff = self.clock.monotonic() - TRACK_MAX_AGE_S
        with self._lock:
            for srv in self.servers.values():
                while srv.tracked and next(iter(srv.tracked.values())).at < cutoff:
                    srv.tracked.popitem(last=False)

    # --- parse, validate, publish ------------------------------------------------------------------
    def ingest(self, raw: bytes, topic: str = "", **context: str) -> int:
        """One MQTT message; the server is the one whose `<prefix>/` starts the topic."""
        for srv in self._by_prefix:
            prefix = srv.cfg.topic_prefix + "/"
            if topic.startswith(prefix):
                return self._ingest(srv, topic[len(prefix):], raw)
        self.reject("unknown_topic", topic[:100])
        return 0

    def _ingest(self, srv: _Server, kind: str, raw: bytes) -> int:
        msg = parse(kind, raw, self.reject)
        if msg is None:
            return 0
        with self._lock:
            if isinstance(msg, EventMessage):
                return self._event(srv, msg)
            if isinstance(msg, ReviewMessage):
                return self._review(srv, msg)
            if msg in ("online", "offline"):
                return self._available(srv, msg == "online")
            if msg == OTHER:  # an envelope type Frigate added later: alive, nothing to show
                self._alive()
                return 0
            self._alive(_stats_time(msg))  # stats: a sign of life, nothing to show
            return 0

    def _alive(self, source_ts_ms: int | None = None) -> None:
        """Fresh without ending a batch: a quiet server that keeps talking is not stale (health also
        judges the data's own age, and a camera that saw nothing for an hour is not old data), and a
        sign of life does not hide the rejects of the last batch."""
        st = self.stats
        st.last_message_at = self.clock.monotonic()
        now = int(self.clock.time() * 1000)
        ts = min(source_ts_ms or now, now)
        if st.last_source_ts_ms is None or ts > st.last_source_ts_ms:
            st.last_source_ts_ms = ts

    def _site(self, srv: _Server, camera: str) -> CameraSite | None:
        target = srv.cfg.cameras.get(camera)
        if target is None:
            self.reject("unmapped_camera", f"{srv.name}/{camera}")
            return None
        if isinstance(target, CameraSite):
            return target
        site = self.cameras.get(target)
        if site is None:
            self.reject("unknown_map_camera", f"{srv.name}/{camera} -> {target}: not in config/cameras.yaml")
        return site

    def _available(self, srv: _Server, online: bool) -> int:
        srv.online = online
        status = "online" if online else "offline"
        now = int(self.clock.time() * 1000)
        sites = {}
        for camera in srv.cfg.cameras:
            site = self._site(srv, camera)
            if site is not None:
                sites[site.id] = site
        for site in sites.values():
            self.publisher.update("camera", site.id, site.lat, site.lon, {
                "name": site.name or site.id, "district": site.district or None, "type": site.type,
                "heading": site.heading, "fov": site.fov, "status": status}, ts=now)
        if online:
            self._alive()
        self._health()
        return len(sites)

    def _review(self, srv: _Server, msg: ReviewMessage) -> int:
        srv.seen_review = True
        r = msg.after
        labels = list(dict.fromkeys(o.removesuffix("-verified") for o in r.data.objects + r.data.audio))
        subs = [n for n in (sub_label_name(s) for s in r.data.sub_labels) if n]
        detection = next((d for d in r.data.detections if FRIGATE_ID.fullmatch(d)), None)
        return self._publish(srv, "review", msg.type, r.id, r.camera, ", ".join(labels)[:200] or "activity",
                             ", ".join(dict.fromkeys(subs))[:200] or None, r.data.zones, None, r.severity,
                             r.start_time, r.end_time, detection)

    def _event(self, srv: _Server, msg: EventMessage) -> int:
        if srv.cfg.publish == "reviews" or (srv.cfg.publish == "auto" and srv.seen_review):
            self._alive()  # reviews carry this activity (0.14+): the object itself is not shown twice
            return 0
        o = msg.after
        if o.false_positive:
            self._alive()
            return 0
        score = o.top_score if o.top_score is not None else o.score
        return self._publish(srv, "event", msg.type, o.id, o.camera, o.label or "object",
                             sub_label_name(o.sub_label), [*o.entered_zones, *o.current_zones], score, None,
                             o.start_time, o.end_time, o.id if o.has_snapshot else None, o.frame_time)

    def _publish(self, srv: _Server, what: str, phase: str, fid: str, camera: str, label: str,
                 sub_label: str | None, zones_in: list[str], score: float | None, review: str | None,
                 start: float | None, end: float | None, snap_event: str | None,
                 frame: float | None = None) -> int:
        site = self._site(srv, camera)
        if site is None:
            return 0
        zones = list(dict.fromkeys(z for z in zones_in if z))[:MAX_ZONES]
        key = (what, fid)
        seen = srv.tracked.get(key)
        if seen is not None and phase == "update" and not (
                set(zones) - seen.zones or label != seen.label
                or (sub_label and sub_label != seen.sub_label)
                or (review == "alert" and seen.severity != "alert")):
            seen.at = self.clock.monotonic()
            srv.tracked.move_to_end(key)
            self._alive()
            return 0
        now = int(self.clock.time() * 1000)
        # Frigate's own times (a recorded log replays with them); an update without a frame time: now.
        ts = _ts_ms(start if phase == "new" else end if phase == "end" else frame, now)
        if review:
            severity = "info" if phase == "end" else SEVERITY_OF_REVIEW[review]
        else:
            severity = "info" if phase == "end" else srv.cfg.label_severity.get(label, srv.cfg.event_severity)
        n = seen.published if seen else 0
        name = site.name or site.id
        title = f"{name}: {label}" + (f" ({sub_label})" if sub_label else "") + (
            f" in {', '.join(zones)}" if zones else "") + (" ended" if phase == "end" else "")
        props = {"camera": name, "label": label, "sub_label": sub_label, "zones": zones or None,
                 "score": round(score, 3) if score is not None else None, "phase": phase,
                 "review_severity": review, "frigate_server": srv.name, "frigate_id": fid}
        params = {"name": name[:200], "cls": (f"{label} ({sub_label})" if sub_label else label)[:200],
                  **({"zones": ", ".join(zones)[:200]} if zones else {})}
        try:
            ev = validate_event({
                "msg": _EVENT_MSG[(bool(zones), phase == "end")], "params": params,
                "v": 1, "id": f"frigate-{srv.name}-{what[0]}{fid}-{n}",
                "type": f"frigate_{review}" if review else "frigate_object", "severity": severity,
                "ts": ts, "layer": "camera", "entity": site.id, "lat": site.lat, "lon": site.lon,
                "title": title[:200], "props": {k: v for k, v in props.items() if v is not None},
                "snapshot": snapshot_id(srv.name, snap_event) if snap_event and srv.cfg.http_url else None})
        except Rejected as exc:
            self.reject(exc.reason, exc.detail)
            return 0
        self.publisher.event(ev)
        if phase == "end":
            srv.tracked.pop(key, None)
        else:
            srv.tracked[key] = _Seen(label, sub_label, set(zones) | (seen.zones if seen else set()),
                                     review if not seen or seen.severity != "alert" else "alert", n + 1)
            srv.tracked.move_to_end(key)
            while len(srv.tracked) > MAX_TRACKED:
                srv.tracked.popitem(last=False)
        self.accepted(1, ts)
        return 1
