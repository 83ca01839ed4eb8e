"""The demo is a configuration profile: `app.py --demo` (the README's first command) starts the simulator
and the adapters read it; `app.py` alone starts the same stack without it."""

from __future__ import annotations

import time
from pathlib import Path

import redis

from tests.stack import free_udp_port, start_stack


def _parts(stack) -> set[str]:
    names = set()
    for p in stack.descendants():
        cmd = p.cmdline()
        if "--only" in cmd:
            names.add(cmd[cmd.index("--only") + 1])
    return names


def test_demo_flag_starts_the_simulator_and_the_adapters_read_it(tmp_path: Path, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    stack = start_stack(tmp_path, {"REDIS_URL": redis_url, "CC_PROFILE": ""}, args=("--demo",))
    try:
        assert _parts(stack) == {"simulator", "feeds", "vision", "alarms", "incidents", "history",
                                "gateway", "web"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (client.hlen("cc:v1:state:bus") == 300
                                                   and client.hlen("cc:v1:transit:shapes")):
            time.sleep(0.3)
        # Buses arrive through the GTFS-realtime adapter, which only the overlay pointed at the simulator.
        assert client.hlen("cc:v1:state:bus") == 300
        assert b'"src":"gtfs_rt"' in next(iter(client.hvals("cc:v1:state:bus")))
        assert client.hlen("cc:v1:transit:shapes") > 0
    finally:
        stack.stop()


def test_without_the_demo_profile_no_simulator_runs(tmp_path: Path, redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    # The deployment's drone port is 14550; a free one keeps parallel test stacks apart.
    stack = start_stack(tmp_path, {"REDIS_URL": redis_url, "CC_PROFILE": "",
                                   "CC_FEEDS__DRONE__LISTEN": f"127.0.0.1:{free_udp_port()}"})
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "field feeds running" not in stack.log():
            time.sleep(0.3)
        assert _parts(stack) == {"feeds", "vision", "alarms", "incidents", "history", "gateway", "web"}
        log = stack.log()
        # The shipped configuration lists no bells (the demo's are in its overlay): no bell adapter.
        assert "field feeds running: mavlink, mqtt_sensors\n" in log, log[-3000:]
        assert "bells: no feeds.bells.bells registry configured; not started" in log
        assert "transit: no feeds.transit.urls configured; not started" in log
        assert client.hlen("cc:v1:state:bus") == 0  # no transit URL configured: nothing to read
    finally:
        stack.stop()
