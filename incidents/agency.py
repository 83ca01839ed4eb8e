"""Agency links: a time-limited, read-only view of one incident for the 112 / 119 control rooms.

A link is a signed token (itsdangerous, the web's secret key) naming the incident, the agency and
the expiry; nothing is stored but the audit rows and the incident's timeline row, so a link cannot be
widened or prolonged by editing it, and expiry is checked at every request (page and each video
stream). Who may open one: config/roles.yaml `agency_view` (role -> agency, faces).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.settings import ConfigError

SALT = "cc-incident-agency-link-v1"
MAX_MINUTES = 24 * 60
Agency = Literal["112", "119"]


class AgencyRole(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agency: Agency
    faces: bool = False  # false: persons in the video are obscured before a frame leaves the server


class AgencyView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    roles: dict[Annotated[str, Field(max_length=32)], AgencyRole] = {}
    default_minutes: int = Field(60, ge=1, le=MAX_MINUTES)


def load_agency_view(config_dir: Path | None = None) -> AgencyView:
    from config.root import reference_section

    try:
        data = reference_section("agency_view", config_dir)
    except ConfigError:
        return AgencyView()  # no section: no agency may open a link
    try:
        return AgencyView(**(data or {}))
    except (ValidationError, TypeError) as exc:
        raise ConfigError(f"Configuration is not valid:\n  - agency_view: {exc}") from None


@dataclass(frozen=True)
class Link:
    incident_id: int
    agency: str
    expires_ms: int
    by: str

    def expired(self, now_ms: int | None = None) -> bool:
        return (now_ms if now_ms is not None else int(time.time() * 1000)) >= self.expires_ms


class LinkRefused(Exception):
    """An unreadable, forged or expired link (the message says which, for the audit row)."""


def _serializer(secret: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def make_link(secret: str | bytes, incident_id: int, agency: str, minutes: int, by: str,
              now_ms: int | None = None) -> tuple[str, Link]:
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    link = Link(incident_id, agency, now + max(1, min(minutes, MAX_MINUTES)) * 60_000, by[:80])
    token = _serializer(secret).dumps({"i": link.incident_id, "a": link.agency, "e": link.expires_ms,
                                       "b": link.by, "n": secrets.token_urlsafe(6)})
    return token, link


def read_link(secret: str | bytes, token: str, now_ms: int | None = None) -> Link:
    if not isinstance(token, str) or len(token) > 600:
        raise LinkRefused("malformed")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise LinkRefused("bad signature") from None
    if not (isinstance(data, dict) and isinstance(data.get("i"), int) and data.get("a") in ("112", "119")
            and isinstance(data.get("e"), int) and isinstance(data.get("b"), str)):
        raise LinkRefused("malformed")
    link = Link(data["i"], data["a"], data["e"], data["b"])
    if link.expired(now_ms):
        raise LinkRefused("expired")
    return link
