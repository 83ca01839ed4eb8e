"""Air quality: CAI, C24E, alerts, US AQI, the AirKorea format, and the adapter against Redis."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.air import alert, aqi_us, cai
from feeds.air.adapter import AirAdapter
from feeds.air.airkorea import parse_response, parse_time
from feeds.air.config import AirConfig
from feeds.air.history import history_key
from spine.contract import RejectLog

KST = timedelta(hours=9)


def test_cai_worked_example_and_bands() -> None:
    assert cai.sub_index("pm25", 50) == 154 and cai.grade_of(154) == "나쁨"
    assert cai.sub_index("pm25", 15) == 50 and cai.grade_of(50) == "좋음"
    assert cai.sub_index("pm25", 16) == 51  # 2018 band: 16-35 is 보통
    assert cai.sub_index("pm10", 30.5) == 51  # between bands: lower edge of the upper band
    assert cai.sub_index("o3", 0.7) == 500
    assert cai.cai({"pm10": 40, "pm25": 154, "no2": 20, "o3": None}) is None  # O3 missing: no CAI
    assert cai.cai({"pm10": 40, "pm25": 154, "no2": 20, "o3": 30}) == 154


def test_c24e_damps_a_steady_high_level() -> None:
    steady = [80.0] * 12  # PM10 >= 70 and Ci/C12 = 1: Ca = 0.75 Ci
    assert cai.c24e("pm10", steady) == pytest.approx((80 * 12 + 60 * 12) / 24)
    low = [20.0] * 12
    assert cai.c24e("pm10", low) == pytest.approx(20.0)
    assert cai.c24e("pm25", [None] * 8 + [10.0] * 4) is None  # too few hours


def test_alert_needs_two_hours_and_releases_lower() -> None:
    assert alert.alert_state("pm25", [80]) is None
    assert alert.alert_state("pm25", [80, 80]) == "주의보"
    assert alert.alert_state("pm25", [80, None, 80]) is None  # a missing hour breaks the run
    assert alert.alert_state("pm25", [80, 80, 50]) == "주의보"  # below issue, above release
    assert alert.alert_state("pm25", [80, 80, 30]) is None
    assert alert.alert_state("pm10", [310, 320]) == "경보"
    assert alert.alert_state("pm10", [310, 320, 140]) == "주의보"


def test_us_aqi_2024() -> None:
    assert aqi_us.sub_index("pm25", 50) == 137
    assert aqi_us.sub_index("pm25", 9.0) == 50 and aqi_us.sub_index("pm25", 9.1) == 51
    assert aqi_us.sub_index("pm25", 400) == 500
    out = aqi_us.aqi(50, 40, 0.02, 0.003, 0.03)
    assert (
        out["value"] == 137 and out["scale"].startswith("US EPA") and out["category"].startswith("Unhealthy")
    )


def test_airkorea_time_formats() -> None:
    a = parse_time("2026-11-22 14:00")
    assert a == parse_time("2026-11-22 14시")
    assert parse_time("2026-11-22 24:00") == parse_time("2026-11-23 00:00")
    assert parse_time("2026-13-40 99:00") is None and parse_time(None) is None


def _body(items: list[dict], code: str = "00") -> bytes:
    return json.dumps(
        {
            "response": {
                "header": {"resultCode": code, "resultMsg": "x"},
                "body": {"items": items, "totalCount": len(items)},
            }
        },
        ensure_ascii=False,
    ).encode()


def _hour(h_ago: int) -> str:
    t = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=h_ago)
    return (t + KST).strftime("%Y-%m-%d %H:00")


def test_dash_and_flags_mean_no_data_never_zero() -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    rows = parse_response(
        _body(
            [
                {
                    "stationName": "부평",
                    "dataTime": _hour(0),
                    "pm10Value": "-",
                    "pm25Value": "12",
                    "pm25Flag": "통신장애",
                    "o3Value": "0.030",
                    "no2Value": "abc",
                    "coValue": "-5",
                }
            ]
        ),
        log.add,
    )
    assert rows[0].values["pm10"] is None and rows[0].values["pm25"] is None
    assert rows[0].values["o3"] == 0.03
    assert log.counts["invalid:no2"] == 1 and log.counts["out_of_range:co"] == 1
    assert parse_response(_body([], code="30"), log.add) == [] and log.counts["api_error"] == 1
    assert parse_response(b'{"response": ', log.add) == [] and log.counts["malformed_json"] == 1


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
            max_leaves=20,
        ).map(
            lambda o: json.dumps(
                {"response": {"header": {"resultCode": "00"}, "body": {"items": [o]}}}
            ).encode()
        ),
    )
)
def test_parse_never_raises(data: bytes) -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    parse_response(data, log.add)


def test_adapter_publishes_cai_alert_and_history(redis_url: str, rclient: redis.Redis, area) -> None:
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(us_aqi=True), area)
    items = [
        {
            "stationName": "부평",
            "dataTime": _hour(h),
            "pm10Value": "160",
            "pm25Value": "80",
            "o3Value": "0.030",
            "no2Value": "0.020",
            "so2Value": "0.003",
            "coValue": "0.4",
        }
        for h in range(12, -1, -1)
    ]
    items.append({"stationName": "없는역", "dataTime": _hour(0), "pm10Value": "10"})
    items.append({"stationName": "부평", "dataTime": "2099-01-01 01:00", "pm10Value": "10"})
    assert a.ingest(_body(items)) == 13
    assert a.flush()
    upd = json.loads(rclient.hget("cc:v1:state:air", "air-부평"))
    p = upd["props"]
    assert p["grade"] in cai.GRADES and p["cai"] >= 101 and p["pm_basis"]["pm25"] == "C24E"
    assert p["alert"]["pm25"] == "주의보" and p["alert"]["pm10"] == "주의보" and p["alert_level"] == "주의보"
    assert p["aqi_us"]["scale"] == "US EPA AQI (2024)"
    assert rclient.zcard(history_key("부평")) == 13
    assert a.rejects.counts["unknown_station"] == 1 and a.rejects.counts["future_timestamp"] == 1
    # a restarted adapter gets its series back from Redis
    b = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(), area)
    b.connect()
    assert len(b.series["부평"]) == 13
    assert time.time() > 0
