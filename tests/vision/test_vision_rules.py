"""Rules on scripted tracks (real RuleEngine, synthetic tracked boxes): debounced, fire once."""

from __future__ import annotations

import numpy as np

from vision.config import Camera
from vision.detections import Detections
from vision.rules import CROWD_REARM_S, RuleEngine

NAMES = {0: "person", 2: "car"}
W, H = 1000, 1000


def _cam(**kw) -> Camera:
    return Camera(id="t", name="T", lat=37.4, lon=126.6, source="x.avi", **kw)


def _frame(*objs: tuple[int, int, float, float, float, float]) -> Detections:
    """objs: (track_id, cls, x_centre, y_bottom, width, height) in frame fractions."""
    xyxy = np.array([[(x - w / 2) * W, (y - h) * H, (x + w / 2) * W, y * H] for _, _, x, y, w, h in objs],
                    np.float32).reshape(-1, 4)
    return Detections(xyxy, np.full(len(objs), 0.9, np.float32), np.array([o[1] for o in objs], int), NAMES,
                      np.array([o[0] for o in objs], int))


def _walk(engine: RuleEngine, tid: int, xs: list[float], y: float = 0.5, t0: float = 0.0, cls: int = 0,
          dt: float = 0.2) -> list:
    hits = []
    for i, x in enumerate(xs):
        hits += engine.update(_frame((tid, cls, x, y, 0.05, 0.15)), t0 + i * dt, (W, H))
    return hits


LINE = {"id": "l", "a": [0.5, 0.1], "b": [0.5, 0.9]}


def test_one_crossing_is_one_event_despite_jitter_on_the_line() -> None:
    eng = RuleEngine(_cam(lines=[LINE]))
    # Walks right, dithers around the line (inside the dead band and a little past it), goes on.
    xs = [0.30, 0.40, 0.48, 0.502, 0.498, 0.505, 0.497, 0.503, 0.52, 0.60, 0.70]
    hits = _walk(eng, 1, xs)
    crossings = [h for h in hits if h.type == "line_crossing"]
    assert len(crossings) == 1
    assert eng.counts_plain() == {"l": {"person": {"in": 1, "out": 0}}}


def test_counts_by_class_and_direction() -> None:
    eng = RuleEngine(_cam(lines=[LINE]))
    _walk(eng, 1, [0.3, 0.4, 0.6, 0.7])  # person left -> right
    _walk(eng, 2, [0.7, 0.6, 0.4, 0.3], t0=10)  # person right -> left
    _walk(eng, 3, [0.7, 0.6, 0.4, 0.3], t0=20)  # another one right -> left
    _walk(eng, 4, [0.3, 0.6], t0=30, cls=2)  # a car
    _walk(eng, 5, [0.3, 0.6], y=0.95, t0=40)  # passes beside the end of the segment: no count
    counts = eng.counts_plain()["l"]
    assert counts["person"] == {"in": 1, "out": 2}
    assert counts["car"] == {"in": 1, "out": 0}
    # a -> b points down the screen; "in" ends on the arrow's left as seen on screen: x > 0.5.


ZONE = [[0.6, 0.2], [0.9, 0.2], [0.9, 0.8], [0.6, 0.8]]


def test_intrusion_fires_once_per_visit_and_loitering_after_dwell() -> None:
    eng = RuleEngine(_cam(zones=[{"id": "z", "polygon": ZONE, "intrusion": ["person"], "loiter_s": 3}]))
    hits = _walk(eng, 1, [0.5, 0.7] + [0.75] * 25)  # enters, then stays 5 s
    types = [h.type for h in hits]
    assert types.count("zone_intrusion") == 1
    assert types.count("loitering") == 1
    hits = _walk(eng, 1, [0.4, 0.4, 0.7, 0.7], t0=10)  # leaves and comes back: a new visit
    assert [h.type for h in hits].count("zone_intrusion") == 1


def test_crowding_fires_once_until_it_clears() -> None:
    eng = RuleEngine(_cam(zones=[{"id": "z", "polygon": ZONE, "crowd_max": 2}]))
    crowd = [(i, 0, 0.65 + 0.05 * i, 0.5, 0.04, 0.1) for i in range(1, 4)]
    hits = []
    for k in range(6):
        hits += eng.update(_frame(*crowd), k * 0.2, (W, H))
    assert [h.type for h in hits].count("crowding") == 1
    # A short dip (people missed for a few frames) does not raise the same crowd again...
    for k in range(6, 9):
        eng.update(_frame(*crowd[:1]), k * 0.2, (W, H))
    for k in range(9, 12):
        hits += eng.update(_frame(*crowd), k * 0.2, (W, H))
    assert [h.type for h in hits].count("crowding") == 1
    # ...a crowd that has really gone (CROWD_REARM_S) and comes back does.
    t = 3.0
    while t < 3.0 + CROWD_REARM_S + 1:
        eng.update(_frame(*crowd[:1]), t, (W, H))
        t += 0.5
    for k in range(3):
        hits += eng.update(_frame(*crowd), t + k * 0.2, (W, H))
    assert [h.type for h in hits].count("crowding") == 2


def test_vehicle_stopped_in_no_stopping_zone() -> None:
    eng = RuleEngine(_cam(zones=[{"id": "z", "polygon": ZONE, "no_stopping_s": 2}]))
    moving = _walk(eng, 7, [0.62, 0.66, 0.70, 0.74, 0.78], cls=2)
    assert not [h for h in moving if h.type == "vehicle_stopped"]
    stopped = _walk(eng, 7, [0.78] * 15, t0=1.0, cls=2)
    assert [h.type for h in stopped].count("vehicle_stopped") == 1


def test_person_down_heuristic() -> None:
    eng = RuleEngine(_cam(person_down_s=1.0))
    hits = []
    for k in range(5):  # upright
        hits += eng.update(_frame((1, 0, 0.5, 0.5, 0.05, 0.15)), k * 0.2, (W, H))
    for k in range(5, 15):  # lying: wide and low
        hits += eng.update(_frame((1, 0, 0.5, 0.52, 0.15, 0.05)), k * 0.2, (W, H))
    assert [h.type for h in hits].count("person_down") == 1
