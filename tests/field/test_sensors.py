"""MQTT sensors: rules without chatter, a real broker and client, events, hostile input, broker restart."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.sensors.adapter import SensorAdapter
from feeds.sensors.config import RuleConfig, SensorsConfig
from feeds.sensors.observation import parse, topic_for
from feeds.sensors.rules import RuleState, step
from spine.servers.embedded_mqtt import EmbeddedMosquitto
from tests.field.conftest import wait_for

PREFIX = "test/"


def obs(
    value: object, t_ms: int | None = None, kind: str = "water_level", lat: float = 37.49, lon: float = 126.72
) -> bytes:
    when = datetime.fromtimestamp((t_ms or int(time.time() * 1000)) / 1000, UTC).isoformat()
    return json.dumps(
        {
            "phenomenonTime": when,
            "result": value,
            "Datastream": {
                "name": "굴포천",
                "unitOfMeasurement": {"symbol": "m"},
                "ObservedProperty": {"name": kind},
            },
            "FeatureOfInterest": {"feature": {"type": "Point", "coordinates": [lon, lat]}},
        }
    ).encode()


def test_deadband_and_on_delay_stop_chatter() -> None:
    rule = RuleConfig(name="주의", level=3.0, deadband=0.2, on_delay_s=10)
    s = RuleState()
    changes = []
    # hovering around 3.0 every second for a minute
    for t in range(60):
        v = 3.05 if t % 2 else 2.95
        changes.append(step(rule, s, v, t))
    assert not any(changes)  # never 10 s continuously above
    for t in range(60, 75):
        changes.append(step(rule, s, 3.1, t))
    assert changes.count("activated") == 1
    for t in range(75, 135):  # dips to 2.9 are inside the deadband: stays active
        assert step(rule, s, 2.9 if t % 2 else 3.05, t) is None
    assert step(rule, s, 2.7, 140) == "cleared"
    below = RuleConfig(name="염소 부족", level=0.1, direction="below", deadband=0.02)
    s2 = RuleState()
    assert step(below, s2, 0.05, 0) == "activated" and step(below, s2, 0.11, 1) is None
    assert step(below, s2, 0.13, 2) == "cleared"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.binary(max_size=300))
def test_parse_never_raises(topic: str, payload: bytes) -> None:
    parse(topic, payload, lambda r, d: None)


def _cfg(**kw) -> SensorsConfig:
    return SensorsConfig(
        topic_prefix=PREFIX,
        kinds={"water_level": {"unit": "m", "range": [-5, 30]}},
        sensors={"wl-1": {"rules": [{"name": "주의", "level": 3.0, "deadband": 0.1, "severity": "high"}]}},
        **kw,
    )


def test_hostile_payloads_are_counted(redis_url: str, area) -> None:
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area)
    t = topic_for(PREFIX, "wl-1")
    cases = [
        (t, b"{not json"),
        (t, b'{"phenomenonTime": "\xff\xfe", "result": 1}'),  # bad UTF-8 inside a string
        (t, b'{"result": 1, "x": ' + b"[" * 5000),  # nesting past the decoder's depth
        (t, obs("3.2")),
        (t, obs(True)),
        (t, obs(99.0)),
        (t, obs(1.0, lat=35.1, lon=129.0)),
        (t, obs(1.0, t_ms=int(time.time() * 1000) + 3_600_000)),
        ("test/other/topic", obs(1.0)),
        (t, b"x" * 20000),
        (t, json.dumps({"phenomenonTime": "yesterday", "result": 1}).encode()),
    ]
    for topic, payload in cases:
        assert a.ingest(payload, topic=topic) == 0
    c = a.rejects.counts
    assert c["malformed_json"] == 3 and c["invalid:observation"] == 1 and c["invalid:result"] == 1
    assert c["out_of_range:result"] == 1
    assert c["outside_service_area"] == 1 and c["future_timestamp"] == 1 and c["unknown_topic"] == 1
    assert c["too_large"] == 1 and c["invalid:phenomenonTime"] == 1
    assert a.ingest(obs(1.0), topic=t) == 1


def _publisher(broker: EmbeddedMosquitto, user: str = "sensors", inflight: int = 20) -> mqtt.Client:
    """A field gateway logged in to the broker (the `sensors` user may only publish)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    c.max_inflight_messages_set(inflight)
    c.username_pw_set(user, broker.passwords[user])
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    return c


@pytest.fixture(scope="module")
def mq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedMosquitto]:
    """A private broker as the stack starts it: passwords, and ACLs for this module's topic prefix."""
    broker = EmbeddedMosquitto(tmp_path_factory.mktemp("mq"), topic_prefixes=(PREFIX,))
    broker.start()
    yield broker
    broker.stop()


def test_real_broker_to_redis_with_events(
    redis_url: str, rclient: redis.Redis, area, mq: EmbeddedMosquitto
) -> None:
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area, broker_url=mq.url_for("feeds"))
    a.start()
    pub = _publisher(mq)
    try:
        wait_for(lambda: a.subscribed)
        t0 = int(time.time() * 1000) - 10_000
        for i, v in enumerate([2.0, 3.2, 2.95, 3.1, 2.5]):  # 2.95 is within the deadband
            pub.publish(topic_for(PREFIX, "wl-1"), obs(v, t0 + i * 1000), qos=1).wait_for_publish(5)
        pub.publish(topic_for(PREFIX, "wl-1"), b"\x00garbage", qos=1).wait_for_publish(5)
        wait_for(lambda: a.stats.messages == 5 and a.rejects.total == 1)
        a.flush()
        state = json.loads(rclient.hget("cc:v1:state:sensor", "wl-1"))
        assert state["props"]["value"] == 2.5 and state["props"]["level"] == "normal"
        events = [json.loads(e) for e in rclient.lrange("cc:v1:events:recent", 0, -1)]
        assert [e["type"] for e in reversed(events)] == ["threshold", "threshold_clear"]
        assert events[-1]["severity"] == "high" and events[-1]["entity"] == "wl-1"
    finally:
        pub.loop_stop()
        a.stop()


def test_recovers_from_broker_restart(redis_url: str, tmp_path, area) -> None:
    broker = EmbeddedMosquitto(tmp_path / "mq", topic_prefixes=(PREFIX,))
    broker.start()
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area, broker_url=broker.url_for("feeds"))
    a.start()
    try:
        wait_for(lambda: a.subscribed)
        broker.stop()
        wait_for(lambda: not a.subscribed)
        # same folder: the restarted broker keeps the passwords the adapter logged in with
        broker = EmbeddedMosquitto(tmp_path / "mq", port=broker.port, topic_prefixes=(PREFIX,))
        broker.start()
        wait_for(lambda: a.subscribed, timeout=20)
        pub = _publisher(broker)
        pub.publish(topic_for(PREFIX, "wl-1"), obs(1.5), qos=1).wait_for_publish(5)
        wait_for(lambda: a.stats.messages == 1)
        pub.loop_stop()
    finally:
        a.stop()
        broker.stop()


@pytest.mark.parametrize("value,level,rule",
                         [(0.3, "normal", None), (0.6, "warning", "탁도 기준 초과 (0.5 NTU)")])
def test_configured_drinking_water_limits(redis_url: str, area, value: float, level: str,
                                          rule: str | None) -> None:
    from feeds.field import load_feeds_config

    cfg = load_feeds_config().sensors
    a = SensorAdapter(redis.Redis.from_url(redis_url), cfg, area)
    t = int(time.time() * 1000) - 120_000
    for i in range(3):  # the rule's on-delay is 60 s: three readings a minute apart
        a.ingest(obs(value, t + i * 60_000, kind="turbidity"),
                 topic=topic_for(cfg.topic_prefix, "sen-turbidity-23"))  # a registered station
    # The level is a registry code (a high-severity rule is "warning"); the rule's name is display text.
    props = a._props(a.sensors["sen-turbidity-23"], value)
    assert (props["level"], props["rule"]) == (level, rule)


def test_made_up_sensor_ids_do_not_grow_memory(redis_url: str, area) -> None:
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area)
    for i in range(500):  # hostile: a new id each time, outside the service area
        assert a.ingest(obs(1.0, lat=35.1, lon=129.0), topic=topic_for(PREFIX, f"fake-{i}")) == 0
    assert len(a.sensors) == 0
    assert a.ingest(obs(int("9" * 400)), topic=topic_for(PREFIX, "wl-1")) == 0  # too big for a float
    assert a.rejects.counts["invalid:result"] == 1


def _connack(broker: EmbeddedMosquitto, user: str | None, password: str | None = None) -> mqtt.ReasonCode:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    got: list[mqtt.ReasonCode] = []
    c.on_connect = lambda client, userdata, flags, reason, props=None: got.append(reason)
    if user:
        c.username_pw_set(user, password if password is not None else broker.passwords[user])
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        wait_for(lambda: got)
    finally:
        c.disconnect()
        c.loop_stop()
    return got[0]


def test_broker_refuses_anonymous_clients_and_wrong_passwords(mq: EmbeddedMosquitto) -> None:
    assert _connack(mq, None).is_failure
    assert _connack(mq, "sensors", "guessed-password").is_failure
    assert not _connack(mq, "sensors").is_failure and not _connack(mq, "feeds").is_failure
    # The passwords live in a private file and the broker's file holds only hashes.
    assert (mq.workdir / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert mq.passwords["sensors"] not in (mq.workdir / "passwords").read_text()


def test_topic_acls_sensors_only_publish_under_the_prefix_adapter_only_reads(mq: EmbeddedMosquitto) -> None:
    seen: list[str] = []
    observer = _publisher(mq, "admin")
    observer.on_message = lambda client, userdata, msg: seen.append(msg.topic)
    observer.subscribe("#", qos=1)
    sensors, feeds = _publisher(mq, "sensors"), _publisher(mq, "feeds")
    try:
        wait_for(lambda: sensors.is_connected() and feeds.is_connected() and observer.is_connected())
        time.sleep(0.2)  # the observer's subscription is in place
        sensors.publish("elsewhere/v1.1/Datastreams(wl-1)/Observations", obs(1.0), qos=1).wait_for_publish(5)
        feeds.publish(topic_for(PREFIX, "wl-1"), obs(2.0), qos=1).wait_for_publish(5)  # a reader
        sensors.publish(topic_for(PREFIX, "wl-1"), obs(3.0), qos=1).wait_for_publish(5)
        wait_for(lambda: topic_for(PREFIX, "wl-1") in seen)
        time.sleep(0.3)
        assert seen == [topic_for(PREFIX, "wl-1")]  # only the allowed one reached a subscriber
    finally:
        for c in (observer, sensors, feeds):
            c.disconnect()
            c.loop_stop()


def test_ten_thousand_readings_from_unknown_ids_add_nothing_to_the_map(
    redis_url: str, rclient: redis.Redis, area, mq: EmbeddedMosquitto
) -> None:
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area, broker_url=mq.url_for("feeds"))
    a.start()
    pub = _publisher(mq, inflight=1000)
    try:
        wait_for(lambda: a.subscribed and pub.is_connected())
        # Well-formed, self-describing, inside the service area: what discovery would have accepted.
        body = obs(1.0, lat=37.49, lon=126.72)
        # In rounds of 500 that the adapter has read before the next: the broker drops QoS 1
        # messages beyond a slow subscriber's queue (max_queued_messages), and every one must arrive.
        for start in range(0, 10_000, 500):
            infos = [pub.publish(topic_for(PREFIX, f"fake-{i}"), body, qos=1)
                     for i in range(start, start + 500)]
            for info in infos:
                info.wait_for_publish(30)
            wait_for(lambda n=start + 500: a.rejects.counts["unknown_sensor"] == n, timeout=30)
        pub.publish(topic_for(PREFIX, "wl-1"), obs(1.5), qos=1).wait_for_publish(5)
        wait_for(lambda: a.stats.messages == 1)
        a.flush()
        assert rclient.hkeys("cc:v1:state:sensor") == [b"wl-1"] and list(a.sensors) == ["wl-1"]
    finally:
        pub.disconnect()
        pub.loop_stop()
        a.stop()
    # Discovery is an explicit opt-in (commissioning), and then the same reading is shown.
    b = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(accept_unknown=True), area)
    assert b.ingest(body, topic=topic_for(PREFIX, "fake-1")) == 1


def test_a_future_dated_reading_cannot_freeze_a_sensor(redis_url: str, rclient: redis.Redis, area) -> None:
    a = SensorAdapter(redis.Redis.from_url(redis_url), _cfg(), area)
    t = topic_for(PREFIX, "wl-1")
    now = int(time.time() * 1000)
    assert a.ingest(obs(1.0, now + 3_600_000), topic=t) == 0  # far ahead: rejected
    assert a.rejects.counts["future_timestamp"] == 1
    assert a.ingest(obs(1.1, now + 25_000), topic=t) == 1  # within the skew: counted as now
    assert a.sensors["wl-1"].last_t_ms <= int(time.time() * 1000)
    time.sleep(0.01)
    # The sensor's next real readings are not held back by the one that claimed to be 25 s ahead.
    for v in (1.2, 1.3):
        assert a.ingest(obs(v), topic=t) == 1
        time.sleep(0.01)
    a.flush()
    state = json.loads(rclient.hget("cc:v1:state:sensor", "wl-1"))
    assert state["props"]["value"] == 1.3 and state["ts"] <= int(time.time() * 1000)
