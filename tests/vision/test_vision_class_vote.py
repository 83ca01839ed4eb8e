"""A track's class is the majority over its life: ClassVotes, the real ByteTrack wrapper and the rule
engine on synthetic detections, and the whole pipeline with a scripted detector (a sedan YOLO calls a
bus when first seen and on the frame it crosses the counting line)."""

from __future__ import annotations

import numpy as np

from vision.config import Camera, VisionSettings
from vision.detections import Detections
from vision.rules import RuleEngine
from vision.tracking import ClassVotes, Tracker

NAMES = {0: "person", 2: "car", 5: "bus", 7: "truck"}
CAR, BUS, TRUCK = 2, 5, 7
W, H = 1000, 1000
LINE = {"id": "l", "a": [0.5, 0.1], "b": [0.5, 0.9]}


def _cam(**kw) -> Camera:
    return Camera(id="t", name="T", lat=37.4, lon=126.6, source="x.avi", **kw)


def _box(x: float, y: float = 0.6, w: float = 0.12, h: float = 0.1) -> list[float]:
    """A box in pixels from its bottom-centre (x, y) and size in frame fractions."""
    return [(x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H]


def _dets(boxes: list[list[float]], classes: list[int], conf: float | list[float] = 0.9,
          track_ids: list[int] | None = None) -> Detections:
    confs = np.array(conf if isinstance(conf, list) else [conf] * len(boxes), np.float32)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), confs, np.array(classes, int), NAMES,
                      None if track_ids is None else np.array(track_ids, int))


# ---- ClassVotes ------------------------------------------------------------------------------------

def test_votes_majority_over_life_not_first_sight() -> None:
    v = ClassVotes()
    seq = [BUS, CAR, CAR, BUS, CAR]
    out = [int(v.update(np.array([1]), np.array([c]), np.array([0.8]))[0]) for c in seq]
    # bus first; 1:1 after frame 2 (equal confidence: the first seen keeps it); then car leads.
    assert out == [BUS, BUS, CAR, CAR, CAR]
    assert v.tally(1) == {BUS: 2, CAR: 3}


def test_votes_tie_goes_to_higher_summed_confidence() -> None:
    v = ClassVotes()
    v.update(np.array([1]), np.array([BUS]), np.array([0.4]))
    assert int(v.update(np.array([1]), np.array([CAR]), np.array([0.9]))[0]) == CAR


def test_votes_are_per_track_and_forgotten_after_absence() -> None:
    v = ClassVotes(forget_frames=3)
    v.update(np.array([1, 2]), np.array([CAR, BUS]), np.array([0.9, 0.9]))
    assert v.majority(1) == CAR and v.majority(2) == BUS
    for _ in range(4):
        v.update(np.array([2]), np.array([BUS]), np.array([0.9]))
    assert v.majority(1) is None and v.majority(2) == BUS and len(v) == 1


# ---- the real ByteTrack wrapper on synthetic boxes -------------------------------------------------

def test_tracker_reports_majority_class_through_a_one_frame_misclassification() -> None:
    tr = Tracker(fps=10)
    classes = [CAR, CAR, CAR, BUS, CAR, CAR]
    got = []
    for i, c in enumerate(classes):
        out = tr.update(_dets([_box(0.2 + 0.02 * i)], [c]))
        assert len(out) == 1
        got.append((int(out.track_id[0]), out.labels()[0]))
    assert len({tid for tid, _ in got}) == 1  # ByteTrack kept one id through the class change
    assert [label for _, label in got] == ["car"] * len(classes)


def test_tracker_relabels_a_track_first_seen_as_bus() -> None:
    tr = Tracker(fps=10)
    labels = [tr.update(_dets([_box(0.2 + 0.02 * i)], [c], conf=0.7)).labels()[0]
              for i, c in enumerate([BUS, CAR, CAR, CAR])]
    assert labels[0] == "bus" and labels[2:] == ["car", "car"]


# ---- the rule engine follows the (majority) class, and moves counts when it changes ----------------

def _feed(eng: RuleEngine, xs: list[float], classes: list[int], tid: int = 1, t0: float = 0.0) -> list:
    hits = []
    for i, (x, c) in enumerate(zip(xs, classes, strict=True)):
        hits += eng.update(_dets([_box(x)], [c], track_ids=[tid]), t0 + 0.2 * i, (W, H))
    return hits


def test_rules_count_a_track_under_its_class_not_its_first_frames() -> None:
    eng = RuleEngine(_cam(lines=[LINE]))
    # The tracker reported "bus" on the first frame only (its majority then), "car" from the second.
    hits = _feed(eng, [0.3, 0.4, 0.6, 0.7], [BUS, CAR, CAR, CAR])
    assert eng.counts_plain() == {"l": {"car": {"in": 1, "out": 0}}}
    assert [h.props["class"] for h in hits if h.type == "line_crossing"] == ["car"]


def test_rules_move_a_counted_crossing_when_the_majority_changes_later() -> None:
    eng = RuleEngine(_cam(lines=[LINE]))
    # Crossed while the majority still said bus; later frames make it a car.
    _feed(eng, [0.45, 0.55, 0.6, 0.65, 0.7], [BUS, BUS, BUS, CAR, CAR])
    assert eng.counts_plain() == {"l": {"car": {"in": 1, "out": 0}}}
    _feed(eng, [0.3, 0.6], [CAR, CAR], tid=2, t0=5.0)
    assert eng.counts_plain() == {"l": {"car": {"in": 2, "out": 0}}}


def test_rules_count_a_track_whose_majority_becomes_a_counted_class() -> None:
    eng = RuleEngine(_cam(lines=[{**LINE, "classes": ["car"]}]))
    _feed(eng, [0.4, 0.6, 0.65], [TRUCK, TRUCK, TRUCK])  # trucks are not counted on this line
    assert eng.counts_plain().get("l", {}) == {}
    _feed(eng, [0.7, 0.72], [CAR, CAR], t0=1.0)  # the same track, now a car by the majority
    assert eng.counts_plain() == {"l": {"car": {"in": 1, "out": 0}}}


# ---- the pipeline end to end: detector -> ByteTrack -> votes -> rules ------------------------------

class _ScriptedDetector:
    """Plays back per-frame detections, as YOLO would return them for a sedan driving right."""

    names = NAMES

    def __init__(self, frames: list[Detections]) -> None:
        self.frames = iter(frames)

    def detect(self, image: np.ndarray) -> Detections:
        return next(self.frames)


def test_pipeline_counts_sedan_called_bus_in_some_frames_as_car(tmp_path) -> None:
    from vision.pipeline import CameraPipeline

    xs = [0.30, 0.36, 0.42, 0.48, 0.54, 0.60, 0.66, 0.72]
    # Called a bus when first seen and again on the frame it crosses the line; a car otherwise.
    classes = [BUS, CAR, CAR, CAR, BUS, CAR, CAR, CAR]
    det = _ScriptedDetector([_dets([_box(x)], [c]) for x, c in zip(xs, classes, strict=True)])
    cam = _cam(lines=[LINE], fps=5)
    settings = VisionSettings(onnx_model="unused.onnx", snapshot_dir=str(tmp_path))
    pipe = CameraPipeline(cam, settings, det)
    frame = np.full((H, W, 3), 90, np.uint8)
    crossings = []
    for i in range(len(xs)):
        # Frames farther apart than the gate's keep-alive, so each one reaches the detector.
        res = pipe.process(frame, 1000.0 + (settings.keepalive_s + 0.1) * i)
        assert res.inferred
        crossings += [h for h in res.hits if h.type == "line_crossing"]
    assert pipe.errors == 0
    assert pipe.rules.counts_plain() == {"l": {"car": {"in": 1, "out": 0}}}
    assert [h.props["class"] for h in crossings] == ["car"]
