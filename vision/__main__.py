"""Command line: `python -m vision detect IMAGE_OR_VIDEO` and `python -m vision run --camera ID`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
from pathlib import Path

from config.settings import ConfigError

VIDEO_EXT = {".avi", ".mp4", ".mkv", ".mov", ".webm", ".mjpg", ".mpg"}


def cmd_detect(args: argparse.Namespace) -> int:
    import cv2

    from vision.config import load_vision_config
    from vision.detectors import detector_from_config

    vs = load_vision_config().vision
    det = detector_from_config(vs, imgsz=args.imgsz, backend=args.backend)
    path = Path(args.path)
    if not path.exists():
        print(f"no such file: {path}", file=sys.stderr)
        return 2
    if path.suffix.lower() in VIDEO_EXT:
        cap = cv2.VideoCapture(str(path))
        n = 0
        while n < args.frames:
            ok, img = cap.read()
            if not ok:
                break
            for rec in det.detect(img).to_records():
                print(json.dumps({"frame": n, **rec}))
            n += 1
        cap.release()
        return 0
    img = cv2.imread(str(path))
    if img is None:
        print(f"cannot read an image from {path}", file=sys.stderr)
        return 2
    for rec in det.detect(img).to_records():
        print(json.dumps(rec))
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
    d = sub.add_parser("detect", help="print detections as JSON lines")
    d.add_argument("path")
    d.add_argument("--backend", choices=["onnxruntime", "ultralytics"], default=None)
    d.add_argument("--imgsz", type=int, default=None)
    d.add_argument("--frames", type=int, default=10, help="video: how many frames")
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
