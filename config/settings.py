"""Load and validate the YAML configuration, with environment overrides.

Start-up fails early with one readable line per problem instead of a traceback, because the
person reading it is often an installer at a wall, not the author of the code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from spine.layers import Layer

CONFIG_DIR = Path(__file__).resolve().parent
REPO_ROOT = CONFIG_DIR.parent
DATA_DIR = Path(os.environ.get("CC_DATA_DIR", REPO_ROOT / "data")).resolve()

M = TypeVar("M", bound=BaseModel)  # a configuration section's model (validated())
LayerName = Layer  # wall layers are checked against the layer registry, the one list of layers
LatLon = Annotated[list[float], Field(min_length=2, max_length=2)]


class Section(BaseModel):
    """A typo in a key is an error, not a silently ignored setting."""

    model_config = ConfigDict(extra="forbid")


class RedisSettings(Section):
    # An external Redis: redis://user:password@host:port/db, from REDIS_URL (never a file in the repo).
    # None: the stack starts a private one, password-protected with a user per part.
    url: str | None = None
    persist: bool = True  # the private Redis keeps its data in data/redis (AOF, fsync every second)


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
    # MJPEG streams each hold a server thread for as long as they play. Capped per user and in
    # total, so streams can never take the threads that answer logins, tickets and pages.
    video_streams_per_user: int = Field(4, ge=0, le=64)
    video_streams_total: int | None = Field(None, ge=0)  # None: half of `threads`
    # Cameras one page's tiles stream (/video/live-tiles) may carry: it is ONE stream (one thread, one
    # of the slots above) read by one XREAD whatever its size; the activity wall has at most 16 tiles.
    video_tiles_per_stream: int = Field(16, ge=1, le=64)
    # Argon2id cost of stored passwords (the argon2-cffi / RFC 9106 defaults). Lowering them
    # weakens every stored password; only the test suite does (CC_WEB__ARGON2_*). A hash made
    # with other parameters still verifies and is upgraded at its next successful login.
    argon2_time_cost: int = Field(3, ge=1, le=64)
    argon2_memory_kib: int = Field(65536, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(4, ge=1, le=64)

    @model_validator(mode="after")
    def _consistent(self) -> WebSettings:
        if self.video_streams_total is not None and self.video_streams_total > self.threads - 4:
            raise ValueError(f"video_streams_total ({self.video_streams_total}) must leave at least 4 of "
                             f"the {self.threads} web threads for pages, logins and tickets")
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("argon2_memory_kib must be at least 8 x argon2_parallelism (Argon2's rule)")
        return self

    def video_stream_cap(self) -> int:
        """Streams the whole web process may play at once."""
        if self.video_streams_total is not None:
            return self.video_streams_total
        return self.threads // 2


class GatewaySettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=1, le=65535)
    public_url: str | None = None
    batch_ms: int = Field(40, ge=1, le=50)
    max_message_bytes: int = Field(65536, ge=1024)
    max_client_buffer_bytes: int = Field(8 * 1024 * 1024, ge=65536)
    # Timestamps screens would trust: further ahead than this froze an entity (screens keep the
    # newest); older than max_age_s is a broken clock (0: no age check). A year, not days: an
    # entity's ts is when its state last changed, and a camera or station may rightly keep one
    # state for weeks (producers refresh it with its original ts); screens show that age.
    max_future_skew_s: float = Field(30.0, ge=0, le=86_400)
    max_age_s: float = Field(366 * 86_400, ge=0)
    # Sockets served at once; one more is closed with 1013 "try again later" and its page retries.
    # The Redis pool is sized with it (see redis_pool_size) so a reconnect wave never fails on Redis.
    max_clients: int = Field(1000, ge=1, le=100_000)
    # Connections the gateway may hold to Redis: pub/sub 1, snapshot reads and ticket claims share
    # the rest and wait for a free one (a blocking pool) instead of failing under a reconnect wave.
    redis_pool_size: int = Field(32, ge=4, le=1000)
    session_check_s: float = Field(1.0, gt=0, le=5)  # revoked sessions' sockets close within 5 s
    stats_interval_s: float = Field(2.0, gt=0, le=60)


class SimulatorSettings(Section):
    """The demo city (feeds/simulator). It runs only when enabled, which the demo overlay
    (config/overlays/demo.yaml, `app.py --demo`) does; the adapters reach its wire servers through
    their own configuration, set by that overlay to these addresses."""

    enabled: bool = False
    host: str = "127.0.0.1"  # where its wire servers listen and its drone sends MAVLink
    http_port: int = Field(8790, ge=1, le=65535)  # GTFS-realtime, static GTFS, AirKorea JSON
    mavlink_port: int = Field(14550, ge=1, le=65535)  # UDP: the drone adapter listens here
    mqtt_url: str | None = None  # broker the simulated sensors publish to; null: feeds.sensors.broker_url
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
    lang: Literal["ko", "en"] = "ko"  # the screen's language (a wall has no user to choose one)
    # Legibility (issue 9): map marks (markers, lines, map labels, badges) are sized for the reference
    # screen, VIEW_REFERENCE: 1920 px across 1.21 m (a 55-inch 16:9 panel) seen from 5 m = scale 1. The
    # browser, which knows the resolution, scales them so they subtend the same angle on this screen:
    # scale = (px across / 1920) * (1.21 / width_m) * (distance_m / 5), or `scale` when given. Without
    # either, the screen is taken to be the reference size (scale = px across / 1920).
    scale: float | None = Field(None, gt=0, le=10)
    width_m: float | None = Field(None, gt=0.1, le=100)  # physical width of the screen's picture
    distance_m: float = Field(5.0, gt=0.3, le=200)  # viewing distance

    def view(self) -> dict[str, object]:
        """What the page embeds for the browser's one scale computation (assets/cc/map.js viewScale)."""
        return {"scale": self.scale, "width_m": self.width_m, "distance_m": self.distance_m,
                "reference": VIEW_REFERENCE}


VIEW_REFERENCE = {"px": 1920, "width_m": 1.21, "distance_m": 5.0}


# The roles a user may hold (dashboard/store.py creates users with these); what each may open is
# `roles:` in config/roles.yaml, what each may do are the *_actions sections there.
# agency_112 / agency_119: 112 and 119 control-room staff, who open only incident links shared with
# them (config/roles.yaml agency_view, issue 11).
RoleName = Literal["operator", "supervisor", "commander", "maintenance", "admin", "agency_112", "agency_119"]
ROLES: tuple[str, ...] = get_args(RoleName)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CC_", env_nested_delimiter="__", extra="forbid")

    redis: RedisSettings = RedisSettings()
    database: DatabaseSettings = DatabaseSettings()
    web: WebSettings = WebSettings()
    gateway: GatewaySettings = GatewaySettings()
    simulator: SimulatorSettings = SimulatorSettings()
    map: MapSettings = MapSettings()
    walls: dict[int, WallScreen] = {}
    roles: dict[RoleName, list[Literal["wall", "supervisor", "commander"]]] = {}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Only the values config/root.py passes: it applies the CC_* environment overrides itself,
        # the same way for every file's sections.
        return (init_settings,)


class ConfigError(SystemExit):
    """Raised with a message a person can act on; exits with status 2."""

    def __init__(self, message: str) -> None:
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


# libyaml's loader when the wheel has it: the pure-Python one takes ~0.1 s per file, and pages read
# the configuration root when they are built.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> dict:
    """A YAML file that must hold a mapping; ConfigError names the file otherwise."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LOADER) or {}  # a safe loader
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
        if isinstance(got, str):  # a URL's password never reaches a terminal or a log
            got = re.sub(r"://([^/@\s:]*):[^/@\s]*@", r"://\1:***@", got)
        shown = "" if isinstance(got, dict | list) else f" (got {got!r})"
        lines.append(f"  - {where}: {err['msg']}{shown}")
    return "\n".join(lines)


def validated(model: type[M], data: object, where: str) -> M:
    """`data` (one section of a configuration file) as `model`, or a ConfigError with one line per
    problem, each located under `where` (the section's name)."""
    if not isinstance(data, dict):
        raise ConfigError(f"Configuration is not valid:\n  - {where}: expected a mapping")
    try:
        return model(**data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, "Configuration is not valid:", prefix=f"{where}.")) from None


def load_settings(config_dir: Path | None = None) -> Settings:
    """The app's settings from the configuration root (config/root.py): every file, the CC_PROFILE
    overlay and CC_* overrides, with the references between files checked (ConfigError, exit 2)."""
    from config.root import load_config

    return load_config(config_dir).settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
