"""A private Mosquitto broker, started where no broker answers at the configured URL.

Same life cycle as the embedded Redis (spine/servers/managed.py): a free port on 127.0.0.1, no
persistence, and the broker dies with its parent (PDEATHSIG), so a crashed app leaves no orphan.

No anonymous clients. Three users with passwords generated at first start (kept 0600 in
`<workdir>/credentials.json`, hashed in the broker's password file the way mosquitto_passwd does:
PBKDF2-SHA512, never on a command line) and per-topic ACLs:
    sensors  may only publish under each sensor topic prefix (the field gateways, the demo)
    feeds    may only read under those prefixes (the sensor adapter)
    admin    everything (tests, operators' tools)
"""

from __future__ import annotations

import base64
import getpass
import hashlib
import logging
import secrets
import shutil
import socket
from collections.abc import Sequence
from pathlib import Path

from spine.servers.credentials import CredentialFile, private_dir, with_userinfo, write_private
from spine.servers.managed import ManagedServer

log = logging.getLogger(__name__)

USERS = ("admin", "feeds", "sensors")
PBKDF2_ROUNDS = 101  # mosquitto 2.0's default for its $7$ hashes


def find_mosquitto() -> str:
    for candidate in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if candidate and Path(candidate).exists():
            return candidate
    raise RuntimeError("no mosquitto binary: apt-get install mosquitto, or set feeds.sensors.broker_url")


def broker_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when an MQTT broker answers a CONNECT there (any CONNACK, a refusal too), not just a port."""
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 2, 0, 10, 0, 0])  # v3.1.1, clean, no id
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(connect)
            return s.recv(4)[:1] == b"\x20"
    except OSError:
        return False


def password_hash(password: str, salt: bytes | None = None) -> str:
    """The `$7$` line format of mosquitto_passwd: PBKDF2-HMAC-SHA512 over a 12-byte salt."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ROUNDS)
    return f"$7${PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def acl_text(prefixes: Sequence[str]) -> str:
    lines = ["user admin", "topic readwrite #", "", "user feeds"]
    lines += [f"topic read {p}#" for p in prefixes]
    lines += ["", "user sensors"]
    lines += [f"topic write {p}#" for p in prefixes]
    return "\n".join(lines) + "\n"


class EmbeddedMosquitto(ManagedServer):
    name = "MQTT broker"
    log_name = "mosquitto.log"

    def __init__(self, workdir: Path, port: int | None = None,
                 topic_prefixes: Sequence[str] = ("incheon/",)) -> None:
        super().__init__(workdir, port)
        for p in topic_prefixes:
            if not p or any(ch in p for ch in "#+\n\r\0 "):
                raise ValueError(f"topic prefix {p!r}: no wildcards, spaces or control characters")
        self.prefixes = tuple(topic_prefixes)
        self.passwords = CredentialFile(workdir / "credentials.json").passwords(USERS)

    def url_for(self, user: str) -> str:
        return with_userinfo(f"mqtt://127.0.0.1:{self.port}", user, self.passwords[user])

    @property
    def url(self) -> str:
        """The admin URL (tests, tools); the adapter gets url_for("feeds"), publishers url_for("sensors")."""
        return self.url_for("admin")

    def command(self) -> list[str]:
        private_dir(self.workdir)
        pw, acl = self.workdir / "passwords", self.workdir / "acl"
        write_private(pw, "".join(f"{u}:{password_hash(p)}\n" for u, p in self.passwords.items()))
        write_private(acl, acl_text(self.prefixes))
        conf = self.workdir / "mosquitto.conf"
        # `user`: started as root, mosquitto would switch to the `mosquitto` user, which cannot read
        # our 0600 files; as anyone else this line changes nothing.
        write_private(conf, f"listener {self.port} 127.0.0.1\nallow_anonymous false\n"
                            f"password_file {pw}\nacl_file {acl}\nuser {getpass.getuser()}\n"
                            f"persistence false\nlog_dest file {self.workdir / self.log_name}\n"
                            "log_type error\nmax_packet_size 1048576\n")
        return [find_mosquitto(), "-c", str(conf)]

    def answers(self) -> bool:
        return broker_answers("127.0.0.1", self.port, 0.2)
