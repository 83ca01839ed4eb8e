"""Set-up step (run by scripts/setup_vision.sh): check the weights, make the second demo clip,
export the ONNX model. Each part is skipped when its output exists, so it is safe to run again.

    python -m vision.setup_assets [--data DIR] [--force]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from config.settings import DATA_DIR, ConfigError

log = logging.getLogger("vision.setup")

PAN_CLIP = "bus_pan.avi"


def make_pan_clip(out: Path, image: Path, seconds: float = 30.0, fps: float = 10.0,
                  size: tuple[int, int] = (640, 480), seed: int = 7) -> Path:
    """A camera panning slowly left-right-left across a real photo, with sensor-like noise.

    MJPG in AVI: OpenCV's wheels have no H.264 encoder, and MJPG decodes cheaply.
    """
    import cv2

    src = cv2.imread(str(image))
    if src is None:
        raise ConfigError(f"cannot read {image}")
    w, h = size
    scale = h / src.shape[0] * 1.0
    big = cv2.resize(src, (max(w + 2, int(src.shape[1] * scale)), h), interpolation=cv2.INTER_AREA)
    span = big.shape[1] - w
    rng = np.random.default_rng(seed)
    tmp = out.with_suffix(".tmp.avi")
    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter.fourcc(*"MJPG"), fps, (w, h))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MJPG video here")
    writer.set(cv2.VIDEOWRITER_PROP_QUALITY, 80)  # the noise makes high-quality MJPG large
    n = int(seconds * fps)
    for i in range(n):
        # Triangle wave, with a pause at both ends so the motion gate has still frames to skip.
        phase = (i / n) * 2.0
        pos = min(1.0, max(0.0, (phase if phase <= 1 else 2 - phase) * 1.25 - 0.125))
        x = round(pos * span)
        frame = big[:, x:x + w].astype(np.int16)
        frame += rng.normal(0, 3.0, frame.shape).astype(np.int16)
        writer.write(np.clip(frame, 0, 255).astype(np.uint8))
    writer.release()
    tmp.replace(out)
    return out


def export_onnx(weights: Path, out: Path, imgsz: int = 640) -> Path:
    """Export yolov8n to ONNX with dynamic input size, so 320x256 and 640x480 both run."""
    from vision import runtime

    runtime.prepare()
    from ultralytics import YOLO

    work = out.parent / "export-tmp"
    work.mkdir(parents=True, exist_ok=True)
    local = work / weights.name
    shutil.copyfile(weights, local)  # export writes next to the .pt; keep site-packages untouched
    produced = YOLO(str(local)).export(format="onnx", imgsz=imgsz, dynamic=True, simplify=True, verbose=False)
    Path(produced).replace(out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA_DIR)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    from vision.weights import resolve_weights, sample_image

    try:
        weights = resolve_weights(None)
        log.info("setup_vision: weights ok (%s, sha256 checked)", weights)
        media = args.data / "media"
        media.mkdir(parents=True, exist_ok=True)
        if args.force or not (media / PAN_CLIP).exists():
            make_pan_clip(media / PAN_CLIP, sample_image())
            log.info("setup_vision: wrote %s", media / PAN_CLIP)
        models = args.data / "models"
        models.mkdir(parents=True, exist_ok=True)
        if args.force or not (models / "yolov8n.onnx").exists():
            export_onnx(weights, models / "yolov8n.onnx")
            log.info("setup_vision: exported %s", models / "yolov8n.onnx")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
