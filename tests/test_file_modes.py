"""The database, the secret key and event snapshots are private to the service account (0600 files,
0700 folders), whatever umask the process was started with."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.store import Store
from tests.webtools import FAST_HASH_ENV, FAST_HASHER
from vision.snapshots import SnapshotStore

ROOT = Path(__file__).resolve().parent.parent


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022: files would be world-readable unless the code sets their modes."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_database_is_created_private(tmp_path: Path) -> None:
    folder = tmp_path / "fresh"
    store = Store(f"sqlite:///{folder / 'controlroom.db'}", FAST_HASHER)
    store.add_user("kim", "kim-password", "operator")
    assert mode(folder) == 0o700
    assert mode(folder / "controlroom.db") == 0o600


def test_a_readable_database_from_before_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    db.touch(mode=0o644)
    os.chmod(db, 0o644)
    Store(f"sqlite:///{db}", FAST_HASHER)
    assert mode(db) == 0o600


def test_secret_key_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import spine.tickets as tickets

    monkeypatch.delenv("CC_SECRET_KEY", raising=False)
    monkeypatch.setattr(tickets, "DATA_DIR", tmp_path / "data")
    key = tickets.secret_key()
    assert len(key) >= 32 and tickets.secret_key() == key  # made once, then reused
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "secret_key") == 0o600
    os.chmod(tmp_path / "data" / "secret_key", 0o644)  # left readable by an older version
    assert tickets.secret_key() == key
    assert mode(tmp_path / "data" / "secret_key") == 0o600


def test_event_snapshots_are_private(tmp_path: Path) -> None:
    snaps = SnapshotStore(tmp_path / "snapshots")
    assert snaps.save("ev-1", b"\xff\xd8jpeg\xff\xd9") == "ev-1"
    assert mode(tmp_path / "snapshots") == 0o700
    assert mode(tmp_path / "snapshots" / "ev-1.jpg") == 0o600


def test_cli_on_a_fresh_data_folder_keeps_it_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = {**os.environ, **FAST_HASH_ENV, "CC_DATA_DIR": str(data)}
    env.pop("DATABASE_URL", None)
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "user", "add", "kim", "--role", "operator",
                           "--password-stdin"], input="kim-password\n", env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert mode(data) == 0o700
    assert mode(data / "controlroom.db") == 0o600



def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("part", ["gateway", "web"])
def test_a_single_part_on_a_fresh_data_folder_keeps_it_private(tmp_path: Path, part: str) -> None:
    """`app.py --only <part>` with its database elsewhere (PostgreSQL in production) and the key
    from the environment: nothing else tightens data/, so main() must make it 0700 itself."""
    data = tmp_path / "data"
    env = {**os.environ, **FAST_HASH_ENV, "CC_DATA_DIR": str(data), "CC_SECRET_KEY": "k" * 48,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db' / 'web.db'}", "CC_WEB__PORT": str(free_port())}
    env.pop("REDIS_URL", None)  # the gateway stops at once for want of one; the web part serves
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--only", part], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not data.exists():
            assert time.monotonic() < deadline, "the part never made its data folder"
            time.sleep(0.05)
        time.sleep(0.5)  # past the moment between creating the folder and setting its mode
        assert mode(data) == 0o700
    finally:
        proc.terminate()
        proc.wait(timeout=10)
