from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import CONFIG_DIR, ConfigError, load_settings
from vision.config import load_vision_config


def test_shipped_cameras_file_is_valid_and_ignored_by_settings() -> None:
    cfg = load_vision_config(CONFIG_DIR / "cameras.yaml")
    assert len(cfg.cameras) >= 2
    assert {c.id for c in cfg.cameras} >= {"vis-bupyeong-01", "vis-songdo-01"}
    assert any(c.privacy.enabled for c in cfg.cameras)
    load_settings(CONFIG_DIR)  # the app's settings loader must not trip over the new sections


def test_bad_camera_gives_readable_lines(tmp_path: Path) -> None:
    bad = tmp_path / "cameras.yaml"
    bad.write_text("cameras:\n  - id: cam-x\n    name: X\n    lat: 95\n    lon: 126.6\n    source: a.avi\n"
                   "    zones: [{id: z, polygon: [[0, 0], [1, 1]]}]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_vision_config(bad)
    text = str(err.value)
    assert "cameras.[cam-x].lat" in text
    assert "cameras.[cam-x].zones.0.polygon" in text


def test_duplicate_ids_rejected(tmp_path: Path) -> None:
    cam = "  - {id: a, name: A, lat: 37.4, lon: 126.6, source: x.avi}\n"
    f = tmp_path / "c.yaml"
    f.write_text("cameras:\n" + cam + cam, encoding="utf-8")
    with pytest.raises(ConfigError, match="used twice"):
        load_vision_config(f)


def test_privacy_without_person_detection_is_refused(tmp_path) -> None:
    import pytest

    from config.settings import ConfigError
    from vision.config import load_vision_config

    f = tmp_path / "cameras.yaml"
    f.write_text("vision: {classes: [car, bus]}\ncameras:\n"
                 "  - {id: c1, name: C, lat: 37.4, lon: 126.6, source: x.avi, privacy: {enabled: true}}\n",
                 encoding="utf-8")
    with pytest.raises(ConfigError, match="privacy on"):
        load_vision_config(f)
