"""Configuration is validated at start-up with messages a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import CONFIG_DIR, ConfigError, load_settings


def test_shipped_configuration_is_valid() -> None:
    s = load_settings()
    assert s.gateway.batch_ms <= 50
    assert 1 in s.walls
    assert set(s.roles) == {"operator", "supervisor", "commander", "admin"}


def test_environment_overrides_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_GATEWAY__PORT", "9911")
    monkeypatch.setenv("REDIS_URL", "redis://example:6379/2")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://u@h/db")
    s = load_settings()
    assert s.gateway.port == 9911
    assert s.redis.url == "redis://example:6379/2"
    assert s.database.resolved_url() == "postgresql+psycopg://u@h/db"


def test_bad_value_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_GATEWAY__BATCH_MS", "80")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "gateway.batch_ms" in str(info.value)
    assert "less than or equal to 50" in str(info.value)
    assert info.value.code == 2


def test_broken_yaml_and_unknown_keys_are_explained(tmp_path: Path) -> None:
    for f in CONFIG_DIR.glob("*.yaml"):
        (tmp_path / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "app.yaml").write_text("web: {port: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(tmp_path)
    (tmp_path / "app.yaml").write_text("web: {portt: 80}\nmap: {tile_url: 'http://x/tiles.png'}\n",
                                       encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path)
    text = str(info.value)
    assert "web.portt" in text
    assert "map.tile_url" in text and "{z}" in text
