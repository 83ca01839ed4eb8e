"""ByteTrack per camera (ultralytics' implementation), fed by any detector backend."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from vision.detections import Detections


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
        args = SimpleNamespace(tracker_type="bytetrack", track_high_thresh=0.25, track_low_thresh=0.1,
                               new_track_thresh=0.25, track_buffer=max(5, int(fps * lost_s)),
                               match_thresh=0.8, fuse_score=True)
        self._tracker = BYTETracker(args)

    def update(self, dets: Detections) -> Detections:
        """Tracked detections only (new unconfirmed tracks are left out), with track_id set."""
        out = self._tracker.update(_TrackerInput(dets.xyxy, dets.conf, dets.cls.astype(np.float32)))
        if len(out) == 0:
            empty = Detections.empty(dets.names)
            empty.track_id = np.zeros(0, int)
            return empty
        return Detections(out[:, :4].astype(np.float32), out[:, 5].astype(np.float32), out[:, 6].astype(int),
                          dets.names, out[:, 4].astype(int))
