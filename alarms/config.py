"""config/alarms.yaml (section `alarms`) and the `alarm_actions` of config/roles.yaml, validated.

Both are read from the same configuration directory as the root (`CC_CONFIG_DIR`), through
`config.root.reference_section`, and a problem is one line naming the key, all at once, as a
ConfigError (exit status 2), like every other configuration file.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from alarms.states import PRIORITIES, Priority
from config.settings import ConfigError, validated
from spine.layers import Layer

Name = Annotated[str, Field(min_length=1, max_length=64)]
_FIELD = re.compile(r"^(type|layer|entity|props\.[A-Za-z_][A-Za-z0-9_]{0,63})$")
ACTIONS = ("view", "acknowledge", "shelve", "silence", "out_of_service")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PriorityConfig(_Model):
    label: Annotated[str, Field(min_length=1, max_length=32)]
    shelvable: bool = True
    target_share: float = Field(ge=0, le=100)


class Rule(_Model):
    name: Name
    kind: Literal["threshold", "video", "event"]
    types: Annotated[list[Name], Field(min_length=1, max_length=64)]
    layer: Layer | None = None
    clear_types: list[Name] = []
    condition: Annotated[str, Field(min_length=1, max_length=128)] = "{type}"
    priority: Priority | None = None
    auto_clear_s: float = Field(300, gt=0, le=7 * 86400)

    @field_validator("condition")
    @classmethod
    def _template(cls, v: str) -> str:
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(v) if f is not None]
        except ValueError as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        bad = [f for f in fields if not _FIELD.match(f)]
        if bad:
            raise ValueError(f"unknown field(s) {', '.join(map(repr, bad))}; use type, layer, entity "
                             "or props.<name>")
        return v

    @model_validator(mode="after")
    def _clears(self) -> Rule:
        if self.kind == "threshold" and not self.clear_types:
            raise ValueError("a threshold rule needs clear_types (the events that clear it)")
        if self.kind != "threshold" and self.clear_types:
            raise ValueError(f"clear_types only apply to threshold rules (this one is {self.kind}; "
                             "it clears after a quiet time)")
        if set(self.types) & set(self.clear_types):
            raise ValueError("an event type cannot both raise and clear the alarm")
        return self


class Grouping(_Model):
    quiet_s: float = Field(30, gt=0, le=3600)


class Chattering(_Model):
    transitions: int = Field(3, ge=2, le=16)
    window_s: float = Field(60, gt=0, le=3600)


class Shelving(_Model):
    max_minutes: int = Field(480, ge=1, le=7 * 24 * 60)
    quick_minutes: list[int] = [15, 60, 240]
    reason_required: bool = True

    @model_validator(mode="after")
    def _quick(self) -> Shelving:
        over = [m for m in self.quick_minutes if m < 1 or m > self.max_minutes]
        if over:
            raise ValueError(f"quick_minutes {over} are outside 1..max_minutes ({self.max_minutes})")
        return self


class Suppression(_Model):
    camera_offline: bool = True
    stale_feed: bool = True
    poll_s: float = Field(2, gt=0, le=60)


class Targets(_Model):
    acceptable: float = Field(1, gt=0)
    manageable: float = Field(2, gt=0)


class AlarmConfig(_Model):
    priorities: dict[Priority, PriorityConfig]
    rules: Annotated[list[Rule], Field(max_length=256)] = []
    severity_priority: dict[Literal["critical", "high", "medium", "low", "info"], Priority] = {}
    grouping: Grouping = Grouping()
    chattering: Chattering = Chattering()
    shelving: Shelving = Shelving()
    suppression: Suppression = Suppression()
    stale_hours: float = Field(24, gt=0, le=24 * 365)
    flood_per_10min: int = Field(10, ge=1, le=10_000)
    targets_per_10min: Targets = Targets()

    @field_validator("priorities")
    @classmethod
    def _four(cls, v: dict) -> dict:
        missing = [p for p in PRIORITIES if p not in v]
        if missing:
            raise ValueError(f"all four priorities must be configured; missing {', '.join(missing)}")
        return v

    @model_validator(mode="after")
    def _unique(self) -> AlarmConfig:
        names = [r.name for r in self.rules]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"rule names must be unique: {', '.join(dup)}")
        return self

    def shelvable(self, priority: str) -> bool:
        p = self.priorities.get(priority)  # type: ignore[call-overload]
        return bool(p and p.shelvable)


class AlarmActions(_Model):
    """Action -> the roles that may take it (config/roles.yaml `alarm_actions`)."""

    view: list[Name] = []
    acknowledge: list[Name] = []
    shelve: list[Name] = []
    silence: list[Name] = []
    out_of_service: list[Name] = []

    def allows(self, role: str, action: str) -> bool:
        return action in ACTIONS and role in getattr(self, action)


def load_alarm_config(config_dir: Path | None = None) -> AlarmConfig:
    from config.root import reference_section

    return validated(AlarmConfig, reference_section("alarms", config_dir), "alarms")


def load_alarm_actions(config_dir: Path | None = None) -> AlarmActions:
    from config.root import reference_section

    try:
        data = reference_section("alarm_actions", config_dir)
    except ConfigError:
        data = {}  # no section: nobody may act (safe default); view is also empty then
    return validated(AlarmActions, data, "alarm_actions")


def parse_alarm_config(data: object) -> AlarmConfig:
    """For tests and tools: validate a mapping as the `alarms` section."""
    return validated(AlarmConfig, data, "alarms")
