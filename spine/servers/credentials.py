"""Generated passwords for the embedded servers, kept in a 0600 file inside a 0700 folder.

Made once at first start and reused afterwards, so a restarted stack (and the CLI) reaches the same
private Redis and broker. Nothing here is ever written to the repository, put on a command line
(visible to every local user in /proc) or logged.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.parse
from collections.abc import Iterable
from pathlib import Path


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700: only this user may list or open what is inside."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Write a file that is 0600 from its first byte (no window in which it is world-readable)."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


class CredentialFile:
    """{"users": {name: password}, ...extra fields} in one private JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def passwords(self, names: Iterable[str]) -> dict[str, str]:
        """The password of every name, generating (and saving) those that are missing."""
        data = self.read()
        users = data.get("users") if isinstance(data.get("users"), dict) else {}
        changed = False
        for name in names:
            if not isinstance(users.get(name), str) or len(users[name]) < 16:
                users[name] = secrets.token_urlsafe(24)
                changed = True
        if changed or not self.path.exists():
            data["users"] = users
            write_private(self.path, json.dumps(data, indent=1))
        elif self.path.stat().st_mode & 0o077:
            os.chmod(self.path, 0o600)  # a copied or restored file: close it again
        return {n: users[n] for n in names}

    def update(self, **fields: object) -> None:
        data = self.read()
        data.update(fields)
        write_private(self.path, json.dumps(data, indent=1))


def with_userinfo(url: str, username: str, password: str) -> str:
    """scheme://user:pass@host:port/... (both parts percent-encoded)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = (f"{urllib.parse.quote(username, safe='')}:{urllib.parse.quote(password, safe='')}@{host}"
              + (f":{parts.port}" if parts.port else ""))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact(url: str) -> str:
    """A URL safe to log: the password replaced by ***."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
