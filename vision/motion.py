"""Motion gate: skip inference on still frames (the Frigate idea), cheaply.

Compares a small blurred greyscale copy of each frame with a running background; the share of
changed pixels wakes the detector. A still scene is still checked every `keepalive_s` so dwell
timers advance and tracks do not expire.
"""

from __future__ import annotations

import cv2
import numpy as np


class MotionGate:
    def __init__(self, threshold: float = 0.002, keepalive_s: float = 1.0, width: int = 160,
                 pixel_delta: int = 20, alpha: float = 0.2) -> None:
        self.threshold = threshold  # share of pixels that must change
        self.keepalive_s = keepalive_s
        self.width = width
        self.pixel_delta = pixel_delta  # grey levels; above sensor noise
        self.alpha = alpha  # background adaptation rate (lighting drift)
        self._bg: np.ndarray | None = None
        self._last_open = -1e18
        self.last_score = 0.0
        self.passed = 0
        self.skipped = 0

    def _small(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        small = cv2.resize(frame, (self.width, max(1, int(h * self.width / w))), interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
        return cv2.GaussianBlur(grey, (5, 5), 0).astype(np.float32)

    def check(self, frame: np.ndarray, now_s: float) -> bool:
        """True when this frame should go to the detector."""
        small = self._small(frame)
        if self._bg is None or self._bg.shape != small.shape:
            self._bg = small
            score = 1.0
        else:
            diff = cv2.absdiff(small, self._bg)
            score = float(np.count_nonzero(diff > self.pixel_delta)) / diff.size
            cv2.accumulateWeighted(small, self._bg, self.alpha)
        self.last_score = score
        if score >= self.threshold or now_s - self._last_open >= self.keepalive_s:
            self._last_open = now_s
            self.passed += 1
            return True
        self.skipped += 1
        return False
