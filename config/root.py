"""The one configuration root: every YAML file in config/, a profile overlay, the environment, and the
references between files, loaded and checked in one place.

    load_config()          -> ConfigRoot(settings, feeds, vision)   ConfigError (exit 2) on any problem

Order, later wins:
1. every `*.yaml` in the config directory (`CC_CONFIG_DIR`, default config/); a top-level section may
   live in one file only. `CC_CAMERAS_FILE` replaces cameras.yaml.
2. the overlays named by `CC_PROFILE` (comma-separated), `config/overlays/<name>.yaml`, merged key by key
   (mappings merge, lists and scalars replace). `app.py --demo` sets `CC_PROFILE=demo`.
3. environment variables `CC_<SECTION>__<KEY>[__<KEY>...]`, the same for every file's sections
   (`CC_WEB__PORT`, `CC_FEEDS__TRANSIT__PERIOD_S`, `CC_VISION__IMGSZ`, `CC_WALLS__1__TITLE`). A value
   starting with `[` or `{` is read as YAML (a list or mapping); `null` or `~` is null; anything else is a
   string the section's model converts. `REDIS_URL` and `DATABASE_URL` are honoured as they are.
4. `${section.key}` inside a string is replaced by that setting's value (after 1-3), so an overlay can
   point the adapters at ports that tests or operators set once (`CC_SIMULATOR__HTTP_PORT`);
   `$${...}` stands for a literal `${...}` (a password that happens to contain one).

Then each section is validated by its model and the references between files are checked (walls ->
cameras, camera mounts -> drones, sensors -> sensor kinds, map.boundary_file, port clashes). Every
problem is one line naming the key, all problems at once, because the reader is often an installer at
a wall, not the author.
"""

from __future__ import annotations

import copy
import os
import re
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from config.settings import CONFIG_DIR, ConfigError, Settings, explain, read_yaml
from feeds.config import FeedsConfig
from vision.config import VisionConfig, by_camera_id

ENV_PREFIX = "CC_"
MAX_INTERPOLATION_DEPTH = 8
# A password in a URL's userinfo, or an API key / token in its query: credentials, which belong in the
# environment (REDIS_URL, MQTT_PASSWORD, CC_FEEDS__AIR__URL ...), never in files kept in a repository.
_URL_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"[?&](servicekey|api_?key|token|password|secret)=(?!\.\.\.|&|$|\$\{)",
                           re.IGNORECASE)
_REF = re.compile(r"(\$?)\$\{([A-Za-z0-9_.-]+)\}")  # $${x} is a literal ${x}


@dataclass(frozen=True)
class ConfigRoot:
    settings: Settings
    feeds: FeedsConfig
    vision: VisionConfig
    profiles: tuple[str, ...]
    files: tuple[Path, ...]


def config_directory(config_dir: Path | None = None) -> Path:
    return Path(config_dir or os.environ.get("CC_CONFIG_DIR") or CONFIG_DIR)


def available_profiles(directory: Path) -> list[str]:
    return sorted(p.stem for p in (directory / "overlays").glob("*.yaml"))


def active_profiles(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    raw = (os.environ if environ is None else environ).get("CC_PROFILE", "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _section_owners() -> dict[str, str]:
    """Top-level section -> the model that validates it. Other sections (districts, places, air
    stations) are reference data with their own readers and are not overridable here."""
    owners = dict.fromkeys(Settings.model_fields, "settings")
    owners.update({"feeds": "feeds", "vision": "vision", "cameras": "vision"})
    return owners


def _files(directory: Path, environ: Mapping[str, str]) -> list[Path]:
    files = sorted(directory.glob("*.yaml"))
    cameras = environ.get("CC_CAMERAS_FILE")
    if cameras:
        files = [f for f in files if f.name != "cameras.yaml"] + [Path(cameras)]
    return files


def deep_merge(base: dict, over: Mapping) -> dict:
    """Mappings merge key by key; anything else (lists included) replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _match_key(mapping: dict, name: str) -> Any:
    """The existing key an environment segment means (env names are upper-case; YAML keys may be ints)."""
    for key in mapping:
        if str(key).lower() == name:
            return key
    return name


def _env_value(raw: str) -> Any:
    text = raw.strip()
    if text in ("null", "~"):
        return None
    if text[:1] in ("[", "{"):
        return yaml.safe_load(text)  # YAMLError is reported by the caller
    return raw  # a string: the model converts "9000" or "true"; no YAML, so '#' or ': ' survive


def apply_env(data: dict, environ: Mapping[str, str], sections: set[str]) -> list[str]:
    """Apply every CC_<SECTION>__<KEY> variable to `data` in place; one problem line per bad variable."""
    problems: list[str] = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_PREFIX):].lower().split("__")
        if path[0] not in sections:
            problems.append(f"  - {name}: no configuration section '{path[0]}' "
                            f"(sections: {', '.join(sorted(sections))})")
            continue
        if any(not seg for seg in path):
            problems.append(f"  - {name}: empty key in the name")
            continue
        try:
            value = _env_value(environ[name])
        except yaml.YAMLError as exc:
            problems.append(f"  - {name}: not valid YAML: {str(exc).splitlines()[0]}")
            continue
        node: Any = data
        for depth, seg in enumerate(path[:-1]):
            nxt_key: Any
            if isinstance(node, list):
                if not seg.isdigit() or int(seg) >= len(node):
                    problems.append(f"  - {name}: {'.'.join(path[:depth])} has no item {seg}")
                    break
                nxt_key = int(seg)
            else:
                nxt_key = _match_key(node, seg)
                if not isinstance(node.get(nxt_key), dict | list):
                    node[nxt_key] = {}
            node = node[nxt_key]
        else:
            last = path[-1]
            if isinstance(node, list):
                if not last.isdigit() or int(last) >= len(node):
                    problems.append(f"  - {name}: {'.'.join(path[:-1])} has no item {last}")
                    continue
                node[int(last)] = value
            else:
                node[_match_key(node, last)] = value
    return problems


def _lookup(data: dict, dotted: str) -> tuple[bool, Any]:
    node: Any = data
    for seg in dotted.split("."):
        if isinstance(node, dict):
            key = _match_key(node, seg.lower())
            if key not in node:
                return False, None
            node = node[key]
        elif isinstance(node, list) and seg.isdigit() and int(seg) < len(node):
            node = node[int(seg)]
        else:
            return False, None
    return True, node


def _walk(node: Any, where: str = "") -> Iterator[tuple[Any, Any, str]]:
    """(container, key, dotted path) of every string in the tree."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        path = f"{where}.{key}" if where else str(key)
        if isinstance(value, str):
            yield node, key, path
        else:
            yield from _walk(value, path)


def interpolate(data: dict) -> list[str]:
    """Replace ${section.key} in strings, in place; a string that is only a reference takes the
    referenced value's type (a port stays an int)."""
    problems: list[str] = []

    def resolve(text: str, where: str, depth: int) -> Any:
        if depth > MAX_INTERPOLATION_DEPTH:
            raise ValueError(f"{where}: references nest deeper than {MAX_INTERPOLATION_DEPTH} (a loop?)")
        whole = _REF.fullmatch(text)
        if whole and not whole.group(1):
            return value_of(whole.group(2), where, depth)
        return _REF.sub(lambda m: "${" + m.group(2) + "}" if m.group(1)
                        else str(value_of(m.group(2), where, depth)), text)

    def value_of(ref: str, where: str, depth: int) -> Any:
        found, value = _lookup(data, ref)
        if not found:
            raise ValueError(f"{where}: ${{{ref}}} refers to no setting")
        if isinstance(value, dict | list):
            raise ValueError(f"{where}: ${{{ref}}} is a section, not a value")
        return resolve(value, where, depth + 1) if isinstance(value, str) else value

    for container, key, where in list(_walk(data)):
        text = container[key]
        if "${" not in text:
            continue
        try:
            container[key] = resolve(text, where, 0)
        except ValueError as exc:
            problems.append(f"  - {exc}")
    return problems


_parsed: dict[Path, tuple[tuple[int, int], dict]] = {}
_parsed_lock = threading.Lock()


def _read(path: Path) -> dict:
    """read_yaml, remembered until the file changes (pages read the root when they are built; parsing
    every file each time costs tens of ms). A copy, because overrides are applied in place."""
    st = path.stat()
    stamp = (st.st_mtime_ns, st.st_size)
    with _parsed_lock:
        hit = _parsed.get(path)
    if hit is None or hit[0] != stamp:
        hit = (stamp, read_yaml(path))
        with _parsed_lock:
            _parsed[path] = hit
    return copy.deepcopy(hit[1])


def credentials_in_files(merged: dict, sections: set[str]) -> list[str]:
    """One line per credential written into the files (run before the environment is applied)."""
    problems = []
    for section in sorted(sections & set(merged)):
        for container, key, where in _walk({section: merged[section]}):
            value = container[key]
            if _URL_PASSWORD.match(value) or _QUERY_SECRET.search(value):
                problems.append(f"  - {where}: holds a credential; configuration files are not secret, "
                                f"give it in the environment instead (CC_{where.upper().replace('.', '__')})")
    return problems


def _read_all(directory: Path, files: list[Path], profiles: tuple[str, ...]) -> tuple[dict, list[Path]]:
    merged: dict = {}
    origin: dict[str, Path] = {}
    for f in files:
        if not f.exists():
            raise ConfigError(f"{f}: no such configuration file")
        for key, value in _read(f).items():
            if key in merged:
                raise ConfigError(f"{f}: section '{key}' is also defined in {origin[key]}")
            merged[key], origin[key] = value, f
    used = list(files)
    for name in profiles:
        overlay = directory / "overlays" / f"{name}.yaml"
        if not overlay.is_file():
            known = ", ".join(available_profiles(directory)) or "none"
            raise ConfigError(f"CC_PROFILE={name}: no overlay {overlay} (profiles: {known})")
        merged = deep_merge(merged, _read(overlay))
        used.append(overlay)
    return merged, used


def _validate(merged: dict) -> tuple[list[str], Settings | None, FeedsConfig | None, VisionConfig | None]:
    lines: list[str] = []
    settings = feeds = vision = None
    try:
        settings = Settings(**{k: v for k, v in merged.items() if k in Settings.model_fields})
    except ValidationError as exc:
        lines += explain(exc, "").splitlines()[1:]
    section = merged.get("feeds") or {}
    if not isinstance(section, dict):
        lines.append("  - feeds: expected a mapping")
    else:
        try:
            feeds = FeedsConfig(**section)
        except ValidationError as exc:
            lines += explain(exc, "", prefix="feeds.").splitlines()[1:]
    cams = {k: merged[k] for k in ("vision", "cameras") if k in merged}
    try:
        vision = VisionConfig(**cams)
    except ValidationError as exc:
        lines += explain(exc, "", locate=lambda loc: by_camera_id(loc, cams)).splitlines()[1:]
    return lines, settings, feeds, vision


def load_config(config_dir: Path | None = None, *, environ: Mapping[str, str] | None = None,
                check_references: bool = True) -> ConfigRoot:
    """The whole configuration, validated; ConfigError (exit status 2) lists every problem."""
    env = os.environ if environ is None else environ
    directory = config_directory(config_dir)
    profiles = active_profiles(env)
    files = _files(directory, env)
    merged, used = _read_all(directory, files, profiles)
    sections = set(_section_owners())
    problems = credentials_in_files(merged, sections)
    problems += apply_env(merged, env, sections)
    problems += interpolate(merged)
    lines, settings, feeds, vision = _validate(merged)
    problems += lines
    if not problems and check_references:
        from config.references import check_references as cross_check

        assert settings and feeds and vision
        problems += [f"  - {p}" for p in cross_check(settings, feeds, vision, merged)]
    if problems:
        names = ", ".join(str(f.relative_to(directory)) if f.is_relative_to(directory) else str(f)
                          for f in used)
        raise ConfigError("\n".join([f"Configuration is not valid ({directory}: {names}; CC_* "
                                     "environment variables):", *problems]))
    assert settings and feeds and vision
    if env.get("REDIS_URL"):
        settings.redis.url = env["REDIS_URL"]
    if env.get("DATABASE_URL"):
        settings.database.url = env["DATABASE_URL"]
    return ConfigRoot(settings, feeds, vision, profiles, tuple(used))



def reference_section(name: str, config_dir: Path | None = None) -> Any:
    """A reference-data section (district_edition, places, air_stations) from the same files the root
    reads, so CC_CONFIG_DIR moves them too. Reference data takes no overlays or overrides: it is
    facts about the city, not settings."""
    directory = config_directory(config_dir)
    for f in _files(directory, os.environ):
        if f.exists():
            data = _read(f)
            if name in data:
                return data[name]
    raise ConfigError(f"{directory}: no file defines the section '{name}'")
