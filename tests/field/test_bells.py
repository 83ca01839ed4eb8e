"""Emergency bells (feeds/bells): the message parser under hostile input, the adapter's rules
(registry is authoritative, repeats folded, old and future times refused), and a press over the
real broker with its ACL users reaching Redis as a critical `bell` event on the sensor layer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.bells.adapter import PRESS_MSG, BellAdapter
from feeds.bells.config import BellsConfig
from feeds.bells.message import BadMessage, parse, topic_for
from feeds.config import FeedsConfig
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from tests.field.conftest import wait_for

PREFIX = "belltest/"


def _cfg(**kw: object) -> BellsConfig:
    return BellsConfig(topic_prefix=PREFIX, bells={
        "bell-1": {"name": "부평역 비상벨", "lat": 37.48905, "lon": 126.72455, "district": "부평구",
                   "camera": "vis-bupyeong-01", "preset": 3},
        "bell-far": {"name": "바다 위", "lat": 35.0, "lon": 129.0}}, **kw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048), st.text(max_size=80))
def test_parse_never_raises_anything_but_bad_message(raw: bytes, topic: str) -> None:
    for t in (topic, PREFIX + topic, topic_for(PREFIX, "bell-1")):
        try:
            m = parse(t, PREFIX, raw)
        except BadMessage as exc:
            assert exc.reason
        else:
            assert m.bell and m.kind in ("press", "status")


def test_parse_accepts_the_documented_forms() -> None:
    t = topic_for(PREFIX, "bell-1")
    assert parse(t, PREFIX, b"").t_ms is None
    assert parse(t, PREFIX, b'{"ts": 1700000000000, "seq": 3}').t_ms == 1700000000000
    assert parse(t, PREFIX, b'{"ts": "2026-12-02T13:00:00+09:00"}').t_ms == 1796184000000  # 04:00 UTC
    st_ = parse(topic_for(PREFIX, "bell-1", "status"), PREFIX, b'{"ok": false, "battery": 12}')
    assert st_.kind == "status" and st_.ok is False and st_.battery == 12
    for topic, raw, reason in [
        (t, b'{"ts": "2026-12-02T13:00:00"}', "invalid:ts"),  # no zone: ambiguous
        (t, b'{"evil": 1}', "invalid:body"), (t, b"{", "malformed_json"), (t, b"x" * 5000, "too_large"),
        (PREFIX + "bells/a b/press", b"", "unknown_topic"), (PREFIX + "bells/x/open", b"", "unknown_topic"),
        ("other/bells/bell-1/press", b"", "unknown_topic"), (t, b'{"ts": -5}', "invalid:ts")]:
        with pytest.raises(BadMessage) as exc:
            parse(topic, PREFIX, raw)
        assert exc.value.reason == reason, (topic, raw)


def test_adapter_rules_with_redis(redis_url: str, rclient: redis.Redis, area) -> None:
    a = BellAdapter(redis.Redis.from_url(redis_url), _cfg(), "mqtt://127.0.0.1:1", area)
    now = int(time.time() * 1000)
    t = topic_for(PREFIX, "bell-1")
    assert a.ingest(json.dumps({"ts": now - 5000}).encode(), topic=t) == 1
    assert a.ingest(json.dumps({"ts": now - 4000}).encode(), topic=t) == 0  # held button: folded
    assert a.ingest(json.dumps({"ts": now - 9000}).encode(), topic=t) == 0  # older than the last
    assert a.ingest(json.dumps({"ts": now + 3_600_000}).encode(), topic=t) == 0
    assert a.ingest(b"", topic=topic_for(PREFIX, "nobody")) == 0
    assert a.ingest(b"", topic=topic_for(PREFIX, "bell-far")) == 0  # outside the service area
    assert a.ingest(b"", topic=t) == 1  # no time: arrival time, past the repeat interval
    a.flush()
    c = a.rejects.counts
    assert c["press_repeat"] == 1 and c["duplicate_or_old"] == 1 and c["future_timestamp"] == 1
    assert c["unknown_bell"] == 1 and c["outside_service_area"] == 1
    events = [json.loads(e) for e in rclient.lrange("cc:v1:events:recent", 0, -1)]
    bells = [e for e in events if e["type"] == "bell"]
    assert len(bells) == 2
    e = bells[-1]
    assert e["severity"] == "critical" and e["entity"] == "bell-1" and e["layer"] == "sensor"
    assert (e["lat"], e["lon"]) == (37.48905, 126.72455)  # the registry's position, not the payload's
    assert e["msg"] == PRESS_MSG and e["params"] == {"name": "부평역 비상벨"}
    state = json.loads(rclient.hget("cc:v1:state:sensor", "bell-1"))
    assert state["props"]["kind"] == "bell" and state["props"]["district"] == "부평구"


@pytest.fixture(scope="module")
def mq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMosquitto]:
    broker = EmbeddedMosquitto(tmp_path_factory.mktemp("mqb"), topic_prefixes=(PREFIX,))
    broker.start()
    yield broker
    broker.stop()


def test_press_over_the_real_broker(redis_url: str, rclient: redis.Redis, area,
                                    mq: EmbeddedMosquitto) -> None:
    a = BellAdapter(redis.Redis.from_url(redis_url), _cfg(), mq.url_for("feeds"), area)
    a.start()
    box = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    box.username_pw_set("sensors", mq.passwords["sensors"])  # a field box may only publish
    box.connect("127.0.0.1", mq.port)
    box.loop_start()
    try:
        wait_for(lambda: a.subscribed)
        # registered bells are on the map before any press
        got = wait_for(lambda: rclient.hget("cc:v1:state:sensor", "bell-1"))
        assert json.loads(got)["props"]["kind"] == "bell"
        box.publish(topic_for(PREFIX, "bell-1"), b'{"seq": 1}', qos=1).wait_for_publish(5)
        box.publish(topic_for(PREFIX, "bell-1"), b"\xff\xfe", qos=1).wait_for_publish(5)
        wait_for(lambda: a.presses == 1 and a.rejects.counts.get("malformed_json") == 1)
        wait_for(lambda: any(json.loads(e)["type"] == "bell"
                             for e in rclient.lrange("cc:v1:events:recent", 0, -1)))
        assert a.stats.messages == 1 and a.stats.error == ""
    finally:
        box.loop_stop()
        a.stop()


def test_registry_in_the_shipped_config_is_valid() -> None:
    from config.root import load_config

    # The deployment's files ship no bells (none exist until a deployment lists its own); the demo
    # overlay has the demo city's six, each with a district, their cameras checked as references.
    shipped: FeedsConfig = load_config(environ={}, check_references=False).feeds
    assert shipped.bells.bells == {}
    feeds: FeedsConfig = load_config(environ={"CC_PROFILE": "demo"}).feeds
    assert len(feeds.bells.bells) == 6
    assert all(b.district for b in feeds.bells.bells.values())
    with pytest.raises(ValueError):
        BellsConfig(topic_prefix="x/#/")


def test_the_demo_presses_a_bell_over_the_broker(redis_url: str, rclient: redis.Redis, area,
                                                 mq: EmbeddedMosquitto) -> None:
    """feeds/simulator/bells.py: heartbeats at once, a press after FIRST_PRESS_S, as the `sensors` user."""
    from feeds.simulator.bells import FIRST_PRESS_S, BellWire

    a = BellAdapter(redis.Redis.from_url(redis_url), _cfg(), mq.url_for("feeds"), area)
    a.start()
    wire = BellWire(mq.url_for("sensors"), PREFIX, ["bell-1"], seed=1)
    try:
        wait_for(lambda: a.subscribed and wire.client.is_connected())
        now = int(time.time() * 1000)
        wire.step(1.0, now)  # the heartbeat
        wait_for(lambda: a.stats.messages == 1)
        assert a.presses == 0
        wire.step(FIRST_PRESS_S, now + 1000)  # the demo's first press
        wait_for(lambda: a.presses == 1)
        assert wire.pressed == ["bell-1"]
    finally:
        wire.close()
        a.stop()
