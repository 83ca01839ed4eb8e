"""Per-camera rules on tracked objects: zones (intrusion, loitering, crowding, no stopping), counting
lines, and a person-down heuristic.

Everything works on the track's anchor (bottom-centre of its box) in frame fractions, and on the
frame's source time, so results do not depend on resolution or on how fast frames are processed.
Debouncing:
- a line crossing counts when the track's *confirmed* side changes; a side is confirmed only when
  the anchor is more than `margin` away from the line, so jitter on the line never counts twice;
- zone membership changes only after `confirm_frames` consecutive frames agree;
- each (track, zone, rule) fires at most once per visit; crowding re-arms only after the count
  falls back to the limit.
A track's class is the one the tracker reports, which is the majority over the track's life
(vision.tracking.ClassVotes). When that majority changes after a line crossing was counted (the
crossing came early in the track's life), the crossing is moved to the new class, so the counts
always hold each track under its majority class; an event already sent keeps the class of its time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np

from spine.layers import N_
from vision.config import VEHICLE_CLASSES, Camera, Line, Zone
from vision.detections import Detections

# Words that travel as event params (`cls`, `direction`) and are shown translated (cc/i18n.js):
# listed here so the catalogue extraction finds them.
PARAM_WORDS = (N_("person"), N_("car"), N_("truck"), N_("bus"), N_("motorcycle"), N_("bicycle"),
               N_("in"), N_("out"))

CROWD_REARM_S = 30.0  # a crowd must be gone this long before the same zone can raise it again


@dataclass(frozen=True)
class RuleHit:
    """One thing a rule found; the pipeline turns it into a spine.contract.Event."""

    type: str  # zone_intrusion, line_crossing, loitering, crowding, vehicle_stopped, person_down
    severity: str
    title: str
    props: dict
    box: tuple[float, float, float, float] | None = None  # pixels, for the snapshot highlight
    # The text as a catalogue key and params (spine.contract.Event.msg), rendered in each viewer's
    # language; `title` is the same text in English for readers without the catalogue.
    msg: str | None = None
    params: dict = field(default_factory=dict)


def side_of(line: Line, p: tuple[float, float]) -> float:
    """Signed distance (frame fractions) of p from the line; > 0 is left of the arrow a->b on screen."""
    ax, ay = line.a
    bx, by = line.b
    dx, dy = bx - ax, by - ay
    return ((p[0] - ax) * dy - (p[1] - ay) * dx) / max(np.hypot(dx, dy), 1e-9)


def _within_segment(line: Line, p: tuple[float, float], slack: float = 0.02) -> bool:
    """Crossing the infinite line outside the drawn segment does not count."""
    ax, ay = line.a
    bx, by = line.b
    dx, dy = bx - ax, by - ay
    t = ((p[0] - ax) * dx + (p[1] - ay) * dy) / max(dx * dx + dy * dy, 1e-12)
    seg = np.hypot(dx, dy)
    return -slack / seg <= t <= 1 + slack / seg


def in_polygon(poly: np.ndarray, p: tuple[float, float]) -> bool:
    return cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), False) >= 0


@dataclass
class _Track:
    cls: str
    first_ts: float
    last_ts: float = 0.0
    anchor: tuple[float, float] = (0.0, 0.0)
    line_side: dict[str, int] = field(default_factory=dict)  # confirmed side per line: -1 / +1
    # (line id, direction) of every crossing, to move the counts when the track's class changes
    crossings: list[tuple[str, str]] = field(default_factory=list)
    zone_in: dict[str, bool] = field(default_factory=dict)
    zone_votes: dict[str, int] = field(default_factory=dict)  # consecutive frames disagreeing
    zone_since: dict[str, float] = field(default_factory=dict)
    fired: set[tuple[str, str]] = field(default_factory=set)  # (zone, rule) fired this visit
    still_since: float | None = None
    still_at: tuple[float, float] | None = None
    upright_seen: bool = False
    down_since: float | None = None


class RuleEngine:
    def __init__(self, camera: Camera, margin: float = 0.01, confirm_frames: int = 2, forget_s: float = 10.0,
                 still_tolerance: float = 0.015) -> None:
        self.camera = camera
        self.margin = margin
        self.confirm_frames = confirm_frames
        self.forget_s = forget_s
        self.still_tolerance = still_tolerance
        self._polys = {z.id: np.array(z.polygon, np.float32) for z in camera.zones}
        self._tracks: dict[int, _Track] = {}
        self._crowd_armed: dict[str, bool] = {z.id: True for z in camera.zones}
        self._crowd_low_since: dict[str, float | None] = {z.id: None for z in camera.zones}
        # counts[line_id][class][direction]
        self.counts: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(
            lambda: {"in": 0, "out": 0}))

    def counts_plain(self) -> dict[str, dict[str, dict[str, int]]]:
        # A class whose only crossings moved to another class is left out rather than shown as 0/0.
        return {lid: {c: dict(d) for c, d in by_cls.items() if d["in"] or d["out"]}
                for lid, by_cls in self.counts.items()}

    def _reclassify(self, tr: _Track, new_cls: str) -> None:
        """The track's majority class changed: move its counted crossings to the new class."""
        lines = {ln.id: ln for ln in self.camera.lines}
        for line_id, direction in tr.crossings:
            line = lines.get(line_id)
            if line is None:
                continue
            if tr.cls in line.classes:
                self.counts[line_id][tr.cls][direction] -= 1
            if new_cls in line.classes:
                self.counts[line_id][new_cls][direction] += 1
        tr.cls = new_cls

    def update(self, dets: Detections, ts: float, frame_wh: tuple[int, int]) -> list[RuleHit]:
        """Feed one tracked frame (dets with track_id) at source time ts (seconds)."""
        if dets.track_id is None:
            raise ValueError("rules need tracked detections")
        w, h = frame_wh
        hits: list[RuleHit] = []
        anchors = dets.anchors() / np.array([w, h], np.float32) if len(dets) else np.zeros((0, 2))
        labels = dets.labels()
        people_in: dict[str, int] = defaultdict(int)
        for i, tid in enumerate(int(t) for t in dets.track_id):
            p = (float(anchors[i][0]), float(anchors[i][1]))
            box = tuple(float(v) for v in dets.xyxy[i])
            tr = self._tracks.get(tid)
            if tr is None:
                tr = self._tracks[tid] = _Track(cls=labels[i], first_ts=ts)
            elif tr.cls != labels[i]:
                self._reclassify(tr, labels[i])
            tr.last_ts, tr.anchor = ts, p
            hits += self._lines(tid, tr, p, box)
            hits += self._zones(tid, tr, p, box, ts, people_in)
            hits += self._person_down(tid, tr, box, ts)
        hits += self._crowding(people_in, ts)
        for tid in [t for t, tr in self._tracks.items() if ts - tr.last_ts > self.forget_s]:
            del self._tracks[tid]
        return hits

    # ---- lines ---------------------------------------------------------------------------------
    def _lines(self, tid: int, tr: _Track, p: tuple[float, float], box: tuple) -> list[RuleHit]:
        hits = []
        for line in self.camera.lines:
            # The side is followed for every track: one whose class is not counted on this line yet
            # may turn out (by the majority) to be one that is.
            d = side_of(line, p)
            if abs(d) < self.margin or not _within_segment(line, p):
                continue  # in the dead band (or beside the segment): keep the confirmed side
            side = 1 if d > 0 else -1
            prev = tr.line_side.get(line.id)
            tr.line_side[line.id] = side
            if prev is None or prev == side:
                continue
            direction = "in" if side > 0 else "out"
            tr.crossings.append((line.id, direction))
            if tr.cls not in line.classes:
                continue
            self.counts[line.id][tr.cls][direction] += 1
            if line.events:
                hits.append(RuleHit("line_crossing", "info",
                                    f"{tr.cls} crossed {line.name or line.id} ({direction})",
                                    {"line": line.id, "class": tr.cls, "direction": direction,
                                     "track_id": tid}, box,
                                    N_("{cls} crossed {line} ({direction})"),
                                    {"cls": tr.cls, "line": line.name or line.id, "direction": direction}))
        return hits

    # ---- zones ---------------------------------------------------------------------------------
    def _zones(self, tid: int, tr: _Track, p: tuple[float, float], box: tuple, ts: float,
               people_in: dict[str, int]) -> list[RuleHit]:
        hits = []
        for zone in self.camera.zones:
            inside_now = in_polygon(self._polys[zone.id], p)
            was = tr.zone_in.get(zone.id, False)
            if inside_now != was:
                tr.zone_votes[zone.id] = tr.zone_votes.get(zone.id, 0) + 1
                if tr.zone_votes[zone.id] >= self.confirm_frames:
                    tr.zone_in[zone.id] = inside_now
                    tr.zone_votes[zone.id] = 0
                    if inside_now:
                        tr.zone_since[zone.id] = ts
                    else:  # left the zone: the next visit may fire again
                        tr.fired = {f for f in tr.fired if f[0] != zone.id}
            else:
                tr.zone_votes[zone.id] = 0
            if not tr.zone_in.get(zone.id, False):
                continue
            if tr.cls == "person":
                people_in[zone.id] += 1
            hits += self._zone_rules(zone, tid, tr, box, ts)
        return hits

    def _fire_once(self, tr: _Track, zone: Zone, rule: str) -> bool:
        if (zone.id, rule) in tr.fired:
            return False
        tr.fired.add((zone.id, rule))
        return True

    def _zone_rules(self, zone: Zone, tid: int, tr: _Track, box: tuple, ts: float) -> list[RuleHit]:
        hits = []
        zname = zone.name or zone.id
        base = {"zone": zone.id, "class": tr.cls, "track_id": tid}
        if zone.intrusion and tr.cls in zone.intrusion and self._fire_once(tr, zone, "intrusion"):
            hits.append(RuleHit("zone_intrusion", zone.severity, f"{tr.cls} entered {zname}", base, box,
                                N_("{cls} entered {zone}"), {"cls": tr.cls, "zone": zname}))
        dwell = ts - tr.zone_since.get(zone.id, ts)
        if (zone.loiter_s and tr.cls == "person" and dwell > zone.loiter_s
                and self._fire_once(tr, zone, "loitering")):
            hits.append(RuleHit("loitering", zone.severity, f"person loitering in {zname} ({dwell:.0f} s)",
                                {**base, "dwell_s": round(dwell, 1)}, box,
                                N_("person loitering in {zone} ({seconds} s)"),
                                {"zone": zname, "seconds": round(dwell)}))
        if zone.no_stopping_s and tr.cls in VEHICLE_CLASSES:
            if tr.still_at is None or np.hypot(tr.anchor[0] - tr.still_at[0],
                                               tr.anchor[1] - tr.still_at[1]) > self.still_tolerance:
                tr.still_at, tr.still_since = tr.anchor, ts
            stopped = ts - (tr.still_since or ts)
            if stopped > zone.no_stopping_s and self._fire_once(tr, zone, "no_stopping"):
                hits.append(RuleHit("vehicle_stopped", zone.severity,
                                    f"{tr.cls} stopped in {zname} ({stopped:.0f} s)",
                                    {**base, "stopped_s": round(stopped, 1)}, box,
                                    N_("{cls} stopped in {zone} ({seconds} s)"),
                                    {"cls": tr.cls, "zone": zname, "seconds": round(stopped)}))
        return hits

    def _crowding(self, people_in: dict[str, int], ts: float) -> list[RuleHit]:
        hits = []
        for zone in self.camera.zones:
            if not zone.crowd_max:
                continue
            n = people_in.get(zone.id, 0)
            if n > zone.crowd_max:
                self._crowd_low_since[zone.id] = None
                if self._crowd_armed[zone.id]:
                    self._crowd_armed[zone.id] = False
                    hits.append(RuleHit("crowding", zone.severity, f"{n} people in {zone.name or zone.id}",
                                        {"zone": zone.id, "people": n, "limit": zone.crowd_max}, None,
                                        N_("{n} people in {zone}"), {"n": n, "zone": zone.name or zone.id}))
            else:
                # Re-arm only after the crowd has really gone: a person missed for a frame or two
                # must not raise the same crowd again.
                since = self._crowd_low_since[zone.id]
                if since is None:
                    self._crowd_low_since[zone.id] = ts
                elif ts - since >= CROWD_REARM_S:
                    self._crowd_armed[zone.id] = True
        return hits

    # ---- person down ---------------------------------------------------------------------------
    def _person_down(self, tid: int, tr: _Track, box: tuple, ts: float) -> list[RuleHit]:
        """Heuristic: a person first seen upright whose box then stays wider than tall.

        Limits (docs/vision.md): needs a side or oblique view (fails on top-down cameras), confuses
        sitting or bending people and partly hidden bodies, and misses a fall toward the camera.
        """
        limit = self.camera.person_down_s
        if not limit or tr.cls != "person":
            return []
        bw, bh = box[2] - box[0], box[3] - box[1]
        if bh > 1.5 * bw:
            tr.upright_seen, tr.down_since = True, None
            return []
        if not tr.upright_seen or bw < 1.2 * bh:
            tr.down_since = None
            return []
        tr.down_since = tr.down_since if tr.down_since is not None else ts
        if ts - tr.down_since >= limit and ("*", "person_down") not in tr.fired:
            tr.fired.add(("*", "person_down"))
            return [RuleHit("person_down", "high", "person down (possible fall)",
                            {"track_id": tid, "down_s": round(ts - tr.down_since, 1)}, box,
                            N_("person down (possible fall)"))]
        return []
