"""Short-lived signed tickets that let a logged-in page open the live socket.

The page fetches a ticket from the web server (which checks the session) and hands it to the
gateway, which runs in another process and only needs the shared secret to check it. A
cross-site page cannot read the ticket response, so it cannot open the socket as the user.

A ticket names the server-side session it was issued for ("sid"): the gateway closes the socket
when that session ends (logout, password change, disabled user, revoked wall token). Each ticket
has a unique id ("j") that the gateway claims in Redis once, so a ticket opens one socket only.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from config.settings import DATA_DIR

TICKET_MAX_AGE_S = 60
TICKET_KINDS = ("user", "device")
MAX_TICKET_CHARS = 1024  # ours are ~200; a longer one is not worth decoding
_FIELDS = {"u", "r", "sid", "k", "j"}


def secret_key() -> str:
    """CC_SECRET_KEY, else a random key kept in data/secret_key (created 0600 on first use)."""
    env = os.environ.get("CC_SECRET_KEY")
    if env:
        return env
    path = Path(DATA_DIR) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another part created it first: use theirs
            return _read_key(path)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    elif path.stat().st_mode & 0o077:
        path.chmod(0o600)  # left readable by an older version
    return _read_key(path)


def _read_key(path: Path) -> str:
    # A part that raced the creator can see the file before its key is written.
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.02)
    raise RuntimeError(f"{path} is empty; delete it to make a new key")


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt="cc-live-ticket")


def issue_ticket(secret: str, username: str, role: str, sid: str = "", kind: str = "user") -> str:
    """A signed ticket {"u", "r", "sid", "k", "j"}; `sid` is the web session it belongs to."""
    if kind not in TICKET_KINDS:
        raise ValueError(f"unknown ticket kind {kind!r}")
    return _serializer(secret).dumps({"u": username, "r": role, "sid": sid, "k": kind,
                                      "j": secrets.token_urlsafe(16)})


def verify_ticket(secret: str, ticket: str, max_age: int = TICKET_MAX_AGE_S) -> dict | None:
    """The payload of a genuine, unexpired ticket of today's shape; None for anything else."""
    if not isinstance(ticket, str) or len(ticket) > MAX_TICKET_CHARS:
        return None
    try:
        data = _serializer(secret).loads(ticket, max_age=max_age)
    except (BadSignature, ValueError, UnicodeError):
        return None
    if not isinstance(data, dict) or set(data) != _FIELDS:
        return None
    if not all(isinstance(data[f], str) for f in _FIELDS) or not data["u"] or not data["j"]:
        return None
    return data if data["k"] in TICKET_KINDS else None
