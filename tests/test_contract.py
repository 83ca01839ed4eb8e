"""The wire contract: what is accepted, what is rejected and why."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spine.contract import (
    EntityUpdate,
    Rejected,
    RejectLog,
    decode_events,
    decode_updates,
    encode,
    now_ms,
    validate_event,
    validate_update,
)

GOOD = {"v": 1, "layer": "bus", "id": "bus-1", "ts": now_ms(), "seq": 3, "lat": 37.45,
        "lon": 126.7, "props": {"route": "27"}}


def rejects() -> RejectLog:
    return RejectLog(logging.getLogger("test"))


def test_round_trip_keeps_every_field() -> None:
    upd = validate_update(GOOD)
    assert decode_updates(encode(upd), rejects()) == [upd]


@pytest.mark.parametrize(("change", "reason"), [
    ({"id": ""}, "invalid:id"),
    ({"id": "   "}, "invalid:id"),
    ({"id": 7}, "invalid:id"),
    ({"layer": "tank"}, "invalid:layer"),
    ({"v": 2}, "invalid:v"),
    ({"lat": 91.0}, "invalid:lat"),
    ({"lon": -181.0}, "invalid:lon"),
    ({"ts": -5}, "invalid:ts"),
    ({"seq": -1}, "invalid:seq"),
    ({"props": []}, "invalid:props"),
])
def test_invalid_fields_are_rejected_with_the_field_named(change: dict, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        validate_update({**GOOD, **change})
    assert info.value.reason == reason


def test_missing_field_is_rejected() -> None:
    body = dict(GOOD)
    del body["ts"]
    with pytest.raises(Rejected):
        validate_update(body)


def test_array_payload_rejects_only_the_bad_elements() -> None:
    log = rejects()
    bad = encode({**GOOD, "id": ""})
    raw = b"[" + encode(GOOD) + b"," + bad + b"," + encode({**GOOD, "id": "bus-2"}) + b"]"
    assert [u.id for u in decode_updates(raw, log)] == ["bus-1", "bus-2"]
    assert log.counts == {"invalid:id": 1}


def test_oversized_message_is_rejected_before_parsing() -> None:
    log = rejects()
    big = encode({**GOOD, "props": {"blob": "x" * 70_000}})
    assert decode_updates(big, log, max_item_bytes=65536) == []
    assert log.counts == {"too_large": 1}


def test_events_validate_severity() -> None:
    ev = {"v": 1, "id": "ev-1", "type": "threshold", "severity": "medium", "ts": 1, "layer": "sensor",
          "entity": "sen-1", "lat": 37.5, "lon": 126.7, "title": "굴포천 3.1 m"}
    assert validate_event(ev).severity == "medium"
    with pytest.raises(Rejected):
        validate_event({**ev, "severity": "apocalyptic"})
    log = rejects()
    assert decode_events(encode({**ev, "severity": "x"}), log) == []
    assert log.total == 1


def test_reject_log_does_not_flood(caplog: pytest.LogCaptureFixture) -> None:
    log = RejectLog(logging.getLogger("flood"), burst=3, every_s=3600)
    with caplog.at_level(logging.WARNING, logger="flood"):
        for _ in range(1000):
            log.add("malformed_json", "boom")
    assert log.counts["malformed_json"] == 1000
    assert len(caplog.records) == 3


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2048))
def test_any_bytes_never_raise(raw: bytes) -> None:
    out = decode_updates(raw, rejects())
    assert all(isinstance(u, EntityUpdate) and u.id.strip() for u in out)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from([*list(GOOD), "extra"]),
                       st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20),
                                 st.lists(st.integers(), max_size=3))))
def test_any_shaped_object_is_either_valid_or_rejected(body: dict) -> None:
    log = rejects()
    out = decode_updates(encode(body), log)
    assert len(out) + log.total == 1
