"""Configuration is validated at start-up with messages a person can act on."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.settings import CONFIG_DIR, ROLES, ConfigError, load_settings


def test_shipped_configuration_is_valid() -> None:
    s = load_settings()
    assert s.gateway.batch_ms <= 50
    assert 1 in s.walls
    assert {"operator", "supervisor", "commander", "maintenance", "admin"} <= set(s.roles) <= set(ROLES)


def test_a_role_users_cannot_hold_is_refused() -> None:
    """roles.yaml names only roles the user store can create (config.settings.ROLES, one home)."""
    from pydantic import ValidationError

    from config.settings import Settings

    with pytest.raises(ValidationError, match="superuser"):
        Settings(roles={"superuser": ["wall"]})


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


# --- one configuration root (config/root.py) ------------------------------------------------------


def _copy_config(tmp_path: Path) -> Path:
    import shutil

    dest = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, dest, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return dest


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_an_environment_override_reaches_every_file_the_same_way(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.root import load_config
    from feeds.field import load_feeds_config
    from vision.config import load_vision_config

    overrides = {
        "CC_WEB__PORT": "8123",  # app.yaml
        "CC_WALLS__1__TITLE": "Night shift",  # walls.yaml (integer keys)
        "CC_ROLES__OPERATOR": "[wall, supervisor]",  # roles.yaml (a list, written as YAML)
        "CC_FEEDS__TRANSIT__PERIOD_S": "2.5",  # feeds.yaml
        "CC_FEEDS__SENSORS__KINDS__RAIN__RANGE": "[0, 250]",  # feeds.yaml, three levels down
        "CC_VISION__IMGSZ": "416",  # cameras.yaml, vision section
        "CC_CAMERAS__0__FPS": "2",  # cameras.yaml, a list item
    }
    for name, value in overrides.items():
        monkeypatch.setenv(name, value)
    root = load_config()
    assert root.settings.web.port == 8123
    assert root.settings.walls[1].title == "Night shift" and len(root.settings.walls) == 3
    assert root.settings.roles["operator"] == ["wall", "supervisor"]
    assert root.feeds.transit.period_s == 2.5
    assert root.feeds.sensors.kinds["rain"].range == (0, 250)
    assert root.feeds.sensors.kinds["rain"].rules  # the rest of the section is kept
    assert root.vision.vision.imgsz == 416 and root.vision.cameras[0].fps == 2
    # The old entry points read the same root.
    assert load_settings().web.port == 8123
    assert load_feeds_config().transit.period_s == 2.5
    assert load_vision_config().vision.imgsz == 416


def test_bad_overrides_are_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.root import load_config

    monkeypatch.setenv("CC_GATWAY__PORT", "9000")
    monkeypatch.setenv("CC_FEEDS__TRANSIT__PERIOD_S", "fast")
    monkeypatch.setenv("CC_VISION__IMGSZ", "333")
    monkeypatch.setenv("CC_CAMERAS__9__FPS", "2")
    with pytest.raises(ConfigError) as info:
        load_config()
    lines = str(info.value).splitlines()
    assert info.value.code == 2
    assert any(line.startswith("  - CC_GATWAY__PORT: no configuration section 'gatway'") for line in lines)
    assert any(line.startswith("  - feeds.transit.period_s:") and "'fast'" in line for line in lines)
    assert any(line.startswith("  - vision.imgsz:") and "multiple of 32" in line for line in lines)
    assert any(line.startswith("  - CC_CAMERAS__9__FPS: cameras has no item 9") for line in lines)


def test_demo_overlay_points_the_adapters_at_the_simulator_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    from config.root import load_config

    plain = load_config()
    assert plain.profiles == () and not plain.settings.simulator.enabled
    assert plain.feeds.transit.urls == [] and plain.feeds.air.url is None
    monkeypatch.setenv("CC_PROFILE", "demo")
    monkeypatch.setenv("CC_SIMULATOR__HTTP_PORT", "18123")
    monkeypatch.setenv("CC_SIMULATOR__MAVLINK_PORT", "18124")
    demo = load_config()
    assert demo.profiles == ("demo",) and demo.settings.simulator.enabled
    assert demo.feeds.transit.urls == ["http://127.0.0.1:18123/gtfs-rt/vehicle-positions.pb",
                                       "http://127.0.0.1:18123/gtfs-rt/trip-updates.pb"]
    assert demo.feeds.transit.static_url == "http://127.0.0.1:18123/gtfs/static.zip"
    assert demo.feeds.air.url and demo.feeds.air.url.startswith("http://127.0.0.1:18123/B552584/")
    assert "{station}" in (demo.feeds.air.backfill_url or "")
    assert demo.feeds.drone.listen == "127.0.0.1:18124"
    monkeypatch.setenv("CC_PROFILE", "demoo")
    with pytest.raises(ConfigError, match=r"CC_PROFILE=demoo: no overlay .* \(profiles: demo\)"):
        load_config()


def test_a_reference_to_no_setting_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.root import load_config

    cfg = _copy_config(tmp_path)
    _edit(cfg / "overlays" / "demo.yaml", "${simulator.http_port}/gtfs/static.zip",
          "${simulator.http_prot}/gtfs/static.zip")
    monkeypatch.setenv("CC_PROFILE", "demo")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "  - feeds.transit.static_url: ${simulator.http_prot} refers to no setting" in str(info.value)


def test_cross_references_are_checked_one_line_per_problem(tmp_path: Path) -> None:
    from config.root import load_config

    cfg = _copy_config(tmp_path)
    _edit(cfg / "walls.yaml", "drone_video: vis-drone-1", "drone_video: vis-drone-9")
    _edit(cfg / "cameras.yaml", "mount: drone-1", "mount: drone-2")
    _edit(cfg / "cameras.yaml", "district: 연수구", "district: 남구")  # abolished in 2018
    _edit(cfg / "app.yaml", "boundary_file: null", "boundary_file: data/no-such-districts.geojson")
    _edit(cfg / "app.yaml", "port: 8765", "port: 8050")  # the gateway on the web server's port
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert info.value.code == 2
    for line in ("  - walls.3.drone_video: no camera 'vis-drone-9' in the cameras file",
                 "  - cameras.[vis-drone-1].mount: no drone 'drone-2' under feeds.drone.names",
                 "  - map.boundary_file: 'data/no-such-districts.geojson' does not exist",
                 "  - gateway.port: port 8050 is also web.port"):
        assert line in text, text
    # With a boundary file that does not exist there is no district list to check names against;
    # with the shipped districts the abolished name is caught.
    _edit(cfg / "app.yaml", "boundary_file: data/no-such-districts.geojson", "boundary_file: null")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "  - cameras.[vis-songdo-01].district: '남구' is not a district of district_edition" in str(
        info.value)


def test_a_sensor_of_an_unknown_type_is_named(tmp_path: Path) -> None:
    from config.root import load_config

    cfg = _copy_config(tmp_path)
    feeds = cfg / "feeds.yaml"
    text = feeds.read_text(encoding="utf-8")
    # One more registry entry under feeds.sensors.sensors (after its last shipped sensor), with its
    # own rules, so only the cross-check can tell that no sensor type 'lava' exists.
    last = "      sen-ph-26: {kind: ph, name: \"pH 수산\", district: 남동구}\n"
    assert last in text
    feeds.write_text(text.replace(last, last + "      sen-lava-01: {kind: lava, name: 용암, rules: []}\n"),
                     encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert "  - feeds.sensors.sensors.sen-lava-01.kind: 'lava' is not a sensor type" in str(info.value)


def test_the_app_refuses_to_start_on_a_bad_reference(tmp_path: Path) -> None:
    """The real entry point: exit status 2 and a line naming the key, no traceback."""
    import subprocess
    import sys

    cfg = _copy_config(tmp_path)
    _edit(cfg / "walls.yaml", "drone_video: vis-drone-1", "drone_video: vis-gone")
    r = subprocess.run([sys.executable, str(CONFIG_DIR.parent / "app.py"), "user", "list"],
                       cwd=CONFIG_DIR.parent, capture_output=True, text=True, timeout=60,
                       env={"PATH": "/usr/bin:/bin", "CC_DATA_DIR": str(tmp_path / "data"),
                            "CC_CONFIG_DIR": str(cfg)})
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "walls.3.drone_video: no camera 'vis-gone'" in r.stderr and "Traceback" not in r.stderr


def test_references_keep_types_escape_and_refuse_loops() -> None:
    from config.root import interpolate

    data = {"simulator": {"host": "127.0.0.1", "http_port": 8790},
            "feeds": {"url": "http://${simulator.host}:${simulator.http_port}/x",
                      "port": "${simulator.http_port}", "password": "pa$${ss}word"}}
    assert interpolate(data) == []
    assert data["feeds"] == {"url": "http://127.0.0.1:8790/x", "port": 8790, "password": "pa${ss}word"}
    loop = {"a": {"x": "${a.y}", "y": "${a.x}"}, "b": {"s": "${a}"}}
    problems = interpolate(loop)
    assert "  - a.x: references nest deeper than 8 (a loop?)" in problems
    assert "  - b.s: ${a} is a section, not a value" in problems


def test_credentials_in_files_are_refused_and_taken_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from config.root import load_config

    cfg = _copy_config(tmp_path)
    _edit(cfg / "app.yaml", "url: null            # null: start a private Redis",
          "url: redis://cc:s3cret@10.0.0.5:6379/0  # null: start a private Redis")
    _edit(cfg / "feeds.yaml", "    url: null               # null: not started;",
          "    url: https://apis.data.go.kr/x?sidoName=a&serviceKey=KEY123  #")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    text = str(info.value)
    assert "  - redis.url: holds a credential; configuration files are not secret" in text
    assert "  - feeds.air.url: holds a credential" in text and "(CC_FEEDS__AIR__URL)" in text
    # The same values from the environment are how a deployment gives them.
    cfg2 = _copy_config(tmp_path / "clean")
    monkeypatch.setenv("REDIS_URL", "redis://cc:s3cret@10.0.0.5:6379/0")
    monkeypatch.setenv("CC_FEEDS__AIR__URL", "https://apis.data.go.kr/x?sidoName=a&serviceKey=KEY123")
    root = load_config(cfg2)
    assert root.settings.redis.url == "redis://cc:s3cret@10.0.0.5:6379/0"
    assert root.feeds.air.url and root.feeds.air.url.endswith("serviceKey=KEY123")


def test_a_password_in_a_bad_value_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_GATEWAY__PORT", "ws://cc:s3cret@h:1")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "gateway.port" in str(info.value) and "s3cret" not in str(info.value)


def test_alarm_and_incident_sections_explain_each_problem_where_it_is() -> None:
    from alarms.config import parse_alarm_config
    from incidents.config import parse_incident_config

    with pytest.raises(ConfigError) as not_a_mapping:
        parse_alarm_config(["a list"])
    assert "alarms: expected a mapping" in str(not_a_mapping.value)
    with pytest.raises(ConfigError) as bad:
        parse_incident_config({"no_such_key": 1, "bell_wall": 0})
    lines = str(bad.value).splitlines()
    assert lines[0] == "Configuration is not valid:"
    assert any(line.startswith("  - incidents.no_such_key:") for line in lines)
    assert any(line.startswith("  - incidents.bell_wall:") and "(got 0)" in line for line in lines)
