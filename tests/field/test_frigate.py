"""Frigate NVR servers as a CCTV source: payloads shaped as Frigate's MQTT documentation shows (0.10-era
events, 0.14+ events and reviews, availability), through a real broker, onto the real Redis spine."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.config import FeedsConfig
from feeds.field import FieldRunner
from feeds.frigate.adapter import FrigateAdapter
from feeds.frigate.config import CameraSite, FrigateConfig
from feeds.frigate.payload import EventMessage, ReviewMessage, parse
from spine.contract import validate_update
from spine.health import assess
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from tests.field.conftest import wait_for

GATE = CameraSite(id="cam-gate", name="North gate", district="부평구", lat=37.4893, lon=126.7240, heading=90)
EID = "1767225600.123456-ab12cd"  # Frigate's id shape: <frame time>-<6 random characters>


def _cfg(port: int = 1883, **server: Any) -> FrigateConfig:
    base: dict[str, Any] = {
        "mqtt_url": f"mqtt://127.0.0.1:{port}", "http_url": "http://127.0.0.1:5000",
        "cameras": {"front_door": "cam-gate",
                    "yard": {"id": "cam-yard", "name": "Yard", "lat": 37.45, "lon": 126.70}},
        "label_severity": {"car": "low"}}
    base.update(server)
    return FrigateConfig(servers={"gate": base})


def _obj(eid: str = EID, camera: str = "front_door", **kw: Any) -> dict[str, Any]:
    """A tracked object as 0.14+ sends it (extra keys included: they must be ignored)."""
    now = time.time()
    obj = {"id": eid, "camera": camera, "frame_time": now,
           "snapshot": {"frame_time": now, "box": [1, 2, 3, 4], "area": 12, "region": [0, 0, 320, 320],
                        "score": 0.8, "attributes": []},
           "label": "person", "sub_label": None, "top_score": 0.91, "false_positive": False,
           "start_time": now - 2, "end_time": None, "score": 0.87, "box": [10, 20, 30, 40], "area": 400,
           "ratio": 0.5, "region": [0, 0, 320, 320], "stationary": False, "motionless_count": 0,
           "position_changes": 1, "current_zones": [], "entered_zones": [], "has_clip": True,
           "has_snapshot": True, "attributes": {}, "current_attributes": []}
    obj.update(kw)
    return obj


def _events(kind: str, after: dict[str, Any], before: dict[str, Any] | None = None) -> bytes:
    return json.dumps({"type": kind, "before": before or after, "after": after}).encode()


def _old_event(kind: str = "new", **kw: Any) -> bytes:
    """The 0.10-era shape: a string sub label, no `score`, a thumbnail field, no snapshot object."""
    now = time.time()
    after = {"id": "1607123955.475377-mxklsc", "camera": "yard", "frame_time": now, "snapshot_time": now,
             "label": "car", "sub_label": "", "top_score": 0.72, "false_positive": False,
             "start_time": now - 5, "end_time": None, "box": [1, 2, 3, 4], "area": 10, "region": [0, 0, 9, 9],
             "current_zones": ["street"], "entered_zones": ["street"], "thumbnail": None,
             "has_snapshot": False, "has_clip": False}
    after.update(kw)
    return json.dumps({"type": kind, "before": after, "after": after}).encode()


def _review(kind: str, severity: str = "detection", **data: Any) -> bytes:
    now = time.time()
    d = {"detections": [EID], "objects": ["person"], "sub_labels": [], "zones": [], "audio": []}
    d.update(data)
    after = {"id": "1767225601.000001-rv0001", "camera": "front_door", "start_time": now - 3,
             "end_time": now if kind == "end" else None, "severity": severity,
             "thumb_path": "/media/frigate/clips/review/thumb.webp", "data": d}
    return json.dumps({"type": kind, "before": after, "after": after}).encode()


def _recent(rclient: redis.Redis) -> list[dict[str, Any]]:
    return [json.loads(e) for e in reversed(rclient.lrange("cc:v1:events:recent", 0, -1))]


def _adapter(redis_url: str, cfg: FrigateConfig | None = None) -> FrigateAdapter:
    return FrigateAdapter(redis.Redis.from_url(redis_url), cfg or _cfg(), {"cam-gate": GATE})


# ---- configuration -------------------------------------------------------------------------------

@pytest.mark.parametrize("server,why", [
    ({"password": "hunter2"}, "Extra inputs"),                       # passwords only from the environment
    ({"password_env": "lower-case"}, "password_env"),
    ({"topic_prefix": "frigate/#"}, "topic_prefix"),                 # no wildcards
    ({"topic_prefix": "frigate/"}, "topic_prefix"),
    ({"http_url": "http://user:pw@nvr:5000"}, "no credentials"),
    ({"http_url": "file:///etc/passwd"}, "http_url"),
    ({"mqtt_url": "ws://nvr:9001"}, "mqtt_url"),
    ({"cameras": {"front door": "cam-gate"}}, "cameras"),
])
def test_config_refuses(server: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        FrigateConfig(servers={"gate": server})


def test_config_names_and_prefixes() -> None:
    with pytest.raises(ValueError, match="servers"):
        FrigateConfig(servers={"gate.1": {}})  # a dot would split a snapshot id
    with pytest.raises(ValueError, match="unique prefix"):
        FrigateConfig(servers={"a": {}, "b": {}})  # one broker, one prefix: whose events?
    assert FeedsConfig().frigate.servers == {}  # none by default: the source is not started


# ---- the parser -----------------------------------------------------------------------------------

def test_both_sub_label_shapes_and_unknown_keys() -> None:
    new = parse("events", _events("new", _obj(sub_label=["Kim", 0.93])), lambda r, d: None)
    old = parse("events", _old_event(sub_label="Bob"), lambda r, d: None)
    assert isinstance(new, EventMessage) and new.after.sub_label == ["Kim", 0.93]
    assert isinstance(old, EventMessage) and old.after.sub_label == "Bob" and old.after.score is None
    rv = parse("reviews", _review("new", future_field={"x": 1}), lambda r, d: None)
    assert isinstance(rv, ReviewMessage) and rv.after.severity == "detection"


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["events", "reviews", "available", "stats", "other"]), st.binary(max_size=400))
def test_parse_never_raises_on_bytes(kind: str, raw: bytes) -> None:
    parse(kind, raw, lambda r, d: None)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                     lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids,
                                                                               max_size=4), max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["new", "update", "end", "bogus"]),
       st.dictionaries(st.sampled_from(["id", "camera", "label", "sub_label", "top_score", "score",
                                        "current_zones", "entered_zones", "has_snapshot", "start_time",
                                        "end_time", "severity", "data", "false_positive"]),
                       _json, max_size=10))
def test_frigate_shaped_junk_is_typed_or_refused(kind: str, fields: dict) -> None:
    """Whatever parses is within bounds; everything else is one counted reason, never an exception."""
    for topic in ("events", "reviews"):
        raw = msgspec.json.encode({"type": kind, "after": {**fields}})
        reasons: list[str] = []
        got = parse(topic, raw, lambda r, d, reasons=reasons: reasons.append(r))
        assert (got is None) == (len(reasons) == 1)
        if isinstance(got, EventMessage):
            o = got.after
            assert len(o.current_zones) <= 64 and all(len(z) <= 64 for z in o.current_zones)
            assert o.score is None or 0 <= o.score <= 1
        if got is None:
            assert reasons[0].startswith("invalid:") and len(reasons[0]) < 80


_FIELDS = ["id", "camera", "label", "sub_label", "top_score", "score", "current_zones", "entered_zones",
           "has_snapshot", "start_time", "end_time", "false_positive"]
_values = (st.none() | st.booleans() | st.integers(-10, 10**12) | st.floats(allow_nan=True)
           | st.text(max_size=80) | st.lists(st.text(max_size=70) | st.floats(0, 1), max_size=70)
           | st.sampled_from(["front_door", "yard", EID, "driveway", ["Kim", 0.9]]))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["new", "update", "end"]),
       st.dictionaries(st.sampled_from(_FIELDS), _values, max_size=4))
def test_adapter_accepts_or_counts_each_frigate_like_event(kind: str, changes: dict) -> None:
    """A documented-shape event with some fields replaced by anything: one published event or one
    counted reject (a false positive: neither), never an exception and never a bad Event."""
    a = FrigateAdapter(redis.Redis(port=1), _cfg(), {"cam-gate": GATE})  # nothing is flushed here
    got = a.ingest(_events(kind, _obj(**changes)), "frigate/events")
    assert got in (0, 1)
    if got == 1 or changes.get("false_positive") is not True:
        assert a.rejects.total == 1 - got
    for ev in a.publisher._pending_events:
        assert ev.entity in ("cam-gate", "cam-yard") and ev.props.get("score", 0) <= 1
        assert len(ev.props.get("zones", [])) <= 16 and len(ev.title) <= 200


def test_adapter_survives_junk_with_counted_reasons(redis_url: str) -> None:
    a = _adapter(redis_url)
    junk = [("frigate/events", b"{nope"), ("frigate/events", b"[]"), ("frigate/reviews", b"\x00\xff"),
            ("frigate/events", _events("new", _obj(eid="../../api/config"))),
            ("frigate/events", _events("new", _obj(score=7.5, top_score=None))),
            ("frigate/events", b" " * 300_000), ("frigate/available", b"maybe"),
            ("frigate/nothing", b"{}"), ("elsewhere/events", _events("new", _obj())),
            ("frigate/events", _events("new", _obj(current_zones=["z"] * 100)))]
    for topic, raw in junk:
        assert a.ingest(raw, topic) == 0
    c = a.rejects.counts
    assert c["invalid:json"] == 2 and c["invalid:payload"] == 1 and c["invalid:after.id"] == 1
    assert c["invalid:after.score"] == 1 and c["too_large"] == 1 and c["invalid:available"] == 1
    assert c["unknown_topic"] == 2 and c["invalid:after.current_zones"] == 1
    assert a.ingest(_events("new", _obj()), "frigate/events") == 1


# ---- what is published ------------------------------------------------------------------------------

def test_events_publish_on_meaningful_changes_only(redis_url: str, rclient: redis.Redis) -> None:
    a = _adapter(redis_url)
    t = "frigate/events"
    assert a.ingest(_events("new", _obj()), t) == 1
    assert a.ingest(_events("update", _obj(top_score=0.95)), t) == 0  # a better snapshot: not news
    frame = time.time() - 30.5  # a recorded update keeps Frigate's own time
    assert a.ingest(_events("update", _obj(entered_zones=["driveway"], current_zones=["driveway"],
                                           frame_time=frame)), t) == 1
    assert a.ingest(_events("update", _obj(entered_zones=["driveway"], current_zones=[])), t) == 0
    assert a.ingest(_events("update", _obj(entered_zones=["driveway"], sub_label=["Kim", 0.9])), t) == 1
    assert a.ingest(_events("end", _obj(entered_zones=["driveway"], end_time=time.time())), t) == 1
    assert a.ingest(_old_event(), t) == 1  # 0.10 shape, on a camera configured with its own site
    a.flush()
    evs = _recent(rclient)
    assert [e["props"]["phase"] for e in evs] == ["new", "update", "update", "end", "new"]
    first, zone, named, end, old = evs
    assert first["layer"] == "camera" and first["entity"] == "cam-gate" and first["type"] == "frigate_object"
    assert (first["lat"], first["lon"]) == (GATE.lat, GATE.lon) and first["severity"] == "medium"
    assert first["props"]["label"] == "person" and first["props"]["score"] == 0.91
    assert first["props"]["frigate_server"] == "gate" and first["props"]["frigate_id"] == EID
    assert first["snapshot"] == f"frigate.gate.{EID}"
    assert zone["props"]["zones"] == ["driveway"] and "driveway" in zone["title"]
    assert zone["ts"] == int(frame * 1000)
    assert named["props"]["sub_label"] == "Kim" and "(Kim)" in named["title"]
    assert end["severity"] == "info" and end["title"].endswith("ended")
    assert len({e["id"] for e in evs}) == 5
    assert old["entity"] == "cam-yard" and old["severity"] == "low" and old["props"]["zones"] == ["street"]
    assert "snapshot" not in old and "sub_label" not in old["props"]  # has_snapshot false, empty sub label
    assert a.stats.messages == 5


def test_unmapped_camera_is_counted_not_shown(redis_url: str, rclient: redis.Redis) -> None:
    a = _adapter(redis_url)
    assert a.ingest(_events("new", _obj(camera="back_alley")), "frigate/events") == 0
    assert a.rejects.counts["unmapped_camera"] == 1
    # Mapped to an id that is not a map camera: a configuration fault, counted by its own name.
    b = _adapter(redis_url, _cfg(cameras={"front_door": "cam-nowhere"}))
    assert b.ingest(_events("new", _obj()), "frigate/events") == 0
    assert b.rejects.counts["unknown_map_camera"] == 1
    a.flush()
    b.flush()
    assert _recent(rclient) == []


def test_reviews_take_over_from_events_and_carry_severity(redis_url: str, rclient: redis.Redis) -> None:
    a = _adapter(redis_url)
    assert a.ingest(_review("new"), "frigate/reviews") == 1
    assert a.ingest(_events("new", _obj()), "frigate/events") == 0  # auto: reviews now speak for it
    assert a.ingest(_review("update"), "frigate/reviews") == 0
    raised = _review("update", "alert", zones=["porch"], objects=["person", "car"])
    assert a.ingest(raised, "frigate/reviews") == 1
    assert a.ingest(_review("end", "alert", zones=["porch"]), "frigate/reviews") == 1
    a.flush()
    new, alert, end = _recent(rclient)
    assert (new["type"], new["severity"], new["props"]["review_severity"]) == ("frigate_detection", "medium",
                                                                               "detection")
    assert new["snapshot"] == f"frigate.gate.{EID}"  # the review's first detection
    assert (alert["type"], alert["severity"]) == ("frigate_alert", "high")
    assert alert["props"]["label"] == "person, car" and alert["props"]["zones"] == ["porch"]
    assert end["severity"] == "info" and end["props"]["phase"] == "end"


def test_a_quiet_site_that_keeps_talking_is_not_stale(redis_url: str) -> None:
    """Health judges the newest record's own age; a camera that saw nothing for an hour is not old
    data while Frigate's stats (every 60 s) say the server is alive and current."""
    a = _adapter(redis_url, FrigateConfig(contract_s=60, servers=_cfg().servers))
    a.stats.connected = True
    hour_ago = time.time() - 3600
    assert a.ingest(_events("new", _obj(start_time=hour_ago)), "frigate/events") == 1
    assert assess(a, 0.0).state == "stale"  # the only record is an hour old, nothing since
    stats = {"cameras": {"front_door": {"camera_fps": 5.0}}, "service": {"last_updated": time.time(),
             "uptime": 86400, "version": "0.14.1-f4f3cfa"}}
    assert a.ingest(json.dumps(stats).encode(), "frigate/stats") == 0
    h = assess(a, 0.0)
    assert h.state == "ok" and h.source_age_s is not None and h.source_age_s < 5 and h.messages == 1


# ---- through a real broker ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMosquitto]:
    """A broker with passwords and ACLs: `feeds` may read the Frigate prefixes, `sensors` publish them."""
    broker = EmbeddedMosquitto(tmp_path_factory.mktemp("frigate-mq"), topic_prefixes=("frigate/", "site2/"))
    broker.start()
    yield broker
    broker.stop()


def _frigate(broker: EmbeddedMosquitto) -> mqtt.Client:
    """Stands in for a Frigate server publishing to its broker."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.username_pw_set("sensors", broker.passwords["sensors"])
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


def _send(c: mqtt.Client, topic: str, payload: bytes, retain: bool = False) -> None:
    c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)


def _two_servers(port: int) -> FrigateConfig:
    common = {"mqtt_url": f"mqtt://127.0.0.1:{port}", "username": "feeds",
              "password_env": "CC_TEST_FRIGATE_MQTT_PASSWORD"}
    return FrigateConfig(servers={
        "gate": {**common, "http_url": "http://127.0.0.1:5000", "cameras": {"front_door": "cam-gate"}},
        "depot": {**common, "topic_prefix": "site2", "cameras": {
            "bay_1": {"id": "cam-bay1", "name": "Bay 1", "lat": 37.47, "lon": 126.63},
            "bay_2": {"id": "cam-bay2", "name": "Bay 2", "lat": 37.471, "lon": 126.631}}}})


def test_real_broker_two_servers_events_and_availability(redis_url: str, rclient: redis.Redis,
                                                         mq: EmbeddedMosquitto, monkeypatch) -> None:
    monkeypatch.setenv("CC_TEST_FRIGATE_MQTT_PASSWORD", mq.passwords["feeds"])  # never in a file
    pub = _frigate(mq)
    _send(pub, "site2/available", b"online", retain=True)  # Frigate's retained birth message
    a = FrigateAdapter(redis.Redis.from_url(redis_url), _two_servers(mq.port), {"cam-gate": GATE})
    a.start()
    try:
        wait_for(lambda: all(s.connected for s in a.servers.values()))
        wait_for(lambda: a.servers["depot"].online is True)  # the retained message arrived on subscribe
        _send(pub, "frigate/events", _events("new", _obj()))
        _send(pub, "frigate/events", b"\x00garbage")
        _send(pub, "frigate/events", _events("new", _obj(camera="garage")))
        _send(pub, "site2/events", _old_event(camera="bay_2", sub_label="Truck 12"))
        wait_for(lambda: a.stats.messages == 2 and a.rejects.total == 2)
        assert a.rejects.counts["invalid:json"] == 1 and a.rejects.counts["unmapped_camera"] == 1
        _send(pub, "site2/available", b"offline", retain=True)  # what Frigate's last will says
        wait_for(lambda: a.servers["depot"].online is False)
        a.flush()
        # Two servers, two MQTT clients: which one's message lands first is the scheduler's choice.
        evs = sorted(_recent(rclient), key=lambda e: e["props"]["frigate_server"])
        assert [(e["entity"], e["props"]["frigate_server"]) for e in evs] == [("cam-bay2", "depot"),
                                                                            ("cam-gate", "gate")]
        assert evs[0]["props"]["sub_label"] == "Truck 12"
        state = {k.decode(): json.loads(v) for k, v in rclient.hgetall("cc:v1:state:camera").items()}
        for upd in state.values():
            validate_update(upd)  # the camera layer's registry (CameraProps), as the gateway checks
        assert state["cam-bay1"]["props"]["status"] == "offline" == state["cam-bay2"]["props"]["status"]
        assert state["cam-bay1"]["props"]["name"] == "Bay 1" and state["cam-bay1"]["lat"] == 37.47
        assert "cam-gate" not in state  # the other server said nothing about its cameras
        a._health()
        assert "frigate depot: offline" in a.stats.error and a.stats.connected  # gate still speaks
        _send(pub, "site2/available", b"online", retain=True)
        wait_for(lambda: a.servers["depot"].online is True)
        a.flush()
        state = json.loads(rclient.hget("cc:v1:state:camera", "cam-bay1"))
        assert state["props"]["status"] == "online"
        a._health()
        assert a.stats.error == ""
    finally:
        _send(pub, "site2/available", b"", retain=True)  # clear the retained message
        pub.loop_stop()
        a.stop()


def test_field_runner_starts_frigate_and_health_tells_offline(redis_url: str, rclient: redis.Redis,
                                                              mq: EmbeddedMosquitto, monkeypatch) -> None:
    monkeypatch.setenv("CC_TEST_FRIGATE_MQTT_PASSWORD", mq.passwords["feeds"])
    off = {"enabled": False}
    cfg = FeedsConfig(health={"interval_s": 0.2}, transit=off, air=off, drone=off, sensors=off,
                      frigate={"contract_s": 30, "servers": {"gate": {
                          "mqtt_url": f"mqtt://127.0.0.1:{mq.port}", "username": "feeds",
                          "password_env": "CC_TEST_FRIGATE_MQTT_PASSWORD",
                          "cameras": {"front_door": "vis-bupyeong-01"}}}})  # a camera of config/cameras.yaml
    runner = FieldRunner(redis_url, cfg)
    pub = _frigate(mq)
    with runner:
        assert [a.source for a in runner.adapters] == ["frigate"]
        a = runner.adapters[0]
        wait_for(lambda: a.stats.connected)
        _send(pub, "frigate/events", _events("new", _obj()))

        def health() -> dict:
            raw = rclient.hget("cc:v1:health", "frigate")
            return json.loads(raw) if raw else {}

        wait_for(lambda: health().get("messages") == 1)
        assert health()["state"] == "ok" and health()["layer"] == "camera"
        ev = wait_for(lambda: _recent(rclient))[-1]  # the adapter's loop flushes twice a second
        assert ev["entity"] == "vis-bupyeong-01" and (ev["lat"], ev["lon"]) == (37.4893, 126.7240)
        _send(pub, "frigate/available", b"offline")
        wait_for(lambda: "frigate gate: offline" in health().get("error", ""))
        assert health()["connected"] is False  # its only server is offline
        assert health()["state"] == "down"  # at once: Frigate said so, no contract period to wait
        state = json.loads(wait_for(lambda: rclient.hget("cc:v1:state:camera", "vis-bupyeong-01")))
        assert state["props"]["status"] == "offline"
    pub.loop_stop()


def test_hostile_depth_and_trailing_newline_ids_are_counted_refusals() -> None:
    """Nesting deeper than the decoder's recursion limit in an ignored key (well under the size bound)
    is a counted `invalid:json`, not an exception (live: `internal_error`; replay: an 'adapter bug');
    an id with a trailing newline is not Frigate's id shape (a `$` would let it through)."""
    reasons: list[str] = []
    deep = (b'{"type":"new","extra":' + b"[" * 20_000 + b"]" * 20_000
            + b',"after":{"id":"' + EID.encode() + b'","camera":"front_door"}}')
    assert len(deep) < 256 * 1024
    assert parse("events", deep, lambda r, d: reasons.append(r)) is None
    assert parse("stats", b'{"a":' * 20_000 + b"1" + b"}" * 20_000, lambda r, d: reasons.append(r)) is None
    for eid in (EID + "\n", EID + "\r\n"):
        assert parse("events", _events("new", _obj(eid=eid)), lambda r, d: reasons.append(r)) is None
        assert parse("reviews", json.dumps({"type": "new", "after": {
            "id": eid, "camera": "front_door", "severity": "alert"}}).encode(),
            lambda r, d: reasons.append(r)) is None
    assert reasons == ["invalid:json", "invalid:json"] + ["invalid:after.id"] * 4


def test_envelope_types_frigate_adds_later_are_ignored_not_rejected(redis_url: str) -> None:
    """Frigate adds message types to the reviews/events envelope (a GenAI description of a review,
    type `genai`, 0.16+) as it adds keys: not new/update/end, so nothing to show, but not a fault of
    the feed either (a reject each would make a GenAI site's health look broken)."""
    a = _adapter(redis_url)
    genai = json.dumps({"type": "genai", "before": {}, "after": {
        "id": "1767225601.000001-rv0001", "camera": "front_door", "severity": "alert",
        "data": {"metadata": {"title": "A person at the door", "scene": "..."}}}}).encode()
    assert a.ingest(genai, "frigate/reviews") == 0 and a.ingest(genai, "frigate/events") == 0
    assert a.rejects.total == 0 and a.stats.last_message_at is not None
    assert parse("reviews", b'{"type": 7, "after": {}}', lambda r, d: None) is None  # still typed


def test_invalid_utf8_inside_a_json_string_is_invalid_json() -> None:
    """msgspec raises UnicodeDecodeError (not DecodeError) for bad UTF-8 inside a string: counted as
    invalid:json like any malformed JSON, never an exception (live: 'internal_error')."""
    reasons: list[str] = []
    for raw in (b'{"type": "new", "after": {"id": "1767225600.123456-ab12cd", "camera": "\xf5x"}}',
                b'{"type": "\xf5"}'):
        for kind in ("events", "reviews"):
            assert parse(kind, raw, lambda r, d: reasons.append(r)) is None
    assert reasons == ["invalid:json"] * 4
