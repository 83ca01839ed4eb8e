"""Object detectors behind one interface: ultralytics (torch) and ONNX Runtime (the lean CPU path).

Both take a BGR frame and return Detections in frame pixels, filtered to the wanted classes.
Both letterbox to a stride-32 rectangle (e.g. 320x256 for 4:3), which is what makes 320 input
cost ~22-30 ms on one core.
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from vision.detections import Detections, nms

log = logging.getLogger(__name__)


class Detector(Protocol):
    name: str
    names: dict[int, str]

    def detect(self, frame: np.ndarray) -> Detections: ...


def _class_ids(names: dict[int, str], wanted: list[str] | None) -> np.ndarray | None:
    if not wanted:
        return None
    unknown = set(wanted) - set(names.values())
    if unknown:
        known = list(names.values())[:8]
        raise ValueError(f"unknown classes {sorted(unknown)}; the model knows e.g. {known}")
    return np.array([i for i, n in names.items() if n in wanted])


class UltralyticsDetector:
    name = "ultralytics"

    def __init__(self, weights: Path, imgsz: int = 320, conf: float = 0.3, classes: list[str] | None = None,
                 iou: float = 0.7) -> None:
        from vision import runtime

        runtime.prepare()
        from ultralytics import YOLO

        self.model = YOLO(str(Path(weights).resolve()), task="detect")  # absolute path: never a download
        self.names: dict[int, str] = dict(self.model.names)
        self.imgsz, self.conf, self.iou = imgsz, conf, iou
        ids = _class_ids(self.names, classes)
        self.classes = None if ids is None else [int(i) for i in ids]

    def detect(self, frame: np.ndarray) -> Detections:
        res = self.model.predict(frame, imgsz=self.imgsz, conf=self.conf, iou=self.iou, classes=self.classes,
                                 verbose=False, device="cpu")[0]
        b = res.boxes
        return Detections(b.xyxy.numpy().astype(np.float32), b.conf.numpy().astype(np.float32),
                          b.cls.numpy().astype(int), self.names)


def letterbox(frame: np.ndarray, imgsz: int, stride: int = 32) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Resize keeping the aspect ratio into the smallest stride multiple around it; pad grey (114)."""
    import cv2

    h, w = frame.shape[:2]
    r = min(imgsz / h, imgsz / w)
    nw, nh = round(w * r), round(h * r)
    tw, th = int(np.ceil(nw / stride) * stride), int(np.ceil(nh / stride) * stride)
    resized = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else frame
    left, top = (tw - nw) // 2, (th - nh) // 2
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT,
                             value=(114, 114, 114))
    return out, r, (left, top)


class OnnxDetector:
    name = "onnxruntime"

    def __init__(self, model: Path, imgsz: int = 320, conf: float = 0.3, classes: list[str] | None = None,
                 iou: float = 0.7, threads: int = 1) -> None:
        import onnxruntime as ort

        if not Path(model).is_file():
            raise FileNotFoundError(f"{model} missing: run scripts/setup_vision.sh (exports it)")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads  # one inference thread per worker process
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = {int(k): v for k, v in ast.literal_eval(meta["names"]).items()}
        self.input = self.session.get_inputs()[0].name
        self.imgsz, self.conf, self.iou = imgsz, conf, iou
        self.keep_cls = _class_ids(self.names, classes)

    def detect(self, frame: np.ndarray) -> Detections:
        img, r, (left, top) = letterbox(frame, self.imgsz)
        blob = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1))[None].astype(np.float32) / 255.0
        out = self.session.run(None, {self.input: blob})[0][0].T  # (anchors, 4 + classes)
        scores = out[:, 4:]
        cls = scores.argmax(1)
        conf = scores[np.arange(len(cls)), cls]
        keep = conf >= self.conf
        if self.keep_cls is not None:
            keep &= np.isin(cls, self.keep_cls)
        boxes, conf, cls = out[keep, :4], conf[keep], cls[keep]
        if not len(conf):
            return Detections.empty(self.names)
        xyxy = np.empty_like(boxes)
        xyxy[:, 0] = boxes[:, 0] - boxes[:, 2] / 2
        xyxy[:, 1] = boxes[:, 1] - boxes[:, 3] / 2
        xyxy[:, 2] = boxes[:, 0] + boxes[:, 2] / 2
        xyxy[:, 3] = boxes[:, 1] + boxes[:, 3] / 2
        # Class-aware NMS by offsetting each class into its own coordinate range.
        kept = nms(xyxy + cls[:, None] * 4096.0, conf, self.iou)[:300]
        xyxy, conf, cls = xyxy[kept], conf[kept], cls[kept]
        xyxy -= np.array([left, top, left, top], np.float32)
        xyxy /= r
        h, w = frame.shape[:2]
        np.clip(xyxy, 0, [w, h, w, h], out=xyxy)
        return Detections(xyxy.astype(np.float32), conf.astype(np.float32), cls.astype(int), self.names)


def make_detector(backend: str, *, weights: Path | None = None, onnx_model: Path | None = None,
                  imgsz: int = 320, conf: float = 0.3, classes: list[str] | None = None) -> Detector:
    if backend == "ultralytics":
        if weights is None:
            raise ValueError("ultralytics backend needs weights")
        return UltralyticsDetector(weights, imgsz, conf, classes)
    if backend == "onnxruntime":
        if onnx_model is None:
            raise ValueError("onnxruntime backend needs an onnx model")
        return OnnxDetector(onnx_model, imgsz, conf, classes)
    raise ValueError(f"unknown backend {backend!r}")


def detector_from_config(vs, imgsz: int | None = None, backend: str | None = None) -> Detector:
    """Build the configured detector (vs: vision.config.VisionSettings)."""
    from vision.weights import resolve_weights

    backend = backend or vs.backend
    weights = resolve_weights(vs.weights, vs.weights_sha256) if backend == "ultralytics" else None
    return make_detector(backend, weights=weights, onnx_model=vs.onnx_path(), imgsz=imgsz or vs.imgsz,
                         conf=vs.conf, classes=vs.classes)
