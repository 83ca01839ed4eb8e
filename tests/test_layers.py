"""The layer registry (spine/layers.py): typed, bounded props per layer enforced by the contract; one
vocabulary for severities, sensor levels and air grades; the browser code holds no copy of them."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import msgspec
import pytest

from feeds.air import cai
from feeds.sensors.config import RuleConfig
from feeds.sensors.rules import RuleState, level_props
from spine import layers
from spine.contract import (
    LAYERS,
    SEVERITIES,
    Rejected,
    RejectLog,
    decode_events,
    decode_updates,
    now_ms,
    validate_update,
)

ASSETS = Path(__file__).resolve().parent.parent / "dashboard" / "assets"
HEX = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(")


def update(layer: str, props: dict) -> dict:
    return {"v": 1, "layer": layer, "id": f"{layer}-1", "ts": now_ms(), "seq": 1,
            "lat": 37.45, "lon": 126.7, "props": props}


def string_fields(layer: str) -> list[str]:
    out = []
    for f in msgspec.inspect.type_info(layers.props_type(layer)).fields:
        types = getattr(f.type, "types", (f.type,))
        if any(isinstance(t, msgspec.inspect.StrType) for t in types):
            out.append(f.encode_name)
    return out


def test_every_layer_has_a_struct_colours_legend_and_popup_fields_it_declares() -> None:
    reg = layers.registry()
    assert tuple(reg["layers"]) == LAYERS and layers.SEVERITIES == SEVERITIES
    for layer, entry in reg["layers"].items():
        assert re.fullmatch(r"#[0-9a-f]{6}", entry["color"]) and entry["label"] and entry["legend"]
        declared = set(entry["props"])
        # A popup row for a prop no producer may send would never show: the popup follows the struct.
        assert {f["key"] for f in entry["popup"]} <= declared, layer
        assert all(f["format"] in {"text", "number", "time", "bool", "list", "json", "level", "grade",
                                   "severity"} for f in entry["popup"])
    for key in ("severities", "sensor_levels", "air_grades"):
        assert all(re.fullmatch(r"#[0-9a-f]{6}", e["color"]) and e["label"] for e in reg[key])
    # The JSON for the page cannot close its <script> element.
    text = layers.registry_json()
    assert "<" not in text and json.loads(text) == reg


@pytest.mark.parametrize("layer", LAYERS)
def test_every_string_prop_is_bounded_and_rejects_name_the_prop(layer: str) -> None:
    fields = string_fields(layer)
    assert fields, layer
    for name in fields:
        with pytest.raises(Rejected) as exc:
            validate_update(update(layer, {name: "x" * 2001}))
        assert exc.value.reason == f"invalid:props.{name}"


def test_numbers_types_unknown_props_and_nesting_are_refused() -> None:
    cases = [("bus", {"heading": 1e300}, "invalid:props.heading"),
             ("bus", {"heading": "<img src=x onerror=alert(1)>"}, "invalid:props.heading"),
             ("camera", {"people": "<b>3</b>"}, "invalid:props.people"),
             ("camera", {"last_activity": 10**15}, "invalid:props.last_activity"),
             ("drone", {"footprint": [[37.0, 126.0]] * 1000}, "invalid:props.footprint"),
             ("drone", {"footprint": [[91.0, 126.0]] * 3}, "invalid:props.footprint"),
             ("air", {"grade": "excellent"}, "invalid:props.grade"),
             ("sensor", {"level": "심각"}, "invalid:props.level"),
             ("sensor", {"alarms": ["a"] * 100}, "invalid:props.alarms"),
             ("camera", {"script": "x"}, "invalid:props")]
    for layer, props, reason in cases:
        with pytest.raises(Rejected) as exc:
            validate_update(update(layer, props))
        assert exc.value.reason == reason, (layer, props)


def test_the_decoders_count_a_bad_prop_and_keep_the_good_updates_of_a_batch() -> None:
    rejects = RejectLog(logging.getLogger("test"))
    good = update("bus", {"route": "10", "heading": 90})
    bad = update("bus", {"route": "r" * 1000})
    out = decode_updates(msgspec.json.encode([good, bad, good]), rejects)
    assert len(out) == 2 and out[0].props == {"route": "10", "heading": 90}
    assert rejects.counts == {"invalid:props.route": 1}
    ev = {"v": 1, "id": "e1", "type": "threshold", "severity": "high", "ts": now_ms(),
          "layer": "sensor", "entity": "s1", "lat": 37.4, "lon": 126.6, "props": {"state": "exploded"}}
    assert decode_events(msgspec.json.encode(ev), rejects) == []
    assert rejects.counts["invalid:props.state"] == 1


def test_sensor_level_is_a_registry_code_from_the_worst_active_rule() -> None:
    """The old bug: `level` was the rule's name ("심각"), which no colour matched, so a critical
    flood stage was drawn like a normal sensor."""
    flood = (("관심", 2.3, "low"), ("주의", 3.0, "medium"), ("경계", 3.5, "high"), ("심각", 4.0, "critical"))
    stages = [RuleConfig(name=n, level=lv, severity=s) for n, lv, s in flood]
    assert level_props(stages, [RuleState() for _ in stages])["level"] == "normal"
    one = level_props(stages, [RuleState(active=i < 2) for i in range(4)])
    assert (one["level"], one["rule"], one["severity"]) == ("caution", "주의", "medium")
    top = level_props(stages, [RuleState(active=True) for _ in stages])
    assert (top["level"], top["rule"]) == ("critical", "심각")
    assert top["level"] in layers.SENSOR_LEVELS
    assert layers.SENSOR_LEVEL_COLORS["critical"] != layers.SENSOR_LEVEL_COLORS["normal"]
    validate_update(update("sensor", top))  # what the rules publish is what the contract takes


def test_air_grades_have_one_home() -> None:
    assert cai.GRADES == layers.AIR_GRADES
    assert [cai.grade_of(v) for v in (10, 60, 120, 300)] == list(layers.AIR_GRADES)
    # The breakpoints too: the CAI computes with the table the browser draws its chart guides from.
    assert cai.BREAKPOINTS is layers.AIR_BREAKPOINTS and cai.INDEX_BANDS is layers.AIR_INDEX_BANDS
    guides = layers.registry()["air_guides"]
    assert guides["pm10"] == [30, 80, 150] and guides["pm25"] == [15, 35, 75]
    assert [cai.sub_index("pm10", v) for v in guides["pm10"]] == [50, 100, 250]


def _number_literals(js: str) -> set[float]:
    """Every number literal of a script, comments left out (a comment may explain a value)."""
    code = re.sub(r"/\*.*?\*/|(?<![:'\"\\])//[^\n]*", "", js, flags=re.S)
    return {float(m) for m in re.findall(r"(?<![\w.$])\d+(?:\.\d+)?(?![\w.])", code)}


def _thresholds() -> dict[str, float]:
    """Numbers with a home in Python that a page applies to data, in every unit JS might write them."""
    from feeds.transit.config import TransitConfig

    fade = TransitConfig().fade_s
    t = layers.registry()["thresholds"]
    out = {"transit.fade_s": fade, "transit.fade_s in ms": fade * 1000,
           "camera_active_ms": t["camera_active_ms"], "camera_cone_m": t["camera_cone_m"],
           "bus_late_s": t["bus_late_s"], "bus_late_s in ms": t["bus_late_s"] * 1000}
    # Grade edges: the larger ones (30 and 15 also mean a chart margin or a zoom level).
    for pollutant in ("pm10", "pm25"):
        for v in layers.air_guides()[pollutant]:
            if v > 30:
                out[f"{pollutant} grade edge {v:g}"] = v
    return out


def test_the_browser_code_has_no_thresholds_of_its_own() -> None:
    """The old pages hard-coded PM10's grade edges (30/80/150), a 90 s bus fade (while
    `feeds.transit.fade_s` is configurable) and a camera activity window in two modules."""
    numbers = _thresholds()
    assert {numbers["transit.fade_s in ms"], numbers["camera_active_ms"], numbers["pm10 grade edge 150"]} \
        == {90000, 30000, 150}  # the check below is about these very values
    files = [*sorted((ASSETS / "cc").glob("*.js")), ASSETS / "leaflet_hooks.js", ASSETS / "early_socket.js"]
    for path in files:
        found = _number_literals(path.read_text())
        assert not {k for k, v in numbers.items() if float(v) in found}, path.name
        # The grade edges as a list, whatever their size.
        assert not re.search(r"\[\s*30\s*,\s*80\b", path.read_text()), path.name
    registry_js = (ASSETS / "cc" / "registry.js").read_text()
    assert "reg.thresholds" in registry_js and "reg.air_guides" in registry_js


def test_the_page_carries_the_configured_bus_fade(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bus fades on the page after `feeds.transit.fade_s`, the adapter's own setting."""
    from config.settings import MapSettings
    from spine.geography import load_edition
    from widgets import city_map as widget

    monkeypatch.setenv("CC_FEEDS__TRANSIT__FADE_S", "42.5")
    widget.bus_fade_s.cache_clear()
    try:
        div = widget.city_map(MapSettings(), load_edition(None), ["bus"])
        assert div.to_plotly_json()["props"]["data-cc-bus-fade-s"] == "42.5"
    finally:
        widget.bus_fade_s.cache_clear()
    assert "data-cc-bus-fade-s" in (ASSETS / "cc" / "markers.js").read_text()


def test_district_features_carry_no_property_dash_leaflet_binds_as_html() -> None:
    from spine.geography import district_geojson, load_edition

    features = district_geojson(load_edition(None))["features"]
    assert features
    for f in features:
        assert not {"tooltip", "popup"} & set(f["properties"]), f["properties"]
        assert f["properties"]["cc_district"] is True


def test_the_browser_code_has_no_colours_or_vocabulary_of_its_own() -> None:
    """The page's modules read every colour and code word from the registry JSON."""
    words = {e["code"] for key in ("severities", "sensor_levels", "air_grades")
             for e in layers.registry()[key]}
    words |= set(layers.CAMERA_STATUS_COLORS) | set(layers.CAMERA_TYPE_COLORS)
    classic = [ASSETS / "leaflet_hooks.js", ASSETS / "early_socket.js"]
    files = [*sorted((ASSETS / "cc").glob("*.js")), *classic]
    assert len(files) >= 10
    for path in files:
        text = path.read_text()
        assert not HEX.search(text), path.name
        assert not {w for w in words if f"'{w}'" in text or f'"{w}"' in text}, path.name
        # No markup from strings: the modules build DOM with textContent / setAttribute.
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", text), path.name
    assert not (ASSETS / "live.js").exists() and not (ASSETS / "video.js").exists()


def test_the_page_index_preloads_every_module_and_embeds_the_registry() -> None:
    from dashboard.app_factory import INDEX, MODULES

    assert {f"{m}.js" for m in MODULES} == {p.name for p in (ASSETS / "cc").glob("*.js")}
    assert '<script type="module" src="/assets/cc/main.js">' in INDEX
    assert layers.registry_json() in INDEX
