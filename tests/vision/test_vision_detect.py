"""Detectors on a real photo with the real weights: the bus and at least three persons."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vision.detections import Detections


def _check_bus(dets: Detections) -> None:
    labels = dets.labels()
    assert "bus" in labels
    assert labels.count("person") >= 3


def test_onnxruntime_finds_bus_and_people(onnx_detector_640, bus_image: np.ndarray) -> None:
    _check_bus(onnx_detector_640.detect(bus_image))


def test_ultralytics_finds_bus_and_people_same_as_onnx(vision_settings, onnx_detector_640,
                                                      bus_image: np.ndarray) -> None:
    from vision.detectors import detector_from_config

    det = detector_from_config(vision_settings, imgsz=640, backend="ultralytics")
    a, b = det.detect(bus_image), onnx_detector_640.detect(bus_image)
    _check_bus(a)
    assert sorted(a.labels()) == sorted(b.labels())
    assert np.allclose(np.sort(a.conf), np.sort(b.conf), atol=0.01)


def test_weights_checksum_enforced(tmp_path) -> None:
    from config.settings import ConfigError
    from vision.weights import resolve_weights

    fake = tmp_path / "yolov8n.pt"
    fake.write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="sha256"):
        resolve_weights(str(fake))


def test_cli_detect_prints_json_lines(capsys, monkeypatch, tmp_path, vision_settings) -> None:
    from vision import __main__ as cli
    from vision.weights import sample_image

    cams = tmp_path / "cameras.yaml"
    cams.write_text(f"vision:\n  onnx_model: {vision_settings.onnx_path()}\n", encoding="utf-8")
    monkeypatch.setenv("CC_CAMERAS_FILE", str(cams))
    assert cli.main(["detect", str(sample_image()), "--imgsz", "640"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    dets, summary = rows[:-1], rows[-1]["summary"]
    assert {"class", "conf", "box"} <= set(dets[0])
    assert sum(r["class"] == "person" for r in dets) >= 3
    assert len(dets[0]["box"]) == 4
    # The last line counts the image's detections per class.
    assert summary["frames"] == 1
    assert summary["detections"]["person"] == sum(r["class"] == "person" for r in dets)
