"""config/incidents.yaml (section `incidents`) and config/roles.yaml `incident_actions`, validated.

Read through config.root.reference_section like the alarm configuration, so CC_CONFIG_DIR moves
them; a problem is one line naming the key (ConfigError, exit status 2). The SOPs named by the
types must exist in config/sops (checked by load_all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from config.settings import ConfigError, validated
from incidents.sop import Code, Sop, load_sops

Priority = Literal["low", "medium", "high", "critical"]
PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "critical")
CapCategory = Literal[
    "Geo",
    "Met",
    "Safety",
    "Security",
    "Rescue",
    "Fire",
    "Health",
    "Env",
    "Transport",
    "Infra",
    "CBRNE",
    "Other",
]
Label = Annotated[str, Field(min_length=1, max_length=120)]
GeoCode = Annotated[str, Field(pattern=r"^[0-9]{10}$")]
ACTIONS = ("view", "create", "work", "command", "force_resolve", "share", "report")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CapType(_Model):
    category: CapCategory = "Other"
    event: Label
    event_code: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "LAE"
    radius_km: float = Field(0.5, gt=0, le=500)


class IncidentType(_Model):
    label: Label
    priority: Priority = "medium"
    sop: Code | None = None
    cap: CapType


class AutoRule(_Model):
    rule: Annotated[str, Field(min_length=1, max_length=64)]  # an alarm rule name (config/alarms.yaml)
    type: Code


class Nearest(_Model):
    count: int = Field(3, ge=1, le=32)
    radius_m: float = Field(1000, gt=0, le=50_000)
    reach_m: float | None = Field(None, gt=0, le=5000)


class Preset(_Model):
    name: Label
    preset: int | str
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    radius_m: float = Field(100, gt=0, le=5000)


class CapSettings(_Model):
    sender: Annotated[str, Field(min_length=3, max_length=120, pattern=r"^[^\s,<>&]+$")]
    status: Literal["Actual", "Exercise", "System", "Test", "Draft"] = "Actual"
    code: Label = "대한민국정부1.0"
    identifier_prefix: Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9-]+$")]
    restriction: Label = "112·119 상황실 공유용"
    sender_name: Label = "통합운영센터"


class IncidentConfig(_Model):
    types: dict[Code, IncidentType]
    auto_from_alarms: Annotated[list[AutoRule], Field(max_length=64)] = []
    on_hold_max_minutes: int = Field(240, ge=1, le=7 * 24 * 60)
    nearest: Nearest = Nearest()
    ptz_presets: dict[str, Annotated[list[Preset], Field(max_length=64)]] = {}
    cap: CapSettings
    city_geocode: GeoCode
    district_codes: dict[Code, GeoCode] = {}
    # The wall screen (config/walls.yaml) that an automatic bell incident is sent to (None: none).
    bell_wall: int | None = Field(None, ge=1, le=9999)
    bell_types: Annotated[list[Code], Field(max_length=16)] = ["emergency_bell"]

    def geocode(self, district: str | None) -> str:
        return self.district_codes.get(district or "", self.city_geocode)

    def auto_type(self, rule: str) -> str | None:
        return next((a.type for a in self.auto_from_alarms if a.rule == rule), None)


class IncidentActions(_Model):
    view: list[Code] = []
    create: list[Code] = []
    work: list[Code] = []
    command: list[Code] = []
    force_resolve: list[Code] = []
    share: list[Code] = []
    report: list[Code] = []

    def allows(self, role: str, action: str) -> bool:
        return action in ACTIONS and role in getattr(self, action)


def parse_incident_config(data: object, sops: dict[str, Sop] | None = None) -> IncidentConfig:
    cfg: IncidentConfig = validated(IncidentConfig, data, "incidents")
    if sops is not None:
        problems = [
            f"incidents.types.{name}.sop: no SOP {t.sop!r} in config/sops ({', '.join(sorted(sops))})"
            for name, t in cfg.types.items()
            if t.sop and t.sop not in sops
        ]
        problems += [
            f"incidents.auto_from_alarms: type {a.type!r} is not in incidents.types"
            for a in cfg.auto_from_alarms
            if a.type not in cfg.types
        ]
        if problems:
            raise ConfigError("Configuration is not valid:\n" + "\n".join(f"  - {p}" for p in problems))
    return cfg


def load_incident_config(config_dir: Path | None = None) -> IncidentConfig:
    from config.root import reference_section

    cfg = parse_incident_config(reference_section("incidents", config_dir), load_sops())
    return with_bell_presets(cfg, config_dir)


def with_bell_presets(cfg: IncidentConfig, config_dir: Path | None = None) -> IncidentConfig:
    """The bell registry's linked camera and preset (feeds.bells.bells) as PTZ presets, so a bell's
    own camera is offered first among the nearest (it "sees" the bell by its preset)."""
    from config.root import load_config

    try:
        bells = load_config(config_dir, check_references=False).feeds.bells
    except ConfigError:
        return cfg  # the feeds section is reported by its own part; incidents work without bells
    presets = {k: list(v) for k, v in cfg.ptz_presets.items()}
    for bid, b in bells.bells.items():
        if b.camera and b.preset is not None:
            presets.setdefault(b.camera, []).append(
                Preset(name=bid, preset=b.preset, lat=b.lat, lon=b.lon, radius_m=b.radius_m))
    return cfg.model_copy(update={"ptz_presets": presets})


def load_incident_actions(config_dir: Path | None = None) -> IncidentActions:
    from config.root import reference_section

    try:
        data = reference_section("incident_actions", config_dir)
    except ConfigError:
        data = {}  # no section: nobody may act
    return validated(IncidentActions, data, "incident_actions")
