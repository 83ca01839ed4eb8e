"""Short-lived signed tickets that let a logged-in page open the live socket.

The page fetches a ticket from the web server (which checks the session) and hands it to the
gateway, which runs in another process and only needs the shared secret to check it. A
cross-site page cannot read the ticket response, so it cannot open the socket as the user.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from config.settings import DATA_DIR

TICKET_MAX_AGE_S = 60


def secret_key() -> str:
    """CC_SECRET_KEY, else a random key kept in data/secret_key (created 0600 on first use)."""
    env = os.environ.get("CC_SECRET_KEY")
    if env:
        return env
    path = Path(DATA_DIR) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="cc-live-ticket")


def issue_ticket(secret: str, username: str, role: str) -> str:
    return _serializer(secret).dumps({"u": username, "r": role})


def verify_ticket(secret: str, ticket: str, max_age: int = TICKET_MAX_AGE_S) -> dict | None:
    try:
        data = _serializer(secret).loads(ticket, max_age=max_age)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and data.get("u") else None
