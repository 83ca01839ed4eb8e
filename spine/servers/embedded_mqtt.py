"""A private Mosquitto broker, started where no broker answers at the configured URL.

Same life cycle as the embedded Redis (spine/managed_server.py): a free port on 127.0.0.1, no
persistence, and the broker dies with its parent (PDEATHSIG), so a crashed app leaves no orphan.
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

from spine.servers.managed import ManagedServer

log = logging.getLogger(__name__)


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("no mosquitto binary: apt-get install mosquitto, or set feeds.sensors.broker_url")


def broker_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts an MQTT CONNECT there (CONNACK back), not just a TCP port."""
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 0])  # v3.1.1, clean, no id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(connect)
            return s.recv(4)[:1] == b"\x20"
    except OSError:
        return False


class EmbeddedMosquitto(ManagedServer):
    name = "MQTT broker"
    log_name = "mosquitto.log"

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"log_dest file {self.workdir / self.log_name}\nlog_type error\n"
                        "max_packet_size 1048576\n", encoding="utf-8")
        return [find_mosquitto(), "-c", str(conf)]

    def answers(self) -> bool:
        return broker_answers("127.0.0.1", self.port, 0.2)
