"""The first command's stack: comes up with no configuration, Ctrl-C stops all of it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import redis

from spine.servers.embedded_redis import private_url
from tests.stack import ROOT, start_stack


def test_embedded_stack_starts_everything_and_ctrl_c_leaves_no_orphan(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    children = stack.descendants()
    cmdlines = [" ".join(p.cmdline()) for p in children]
    for part in ("--only simulator", "--only gateway", "--only web", "redis-server"):
        assert any(part in c for c in cmdlines), (part, cmdlines)
    # The private Redis fills with the simulated city within seconds.
    client = redis.Redis.from_url(private_url(stack.data_dir / "redis"))
    deadline = time.monotonic() + 20
    while client.hlen("cc:v1:state:bus") < 300 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert client.hlen("cc:v1:state:bus") == 300
    assert stack.stop(signal.SIGINT) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], [p.cmdline() for p in alive]


def test_a_dying_part_is_restarted(tmp_path: Path) -> None:
    stack = start_stack(tmp_path)
    try:
        gateway = stack.part("gateway")
        gateway.kill()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            again = stack.part("gateway")
            if again and again.pid != gateway.pid:
                break
            time.sleep(0.2)
        else:
            pytest.fail(f"gateway was not restarted:\n{stack.log()}")
    finally:
        stack.stop()


def test_invalid_configuration_stops_with_a_readable_message(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, str(ROOT / "app.py")], cwd=ROOT, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "CC_DATA_DIR": str(tmp_path), "CC_WEB__PORT": "http"},
                       timeout=30)
    assert r.returncode == 2
    assert "web.port" in r.stderr and "Traceback" not in r.stderr


def test_user_cli_creates_a_user_that_can_log_in(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "CC_DATA_DIR": str(tmp_path)}
    add = subprocess.run([sys.executable, str(ROOT / "app.py"), "user", "add", "choi", "--role", "commander",
                          "--password-stdin"], input="tablet-pass-1\n", cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert add.returncode == 0, add.stderr
    listing = subprocess.run([sys.executable, str(ROOT / "app.py"), "user", "list"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=30)
    assert "choi\tcommander\tactive" in listing.stdout
    again = subprocess.run([sys.executable, str(ROOT / "app.py"), "user", "add", "choi", "--role", "operator",
                            "--password-stdin"], input="tablet-pass-1\n", cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=30)
    assert again.returncode == 1 and "exists" in again.stderr
