"""Detections as parallel numpy arrays (the supervision style): cheap to filter, index and track."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    xyxy: np.ndarray  # (N, 4) float32, pixels of the original frame
    conf: np.ndarray  # (N,) float32
    cls: np.ndarray  # (N,) int
    names: dict[int, str] = field(default_factory=dict)
    track_id: np.ndarray | None = None  # (N,) int after tracking

    @classmethod
    def empty(cls, names: dict[int, str] | None = None) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, int), names or {})

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, mask: np.ndarray) -> Detections:
        return Detections(self.xyxy[mask], self.conf[mask], self.cls[mask], self.names,
                          None if self.track_id is None else self.track_id[mask])

    def labels(self) -> list[str]:
        return [self.names.get(int(c), str(int(c))) for c in self.cls]

    def of_class(self, *names: str) -> Detections:
        wanted = {i for i, n in self.names.items() if n in names}
        return self[np.isin(self.cls, list(wanted))]

    def anchors(self) -> np.ndarray:
        """Bottom-centre of each box: where a person or vehicle touches the ground."""
        return np.stack([(self.xyxy[:, 0] + self.xyxy[:, 2]) / 2, self.xyxy[:, 3]], axis=1)

    def to_records(self) -> list[dict]:
        """The CLI's JSON lines."""
        out = []
        for label, c, box in zip(self.labels(), self.conf, self.xyxy, strict=True):
            out.append({"class": label, "conf": round(float(c), 4),
                        "box": [round(float(v), 1) for v in box]})
        return out


def nms(xyxy: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns kept indices, best first."""
    order = scores.argsort()[::-1]
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    keep: list[int] = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        rest = order[1:]
        w = np.clip(np.minimum(xyxy[i, 2], xyxy[rest, 2]) - np.maximum(xyxy[i, 0], xyxy[rest, 0]), 0, None)
        h = np.clip(np.minimum(xyxy[i, 3], xyxy[rest, 3]) - np.maximum(xyxy[i, 1], xyxy[rest, 1]), 0, None)
        inter = w * h
        order = rest[inter / np.maximum(area[i] + area[rest] - inter, 1e-9) <= iou]
    return np.array(keep, dtype=int)
