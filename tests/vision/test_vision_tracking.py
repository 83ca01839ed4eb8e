"""ByteTrack on consecutive frames of the real clip keeps ids stable."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_ids_stable_over_vtest_frames(onnx_detector, vtest_frames: list[np.ndarray]) -> None:
    from vision.tracking import Tracker

    tracker = Tracker(fps=10)
    seen: Counter[int] = Counter()
    history = []
    for frame in vtest_frames:
        people = tracker.update(onnx_detector.detect(frame)).of_class("person")
        history.append(people)
        seen.update(int(t) for t in people.track_id)
    assert max(len(p) for p in history) >= 3
    # The same person in consecutive frames (boxes overlapping strongly) always keeps its id.
    matched = 0
    for prev, cur in itertools.pairwise(history):
        for box, tid in zip(cur.xyxy, cur.track_id, strict=True):
            best = max(((_iou(box, pb), pt) for pb, pt in zip(prev.xyxy, prev.track_id, strict=True)),
                       default=(0.0, None))
            if best[0] > 0.5:
                matched += 1
                assert best[1] == tid, f"id switch {best[1]} -> {tid}"
    assert matched >= 2 * (len(vtest_frames) - 1)
    # People present from the start keep their ids through all 12 frames.
    assert sum(1 for n in seen.values() if n == len(vtest_frames)) >= 2


def test_trackers_are_per_camera(onnx_detector, vtest_frames: list[np.ndarray]) -> None:
    from vision.tracking import Tracker

    a, b = Tracker(), Tracker()
    ids_a = set(a.update(onnx_detector.detect(vtest_frames[0])).track_id.tolist())
    ids_b = set(b.update(onnx_detector.detect(vtest_frames[0])).track_id.tolist())
    assert ids_a == ids_b  # each camera numbers from 1: no shared state between trackers
