"""Make ultralytics and torch run offline, on one thread, on the CPU build of torchvision.

Call `prepare()` before the first `import ultralytics` anywhere in the process. What it does and
why (see /work/shared/design/OFFLINE.md):
- YOLO_OFFLINE / YOLO_AUTOINSTALL: no online checks and no pip installs at run time;
- YOLO_CONFIG_DIR: an app folder holding settings (sync off) and the fonts ultralytics would
  otherwise download from GitHub when it draws labels (Arial.ttf, Arial.Unicode.ttf);
- one inference thread per process: two threads per worker collapsed under load; scale with
  processes instead;
- a CPU `torchvision::nms` when the installed torchvision wheel lacks its compiled ops.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from config.settings import DATA_DIR

log = logging.getLogger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
_prepared = False


def _font_source() -> Path | None:
    for cand in FONT_CANDIDATES:
        if Path(cand).is_file():
            return Path(cand)
    try:  # matplotlib ships DejaVuSans; located without importing matplotlib
        import importlib.util

        spec = importlib.util.find_spec("matplotlib")
        if spec and spec.submodule_search_locations:
            p = Path(spec.submodule_search_locations[0]) / "mpl-data/fonts/ttf/DejaVuSans.ttf"
            if p.is_file():
                return p
    except (ImportError, ValueError):
        pass
    return None


def config_dir() -> Path:
    return Path(os.environ.get("CC_YOLO_CONFIG_DIR", DATA_DIR / "ultralytics")).resolve()


def prepare(threads: int = 1) -> None:
    """Idempotent; safe to call from every entry point."""
    global _prepared
    if _prepared:
        return
    cfg = config_dir()
    user_dir = cfg / "Ultralytics"  # ultralytics looks for settings and fonts in this subfolder
    user_dir.mkdir(parents=True, exist_ok=True)
    font = _font_source()
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if font and not (user_dir / name).exists():
            shutil.copyfile(font, user_dir / name)
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "0"
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    os.environ.setdefault("YOLO_VERBOSE", "False")  # no banners in the worker log
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    import cv2

    cv2.setNumThreads(threads)  # OpenCV's own pool would compete with inference for the cores
    import torch

    torch.set_num_threads(threads)
    _patch_torchvision_nms()
    from ultralytics.utils import SETTINGS

    if SETTINGS.get("sync", False):
        SETTINGS.update(sync=False)
    _prepared = True


def _nms_cpu(boxes, scores, iou_threshold: float):
    """Greedy NMS in plain torch; same contract as torchvision.ops.nms (indices by score)."""
    import torch

    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    areas = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    order = scores.argsort(descending=True)
    keep = []
    while order.numel() > 0:
        i = order[0]
        keep.append(i)
        if order.numel() == 1:
            break
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter).clamp(min=1e-9)
        order = rest[iou <= iou_threshold]
    return torch.stack(keep).to(torch.int64)


_lib = None  # keeps the torch.library registration alive


def _patch_torchvision_nms() -> None:
    """Register a CPU nms only when the real compiled op is missing (CUDA-only wheel here)."""
    global _lib
    import torch

    try:
        import torchvision

        return  # a proper torchvision: leave it alone
    except RuntimeError as exc:
        if "torchvision::nms" not in str(exc):
            raise
    import sys

    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[mod]
    if _lib is None:
        try:
            torch.ops.torchvision.nms  # noqa: B018  (defined by an earlier partial import?)
            defined = True
        except (AttributeError, RuntimeError):
            defined = False
        if not defined:
            _lib = torch.library.Library("torchvision", "DEF")
            _lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _lib.impl("nms", _nms_cpu, "CPU")
            _lib.impl("qnms", _nms_cpu, "CPU")
    import torchvision.extension

    torchvision.extension._has_ops = lambda: True
    import torchvision

    log.info("torchvision compiled ops missing: using the plain-torch CPU nms")
