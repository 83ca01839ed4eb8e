"""Privacy masking applied inside the worker, before any pixel leaves it (PIPA, standards 8.2).

Persons are covered by a heavy pixelation plus blur of their box grown by a margin: a plain mild
blur can often be undone or still identifies clothing and gait. Fixed privacy polygons (windows,
doorways) are filled the same way in every frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from vision.detections import Detections


def _obscure(region: np.ndarray) -> np.ndarray:
    h, w = region.shape[:2]
    if h < 2 or w < 2:
        return region
    # Down to ~6 px across, back up, then blur the blocks: no face or text survives.
    small = cv2.resize(region, (max(1, w // max(8, w // 6)), max(1, h // max(8, h // 6))),
                       interpolation=cv2.INTER_AREA)
    up = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    k = max(3, (min(w, h) // 4) | 1)
    return cv2.GaussianBlur(up, (k, k), 0)


def mask_boxes(frame: np.ndarray, boxes: np.ndarray, grow: float = 0.12) -> np.ndarray:
    """Obscure each box (x1, y1, x2, y2 pixels), grown by `grow` of its size on every side; in place."""
    h, w = frame.shape[:2]
    for x1, y1, x2, y2 in boxes:
        gx, gy = (x2 - x1) * grow, (y2 - y1) * grow
        a, b = int(max(0, np.floor(x1 - gx))), int(max(0, np.floor(y1 - gy)))
        c, d = int(min(w, np.ceil(x2 + gx))), int(min(h, np.ceil(y2 + gy)))
        if c > a and d > b:
            frame[b:d, a:c] = _obscure(frame[b:d, a:c])
    return frame


def mask_polygons(frame: np.ndarray, polygons: list[list[list[float]]]) -> np.ndarray:
    """Obscure fixed polygons given in frame fractions; in place."""
    if not polygons:
        return frame
    h, w = frame.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    for poly in polygons:
        pts = (np.array(poly, np.float32) * [w, h]).astype(np.int32)
        cv2.fillPoly(mask, [pts], 255)
    hidden = cv2.GaussianBlur(cv2.resize(cv2.resize(frame, (max(1, w // 24), max(1, h // 24))), (w, h)),
                              (15, 15), 0)
    frame[mask > 0] = hidden[mask > 0]
    return frame


def apply_privacy(frame: np.ndarray, persons: Detections | None, polygons: list[list[list[float]]],
                  fail_closed: bool) -> np.ndarray:
    """Return a masked copy. `fail_closed`: no current person boxes are known (detector not run yet
    or failing), so the whole frame is obscured rather than risk an unmasked person."""
    out = frame.copy()
    if fail_closed:
        return _obscure(out)
    if persons is not None and len(persons):
        mask_boxes(out, persons.xyxy)
    return mask_polygons(out, polygons)
