"""One camera's analytics: motion gate -> detector -> tracker -> rules -> masked outputs.

The detector is shared by all cameras of a worker (one inference thread per process); gate,
tracker and rules are per camera. Everything that leaves (Redis frames, snapshots) goes through
`outgoing()`, the single place where privacy masking happens.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import redis

from spine.channels import state_key
from spine.contract import EntityUpdate, Event
from spine.publisher import Publisher
from vision.annotate import draw, encode_jpeg
from vision.config import VEHICLE_CLASSES, Camera, VisionSettings
from vision.detections import Detections
from vision.detectors import Detector
from vision.frames import FrameSink
from vision.liveout import LiveOutputs
from vision.motion import MotionGate
from vision.privacy import apply_privacy
from vision.rules import RuleEngine, RuleHit
from vision.snapshots import SnapshotStore
from vision.tracking import Tracker

KST = ZoneInfo("Asia/Seoul")

log = logging.getLogger(__name__)
_drone_state = msgspec.json.Decoder(EntityUpdate)


def _params(params: dict) -> dict:
    """A rule's message params fitted to the contract (Event.params): names from our code, values
    from config (zone and line names) cut to the bound, so a long name shortens, never rejects."""
    out: dict = {}
    for k, v in list(params.items())[:16]:
        if isinstance(v, bool | int | float):
            out[k] = v
        elif v is not None:
            out[k] = str(v)[:200]
    return out


@dataclass
class Timings:
    """Moving averages in ms, for the status line and the benchmark."""

    gate: float = 0.0
    infer: float = 0.0
    track: float = 0.0
    rules: float = 0.0
    output: float = 0.0

    def add(self, name: str, ms: float) -> None:
        old = getattr(self, name)
        setattr(self, name, ms if old == 0.0 else 0.9 * old + 0.1 * ms)


@dataclass
class StepResult:
    inferred: bool
    tracks: Detections
    hits: list[RuleHit]
    events: list[Event] = field(default_factory=list)
    jpeg: bytes | None = None


class CameraPipeline:
    def __init__(self, camera: Camera, settings: VisionSettings, detector: Detector,
                 publisher: Publisher | None = None, sink: FrameSink | None = None,
                 snapshots: SnapshotStore | None = None) -> None:
        self.camera = camera
        self.settings = settings
        self.detector = detector
        self.publisher = publisher
        self.sink = sink
        self.snapshots = snapshots
        self.gate = MotionGate(settings.motion_threshold, settings.keepalive_s)
        self.tracker = Tracker(fps=camera.fps)
        self.rules = RuleEngine(camera)
        self.timings = Timings()
        self.tracks: Detections = Detections.empty(detector.names)
        # Raw person boxes of the last detector run: a person seen for the first time is not yet a
        # confirmed track, but must be masked from the very first frame.
        self._raw_persons: Detections = Detections.empty(detector.names)
        self._tracks_ts = -1e18  # when `tracks` were last refreshed by the detector
        self.processed = 0
        self.inferred = 0
        self.errors = 0
        self.events = 0
        self.last_activity_ms: int | None = None
        self._done_at: deque[float] = deque(maxlen=64)
        self._status_at = 0.0
        self.source_status = "starting"
        self._mount_pos: tuple[float, float, float] | None = None
        self._mount_read_at = -1e18
        # Live view (vision/liveout.py, set by the worker): overlay metadata, the masked stream; and
        # the stream source's health for the camera layer.
        self.live: LiveOutputs | None = None
        self.stream_health: Callable[[], dict] | None = None

    # ---- the step ------------------------------------------------------------------------------
    def process(self, image: np.ndarray, ts: float) -> StepResult:
        """Run one frame taken at source time `ts` (epoch seconds). Never raises for bad frames."""
        try:
            return self._process(image, ts)
        except Exception:  # one broken frame must not stop the camera
            self.errors += 1
            if self.errors <= 5 or self.errors % 100 == 0:
                log.exception("camera %s: frame failed [%d errors]", self.camera.id, self.errors)
            return StepResult(False, self.tracks, [])

    def _process(self, image: np.ndarray, ts: float) -> StepResult:
        t0 = time.perf_counter()
        # With privacy on, every outgoing frame needs fresh person boxes: a person whose motion
        # stays under the gate's threshold would otherwise leave the worker unmasked.
        run = self.gate.check(image, ts) or self.camera.privacy.enabled
        t1 = time.perf_counter()
        self.timings.add("gate", (t1 - t0) * 1000)
        hits: list[RuleHit] = []
        if run:
            dets = self.detector.detect(image)
            t2 = time.perf_counter()
            self.tracks = self.tracker.update(dets)
            self._raw_persons = dets.of_class("person")
            t3 = time.perf_counter()
            self._tracks_ts = ts
            hits = self.rules.update(self.tracks, ts, (image.shape[1], image.shape[0]))
            self.timings.add("infer", (t2 - t1) * 1000)
            self.timings.add("track", (t3 - t2) * 1000)
            self.timings.add("rules", (time.perf_counter() - t3) * 1000)
            self.inferred += 1
            if len(self.tracks):
                self.last_activity_ms = int(ts * 1000)
        self.processed += 1
        self._done_at.append(time.monotonic())
        t4 = time.perf_counter()
        out_img = self.outgoing(image, ts)
        if self.live is not None:
            masked = self.masked(image, ts) if self.camera.privacy.enabled else None
            self.live.after(self.tracks, image, masked, ts)
        jpeg = encode_jpeg(out_img, self.settings.frame_max_width, self.settings.jpeg_quality)
        if self.sink is not None:
            self.sink.put(self.camera.id, jpeg)
        events = [self._event(h, ts, out_img, jpeg) for h in hits]
        self.timings.add("output", (time.perf_counter() - t4) * 1000)
        self._maybe_status(ts)
        return StepResult(run, self.tracks, hits, events, jpeg)

    # ---- what leaves the worker ----------------------------------------------------------------
    def outgoing(self, image: np.ndarray, ts: float) -> np.ndarray:
        """The annotated frame as it may be shown: privacy-masked first when the camera asks for it."""
        out = self.masked(image, ts)
        return self._annotated(out, ts)

    def masked(self, image: np.ndarray, ts: float) -> np.ndarray:
        """A copy of the frame with what privacy hides hidden (persons, fixed polygons); no drawing."""
        priv = self.camera.privacy
        if priv.enabled or priv.polygons:
            persons = None
            if priv.enabled:
                tracked = self.tracks.of_class("person")
                persons = Detections(np.concatenate([tracked.xyxy, self._raw_persons.xyxy]),
                                     np.concatenate([tracked.conf, self._raw_persons.conf]),
                                     np.concatenate([tracked.cls, self._raw_persons.cls]), tracked.names)
            # Person boxes older than a couple of detector runs may no longer cover the people.
            stale = priv.enabled and ts - self._tracks_ts > 2.5 * self.settings.keepalive_s
            out = apply_privacy(image, persons, priv.polygons, fail_closed=stale)
        else:
            out = image.copy()
        return out

    def _annotated(self, out: np.ndarray, ts: float) -> np.ndarray:
        # Korea time whatever the worker host's zone (a container is often UTC): the burnt-in clock
        # must agree with the control room's clocks (docs/browser.md, Times).
        clock = datetime.fromtimestamp(ts, KST).strftime("%H:%M:%S")
        label = f"{self.camera.name}  {clock} KST"
        return draw(out, self.tracks, self.camera, self.rules.counts_plain(), label=label.encode(
            "ascii", "replace").decode())

    def _event(self, hit: RuleHit, ts: float, out_img: np.ndarray, jpeg: bytes) -> Event:
        event_id = f"{self.camera.id}-{int(ts * 1000)}-{uuid.uuid4().hex[:8]}"
        snapshot = None
        if self.snapshots is not None:
            img = out_img
            if hit.box is not None:  # highlight what fired on a copy of the (already masked) frame
                import cv2

                img = out_img.copy()
                x1, y1, x2, y2 = (int(v) for v in hit.box)
                cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 255), 3)
                jpeg = encode_jpeg(img, self.settings.frame_max_width, self.settings.jpeg_quality)
            snapshot = self.snapshots.save(event_id, jpeg)
        lat, lon, _ = self.position()
        ev = Event(v=1, id=event_id, type=hit.type, severity=hit.severity, ts=int(ts * 1000), layer="camera",
                   entity=self.camera.id, lat=lat, lon=lon, title=hit.title[:200],
                   msg=hit.msg, params=_params(hit.params),
                   props={**hit.props, "camera": self.camera.name,
                          "bbox": [round(v, 1) for v in hit.box] if hit.box else None},
                   snapshot=snapshot)
        self.events += 1
        if self.publisher is not None:
            self.publisher.event(ev)
        return ev

    # ---- where the camera is ----------------------------------------------------------------------
    def position(self) -> tuple[float, float, float]:
        """lat, lon, heading: fixed, or the carrying drone's latest state (read at most once a second)."""
        cam = self.camera
        if not cam.mount or self.publisher is None:
            return cam.lat, cam.lon, cam.heading
        now = time.monotonic()
        if now - self._mount_read_at >= 1.0:
            self._mount_read_at = now
            try:
                raw = self.publisher.client.hget(state_key("drone"), cam.mount)
                if raw:
                    upd = _drone_state.decode(raw)
                    self._mount_pos = (upd.lat, upd.lon, float(upd.props.get("heading", cam.heading)) % 360)
            except (redis.RedisError, msgspec.DecodeError, msgspec.ValidationError, TypeError) as exc:
                log.debug("mount %s position unavailable: %s", cam.mount, exc)
        return self._mount_pos or (cam.lat, cam.lon, cam.heading)

    # ---- status on the camera layer --------------------------------------------------------------
    def analytics_fps(self) -> float:
        if len(self._done_at) < 2:
            return 0.0
        span = self._done_at[-1] - self._done_at[0]
        return round((len(self._done_at) - 1) / span, 2) if span > 0 else 0.0

    def status_props(self) -> dict:
        labels = self.tracks.labels()
        cam = self.camera
        extra = {"mount": cam.mount} if cam.mount else {}
        return {
            **extra, "name": cam.name, "district": cam.district, "type": cam.type,
            "heading": round(self.position()[2]),
            "fov": cam.fov, "status": "online" if self.source_status == "online" else self.source_status,
            "fps": self.analytics_fps(), "people": labels.count("person"),
            "vehicles": sum(labels.count(c) for c in VEHICLE_CLASSES),
            "last_activity": self.last_activity_ms, "video": True, "privacy": cam.privacy.enabled,
            "counts": self.rules.counts_plain(), "events": self.events, "errors": self.errors,
            "infer_ms": round(self.timings.infer, 1),
            **(self.stream_health() if self.stream_health is not None else {}),
        }

    def _maybe_status(self, ts: float, force: bool = False) -> None:
        now = time.monotonic()
        if self.publisher is None or (not force and now - self._status_at < self.settings.status_every_s):
            return
        self._status_at = now
        lat, lon, _ = self.position()
        self.publisher.update("camera", self.camera.id, lat, lon, self.status_props(), ts=int(ts * 1000))

    def publish_status(self, status: str | None = None) -> None:
        """Status without a frame (offline, reconnecting); also used at start and stop."""
        if status:
            self.source_status = status
        self._maybe_status(time.time(), force=True)
