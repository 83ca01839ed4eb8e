"""A private Mosquitto broker, started where no broker answers at the configured URL.

Same pattern as feeds/embedded_redis.py: a free port on 127.0.0.1, no persistence, and the broker
dies with its parent (PDEATHSIG), so a crashed app leaves no orphan listening.
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

from feeds.embedded_redis import die_with_parent, free_port

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


class EmbeddedMosquitto:
    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
                        f"log_dest file {self.workdir / 'mosquitto.log'}\nlog_type error\n"
                        "max_packet_size 1048576\n", encoding="utf-8")
        binary = find_mosquitto()
        self.proc = subprocess.Popen([binary, "-c", str(conf)], preexec_fn=die_with_parent,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited at start (see {self.workdir}/mosquitto.log)")
            if broker_answers("127.0.0.1", self.port, 0.2):
                log.info("private MQTT broker (%s) on port %d", binary, self.port)
                return self.url
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"mosquitto did not answer within {timeout}s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> EmbeddedMosquitto:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
