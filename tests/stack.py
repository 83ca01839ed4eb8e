"""Start `python app.py --demo` as a person would, on free ports and a temporary data folder.

The demo profile comes from the environment (CC_PROFILE=demo, what --demo sets), so a test can ask for
the deployment stack instead with extra_env={"CC_PROFILE": ""}. The simulator's wire ports are free
ports too, so two stacks can run on one machine: the demo overlay points the adapters at them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from spine.servers.managed import free_port
from tests.webtools import FAST_HASH_ENV

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
# The page's live socket is up (cc/panels.js sets the status's state).
LIVE = "() => document.getElementById('cc-live-status')?.dataset.state === 'live'"


@dataclass
class RunningStack:
    proc: subprocess.Popen
    data_dir: Path
    web_port: int
    gateway_port: int
    log_path: Path
    env: dict = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def admin_password(self) -> str:
        return (self.data_dir / "initial-admin-password").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def descendants(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def part(self, name: str) -> psutil.Process | None:
        """The live child process running `--only <name>` (zombies awaiting reaping don't count)."""
        for p in self.descendants():
            try:
                if p.status() != psutil.STATUS_ZOMBIE and f"--only {name}" in " ".join(p.cmdline()):
                    return p
            except psutil.Error:
                continue
        return None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_stack(tmp: Path, extra_env: dict[str, str] | None = None, timeout: float = 60,
                args: tuple[str, ...] = ()) -> RunningStack:
    """`args` go to app.py (for example ("--demo",) with extra_env={"CC_PROFILE": ""})."""
    web_port, gw_port = free_port(), free_port()
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    # The set-up put the demo clips and the exported model in the repo's data folder; share them.
    for shared in ("media", "models"):
        if (ROOT / "data" / shared).exists():
            (data / shared).symlink_to(ROOT / "data" / shared)
    env = {**os.environ, "CC_DATA_DIR": str(data), "CC_WEB__PORT": str(web_port),
           "CC_GATEWAY__PORT": str(gw_port), "CC_SIMULATOR__BUSES": "300", "CC_SIMULATOR__CAMERAS": "50",
           "CC_PROFILE": "demo", "CC_SIMULATOR__HTTP_PORT": str(free_port()),
           "CC_SIMULATOR__MAVLINK_PORT": str(free_udp_port()), "PYTHONUNBUFFERED": "1",
           **FAST_HASH_ENV, **(extra_env or {})}
    env.pop("CC_SECRET_KEY", None)  # the stack makes and shares its own key file
    log_path = tmp / "stack.log"
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args], cwd=ROOT, env=env,
                            stdout=log_path.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    stack = RunningStack(proc, data, web_port, gw_port, log_path, env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app.py exited early:\n{stack.log()}")
        try:
            with urllib.request.urlopen(f"{stack.base}/healthz", timeout=1) as r:
                if r.status == 200 and (data / "initial-admin-password").exists():
                    with urllib.request.urlopen(f"http://127.0.0.1:{gw_port}/healthz", timeout=1):
                        return stack
        except OSError:
            time.sleep(0.2)
    stack.stop(signal.SIGKILL)
    raise RuntimeError(f"stack did not come up in {timeout}s:\n{stack.log()}")


def sign_in(page: Page, stack: RunningStack, path: str, user: str = "admin", password: str | None = None,
            live: bool = False) -> None:
    """Open `path` as `user` (the stack's admin by default) through the login form, as a person does;
    a context already signed in goes straight there. `live`: also wait for the page's live socket."""
    page.goto(stack.base + path)
    if "/login" in page.url:
        page.fill("#username", user)
        page.fill("#password", password or stack.admin_password())
        page.click("#login-button")
        page.wait_for_url(stack.base + path)
    if live:
        page.wait_for_function(LIVE, timeout=20_000)
