"""`python -m vision detect VIDEO` on real footage (Debian's vtest.avi): the whole clip by default,
`--frames` as a limit, progress on stderr only, a last JSON line with counts per class, and a clip
whose first frames are empty still reports what comes later."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from config.settings import REPO_ROOT

VTEST = REPO_ROOT / "data" / "media" / "vtest.avi"


@pytest.fixture()
def cli(monkeypatch, tmp_path, vision_settings):
    from vision import __main__ as cli

    cams = tmp_path / "cameras.yaml"
    cams.write_text(f"vision:\n  onnx_model: {vision_settings.onnx_path()}\n", encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(cams))
    return cli


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]  # every stdout line must be JSON


@pytest.fixture(scope="module")
def late_clip(tmp_path_factory: pytest.TempPathFactory, vtest_frames: list[np.ndarray]) -> Path:
    """14 empty frames (an empty street at night: flat grey), then 12 real frames of vtest.avi."""
    path = tmp_path_factory.mktemp("clips") / "late.avi"
    h, w = vtest_frames[0].shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    for _ in range(14):
        out.write(np.full((h, w, 3), 40, np.uint8))
    for frame in vtest_frames:
        out.write(frame)
    out.release()
    return path


def test_whole_clip_by_default_and_late_objects_are_reported(cli, capsys, late_clip: Path) -> None:
    assert cli.main(["detect", str(late_clip), "--imgsz", "320", "--quiet"]) == 0
    captured = capsys.readouterr()
    rows = _lines(captured.out)
    dets, summary = rows[:-1], rows[-1]["summary"]
    assert summary["frames"] == 26 and summary["stopped_at_limit"] is False
    assert dets and min(r["frame"] for r in dets) >= 14  # nothing in the empty part, people after it
    assert max(r["frame"] for r in dets) == 25  # read to the last frame, not 10
    # People are counted as tracks (one per walker), boxes as detections (one per frame and walker).
    assert summary["tracks"]["person"] >= 3
    assert summary["detections"]["person"] == sum(r["class"] == "person" for r in dets)
    assert summary["detections"]["person"] > summary["tracks"]["person"]
    assert captured.err == ""  # --quiet


def test_frames_limit(cli, capsys) -> None:
    assert cli.main(["detect", str(VTEST), "--imgsz", "320", "--frames", "4", "--quiet"]) == 0
    rows = _lines(capsys.readouterr().out)
    assert rows[-1]["summary"]["frames"] == 4 and rows[-1]["summary"]["stopped_at_limit"] is True
    assert {r["frame"] for r in rows[:-1]} <= {0, 1, 2, 3}
    assert rows[-1]["summary"]["tracks"]["person"] >= 3


def test_progress_goes_to_stderr_and_stdout_stays_json(cli, capsys, monkeypatch) -> None:
    # The real clip is long (795 frames); analyse 6 with progress forced on every frame.
    monkeypatch.setattr(cli, "PROGRESS_AFTER_S", 0.0)
    monkeypatch.setattr(cli, "PROGRESS_EVERY_S", 0.0)
    assert cli.main(["detect", str(VTEST), "--imgsz", "320", "--frames", "6"]) == 0
    captured = capsys.readouterr()
    rows = _lines(captured.out)
    assert "summary" in rows[-1] and all("frame" in r for r in rows[:-1])
    progress = captured.err.splitlines()
    assert progress[0].startswith("frame 1/6 (17 %)")
    assert any(line.startswith("frame 6/6 (100 %)") for line in progress)


def test_unreadable_video_is_an_error(cli, capsys, tmp_path) -> None:
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"not a video at all" * 100)
    assert cli.main(["detect", str(bad), "--quiet"]) == 2
    assert "broken.mp4" in capsys.readouterr().err
