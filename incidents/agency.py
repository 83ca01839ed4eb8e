"""Agency links: a time-limited, read-only view of one incident for the 112 / 119 control rooms.

A link is a signed token (itsdangerous, the web's secret key) naming the incident, the agency, the
expiry and the link's key: the row of `incident_agency_links` (incidents/db.py) that records who made
it and whether it was revoked. A link cannot be widened or prolonged by editing it; expiry is checked
at every request and the row is read at every request and every stream re-check, so a revoked link
ends at once. The token carries nothing the agency does not need: not who made it (the row keeps
that), no user name, no camera list (the incident's cameras are read at each request).
Who may open one: config/roles.yaml `agency_view` (role -> agency, faces).
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


KEY_MAX = 32  # incident_agency_links.key


def new_key() -> str:
    """A link's key: random, so one link's key says nothing about another's."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Link:
    incident_id: int
    agency: str
    expires_ms: int
    key: str  # the incident_agency_links row: revocation and who made the link live there

    def expired(self, now_ms: int | None = None) -> bool:
        return (now_ms if now_ms is not None else int(time.time() * 1000)) >= self.expires_ms


class LinkRefused(Exception):
    """An unreadable, forged or expired link (the message says which, for the audit row)."""


def _serializer(secret: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=SALT)


def make_link(secret: str | bytes, incident_id: int, agency: str, minutes: int, key: str,
              now_ms: int | None = None) -> tuple[str, Link]:
    """The token of link `key` (new_key(); the caller stores the row). The payload is readable by
    whoever holds the link (signed, not encrypted): incident, agency, expiry and key only."""
    if not key or len(key) > KEY_MAX:
        raise ValueError("a link key is 1 to 32 characters")
    now = now_ms if now_ms is not None else int(time.time() * 1000)
    link = Link(incident_id, agency, now + max(1, min(minutes, MAX_MINUTES)) * 60_000, key)
    token = _serializer(secret).dumps({"i": link.incident_id, "a": link.agency, "e": link.expires_ms,
                                       "k": link.key})
    return token, link


def read_link(secret: str | bytes, token: str, now_ms: int | None = None) -> Link:
    if not isinstance(token, str) or len(token) > 600:
        raise LinkRefused("malformed")
    try:
        data = _serializer(secret).loads(token)
    except BadSignature:
        raise LinkRefused("bad signature") from None
    # A token from before links were stored (it named its maker, "b", and had no key) is malformed:
    # it could not be revoked, so it is not honoured.
    if not (isinstance(data, dict) and isinstance(data.get("i"), int) and data.get("a") in ("112", "119")
            and isinstance(data.get("e"), int) and isinstance(data.get("k"), str)
            and 0 < len(data["k"]) <= KEY_MAX):
        raise LinkRefused("malformed")
    link = Link(data["i"], data["a"], data["e"], data["k"])
    if link.expired(now_ms):
        raise LinkRefused("expired")
    return link
