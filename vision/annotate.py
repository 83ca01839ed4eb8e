"""Drawing for the operator's view: boxes with class and track id, zones, lines, counts.

Plain OpenCV drawing (Hershey fonts, ASCII labels): no font files, no downloads.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.config import Camera
from vision.detections import Detections

COLORS = {"person": (80, 200, 255), "car": (255, 170, 60), "truck": (255, 120, 40), "bus": (255, 90, 90),
          "motorcycle": (200, 120, 255), "bicycle": (160, 255, 160)}


def draw(frame: np.ndarray, dets: Detections, camera: Camera, counts: dict | None = None,
         label: str = "") -> np.ndarray:
    """Draw on `frame` in place and return it."""
    h, w = frame.shape[:2]
    for zone in camera.zones:
        pts = (np.array(zone.polygon, np.float32) * [w, h]).astype(np.int32)
        cv2.polylines(frame, [pts], True, (0, 200, 255), 1, cv2.LINE_AA)
        cv2.putText(frame, zone.name or zone.id, tuple(int(v) for v in pts[0]), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 200, 255), 1, cv2.LINE_AA)
    for line in camera.lines:
        a = (int(line.a[0] * w), int(line.a[1] * h))
        b = (int(line.b[0] * w), int(line.b[1] * h))
        cv2.line(frame, a, b, (255, 0, 255), 2, cv2.LINE_AA)
        if counts and line.id in counts:
            tot_in = sum(d["in"] for d in counts[line.id].values())
            tot_out = sum(d["out"] for d in counts[line.id].values())
            cv2.putText(frame, f"in {tot_in} out {tot_out}", (a[0] + 4, a[1] + 14), cv2.FONT_HERSHEY_SIMPLEX,
                        0.45, (255, 0, 255), 1, cv2.LINE_AA)
    ids = dets.track_id if dets.track_id is not None else [None] * len(dets)
    for box, name, tid in zip(dets.xyxy, dets.labels(), ids, strict=True):
        x1, y1, x2, y2 = (int(v) for v in box)
        color = COLORS.get(name, (200, 200, 200))
        cv2.rectangle(frame, (x1, y1), (x2, y2), color, 2)
        text = name if tid is None else f"{name} #{int(tid)}"
        cv2.putText(frame, text, (x1, max(12, y1 - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, color, 1, cv2.LINE_AA)
    if label:
        cv2.putText(frame, label, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def encode_jpeg(frame: np.ndarray, max_width: int, quality: int) -> bytes:
    h, w = frame.shape[:2]
    if w > max_width:
        frame = cv2.resize(frame, (max_width, int(h * max_width / w)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()
