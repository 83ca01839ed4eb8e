"""Command line: `python -m vision detect IMAGE_OR_VIDEO` and `python -m vision run --camera ID`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from config.settings import ConfigError

if TYPE_CHECKING:
    from vision.detectors import Detector

VIDEO_EXT = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpg", ".mpg"}


PROGRESS_EVERY_S = 2.0  # wall seconds between progress lines on stderr
PROGRESS_AFTER_S = 2.0  # a clip analysed faster than this shows no progress at all


def _progress_line(done: int, total: int, started: float) -> str:
    elapsed = time.monotonic() - started
    fps = done / elapsed if elapsed > 0 else 0.0
    if total > 0:
        left = (total - done) / fps if fps > 0 else 0.0
        return f"frame {done}/{total} ({100 * done / total:.0f} %) {fps:.1f} fps, ~{left:.0f} s left"
    return f"frame {done} {fps:.1f} fps"


def detect_video(det: Detector, path: Path, limit: int | None, progress: bool) -> int:
    """Every frame of the clip (or the first `limit`): one JSON line per detection on stdout, progress
    on stderr, and a last line with what the clip held per class.

    The clip is also tracked (ByteTrack, majority class per track) so the summary counts objects,
    not boxes: a person walking through 300 frames is one person, and a sedan YOLO called a bus in
    one frame is still one car.
    """
    import cv2

    from vision.tracking import Tracker

    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        print(f"cannot open a video from {path}", file=sys.stderr)
        return 2
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)  # an estimate for some containers; 0 if unknown
    if limit is not None and total > 0:
        total = min(total, limit)
    tracker = Tracker(fps=fps if fps > 0 else 10.0)
    boxes: Counter[str] = Counter()
    track_class: dict[int, str] = {}  # a track's majority class at its last sighting = over its life
    started = time.monotonic()
    shown_at = started
    n = 0
    try:
        while limit is None or n < limit:
            ok, img = cap.read()
            if not ok:
                break
            dets = det.detect(img)
            for rec in dets.to_records():
                print(json.dumps({"frame": n, **rec}))
            boxes.update(dets.labels())
            tracked = tracker.update(dets)
            for tid, label in zip(tracked.track_id.tolist(), tracked.labels(), strict=True):
                track_class[int(tid)] = label
            n += 1
            now = time.monotonic()
            if progress and now - started >= PROGRESS_AFTER_S and now - shown_at >= PROGRESS_EVERY_S:
                shown_at = now
                sys.stdout.flush()  # keep stdout and stderr in order when both go to one terminal
                print(_progress_line(n, total, started), file=sys.stderr, flush=True)
    finally:
        cap.release()
    if progress and time.monotonic() - started >= PROGRESS_AFTER_S:
        print(_progress_line(n, total or n, started), file=sys.stderr, flush=True)
    summary = {"frames": n, "fps": round(fps, 2) if fps > 0 else None,
               "stopped_at_limit": limit is not None and n >= limit,
               "tracks": dict(sorted(Counter(track_class.values()).items())),
               "detections": dict(sorted(boxes.items()))}
    print(json.dumps({"summary": summary}))
    if n == 0:
        print(f"no frame could be read from {path}", file=sys.stderr)
        return 2
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from vision.config import load_vision_config
    from vision.detectors import detector_from_config

    if args.frames is not None and args.frames < 1:
        print("--frames must be at least 1", file=sys.stderr)
        return 2
    vs = load_vision_config().vision
    path = Path(args.path)
    if not path.exists():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    det = detector_from_config(vs, imgsz=args.imgsz, backend=args.backend)
    if path.suffix.lower() in VIDEO_EXT:
        return detect_video(det, path, args.frames, progress=not args.quiet)
    img = cv2.imread(str(path))
    if img is None:
        print(f"cannot read an image from {path}", file=sys.stderr)
        return 2
    dets = det.detect(img)
    for rec in dets.to_records():
        print(json.dumps(rec))
    print(json.dumps({"summary": {"frames": 1, "detections": dict(sorted(Counter(dets.labels()).items()))}}))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from vision.config import load_vision_config
    from vision.worker import CameraRunner, run_group

    cfg = load_vision_config()
    cam = cfg.camera(args.camera)
    redis_url = args.redis or os.environ.get("REDIS_URL")
    if not redis_url:
        from config.settings import get_settings

        redis_url = get_settings().redis.url
    if not redis_url:
        print("no Redis configured (--redis, REDIS_URL or redis.url): analysing without publishing",
              file=sys.stderr)

    def progress(runners: list[CameraRunner]) -> None:
        for r in runners:
            p, s = r.pipeline, r.source.stats
            line = (f"\r{cam.id}: {s.status} fps {p.analytics_fps():4.1f} frames {p.processed} "
                    f"inferred {p.inferred} people {p.tracks.labels().count('person')} events {p.events} "
                    f"infer {p.timings.infer:5.1f} ms gate {p.timings.gate:4.1f} ms bad {s.bad_frames}   ")
            sys.stderr.write(line)
            sys.stderr.flush()

    stop = threading.Event()
    try:
        run_group(redis_url, [cam.id], stop, progress=progress, max_frames=args.frames, cfg=cfg)
    except KeyboardInterrupt:
        stop.set()
    sys.stderr.write("\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    ap = argparse.ArgumentParser(prog="python -m vision", description="CCTV analytics")
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("detect", help="print detections as JSON lines, then a summary line per class")
    d.add_argument("path")
    d.add_argument("--backend", choices=["onnxruntime", "ultralytics"], default=None)
    d.add_argument("--imgsz", type=int, default=None)
    d.add_argument("--frames", type=int, default=None,
                   help="video: stop after this many frames (default: the whole clip)")
    d.add_argument("--quiet", action="store_true", help="video: no progress lines on stderr")
    r = sub.add_parser("run", help="run one camera's pipeline in the foreground")
    r.add_argument("--camera", required=True)
    r.add_argument("--redis", default=None, help="Redis URL (default: REDIS_URL or config)")
    r.add_argument("--frames", type=int, default=None, help="stop after this many analysed frames")
    args = ap.parse_args(argv)
    try:
        return cmd_detect(args) if args.cmd == "detect" else cmd_run(args)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
