"""A real RTSP server for the demo and the tests: Debian's rtsp-server-perl, fed by one
`ffmpeg -re -stream_loop -1 -c copy` pusher per clip, so the demo's cameras are RTSP cameras
like a deployment's (no transcoding at run time: the clips are H.264 from the set-up).

Readers must use UDP (rtsp-server-perl answers TCP-interleaved requests with 400; VIDEO.md §4).
Everything listens on loopback. A pusher that dies (end of a broken file, server restart) is
started again by `supervise()`; `stop()` ends the server and the pushers this object started.

A deployment with go2rtc or MediaMTX does not need this: point `streams.main`/`streams.sub` of
config/cameras.yaml at that server (docs/vision.md).
"""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)


def port_free(host: str, port: int) -> bool:
    """Whether nobody listens on the TCP port. rtsp-server-perl binds with address reuse, so a
    second one on a taken port starts anyway and the two split the connections: check first."""
    with socket.socket() as s:
        # SO_REUSEADDR: connections of a server just stopped (TIME_WAIT) do not count, a listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """Children end with the worker even when it is killed (no orphaned server holding the ports)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def wait_port(host: str, port: int, timeout: float = 10.0) -> bool:
    """Wait until something listens on the port. Not by connecting: each connection that closes
    while the server has no mount makes rtsp-server-perl reset its RTP ports to its built-in 20000
    (RTSP::Server::housekeeping), where another stack's server may already be, and then every source
    fails (RECORD 404, then ANNOUNCE 403 on the stale mount)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not port_free(host, port):
            return True
        time.sleep(0.1)
    return False


class DemoRtspServer:
    def __init__(self, clips: dict[str, Path], client_port: int = 8556, source_port: int = 5545,
                 rtp_start_port: int = 20000, host: str = "127.0.0.1") -> None:
        self.clips = clips
        self.client_port = client_port
        self.source_port = source_port
        self.rtp_start_port = rtp_start_port
        self.host = host
        self.server: subprocess.Popen | None = None
        self.pushers: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.restarts = 0
        self._held = False

    @staticmethod
    def available() -> str | None:
        """None when both programs are installed, else what is missing."""
        missing = [p for p in ("rtsp-server-perl", "ffmpeg") if shutil.which(p) is None]
        return ", ".join(missing) or None

    def url(self, name: str) -> str:
        return f"rtsp://{self.host}:{self.client_port}/{name}"

    def start_server(self) -> None:
        if not port_free(self.host, self.client_port) or not port_free(self.host, self.source_port):
            self.server = None
            raise RuntimeError(f"ports {self.client_port}/{self.source_port} are taken (another stack's "
                               "server serves the same clips meanwhile)")
        self.server = subprocess.Popen(
            ["rtsp-server-perl", "--clientport", str(self.client_port), "--serverport", str(self.source_port),
             "--client_listen_address", self.host, "--source_listen_address", self.host,
             "--rtp_start_port", str(self.rtp_start_port), "--loglevel", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        ok = wait_port(self.host, self.source_port) and wait_port(self.host, self.client_port)
        if not ok or self.server.poll() is not None:
            raise RuntimeError(f"rtsp-server-perl did not open ports {self.client_port}/{self.source_port}")

    def _last_words(self, name: str) -> str:
        old = self.pushers.get(name)
        why = ""
        if old is not None and old.stderr is not None:
            if old.poll() is not None:  # it has exited: what it said last, for the log
                why = " | ".join(old.stderr.read().decode("utf-8", "replace").strip().splitlines()[-3:])[:400]
                if why:
                    log.warning("demo RTSP pusher %s said: %s", name, why)
            old.stderr.close()
        return why

    def _push(self, name: str) -> subprocess.Popen:
        return subprocess.Popen(
            ["ffmpeg", "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1",
             "-i", str(self.clips[name]), "-c", "copy", "-an", "-f", "rtsp", f"rtsp://{self.host}:{self.source_port}/{name}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent)

    def start(self) -> DemoRtspServer:
        missing = self.available()
        if missing:
            raise RuntimeError(f"demo RTSP server needs {missing} (scripts/setup_vision.sh installs them)")
        try:
            self.start_server()
            for name in self.clips:
                self.pushers[name] = self._push(name)
        except RuntimeError as exc:
            log.warning("demo RTSP server: %s; retrying in the background", exc)
        self._thread = threading.Thread(target=self._supervise, name="rtsp-demo", daemon=True)
        self._thread.start()
        log.info("demo RTSP server on rtsp://%s:%d/ (%s)", self.host, self.client_port, ", ".join(self.clips))
        return self

    def _supervise(self) -> None:
        while not self._stop.wait(1.0):
            if self.server is None or self.server.poll() is not None:
                if self._held:
                    continue  # killed on purpose (tests): restart_server() brings it back
                # Crashed, or never ours (another stack on this host holds the ports: its server
                # serves the same clips meanwhile). Take over when the ports are free again.
                for p in self.pushers.values():
                    if p.poll() is None:
                        p.kill()
                try:
                    self.start_server()
                except RuntimeError:
                    self._stop.wait(4.0)
                    continue
                for name in self.clips:
                    self.pushers[name] = self._push(name)
                continue
            stale = False
            for name, p in list(self.pushers.items()):
                if p.poll() is not None and not self._stop.is_set() and not self._held:
                    self.restarts += 1
                    if self.restarts <= 3 or self.restarts % 20 == 0:
                        log.warning("demo RTSP pusher %s ended (%s); restarting", name, p.returncode)
                    # rtsp-server-perl keeps a mount whose source broke off during its set-up, and
                    # refuses a new source there (403): only a fresh server clears it.
                    stale |= "403" in self._last_words(name)
                    self.pushers[name] = self._push(name)
            if stale and not self._stop.is_set():
                log.warning("demo RTSP server holds a stale mount; restarting it")
                try:
                    self.restart_server()
                except RuntimeError as exc:
                    log.warning("demo RTSP server: %s", exc)

    def kill_server(self) -> None:
        """Tests: the camera side goes away (as a camera rebooting) until restart_server()."""
        self._held = True
        if self.server is not None:
            self.server.kill()
            self.server.wait(5)
        for p in self.pushers.values():
            if p.poll() is None:
                p.kill()
                p.wait(5)

    def restart_server(self) -> None:
        self.kill_server()
        for name in self.clips:
            self._last_words(name)
        self.start_server()
        self._held = False
        for name in self.clips:
            self.pushers[name] = self._push(name)

    def stop(self) -> None:
        self._stop.set()
        for p in [*self.pushers.values(), self.server]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in [*self.pushers.values(), self.server]:
            if p is not None:
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self._thread is not None:
            self._thread.join(timeout=3)
