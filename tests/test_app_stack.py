"""The first command's stack: comes up with no configuration, Ctrl-C stops all of it."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import psutil
import pytest
import redis

from app import Stack
from config.settings import Settings
from spine.servers.embedded_redis import private_url
from spine.servers.redis_acl import PART_USER
from spine.servers.supervision import RestartPolicy
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
    # Each part reaches Redis as its own ACL user; none holds the admin password.
    admin = redis.Redis.from_url(private_url(stack.data_dir / "redis")).connection_pool.connection_kwargs
    for part, user in PART_USER.items():
        proc = stack.part(part)
        if proc is None:
            continue
        env = proc.environ()
        assert urllib.parse.urlsplit(env["REDIS_URL"]).username == user, part
        assert admin["password"] not in " ".join(env.values()), part
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


FLAKY = """
import pathlib, sys, time
p = pathlib.Path(sys.argv[1])
n = int(p.read_text()) + 1 if p.exists() else 1
p.write_text(str(n))
if n == 5:
    time.sleep(2.0)   # one healthy run
elif n >= 7:
    time.sleep(120)   # then it stays up
sys.exit(3)
"""


def _supervised(stack: Stack) -> threading.Thread:
    stack.start()
    t = threading.Thread(target=stack.supervise, daemon=True)
    t.start()
    return t


def test_back_off_grows_for_a_crash_loop_and_resets_after_a_healthy_run(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    stack = Stack(Settings(), commands={"flaky": [sys.executable, "-S", "-c", FLAKY, str(counter)]},
                  policy=RestartPolicy(min_s=0.2, max_s=5.0, healthy_s=1.0), tick_s=0.05)
    _supervised(stack)
    try:
        deadline = time.monotonic() + 30
        while len(stack.spawned) < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        waits = [wait for _, _, wait in stack.deaths]
        assert len(stack.spawned) == 7, (stack.spawned, stack.deaths)
        # Four quick deaths: 0.2, 0.4, 0.8, 1.6 s; the 5th run was healthy: back to 0.2, then 0.4.
        assert waits == [0.2, 0.4, 0.8, 1.6, 0.2, 0.4]
        starts = [t for _, t in stack.spawned]
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(g >= w for g, w in zip(gaps, waits, strict=True)), (gaps, waits)  # deadlines kept
    finally:
        stack.stop()


def test_redis_is_restarted_at_once_while_a_part_waits_out_its_back_off(tmp_path: Path) -> None:
    stack = Stack(Settings(), commands={"dies": [sys.executable, "-S", "-c", "raise SystemExit(1)"]},
                  policy=RestartPolicy(min_s=20.0, max_s=60.0))
    _supervised(stack)
    try:
        deadline = time.monotonic() + 10
        while "dies" not in stack.restart_at and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "dies" in stack.restart_at  # waiting 20 s to restart it
        assert stack.redis is not None
        client = redis.Redis.from_url(stack.redis.url, socket_timeout=0.5, socket_connect_timeout=0.5)
        old = stack.redis.proc
        old.kill()
        old.wait()
        killed = time.monotonic()
        while True:
            try:
                client.ping()
                break
            except (redis.RedisError, OSError):
                assert time.monotonic() - killed < 5, "Redis was not restarted"
                time.sleep(0.02)
        took = time.monotonic() - killed
        assert took < 1.0, f"Redis back after {took:.2f}s"
        assert "dies" in stack.restart_at  # the part is still waiting: Redis did not queue behind it
    finally:
        stack.stop()
