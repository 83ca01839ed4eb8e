"""No network at run time: every socket connection fails, and the detector, tracker, drawing with
ultralytics' fonts and the ONNX path still work."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from config.settings import REPO_ROOT


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    attempts: list = []
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address) -> None:
        if self.family == socket.AF_UNIX:
            return real_connect(self, address)
        attempts.append(address)
        raise OSError(f"network disabled in this test: {address}")

    def no_dns(*args, **kwargs):
        attempts.append(("dns", args[:1]))
        raise socket.gaierror("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", guarded)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    return attempts


def test_detect_track_plot_offline(no_network: list, vision_settings, bus_image) -> None:
    from vision.detectors import detector_from_config
    from vision.tracking import Tracker

    det = detector_from_config(vision_settings, backend="ultralytics")
    res = det.model.predict(bus_image, imgsz=320, verbose=False)[0]
    res.plot(pil=True)  # PIL drawing is what triggers ultralytics' font download
    tracks = Tracker().update(det.detect(bus_image))
    assert len(tracks) >= 3
    onnx = detector_from_config(vision_settings, backend="onnxruntime")
    assert "bus" in onnx.detect(bus_image).labels()
    assert no_network == []


SCRIPT = """
import socket, sys
def refuse(self, address):
    if self.family == socket.AF_UNIX:
        return REAL(self, address)
    print("CONNECT", address, flush=True)
    raise OSError("network disabled")
REAL = socket.socket.connect
socket.socket.connect = refuse
def no_dns(*a, **k):
    print("DNS", a[:1], flush=True)
    raise socket.gaierror("network disabled")
socket.getaddrinfo = no_dns
from vision import runtime
runtime.prepare()
import cv2
from vision.weights import resolve_weights, sample_image
from ultralytics import YOLO
m = YOLO(str(resolve_weights(None)))
img = cv2.imread(str(sample_image()))
r = m.track(img, imgsz=320, tracker="bytetrack.yaml", persist=True, verbose=False)[0]
r.plot(pil=True)
print("BOXES", len(r.boxes))
"""


def test_fresh_process_import_is_offline(tmp_path) -> None:
    """Import-time checks too: a new interpreter with the network cut before anything is imported."""
    env = {"PATH": "/usr/bin:/bin", "CC_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CONNECT" not in out.stdout and "DNS" not in out.stdout, out.stdout
    assert "BOXES" in out.stdout
