"""ByteTrack per camera (ultralytics' implementation), fed by any detector backend.

ByteTrack matches boxes regardless of class and reports each track with the class of its latest
detection, so one frame where YOLO calls a sedan a bus would relabel the track for that frame.
`ClassVotes` gives every track the majority class over its life instead; everything downstream
(rules, counts, labels on the frame, the camera's people/vehicle figures) sees that class.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from vision.detections import Detections


class ClassVotes:
    """Per-track tallies of the classes the detector gave it; the majority wins.

    A class must lead (more frames, or as many frames with a larger summed confidence) to take
    the label over; on an exact tie the current label stays, so a track does not flip back and
    forth on an even split. Tallies of tracks not seen for
    `forget_frames` updates are dropped (ByteTrack never revives an id after its buffer).
    """

    def __init__(self, forget_frames: int = 100) -> None:
        self.forget_frames = forget_frames
        self._frame = 0
        # track id -> class -> [frames, summed confidence]
        self._votes: dict[int, dict[int, list[float]]] = {}
        self._label: dict[int, int] = {}  # the current majority of each track
        self._last_seen: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self._votes)

    def majority(self, track_id: int) -> int | None:
        return self._label.get(track_id)

    def tally(self, track_id: int) -> dict[int, int]:
        """Frames per class for one track (for tests and diagnostics)."""
        return {c: int(v[0]) for c, v in self._votes.get(track_id, {}).items()}

    def update(self, track_ids: np.ndarray, cls: np.ndarray, conf: np.ndarray) -> np.ndarray:
        """Count one frame's tracked detections; returns each one's majority class (same order)."""
        self._frame += 1
        out = np.empty(len(track_ids), int)
        for i, (tid, c, p) in enumerate(zip(track_ids.tolist(), cls.tolist(), conf.tolist(), strict=True)):
            tally = self._votes.setdefault(int(tid), {})
            entry = tally.setdefault(int(c), [0.0, 0.0])
            entry[0] += 1
            entry[1] += float(p)
            self._last_seen[int(tid)] = self._frame
            current = self._label.get(int(tid))
            if current is None or (entry[0], entry[1]) > tuple(tally[current]):
                self._label[int(tid)] = current = int(c)
            out[i] = current
        for tid in [t for t, f in self._last_seen.items() if self._frame - f > self.forget_frames]:
            del self._votes[tid], self._last_seen[tid], self._label[tid]
        return out


class _TrackerInput:
    """The minimal results-like object BYTETracker reads: conf, cls, xywh, boolean indexing."""

    def __init__(self, xyxy: np.ndarray, conf: np.ndarray, cls: np.ndarray) -> None:
        self.xyxy, self.conf, self.cls = xyxy, conf, cls
        self.xywh = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> _TrackerInput:
        return _TrackerInput(self.xyxy[mask], self.conf[mask], self.cls[mask])


class Tracker:
    """One per camera: ids must not leak between cameras, and tracks die with their camera."""

    def __init__(self, fps: float = 5.0, lost_s: float = 3.0) -> None:
        from vision import runtime

        runtime.prepare()
        from ultralytics.trackers.byte_tracker import BYTETracker

        # Defaults of ultralytics' bytetrack.yaml; the lost-track buffer is set in seconds.
        buffer = max(5, int(fps * lost_s))
        args = SimpleNamespace(tracker_type="bytetrack", track_high_thresh=0.25, track_low_thresh=0.1,
                               new_track_thresh=0.25, track_buffer=buffer,
                               match_thresh=0.8, fuse_score=True)
        self._tracker = BYTETracker(args)
        # A lost track can come back within its buffer: keep its votes a little longer than that.
        self.votes = ClassVotes(forget_frames=buffer + 1)

    def update(self, dets: Detections) -> Detections:
        """Tracked detections only (new unconfirmed tracks are left out), with track_id set and
        each track's class the majority over its life so far."""
        out = self._tracker.update(_TrackerInput(dets.xyxy, dets.conf, dets.cls.astype(np.float32)))
        if len(out) == 0:
            self.votes.update(np.zeros(0, int), np.zeros(0, int), np.zeros(0, np.float32))
            empty = Detections.empty(dets.names)
            empty.track_id = np.zeros(0, int)
            return empty
        track_ids, conf = out[:, 4].astype(int), out[:, 5].astype(np.float32)
        cls = self.votes.update(track_ids, out[:, 6].astype(int), conf)
        return Detections(out[:, :4].astype(np.float32), conf, cls, dets.names, track_ids)
