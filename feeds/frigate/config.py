"""Configuration of the Frigate NVR source (section `feeds.frigate` of config/feeds.yaml).

One entry per Frigate server: its MQTT broker and topic prefix, its HTTP API base (for snapshots,
fetched by the web process through /api/snapshots/), and which of its cameras are on the map.
Passwords are never written here: `password_env` names the environment variable that holds one.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from spine.layers import Severity

# A server name travels in snapshot ids (frigate.<server>.<event id>) and in event ids: lower-case
# words only, so it can never carry a dot, a slash or a URL.
SERVER_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"
ServerName = Annotated[str, Field(pattern=SERVER_NAME)]
# Frigate's own camera names: letters, digits, '_' and '-' (Frigate refuses others in its config).
FrigateCameraName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
MapCameraId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Z_][A-Z0-9_]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=64)]


class CameraSite(BaseModel):
    """A Frigate camera that is not in config/cameras.yaml: where to draw it."""

    model_config = ConfigDict(extra="forbid")

    id: MapCameraId
    name: str = Field("", max_length=200)
    district: str = Field("", max_length=200)
    type: Literal["crime_prevention", "traffic", "disaster", "other"] = "crime_prevention"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    heading: float = Field(0, ge=0, lt=360)
    fov: float = Field(60, gt=0, le=360)


class FrigateServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mqtt_url: str = "mqtt://127.0.0.1:1883"
    username: str | None = Field(None, max_length=128)
    password_env: EnvName | None = None  # the variable holding the MQTT password
    topic_prefix: str = Field("frigate", min_length=1, max_length=64)  # Frigate's mqtt.topic_prefix
    # Frigate's HTTP API base, e.g. http://10.0.0.5:5000 (the internal, unauthenticated port on a
    # trusted network); None: events carry no snapshot.
    http_url: str | None = None
    http_timeout_s: float = Field(5.0, gt=0, le=30)
    # Frigate camera name -> a camera id of config/cameras.yaml, or a site of its own.
    cameras: dict[FrigateCameraName, MapCameraId | CameraSite] = Field({}, max_length=512)
    # Which topic becomes events: reviews (0.14+: one alert or detection per activity), events (every
    # tracked object, the only choice before 0.14), or auto (events until the server sends a review).
    publish: Literal["auto", "reviews", "events"] = "auto"
    # Severity of a tracked-object event (reviews take theirs: alert high, detection medium).
    event_severity: Severity = "medium"
    label_severity: dict[Label, Severity] = Field({}, max_length=64)

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt(cls, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise ValueError("mqtt_url must be mqtt://host:port")
        return url

    @field_validator("topic_prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", prefix) or prefix.endswith("/") or "//" in prefix:
            raise ValueError("topic_prefix: letters, digits, '_', '-', '.', '/' (no wildcards, "
                             "no trailing '/'), as Frigate's mqtt.topic_prefix")
        return prefix

    @field_validator("http_url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("http_url must be http(s)://host:port")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("http_url: no credentials, query or fragment")
        return url.rstrip("/")


class FrigateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # Frigate publishes <prefix>/stats every stats_interval (60 s by default): heard within this, the
    # server is alive even when no camera sees anything.
    contract_s: float = Field(180.0, gt=0)
    servers: dict[ServerName, FrigateServerConfig] = Field({}, max_length=32)

    @field_validator("servers")
    @classmethod
    def _distinct_topics(cls, servers: dict[str, FrigateServerConfig]) -> dict[str, FrigateServerConfig]:
        seen: dict[tuple[str, str], str] = {}
        for name, s in servers.items():
            key = (s.mqtt_url, s.topic_prefix)
            if key in seen:
                raise ValueError(f"servers {seen[key]} and {name} share broker and topic_prefix "
                                 f"{s.topic_prefix!r}: Frigate needs a unique prefix per instance")
            seen[key] = name
        return servers
