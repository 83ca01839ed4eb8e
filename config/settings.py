"""Load and validate the YAML configuration, with environment overrides.

Start-up fails early with one readable line per problem instead of a traceback, because the
person reading it is often an installer at a wall, not the author of the code.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

CONFIG_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONFIG_DIR.parent
DATA_DIR = Path(os.environ.get("CC_DATA_DIR", REPO_ROOT / "data")).resolve()

LayerName = Literal["bus", "camera", "sensor", "air", "drone", "incident"]
LatLon = Annotated[list[float], Field(min_length=2, max_length=2)]


class Section(BaseModel):
    """A typo in a key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")


class RedisSettings(Section):
    url: str | None = None


class DatabaseSettings(Section):
    url: str | None = None

    def resolved_url(self) -> str:
        return self.url or f"sqlite:///{DATA_DIR / 'controlroom.db'}"


class WebSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8050, ge=1, le=65535)
    threads: int = Field(32, ge=1, le=256)
    session_hours: float = Field(12, gt=0, le=24 * 30)
    secure_cookies: bool = False  # true behind HTTPS (a reverse proxy): cookies never go over http


class GatewaySettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    public_url: str | None = None
    batch_ms: int = Field(40, ge=1, le=50)
    max_message_bytes: int = Field(65536, ge=1024)
    max_client_buffer_bytes: int = Field(8 * 1024 * 1024, ge=65536)


class SimulatorSettings(Section):
    seed: int = 42
    buses: int = Field(2000, ge=0, le=10000)
    bus_update_s: float = Field(1.0, gt=0, le=60)
    cameras: int = Field(300, ge=0, le=20000)
    sensors: bool = True
    air: bool = True
    drone: bool = True


class MapSettings(Section):
    center: LatLon = [37.47, 126.68]
    zoom: int = Field(11, ge=3, le=19)
    tile_url: str | None = None
    tile_attribution: str = ""
    boundary_file: str | None = None

    @field_validator("tile_url")
    @classmethod
    def _tile_template(cls, v: str | None) -> str | None:
        if v and not all(k in v for k in ("{z}", "{x}", "{y}")):
            raise ValueError("tile_url must contain {z}, {x} and {y}")
        return v


class WallScreen(Section):
    title: str
    center: LatLon
    zoom: float = Field(11, ge=3, le=19)
    # South-west and north-east corners: fits the view to the screen whatever its resolution.
    bounds: Annotated[list[LatLon], Field(min_length=2, max_length=2)] | None = None
    layers: list[LayerName] = ["bus", "camera", "sensor", "air", "drone"]
    routes: bool = False  # draw the bus route lines (GTFS shapes)
    drone_video: str | None = None  # camera id of a drone's video tile shown beside the map


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_nested_delimiter="__", extra="forbid")

    redis: RedisSettings = RedisSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    gateway: GatewaySettings = GatewaySettings()
    simulator: SimulatorSettings = SimulatorSettings()
    map: MapSettings = MapSettings()
    walls: dict[int, WallScreen] = {}
    roles: dict[str, list[Literal["wall", "supervisor", "commander"]]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment beats the YAML files (passed as init values).
        return (env_settings, init_settings)


class ConfigError(SystemExit):
    """Raised with a message a person can act on; exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def read_yaml(path: Path) -> dict:
    """A YAML file that must hold a mapping; ConfigError names the file otherwise."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def explain(exc: ValidationError, title: str, prefix: str = "",
            locate: Callable[[list], list] | None = None) -> str:
    """One line per problem: where (dotted path), what is wrong, and the value given."""
    lines = [title]
    for err in exc.errors():
        loc = locate(list(err["loc"])) if locate else list(err["loc"])
        where = prefix + (".".join(str(p) for p in loc) or "(top level)")
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"  - {where}: {err['msg']}{shown}")
    return "\n".join(lines)


def load_settings(config_dir: Path | None = None) -> Settings:
    directory = Path(os.environ.get("CC_CONFIG_DIR", config_dir or CONFIG_DIR))
    files = sorted(directory.glob("*.yaml"))
    merged: dict = {}
    for f in files:
        for key, value in read_yaml(f).items():
            if key in merged:
                raise ConfigError(f"{f}: section '{key}' is also defined in another file")
            merged[key] = value
    # Only the sections Settings knows about; other YAML files (cameras, districts) have
    # their own loaders.
    merged = {k: v for k, v in merged.items() if k in Settings.model_fields}
    try:
        settings = Settings(**merged)
    except ValidationError as exc:
        names = ", ".join(str(f) for f in files)
        raise ConfigError(explain(exc, f"Configuration is not valid ({names} and CC_* environment "
                                       "variables):")) from None
    if os.environ.get("REDIS_URL"):
        settings.redis.url = os.environ["REDIS_URL"]
    if os.environ.get("DATABASE_URL"):
        settings.database.url = os.environ["DATABASE_URL"]
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
