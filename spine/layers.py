"""The layer registry: everything the system knows about a map layer, in one place.

Per layer: the typed `props` of its updates and events (msgspec structs with bounded strings and
numbers, unknown fields refused), its label and colours, its legend and the popup fields in order.
The vocabularies that travel in data have one home here too: event severities, sensor levels and
air grades, each as codes (what producers publish) with labels and colours (what screens show).

The browser gets the same registry as JSON (`registry_json()`, embedded in every page by
dashboard/app_factory.py) and its renderers read colours and words only from it, so Python and
JS cannot drift apart again (the old bug: sensor rules published the Korean stage name as `level`
while the browser coloured by English codes, so a critical flood stage looked normal).

Why bounds: a message is drawn on every screen; a 1 MB "name" or a 10^300 "heading" must be a
counted reject at the gateway, not a frozen browser. Why `forbid_unknown_fields`: a prop nobody
declared is either a typo or data no screen knows how to show safely; adding one is a line here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

import msgspec
from msgspec import Meta


def N_(text: str) -> str:  # noqa: N802 - gettext's marker: the label is a message id (translations/)
    return text


# Labels here are English message ids of the gettext catalogues (translations/, dashboard/i18n.py):
# the browser gets the ids in the registry and shows them through cc/i18n.js in the page's language;
# the server translates them with the translator the web process installs (set_label_translator).
_label: Callable[[str], str] = N_


def set_label_translator(fn: Callable[[str], str]) -> None:
    """The web process's gettext; the spine itself imports no web framework."""
    global _label
    _label = fn


def label(text: str) -> str:
    """A registry label in the language of the current request (the id itself elsewhere)."""
    return _label(text)


# ---- the layers and the shared vocabularies ---------------------------------------------------------

Layer = Literal["bus", "camera", "sensor", "air", "drone", "incident"]
LAYERS: tuple[str, ...] = get_args(Layer)

# Most severe first (ISA-18.2 priorities, standards.md 3.3). `info` is a record, not an alarm.
Severity = Literal["critical", "high", "medium", "low", "info"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
SEVERITY_LABELS = {"critical": N_("Critical"), "high": N_("High"), "medium": N_("Medium"), "low": N_("Low"),
                   "info": N_("Info")}
# A lightness ramp as well as a hue ramp, so the order survives a colour-vision deficiency (min CIE76
# distance after protan/deutan/tritan simulation >= 18, tests/test_browser_legibility.py).
SEVERITY_COLORS = {"critical": "#ff4d5e", "high": "#ff8c1a", "medium": "#ffe066", "low": "#8fd0ff",
                   "info": "#8b949e"}

# Sensor levels: the Korean four-stage scale (관심/주의/경계/심각, e.g. flood stages) as codes.
# A sensor's level is derived from the severity of its worst active rule (sensor_level()), so a
# rule may be named anything in config without changing how it is drawn.
SensorLevel = Literal["normal", "attention", "caution", "warning", "critical"]
SENSOR_LEVELS: tuple[str, ...] = get_args(SensorLevel)
SENSOR_LEVEL_LABELS = {"normal": N_("정상 Normal"), "attention": N_("관심 Attention"),
                       "caution": N_("주의 Caution"), "warning": N_("경계 Warning"),
                       "critical": N_("심각 Critical")}
# The Korean alert colours (관심 blue, 주의 yellow, 경계 orange, 심각 red), darker blue than CCTV; red and
# orange keep their alarm meaning (standards.md 7.3); normal is the layer's calm hue.
# Yellow, orange and red step down in lightness too (told apart with a colour-vision deficiency).
SENSOR_LEVEL_COLORS = {"normal": "#bc8cff", "attention": "#1f6feb", "caution": "#ffe066",
                       "warning": "#ff8c1a", "critical": "#e0203a"}
_LEVEL_OF_SEVERITY = {"info": "attention", "low": "attention", "medium": "caution", "high": "warning",
                      "critical": "critical"}

# Air grades: the CAI / PM grade names AirKorea publishes are the codes (stable, and what the
# source says); the English words are labels. Colours are AirKorea's hues (blue, green, orange, red)
# with lightness spread so the grades stay apart for colour-blind viewers.
AirGrade = Literal["좋음", "보통", "나쁨", "매우나쁨"]
AIR_GRADES: tuple[str, ...] = get_args(AirGrade)
AIR_GRADE_LABELS = {"좋음": N_("Good"), "보통": N_("Moderate"), "나쁨": N_("Unhealthy"),
                    "매우나쁨": N_("Very unhealthy")}
AIR_GRADE_COLORS = {"좋음": "#32a1ff", "보통": "#7ee08a", "나쁨": "#ff9a3c", "매우나쁨": "#d42a3a"}

# Korea's CAI breakpoints (standards.md 1.1, 2018 PM2.5 bands): pollutant -> (low, high) concentration of
# 좋음, 보통, 나쁨, 매우나쁨, and the index band of each grade. Here, not in feeds/air/cai.py (which computes
# with them), because the browser draws the PM grade bands as chart guides from the same table and the
# spine imports no adapter.
AIR_INDEX_BANDS: tuple[tuple[int, int], ...] = ((0, 50), (51, 100), (101, 250), (251, 500))
AIR_BREAKPOINTS: dict[str, tuple[tuple[float, float], ...]] = {
    "so2": ((0, 0.020), (0.021, 0.050), (0.051, 0.150), (0.151, 1.0)),
    "no2": ((0, 0.030), (0.031, 0.060), (0.061, 0.200), (0.201, 2.0)),
    "co": ((0, 2.0), (2.01, 9.0), (9.01, 15.0), (15.01, 50.0)),
    "o3": ((0, 0.030), (0.031, 0.090), (0.091, 0.150), (0.151, 0.6)),
    "pm10": ((0, 30), (31, 80), (81, 150), (151, 600)),
    "pm25": ((0, 15), (16, 35), (36, 75), (76, 500)),
}

CameraType = Literal["crime_prevention", "traffic", "disaster", "other"]
CAMERA_TYPE_COLORS = {"crime_prevention": "#58a6ff", "traffic": "#79c0ff", "disaster": "#d2a8ff",
                      "other": "#58a6ff"}


def sensor_level(severity: str | None) -> str:
    """The sensor level code for the severity of the worst active rule (None: no rule active)."""
    return "normal" if severity is None else _LEVEL_OF_SEVERITY[severity]


# ---- bounded value types ---------------------------------------------------------------------------

Key = Annotated[str, Meta(min_length=1, max_length=64)]
Code = Annotated[str, Meta(max_length=64)]  # machine words: ids, modes, routes
Text = Annotated[str, Meta(max_length=200)]  # names, titles: what a person reads
Num = Annotated[float, Meta(ge=-1e9, le=1e9)]  # finite and plausible; NaN and inf fail the bounds
Count = Annotated[int, Meta(ge=0, le=10**9)]
Heading = Annotated[float, Meta(ge=-360.0, le=720.0)]
EpochMs = Annotated[int, Meta(ge=0, le=10**14)]
Lat = Annotated[float, Meta(ge=-90.0, le=90.0)]
Lon = Annotated[float, Meta(ge=-180.0, le=180.0)]


class Props(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of every props struct: every field optional, unknown fields refused."""


class BusProps(Props):
    route: Code | None = None
    route_id: Code | None = None
    route_shape: Code | None = None
    trip: Code | None = None
    label: Code | None = None
    heading: Heading | None = None
    speed_kmh: Annotated[float, Meta(ge=0, le=500)] | None = None
    delay_s: Annotated[float, Meta(ge=-86400, le=86400)] | None = None
    occupancy: Code | None = None
    next_stop: Text | None = None
    stale: bool | None = None


LineCounts = Annotated[dict[Key, Annotated[dict[Key, Annotated[dict[Key, Count], Meta(max_length=8)]],
                                           Meta(max_length=32)]], Meta(max_length=32)]


class CameraProps(Props):
    name: Text | None = None
    district: Text | None = None
    type: CameraType | None = None
    mount: Code | None = None  # the drone carrying it
    heading: Heading | None = None
    fov: Annotated[float, Meta(ge=0, le=360)] | None = None
    status: Code | None = None
    fps: Annotated[float, Meta(ge=0, le=1000)] | None = None
    people: Count | None = None
    vehicles: Count | None = None
    last_activity: EpochMs | None = None
    video: bool | None = None
    privacy: bool | None = None
    counts: LineCounts | None = None
    events: Count | None = None
    errors: Count | None = None
    infer_ms: Annotated[float, Meta(ge=0, le=1e6)] | None = None
    # Stream health (vision/live.py): frames/s and kbit/s received, the last keyframe, read errors.
    stream_fps: Annotated[float, Meta(ge=0, le=1000)] | None = None
    kbps: Annotated[float, Meta(ge=0, le=1e7)] | None = None
    keyframe_at: EpochMs | None = None
    stream_errors: Count | None = None
    live: bool | None = None  # an fMP4 restream is published for browsers


class SensorProps(Props):
    name: Text | None = None
    kind: Code | None = None
    unit: Code | None = None
    district: Text | None = None
    value: Num | None = None
    threshold: Num | None = None
    level: SensorLevel | None = None
    severity: Severity | None = None
    rule: Text | None = None  # the worst active rule's name as configured (display only)
    alarms: Annotated[list[Text], Meta(max_length=16)] | None = None
    rain_3h_mm: Num | None = None
    rain_12h_mm: Num | None = None


Pollutant = Annotated[str, Meta(min_length=1, max_length=16)]
Conc = Annotated[float, Meta(ge=0, le=1e6)]
AlertState = Literal["주의보", "경보"]


class AqiUs(msgspec.Struct, forbid_unknown_fields=True):
    value: Annotated[int, Meta(ge=0, le=1000)]
    category: Text = ""
    scale: Text = ""
    dominant: Pollutant | None = None
    sub: Annotated[dict[Pollutant, Annotated[int, Meta(ge=0, le=1000)]], Meta(max_length=8)] = {}


class AirProps(Props):
    station: Text | None = None
    kind: Text | None = None
    district: Text | None = None
    data_time: EpochMs | None = None
    pm10: Conc | None = None
    pm25: Conc | None = None
    o3: Conc | None = None
    no2: Conc | None = None
    so2: Conc | None = None
    co: Conc | None = None
    pm10_24h: Conc | None = None
    pm25_24h: Conc | None = None
    pm_basis: Annotated[dict[Pollutant, Code | None], Meta(max_length=8)] | None = None
    cai: Annotated[int, Meta(ge=0, le=1000)] | None = None
    cai_scale: Text | None = None
    cai_sub: Annotated[dict[Pollutant, Annotated[int, Meta(ge=0, le=1000)]], Meta(max_length=8)] | None = None
    cai_grades: Annotated[dict[Pollutant, AirGrade], Meta(max_length=8)] | None = None
    grade: AirGrade | None = None  # the integrated (CAI) grade: absent unless the CAI exists
    cai_missing: Annotated[list[Pollutant], Meta(max_length=8)] | None = None  # why there is no CAI
    # pollutant -> AirKorea's *Flag text (통신장애, 점검및교정, 자료이상, ...), cut to 40 characters
    flags: Annotated[dict[Pollutant, Annotated[str, Meta(max_length=40)]], Meta(max_length=8)] | None = None
    alert: Annotated[dict[Pollutant, AlertState | None], Meta(max_length=8)] | None = None
    alert_level: AlertState | None = None
    aqi_us: AqiUs | None = None


class DroneProps(Props):
    name: Text | None = None
    sysid: Annotated[int, Meta(ge=0, le=255)] | None = None
    heading: Heading | None = None
    alt_m: Annotated[float, Meta(ge=-1000, le=20000)] | None = None
    alt_msl_m: Annotated[float, Meta(ge=-1000, le=20000)] | None = None
    speed_ms: Annotated[float, Meta(ge=0, le=500)] | None = None
    battery_pct: Annotated[float, Meta(ge=0, le=100)] | None = None
    voltage_v: Annotated[float, Meta(ge=0, le=1000)] | None = None
    mode: Code | None = None
    armed: bool | None = None
    gimbal_pitch: Annotated[float, Meta(ge=-180, le=180)] | None = None
    mission: Text | None = None
    footprint: Annotated[list[tuple[Lat, Lon]], Meta(max_length=16)] | None = None
    gps: Text | None = None  # "3D fix, 14 sats", or "no GPS fix" (then lat/lon are the last good fix)
    gps_fix: bool | None = None  # false: the marker stands at last_fix's position, not where it is now
    last_fix: EpochMs | None = None  # wall time of the position shown


class IncidentProps(Props):
    title: Text | None = None
    kind: Code | None = None
    severity: Severity | None = None
    status: Code | None = None
    district: Text | None = None
    description: Annotated[str, Meta(max_length=2000)] | None = None
    opened: EpochMs | None = None


# ---- event props -----------------------------------------------------------------------------------

Scalar = Text | Num | bool | None


class EventProps(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Base of the per-layer event props."""


class SensorEventProps(EventProps):
    value: Num | None = None
    threshold: Num | None = None
    rule: Text | None = None
    metric: Code | None = None
    direction: Literal["above", "below"] | None = None
    kind: Code | None = None
    state: Literal["active", "cleared"] | None = None


class CameraEventProps(EventProps):
    camera: Text | None = None
    zone: Code | None = None
    line: Code | None = None
    cls: Code | None = msgspec.field(default=None, name="class")
    direction: Code | None = None
    track_id: Count | None = None
    dwell_s: Num | None = None
    stopped_s: Num | None = None
    down_s: Num | None = None
    people: Count | None = None
    limit: Count | None = None
    bbox: Annotated[list[Num], Meta(max_length=4)] | None = None
    # A Frigate NVR review or tracked object (feeds/frigate): what it saw, where, how sure, and which
    # server and id it came from (the snapshot route fetches its image by them).
    label: Text | None = None
    sub_label: Text | None = None
    zones: Annotated[list[Code], Meta(max_length=16)] | None = None
    score: Annotated[float, Meta(ge=0, le=1)] | None = None
    phase: Literal["new", "update", "end"] | None = None
    review_severity: Literal["alert", "detection"] | None = None
    frigate_server: Code | None = None
    frigate_id: Code | None = None


# Layers without a producer of events yet take a small flat map of plain values.
OtherEventProps = Annotated[dict[Key, Scalar], Meta(max_length=32)]

_PROPS: dict[str, type[Props]] = {"bus": BusProps, "camera": CameraProps, "sensor": SensorProps,
                                  "air": AirProps, "drone": DroneProps, "incident": IncidentProps}
_EVENT_PROPS: dict[str, Any] = {"sensor": SensorEventProps, "camera": CameraEventProps}


def props_type(layer: str) -> type[Props]:
    return _PROPS[layer]


def event_props_type(layer: str) -> Any:
    return _EVENT_PROPS.get(layer, OtherEventProps)


def _under_props(exc: msgspec.ValidationError) -> msgspec.ValidationError:
    """The same error with its path under `$.props` (msgspec gives no path for the root object)."""
    text = str(exc)
    at = text.replace("`$", "`$.props", 1) if "`$" in text else text + " - at `$.props`"
    return msgspec.ValidationError(at)


def check_props(layer: str, props: dict[str, Any]) -> None:
    """Raise msgspec.ValidationError (path under `$.props`) unless props fit the layer's struct."""
    try:
        msgspec.convert(props, _PROPS[layer])
    except msgspec.ValidationError as exc:
        raise _under_props(exc) from None


def check_event_props(layer: str, props: dict[str, Any]) -> None:
    try:
        msgspec.convert(props, event_props_type(layer))
    except msgspec.ValidationError as exc:
        raise _under_props(exc) from None


# ---- what screens show -----------------------------------------------------------------------------

# Red and yellow are kept for alarms (standards.md 7.3); layers use calm hues.
LAYER_LABELS = {"bus": N_("Buses"), "camera": N_("CCTV"), "sensor": N_("Disaster sensors"),
                "air": N_("Air quality"), "drone": N_("Drones"), "incident": N_("Incidents")}
LAYER_COLORS = {"bus": "#2dd4bf", "camera": "#58a6ff", "sensor": "#bc8cff", "air": "#8b949e",
                "drone": "#f0f6fc", "incident": "#ff7b72"}

# Popup rows in order: (prop, label, format). Formats the browser knows: text, number, time (epoch
# ms shown in KST), bool, list, level / grade / severity (code shown as its label), json (nested).
POPUP_FIELDS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "bus": (("route", N_("Route"), "text"), ("label", N_("Vehicle"), "text"),
            ("next_stop", N_("Next stop"), "text"), ("delay_s", N_("Delay (s)"), "number"),
            ("speed_kmh", N_("Speed (km/h)"), "number"), ("heading", N_("Heading (°)"), "number"),
            ("occupancy", N_("Occupancy"), "text"), ("trip", N_("Trip"), "text"),
            ("stale", N_("No recent fix"), "bool")),
    "camera": (("name", N_("Name"), "text"), ("district", N_("District"), "text"),
               ("type", N_("Type"), "text"), ("status", N_("Status"), "text"),
               ("people", N_("People"), "number"), ("vehicles", N_("Vehicles"), "number"),
               ("last_activity", N_("Last activity"), "time"), ("mount", N_("Mounted on"), "text"),
               ("heading", N_("Heading (°)"), "number"), ("fov", N_("Field of view (°)"), "number"),
               ("fps", N_("Analytics fps"), "number"), ("infer_ms", N_("Inference (ms)"), "number"),
               ("privacy", N_("Privacy masking"), "bool"), ("events", N_("Events"), "number"),
               ("errors", N_("Errors"), "number"), ("counts", N_("Line counts"), "json")),
    "sensor": (("name", N_("Name"), "text"), ("district", N_("District"), "text"),
               ("kind", N_("Kind"), "text"), ("level", N_("Level"), "level"), ("rule", N_("Rule"), "text"),
               ("value", N_("Value"), "number"), ("unit", N_("Unit"), "text"),
               ("threshold", N_("Threshold"), "number"), ("rain_3h_mm", N_("Rain 3 h (mm)"), "number"),
               ("rain_12h_mm", N_("Rain 12 h (mm)"), "number"), ("alarms", N_("Active alarms"), "list"),
               ("severity", N_("Severity"), "severity")),
    "air": (("station", N_("Station"), "text"), ("district", N_("District"), "text"),
            ("kind", N_("Kind"), "text"), ("grade", N_("Grade (KR CAI)"), "grade"),
            ("cai", N_("CAI"), "number"), ("cai_missing", N_("No CAI: missing"), "list"),
            ("flags", N_("Data flags (AirKorea)"), "json"), ("pm10", N_("PM10 (µg/m³)"), "number"),
            ("pm25", N_("PM2.5 (µg/m³)"), "number"), ("pm10_24h", N_("PM10 24 h"), "number"),
            ("pm25_24h", N_("PM2.5 24 h"), "number"), ("o3", N_("O3 (ppm)"), "number"),
            ("no2", N_("NO2 (ppm)"), "number"), ("so2", N_("SO2 (ppm)"), "number"),
            ("co", N_("CO (ppm)"), "number"), ("alert_level", N_("Alert"), "text"),
            ("data_time", N_("Measured"), "time"), ("cai_scale", N_("Scale"), "text")),
    "drone": (("name", N_("Name"), "text"), ("mode", N_("Mode"), "text"), ("armed", N_("Armed"), "bool"),
              ("alt_m", N_("Altitude (m)"), "number"), ("speed_ms", N_("Speed (m/s)"), "number"),
              ("heading", N_("Heading (°)"), "number"), ("battery_pct", N_("Battery (%)"), "number"),
              ("voltage_v", N_("Voltage (V)"), "number"),
              ("gimbal_pitch", N_("Gimbal pitch (°)"), "number"), ("gps", N_("GPS"), "text"),
              ("last_fix", N_("Position from"), "time"), ("mission", N_("Mission"), "text")),
    "incident": (("title", N_("Title"), "text"), ("kind", N_("Kind"), "text"),
                 ("severity", N_("Severity"), "severity"), ("status", N_("Status"), "text"),
                 ("district", N_("District"), "text"), ("description", N_("Description"), "text"),
                 ("opened", N_("Opened"), "time")),
}

# Codes shown in popups as words (layer -> prop -> code -> message id); other values show as sent.
CODE_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "camera": {"type": {"crime_prevention": N_("Crime prevention"), "traffic": N_("Traffic"),
                        "disaster": N_("Disaster watch"), "other": N_("Other")},
               "status": {"online": N_("online"), "offline": N_("offline")}},
    # Sensor kinds as configured (config/sensors.yaml); an unlisted kind shows as its code.
    "sensor": {"kind": {"water_level": N_("Water level"), "rain": N_("Rainfall"), "wind": N_("Wind speed"),
                        "seismic": N_("Seismic"), "gas": N_("Gas"), "chlorine": N_("Residual chlorine"),
                        "ph": N_("pH"), "turbidity": N_("Turbidity")}},
    # AirKorea's alert words are the codes; English pages show them with a gloss.
    "air": {"alert_level": {"주의보": N_("주의보 Advisory"), "경보": N_("경보 Warning")}},
}

# Colours of things that are not a layer's own hue (faded buses, offline cameras, trails, charts).
UI_COLORS = {"bus_faded": "#4b5d73", "marker_stroke": "#e6edf3",
             "camera_cone": "#58a6ff", "drone_trail": "#f0f6fc", "drone_footprint": "#f0f6fc",
             "route_default": "#2dd4bf", "chart_pm10": "#79c0ff", "chart_pm25": "#d2a8ff",
             "chart_guide": "#30363d", "chart_text": "#8b949e", "unknown": "#ffffff",
             # Live video overlays drawn in the browser (dashboard/assets/cc/video.js).
             "video_person": "#3fb950", "video_vehicle": "#d29922", "video_zone": "#f0883e",
             "video_line": "#58a6ff", "video_label_bg": "#000000", "video_label": "#e6edf3",
             "video_bg": "#000000", "video_button": "#141c27", "video_button_line": "#3d4b5e"}
# One colour per series where a chart draws several of one kind (the supervisor's routes, in turn).
CHART_SERIES = ["#ff7b72", "#ffa657", "#e3b341", "#56d364", "#79c0ff", "#d2a8ff", "#f778ba", "#a5d6ff"]


# A camera whose source is not delivering is drawn grey whatever its type.
CAMERA_STATUS_COLORS = {"offline": "#6e7681"}


def grade_label(grade: str, tr: Callable[[str], str] = N_) -> str:
    """`좋음 Good` in English; just `좋음` where the translation is the grade's own name."""
    text = tr(AIR_GRADE_LABELS[grade])
    return grade if text == grade else f"{grade} {text}"


def _legend(layer: str, tr: Callable[[str], str]) -> list[dict[str, str]]:
    if layer == "air":
        return [{"code": g, "label": grade_label(g, tr), "color": AIR_GRADE_COLORS[g]} for g in AIR_GRADES]
    if layer == "sensor":
        return [{"code": lv, "label": tr(SENSOR_LEVEL_LABELS[lv]), "color": SENSOR_LEVEL_COLORS[lv]}
                for lv in SENSOR_LEVELS]
    return [{"code": layer, "label": tr(LAYER_LABELS[layer]), "color": LAYER_COLORS[layer]}]


def legend(layer: str) -> list[dict[str, str]]:
    """Legend rows for a layer: one swatch, or the layer's scale when colour carries meaning.
    Labels in the current request's language (server-rendered legends)."""
    return _legend(layer, label)


LEGEND_TITLES = {"air": N_("Air (CAI PM grade)"), "sensor": N_("Sensors (level)")}

# Thresholds the screens apply to data. A bus's faded look follows `feeds.transit.fade_s`, which is
# configuration: the map widget puts it on the page (widgets/city_map.py, data-cc-bus-fade-s).
CAMERA_ACTIVE_S = 30  # a camera that saw something this recently counts as active (badge, KPI)
CAMERA_CONE_M = 80  # a street camera's useful reach, drawn as its view cone
BUS_LATE_S = 300  # a bus this far behind its schedule counts as late (KPI)


def air_guides() -> dict[str, list[float]]:
    """Per pollutant, the upper edges of the grades below the worst (the chart's guide lines)."""
    return {p: [hi for _, hi in bands[:-1]] for p, bands in AIR_BREAKPOINTS.items()}


def registry() -> dict[str, Any]:
    """The registry as plain data: what the browser reads (and the only place it reads it from)."""
    return {
        "version": 1,
        "layers": {layer: {"label": LAYER_LABELS[layer], "color": LAYER_COLORS[layer],
                           "legend": _legend(layer, N_), "legend_title": LEGEND_TITLES.get(layer, ""),
                           "popup": [{"key": k, "label": lb, "format": f}
                                     for k, lb, f in POPUP_FIELDS[layer]],
                           "props": sorted(f.encode_name for f in msgspec.structs.fields(_PROPS[layer]))}
                   for layer in LAYERS},
        # alarm: drawn as an alarm (event rings, KPI counts); info and normal are not.
        "severities": [{"code": s, "label": SEVERITY_LABELS[s], "color": SEVERITY_COLORS[s],
                        "alarm": s != "info"} for s in SEVERITIES],
        "sensor_levels": [{"code": lv, "label": SENSOR_LEVEL_LABELS[lv], "color": SENSOR_LEVEL_COLORS[lv],
                           "alarm": lv != "normal"} for lv in SENSOR_LEVELS],
        "air_grades": [{"code": g, "label": AIR_GRADE_LABELS[g], "color": AIR_GRADE_COLORS[g]}
                       for g in AIR_GRADES],
        "code_labels": CODE_LABELS,
        "camera_types": CAMERA_TYPE_COLORS,
        "camera_status": CAMERA_STATUS_COLORS,
        "ui": UI_COLORS,
        "chart_series": CHART_SERIES,
        "air_guides": air_guides(),
        "thresholds": {"camera_active_ms": CAMERA_ACTIVE_S * 1000, "camera_cone_m": CAMERA_CONE_M,
                       "bus_late_s": BUS_LATE_S},
    }


def registry_json() -> str:
    """The registry for a `<script type="application/json">` element: `<` escaped, so no value
    can close the element (the registry is ours, but the escaping costs nothing)."""
    return json.dumps(registry(), ensure_ascii=False, separators=(",", ":")).replace("<", "\\u003c")
