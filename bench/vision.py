"""Vision benchmark: per-frame cost split into decode, gate, inference, tracking (and output), for
ultralytics and onnxruntime at 320 and 640 input, on the real clip (vtest.avi), one thread.

Cameras per core at 5 fps with the gate: the reader decodes every source frame (10 fps here), the
gate checks 5 frames/s, the detector and tracker run on the frames the gate passes, and every
analysed frame is annotated and JPEG-encoded for the browser:
    per-camera ms per second = 10*decode + 5*(gate + output) + 5*pass_rate*(inference + tracking)
    cams_per_core = 1000 / that.

The last line is the summary for the faster backend:
    vision ms_per_frame_320=<n> ms_per_frame_640=<n> backend=<name> cams_per_core=<n>
where ms_per_frame is decode + gate + inference + tracking for one analysed frame.

    python bench/vision.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2

from config.settings import REPO_ROOT
from vision import runtime
from vision.config import Camera, VisionSettings

SOURCE_FPS = 10.0
ANALYTICS_FPS = 5.0


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000 if samples else 0.0


def load_frames(path: Path, n: int) -> tuple[list, float]:
    cap = cv2.VideoCapture(str(path))
    frames, times = [], []
    while len(frames) < n:
        t = time.perf_counter()
        ok, img = cap.read()
        times.append(time.perf_counter() - t)
        if not ok:
            break
        frames.append(img)
    cap.release()
    return frames, _median_ms(times)


def gate_cost(frames: list) -> tuple[float, float]:
    """Median gate ms and the share of frames it passes, at 5 fps from the 10 fps clip."""
    from vision.motion import MotionGate

    gate = MotionGate()
    times, passed = [], 0
    sampled = frames[:: int(SOURCE_FPS / ANALYTICS_FPS)]
    for i, f in enumerate(sampled):
        t = time.perf_counter()
        passed += gate.check(f, i / ANALYTICS_FPS)
        times.append(time.perf_counter() - t)
    return _median_ms(times[1:]), passed / max(1, len(sampled))


def output_cost(frames: list, vs: VisionSettings) -> float:
    from vision.annotate import draw, encode_jpeg
    from vision.detections import Detections

    cam = Camera(id="b", name="bench", lat=37.4, lon=126.6, source="x")
    times = []
    for f in frames[:10]:
        t = time.perf_counter()
        encode_jpeg(draw(f.copy(), Detections.empty(), cam), vs.frame_max_width, vs.jpeg_quality)
        times.append(time.perf_counter() - t)
    return _median_ms(times)


def detector_cost(backend: str, imgsz: int, frames: list, vs: VisionSettings) -> tuple[float, float]:
    from vision.detectors import detector_from_config
    from vision.tracking import Tracker

    det = detector_from_config(vs, imgsz=imgsz, backend=backend)
    for f in frames[:2]:
        det.detect(f)  # warm-up
    tracker = Tracker(fps=ANALYTICS_FPS)
    infer, track = [], []
    for f in frames[:: int(SOURCE_FPS / ANALYTICS_FPS)]:
        t0 = time.perf_counter()
        d = det.detect(f)
        t1 = time.perf_counter()
        tracker.update(d)
        t2 = time.perf_counter()
        infer.append(t1 - t0)
        track.append(t2 - t1)
    return _median_ms(infer), _median_ms(track)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="vision per-frame costs")
    ap.add_argument("--quick", action="store_true", help="fewer frames (under a minute)")
    ap.add_argument("--clip", type=Path, default=REPO_ROOT / "data" / "media" / "vtest.avi")
    args = ap.parse_args(argv)
    runtime.prepare(threads=1)
    vs = VisionSettings(onnx_model=str(REPO_ROOT / "data" / "models" / "yolov8n.onnx"))
    n = 24 if args.quick else 120
    frames, decode = load_frames(args.clip, n)
    if not frames:
        print(f"cannot read {args.clip}: run scripts/setup_vision.sh", file=sys.stderr)
        return 2
    gate, pass_rate = gate_cost(frames)
    out = output_cost(frames, vs)
    print(f"clip {args.clip.name}: {frames[0].shape[1]}x{frames[0].shape[0]}, {len(frames)} frames; "
          f"decode {decode:.1f} ms, gate {gate:.2f} ms (passes {pass_rate:.0%} at 5 fps), "
          f"annotate+jpeg {out:.1f} ms")
    print(f"{'backend':<12} {'imgsz':>5} {'decode':>7} {'gate':>6} {'infer':>7} {'track':>6} {'total':>7} "
          f"{'cams/core@5fps':>15}")
    results: dict[tuple[str, int], tuple[float, float]] = {}
    for backend in ("onnxruntime", "ultralytics"):
        for imgsz in (320, 640):
            infer, track = detector_cost(backend, imgsz, frames, vs)
            total = decode + gate + infer + track
            per_cam = SOURCE_FPS * decode + ANALYTICS_FPS * (gate + out) + ANALYTICS_FPS * pass_rate * (
                infer + track)
            cams = 1000.0 / per_cam
            results[(backend, imgsz)] = (total, cams)
            print(f"{backend:<12} {imgsz:>5} {decode:>7.1f} {gate:>6.2f} {infer:>7.1f} {track:>6.2f} "
                  f"{total:>7.1f} {cams:>15.1f}")
    best = min(("onnxruntime", "ultralytics"), key=lambda b: results[(b, 320)][0])
    ms320, cams = results[(best, 320)]
    ms640 = results[(best, 640)][0]
    print(f"vision ms_per_frame_320={ms320:.1f} ms_per_frame_640={ms640:.1f} backend={best} "
          f"cams_per_core={cams:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
