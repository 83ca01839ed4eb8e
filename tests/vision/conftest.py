"""Vision fixtures: real weights, the real clip, detectors built once per session.

The shared conftest points CC_DATA_DIR at a temporary folder, so the set-up's assets (the clip in
data/media, the ONNX model in data/models) are taken from the repository's data folder here.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from config.settings import REPO_ROOT
from vision.config import VisionSettings

ASSETS = REPO_ROOT / "data"
VTEST = ASSETS / "media" / "vtest.avi"
ONNX = ASSETS / "models" / "yolov8n.onnx"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path} missing: run scripts/setup_vision.sh first")
    return path


@pytest.fixture(scope="session")
def vision_settings(tmp_path_factory: pytest.TempPathFactory) -> VisionSettings:
    return VisionSettings(onnx_model=str(_need(ONNX)), imgsz=320,
                          snapshot_dir=str(tmp_path_factory.mktemp("snapshots")))


@pytest.fixture(scope="session")
def bus_image() -> np.ndarray:
    from vision.weights import sample_image

    img = cv2.imread(str(sample_image()))
    assert img is not None
    return img


@pytest.fixture(scope="session")
def vtest_frames() -> list[np.ndarray]:
    """The first 12 consecutive frames of vtest.avi (10 fps)."""
    cap = cv2.VideoCapture(str(_need(VTEST)))
    frames = []
    while len(frames) < 12:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 12
    return frames


@pytest.fixture(scope="session")
def onnx_detector(vision_settings: VisionSettings):
    from vision.detectors import detector_from_config

    return detector_from_config(vision_settings, backend="onnxruntime")


@pytest.fixture(scope="session")
def onnx_detector_640(vision_settings: VisionSettings):
    from vision.detectors import detector_from_config

    return detector_from_config(vision_settings, imgsz=640, backend="onnxruntime")
