"""Air quality: CAI, C24E, alerts, US AQI, the AirKorea format, and the adapter against Redis."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.air import alert, aqi_us, cai
from feeds.air.adapter import AirAdapter
from feeds.air.airkorea import FLAG_MAX, POLLUTANTS, parse_page, parse_response, parse_time
from feeds.air.config import AirConfig
from feeds.air.history import history_key
from feeds.air.msrstn import INCHEON_DISTRICTS, incheon_stations, parse_msrstn_list, parse_msrstn_page
from feeds.air.stations import air_stations
from spine.contract import RejectLog
from spine.layers import POPUP_FIELDS, check_props

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


# --- paging, flags and the integrated grade, against a real HTTP server ---------------------------


class AirKoreaServer:
    """getCtprvnRltmMesureDnsty as the live API pages it: numOfRows (default 10) and pageNo over
    `items`; `fail_page` answers 500 for that page, `total` overrides the totalCount it states."""

    def __init__(self) -> None:
        self.items: list[dict] = []
        self.total: int | None = None
        self.fail_page: int | None = None
        self.asked: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
                outer.asked.append(q)
                rows, page = int(q.get("numOfRows", "10")), int(q.get("pageNo", "1"))
                if page == outer.fail_page:
                    self.send_error(500)
                    return
                chunk = outer.items[(page - 1) * rows:page * rows]
                total = len(outer.items) if outer.total is None else outer.total
                body = json.dumps({"response": {"header": {"resultCode": "00", "resultMsg": "NORMAL_CODE"},
                                                "body": {"totalCount": total, "items": chunk,
                                                         "pageNo": page, "numOfRows": rows}}},
                                  ensure_ascii=False).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = (f"http://127.0.0.1:{self.httpd.server_address[1]}/B552584/ArpltnInforInqireSvc/"
                    "getCtprvnRltmMesureDnsty?sidoName=%EC%9D%B8%EC%B2%9C&returnType=json&ver=1.0")


@pytest.fixture
def airkorea() -> Iterator[AirKoreaServer]:
    srv = AirKoreaServer()
    t = threading.Thread(target=srv.httpd.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()
    t.join(5)


def _full(name: str) -> dict:
    return {"stationName": name, "dataTime": _hour(0), "pm10Value": "20", "pm25Value": "8",
            "o3Value": "0.020", "no2Value": "0.010", "so2Value": "0.002", "coValue": "0.3"}


def test_every_page_up_to_total_count_is_fetched(redis_url: str, rclient: redis.Redis, area,
                                                 airkorea: AirKoreaServer) -> None:
    names = [s.name for s in air_stations()]
    airkorea.items = [_full(n) for n in names]
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(url=airkorea.url, page_rows=10), area)
    assert a.poll(airkorea.url) == len(names)  # 35 stations: 4 pages of 10
    assert [q["pageNo"] for q in airkorea.asked] == ["1", "2", "3", "4"]
    assert {q["numOfRows"] for q in airkorea.asked} == {"10"}
    assert set(a.series) == set(names) and a.notes == [] and not a.rejects.counts
    assert a.flush() and rclient.hlen("cc:v1:state:air") >= len(names)


def test_the_urls_own_num_of_rows_is_kept(redis_url: str, area, airkorea: AirKoreaServer) -> None:
    names = [s.name for s in air_stations()]
    airkorea.items = [_full(n) for n in names]
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(page_rows=5), area)
    assert a.poll(airkorea.url + "&numOfRows=20") == len(names)
    assert [(q["numOfRows"], q["pageNo"]) for q in airkorea.asked] == [("20", "1"), ("20", "2")]


def test_the_24h_backfill_of_each_station_is_paged_too(redis_url: str, area,
                                                       airkorea: AirKoreaServer) -> None:
    """getMsrstnAcctoRltmMesureDnsty?dataTerm=DAILY answers 24 hourly items, 10 per page by default:
    all 24 reach the series, not the first 10."""
    airkorea.items = [{k: v for k, v in _full("x").items() if k != "stationName"} | {"dataTime": _hour(h)}
                      for h in range(24)]
    url = airkorea.url.replace("getCtprvnRltmMesureDnsty", "getMsrstnAcctoRltmMesureDnsty").replace(
        "sidoName=%EC%9D%B8%EC%B2%9C", "stationName={station}&dataTerm=DAILY")
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(backfill_url=url, page_rows=10), area)
    a._loaded = True  # the history in Redis is another test's; only the backfill is looked at here
    a.connect()
    n = len(air_stations())
    assert len(airkorea.asked) == 3 * n and {q["stationName"] for q in airkorea.asked} == set(a.stations)
    assert all(len(a.series[name]) == 24 for name in a.stations) and a.notes == []


def test_a_response_short_of_total_count_is_noted(redis_url: str, area, airkorea: AirKoreaServer) -> None:
    names = [s.name for s in air_stations()]
    airkorea.items = [_full(n) for n in names]
    airkorea.fail_page = 3
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(page_rows=10), area)
    assert a.poll(airkorea.url) == 20  # the first two pages are still shown
    assert a.rejects.counts["incomplete_response"] == 1
    assert a.notes and "20 of totalCount 35" in a.notes[0] and "page 3 failed" in a.notes[0]
    # a server that states more rows than it has: the empty page ends the poll, and it is noted
    airkorea.fail_page, airkorea.total, airkorea.asked = None, 50, []
    b = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(page_rows=10), area)
    assert b.poll(airkorea.url) == 35 and "35 of totalCount 50" in b.notes[0] and "page 5 empty" in b.notes[0]
    # and max_pages bounds a runaway totalCount
    airkorea.total, airkorea.asked = 10**6, []
    c = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(page_rows=10, max_pages=2), area)
    assert c.poll(airkorea.url) == 20 and len(airkorea.asked) == 2 and "max_pages=2" in c.notes[0]


def test_flagged_station_keeps_its_flags_and_gets_no_integrated_grade(
        redis_url: str, rclient: redis.Redis, area, airkorea: AirKoreaServer) -> None:
    """PM10 and every gas in 통신장애, PM2.5 valid: AirKorea's khaiValue is "-", so no CAI and no
    integrated grade here either; the flags reach the popup, PM2.5 keeps its own grade."""
    airkorea.items = [
        {"stationName": "부평", "dataTime": _hour(0), "pm10Value": "-", "pm10Flag": "통신장애",
         "pm25Value": "8", "pm25Flag": None, "o3Value": "-", "o3Flag": "통신장애", "no2Value": "-",
         "no2Flag": "통신장애", "so2Value": "-", "so2Flag": "통신장애", "coValue": "-", "coFlag": "통신장애",
         "khaiValue": "-", "khaiGrade": None},
        {**_full("신흥"), "so2Value": "0.004", "so2Flag": "점검및교정", "coFlag": "자료이상",
         "khaiValue": "34"},
    ]
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(), area)
    assert a.poll(airkorea.url) == 2 and a.flush()
    p = json.loads(rclient.hget("cc:v1:state:air", "air-부평"))["props"]
    assert p.get("grade") is None and p.get("cai") is None
    assert p["flags"] == {k: "통신장애" for k in ("pm10", "o3", "no2", "so2", "co")}
    assert p["cai_missing"] == ["pm10", "no2", "o3"] and p["cai_grades"] == {"pm25": "좋음"}
    check_props("air", p)
    q = json.loads(rclient.hget("cc:v1:state:air", "air-신흥"))["props"]
    # PM10, PM2.5, NO2 and O3 valid: a CAI and its grade; a flagged SO2 (with a number) is no data
    assert q["cai"] is not None and q["grade"] == "좋음" and q["so2"] is None and q["co"] is None
    assert q["flags"] == {"so2": "점검및교정", "co": "자료이상"} and not q.get("cai_missing")
    assert {"flags", "cai_missing"} <= {k for k, _, _ in POPUP_FIELDS["air"]}


def test_grade_follows_the_cai_rule_on_calculator_examples(redis_url: str, rclient: redis.Redis,
                                                           area) -> None:
    """AirKorea's CAI calculator: a CAI only when PM10, PM2.5, NO2 and O3 are all given. With all four
    (PM2.5 50 -> 154, the worked example) the station is 나쁨; without any one of them it has no
    integrated grade however bad SO2 and CO are, and `cai_missing` names the one."""
    a = AirAdapter(redis.Redis.from_url(redis_url), AirConfig(us_aqi=False), area)
    full = {"dataTime": _hour(0), "pm10Value": "40", "pm25Value": "50", "no2Value": "0.020",
            "o3Value": "0.030", "so2Value": "0.3", "coValue": "20"}
    assert a.ingest(_body([{"stationName": "부평", **full}])) == 1 and a.flush()
    p = json.loads(rclient.hget("cc:v1:state:air", "air-부평"))["props"]
    assert p["cai"] == max(cai.sub_index("pm25", 50), cai.sub_index("so2", 0.3), cai.sub_index("co", 20))
    assert p["grade"] == "매우나쁨" and cai.sub_index("pm25", 50) == 154
    names = [s.name for s in air_stations()][:4]
    for name, gone in zip(names, cai.REQUIRED, strict=True):
        assert a.ingest(_body([{"stationName": name, **full, f"{gone}Value": "-"}])) == 1
    assert a.flush()
    for name, gone in zip(names, cai.REQUIRED, strict=True):
        q = json.loads(rclient.hget("cc:v1:state:air", f"air-{name}"))["props"]
        assert q.get("grade") is None and q.get("cai") is None and q["cai_missing"] == [gone]
        assert q["cai_grades"]["so2"] == "매우나쁨"  # the pollutant's own grade is still shown


_flag = st.one_of(st.none(), st.just("-"), st.just(""), st.sampled_from(["통신장애", "점검및교정", "자료이상",
                                                                            "장비점검", "기타"]),
                  st.text(max_size=60), st.integers())
_count_field = st.one_of(st.none(), st.integers(-5, 10**8), st.text(max_size=6), st.floats(), st.booleans())


@settings(max_examples=200, deadline=None)
@given(flags=st.fixed_dictionaries({f"{p}Flag": _flag for p in POLLUTANTS}),
       values=st.fixed_dictionaries({f"{p}Value": st.one_of(st.none(), st.just("-"), st.text(max_size=6),
                                                             st.floats(0, 100).map(str))
                                     for p in POLLUTANTS}),
       total=_count_field, page_no=_count_field, rows=_count_field)
def test_parse_page_keeps_bounded_flags_and_sane_counts(flags: dict, values: dict, total: object,
                                                        page_no: object, rows: object) -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    item = {"stationName": "부평", "dataTime": _hour(0), **values, **flags}
    data = json.dumps({"response": {"header": {"resultCode": "00"},
                                    "body": {"items": [item], "totalCount": total, "pageNo": page_no,
                                             "numOfRows": rows}}}).encode()
    page = parse_page(data, log.add)
    for n in (page.total_count, page.page_no, page.num_of_rows):
        assert n is None or (isinstance(n, int) and 0 <= n <= 10**7)
    if page.rows:
        row = page.rows[0]
        assert page.items == 1
        for p, text in row.flags.items():
            assert 0 < len(text) <= FLAG_MAX and text == text.strip() and row.values[p] is None
        for p in POLLUTANTS:
            f = flags[f"{p}Flag"]
            assert (p in row.flags) == (isinstance(f, str) and f.strip() not in ("", "-"))
        check_props("air", {"flags": row.flags})


# --- the station registry in getMsrstnList form -------------------------------------------------------


def _msrstn_item(name: str, lat: float, lon: float, kind: str = "도시대기") -> dict:
    # dmX is the latitude, dmY the longitude, as AirKorea writes them (strings)
    return {"stationName": name, "addr": "인천 어딘가", "year": "2001", "mangName": kind,
            "item": "SO2, CO, O3, NO2, PM10, PM2.5", "dmX": str(lat), "dmY": str(lon)}


def test_shipped_incheon_registry_is_getmsrstnlist_with_the_2026_districts() -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    stations = incheon_stations(log.add)
    assert stations == air_stations() and not log.counts  # the same 35 stations, the same facts
    shipped = json.loads(INCHEON_DISTRICTS.read_text(encoding="utf-8"))
    assert shipped["edition"] == "2026-07-01" and {s.district_ko for s in stations} <= set(
        shipped["districts"].values())
    # the district is the table's, never the address's
    body = _body([_msrstn_item("부평", 37.487, 126.724)])
    (bp,) = parse_msrstn_list(body, {"부평": "부평구"}, log.add)
    assert (bp.lat, bp.lon, bp.district_ko, bp.kind) == (37.487, 126.724, "부평구", "도시대기")


def test_registry_rejects_swapped_or_bad_positions_and_reports_unknown_districts() -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    body = _body([_msrstn_item("거꾸로", 126.7, 37.4), {"stationName": "없음", "dmX": "-", "dmY": ""},
                  _msrstn_item("새역", 37.5, 126.6), {"dmX": "37", "dmY": "126"}])
    got = parse_msrstn_list(body, {}, log.add)
    assert [(s.name, s.district_ko) for s in got] == [("새역", "")]
    assert log.counts["invalid:dmX/dmY"] == 2 and log.counts["unknown_district"] == 1
    assert log.counts["invalid:stationName"] == 1


def test_adapter_reads_the_registry_from_getmsrstnlist_pages(redis_url: str, rclient: redis.Redis, area,
                                                            airkorea: AirKoreaServer, tmp_path) -> None:
    """The registry comes over HTTP in pages (numOfRows default 10) like the measurements; a station
    the old hand-written list did not know is then accepted and published with its table district."""
    known = [_msrstn_item(s.name, s.lat, s.lon, s.kind) for s in air_stations()]
    new = _msrstn_item("새송도", 37.38, 126.65)
    airkorea.items = [*known, new]
    table = json.loads(INCHEON_DISTRICTS.read_text(encoding="utf-8"))
    table["districts"]["새송도"] = "연수구"
    districts = tmp_path / "districts.json"
    districts.write_text(json.dumps(table, ensure_ascii=False), encoding="utf-8")
    cfg = AirConfig(stations_url=airkorea.url.replace("getCtprvnRltmMesureDnsty", "getMsrstnList"),
                    districts_file=str(districts), page_rows=10)
    a = AirAdapter(redis.Redis.from_url(redis_url), cfg, area)
    a.connect()
    assert [q["pageNo"] for q in airkorea.asked] == ["1", "2", "3", "4"] and len(a.stations) == 36
    assert a.ingest(_body([_full("새송도")])) == 1 and a.flush()
    p = json.loads(rclient.hget("cc:v1:state:air", "air-새송도"))["props"]
    assert p["district"] == "연수구" and p["kind"] == "도시대기"


@settings(max_examples=150, deadline=None)
@given(st.lists(st.fixed_dictionaries({
    "stationName": st.one_of(st.none(), st.text(max_size=50), st.integers()),
    "mangName": st.one_of(st.none(), st.text(max_size=50)),
    # JSON has no NaN; "NaN" and "inf" arrive as strings, which the text strategy covers
    "dmX": st.one_of(st.none(), st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False),
                     st.integers(-500, 500), st.sampled_from(["NaN", "inf", "37.5", " 126.7 "])),
    "dmY": st.one_of(st.none(), st.text(max_size=8), st.floats(allow_nan=False, allow_infinity=False),
                     st.integers(-500, 500), st.sampled_from(["NaN", "-inf", "126.7", "1e400"])),
}), max_size=5), st.one_of(st.none(), st.integers(-3, 100), st.text(max_size=4)))
def test_registry_parser_never_raises_and_keeps_only_valid_positions(items: list[dict],
                                                                     total: object) -> None:
    log = RejectLog(__import__("logging").getLogger("t"))
    data = json.dumps({"response": {"header": {"resultCode": "00"},
                                    "body": {"items": items, "totalCount": total}}}).encode()
    stations, n, got_total = parse_msrstn_page(data, {}, log.add)
    assert n == len(items) and (got_total is None or got_total >= 0)
    for s in stations:
        assert -90 <= s.lat <= 90 and -180 <= s.lon <= 180 and 0 < len(s.name) <= 40 and len(s.kind) <= 40
