"""Where the MQTT broker is and who we are to it.

Credentials come from the broker URL's userinfo (mqtt://user:pass@host:port, how the embedded
broker hands them out) or else from the environment (MQTT_USERNAME / MQTT_PASSWORD, for a
deployment's broker). Never from a file in the repository, and never logged: use redact().
"""

from __future__ import annotations

import os
import urllib.parse

from spine.servers.credentials import redact

__all__ = ["broker_address", "broker_credentials", "redact"]


def broker_address(url: str) -> tuple[str, int]:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp", ""):
        raise ValueError(f"broker_url {redact(url)!r}: only mqtt://host:port is supported")
    return parts.hostname or "127.0.0.1", parts.port or 1883


def broker_credentials(url: str) -> tuple[str, str | None] | None:
    """(username, password) for the broker, or None for an anonymous connection."""
    parts = urllib.parse.urlsplit(url)
    if parts.username:
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        return urllib.parse.unquote(parts.username), password
    user = os.environ.get("MQTT_USERNAME")
    if user:
        return user, os.environ.get("MQTT_PASSWORD")
    return None
