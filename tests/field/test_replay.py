"""`python -m feeds replay`: captures made with the real encoders (tests/field/captures/make_captures.py)
replayed through the CLI as an integrator runs it, compared with what the live adapters publish to Redis,
plus the capture readers under hypothesis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.replay.bodies import read_airkorea, read_gtfs
from feeds.replay.cli import parse_area
from feeds.replay.mavlink_log import frame_len, is_tlog, read_mavlink, read_raw, read_tlog
from feeds.replay.mqtt_log import read_mqtt_log
from feeds.replay.records import Tally
from feeds.replay.run import UsageError, replay
from feeds.sensors.adapter import SensorAdapter
from feeds.transit.adapter import TransitAdapter
from feeds.transit.config import TransitConfig
from spine import channels
from tests.field.captures import make_captures as mk

ROOT = Path(__file__).resolve().parents[2]
CAP = Path(__file__).parent / "captures"


def cli(*args: str | Path) -> tuple[int, list[dict[str, Any]], dict[str, Any] | None, str]:
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", *map(str, args)], cwd=ROOT,
                       capture_output=True, timeout=120)
    lines = [json.loads(x) for x in p.stdout.decode().splitlines()]
    summary = lines[-1]["summary"] if lines and "summary" in lines[-1] else None
    return p.returncode, [x for x in lines if "layer" in x], summary, p.stderr.decode()


def _entities(lines: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {x["id"]: x for x in lines}  # the last update per entity: what the map ends up showing


# --- each source --------------------------------------------------------------------------------------
def test_gtfs_rt_replay_counts_and_lines() -> None:
    rc, lines, s, err = cli("gtfs_rt", CAP / "gtfs_incheon.pb", CAP / "gtfs_incheon_later.pb")
    assert rc == 0 and err == "" and s is not None
    assert [x["id"] for x in lines] == ["bus-1", "bus-2", "bus-3", "bus-1", "bus-2"]
    assert set(lines[0]) == {"layer", "id", "lat", "lon", "props"} and lines[0]["layer"] == "bus"
    assert lines[0]["lat"] == pytest.approx(37.4563, abs=1e-5) and lines[0]["props"]["route"] == "R1"
    assert s["accepted"] == 5 and s["records"] == 2 and s["updates"] == 5
    assert s["rejected"] == {"missing:position": 1}  # the subway car: a note in health, not a fault
    assert s["health"]["state"] == "ok" and s["health"]["notes"] == {"missing:position": 1}
    assert any("without a position" in n for n in s["notes"])


def test_gtfs_rt_lines_are_what_the_live_adapter_writes_to_redis(tmp_path: Path, redis_url: str,
                                                                 rclient: redis.Redis, area) -> None:
    now = int(time.time())
    capture = tmp_path / "now.pb"
    capture.write_bytes(mk.gtfs(mk.INCHEON, now))
    rclient.delete(channels.state_key("bus"))
    live = TransitAdapter(redis.Redis.from_url(redis_url), TransitConfig(), area)
    assert live.ingest(capture.read_bytes()) == 3 and live.flush()
    stored = _state(rclient, "bus")
    rc, lines, s, _ = cli("gtfs_rt", capture, "--clock", "now")
    assert rc == 0 and s is not None and s["accepted"] == 3
    got = _entities(lines)
    assert set(got) == set(stored) == {"bus-1", "bus-2", "bus-3"}
    for vid, upd in stored.items():
        assert (got[vid]["lat"], got[vid]["lon"], got[vid]["props"]) == (upd["lat"], upd["lon"], upd["props"])


def test_airkorea_pages_and_incomplete_page_note() -> None:
    rc, lines, s, _ = cli("airkorea", CAP / "airkorea_p1.json", CAP / "airkorea_p2.json")
    assert rc == 0 and s is not None
    assert sorted(x["id"] for x in lines) == ["air-부평", "air-송림", "air-신흥"]
    assert s["accepted"] == 3 and s["health"]["state"] == "ok"
    assert all(x["props"]["pm25"] == 18.0 and x["props"]["grade"] for x in lines)
    assert not any("incomplete" in n for n in s["notes"])
    rc, lines, s, _ = cli("airkorea", CAP / "airkorea_p1.json")  # page 2 not captured
    assert rc == 0 and s is not None and s["accepted"] == 2 and len(lines) == 2
    assert any("2 of totalCount 3" in n for n in s["notes"])


def test_mavlink_tlog_and_raw_stream_show_the_autopilot() -> None:
    for f in ("drone.tlog", "drone_raw.bin"):
        rc, lines, s, _ = cli("mavlink", CAP / f)
        assert rc == 0 and s is not None, f
        last = _entities(lines)["drone-1"]
        assert last["lat"] == pytest.approx(37.4563) and last["lon"] == pytest.approx(126.7077)  # last fix
        p = last["props"]
        assert (p["mode"], p["armed"], p["gps_fix"], p["voltage_v"], p["battery_pct"]) == \
            ("LOITER", True, True, 16.2, None)  # -1 % keeps the voltage
        assert s["rejected"] == {} and s["health"]["state"] == "ok", f  # GCS heartbeats are no rejects
        assert any("ground-station" in n for n in s["notes"])
    assert is_tlog((CAP / "drone.tlog").read_bytes()) and not is_tlog((CAP / "drone_raw.bin").read_bytes())


def test_mavlink_no_fix_is_never_at_zero_and_noted() -> None:
    rc, lines, s, _ = cli("mavlink", CAP / "drone_nofix.tlog")
    assert rc == 0 and s is not None
    assert [(x["id"], x["lat"], x["lon"]) for x in lines] == [("drone-1", None, None)]
    assert lines[0]["props"]["gps"] == "no GPS fix" and lines[0]["props"]["mode"] == "LOITER"
    assert any(n.startswith("no GPS fix: drone-1") for n in s["notes"])
    assert "no GPS fix" in s["health"]["error"]


def test_mavlink_lost_fix_stays_at_the_last_good_position() -> None:
    rc, lines, s, _ = cli("mavlink", CAP / "drone_lostfix.tlog")
    assert rc == 0 and s is not None
    assert all(x["lat"] is not None and x["lat"] != 0 for x in lines)  # never (0, 0), never dropped
    last = lines[-1]
    assert (last["lat"], last["lon"]) == (pytest.approx(37.4563), pytest.approx(126.7062))  # fix at T0+2
    assert last["props"]["gps"] == "no GPS fix" and last["props"]["footprint"] is None
    assert any("at its last good position" in n for n in s["notes"])


def test_mqtt_sensors_both_log_forms_and_the_live_adapter(redis_url: str, rclient: redis.Redis,
                                                        area) -> None:
    rc, lines, s, _ = cli("mqtt_sensors", CAP / "sensors.jsonl")
    assert rc == 0 and s is not None
    assert s["accepted"] == 4 and s["records"] == 5  # 6 lines: 4 observations, 1 foreign topic, 1 cut
    assert s["rejected"] == {"capture:bad_line": 1, "capture:topic_not_subscribed": 1}
    assert any("line 4" in n for n in s["notes"])
    rc2, lines2, s2, _ = cli("mqtt_sensors", CAP / "sensors_mosquitto.txt")
    assert rc2 == 0 and lines2 == lines and s2 is not None and s2["accepted"] == 4
    assert s2["health"]["state"] == "ok"  # no delivery times: the observations' own times are the clock
    # The same payloads into the live adapter (on the capture's time) give the same picture.
    cfg = _feeds_config().sensors

    class At:
        t = float(mk.T0 + 240)

        def time(self) -> float:
            return self.t

        def monotonic(self) -> float:
            return self.t

    rclient.delete(channels.state_key("sensor"))
    live = SensorAdapter(redis.Redis.from_url(redis_url), cfg, area, clock=At())
    for row in map(json.loads, (CAP / "sensors.jsonl").read_text().splitlines()[:2] +
                   (CAP / "sensors.jsonl").read_text().splitlines()[4:]):
        payload = row["payload"] if isinstance(row["payload"], str) else json.dumps(row["payload"])
        live.ingest(payload.encode(), topic=row["topic"])
    assert live.flush()
    stored = _state(rclient, "sensor")
    got = _entities(lines)
    assert set(got) == set(stored)
    for sid, upd in stored.items():
        assert got[sid]["props"] == upd["props"] and got[sid]["lat"] == upd["lat"]


def _feeds_config() -> Any:
    from config.root import load_config

    return load_config(None, check_references=False).feeds


def _state(rclient: redis.Redis, layer: str) -> dict[str, Any]:
    return {k.decode(): msgspec.json.decode(v) for k, v in rclient.hgetall(channels.state_key(layer)).items()}


# --- clock, area, bad input, usage ----------------------------------------------------------------
def test_clock_feed_replays_an_old_capture_as_ok_and_now_as_stale() -> None:
    _, _, feed, _ = cli("mqtt_sensors", CAP / "sensors.jsonl")
    _, _, now, _ = cli("mqtt_sensors", CAP / "sensors.jsonl", "--clock", "now")
    assert feed is not None and now is not None
    assert feed["health"]["state"] == "ok" and feed["health"]["ts"] < 1_800_000_000_000
    assert now["health"]["state"] == "stale" and "old" in now["health"]["error"]
    assert any("--clock feed" in n for n in now["notes"])
    pages = (CAP / "airkorea_p1.json", CAP / "airkorea_p2.json")
    _, lines, air_now, _ = cli("airkorea", *pages, "--clock", "now")
    assert air_now is not None and air_now["health"]["state"] != "ok" and lines == []
    assert any("too old to show" in n for n in air_now["notes"])


def test_area_lets_a_foreign_capture_through() -> None:
    rc, lines, s, _ = cli("gtfs_rt", CAP / "gtfs_portland.pb")
    assert rc == 0 and s is not None and lines == [] and s["accepted"] == 0
    assert s["rejected"] == {"outside_service_area": 2} and s["health"]["state"] == "error"
    hint = next(n for n in s["notes"] if "outside the service area" in n)
    assert "--area 45.50,-122.69,45.53,-122.65" in hint
    rc, lines, s, _ = cli("gtfs_rt", CAP / "gtfs_portland.pb", "--area", "45.50,-122.69,45.53,-122.65")
    assert rc == 0 and s is not None and s["accepted"] == 2
    assert {x["id"] for x in lines} == {"pdx-101", "pdx-102"}
    assert s["health"]["state"] == "ok"


def test_corrupt_and_truncated_captures_are_noted_not_fatal(tmp_path: Path) -> None:
    good = (CAP / "drone.tlog").read_bytes()
    bad = tmp_path / "cut.tlog"
    bad.write_bytes(good[:400] + b"\x00garbage\xfe\x01" + good[400:-7])  # a corrupt stretch and a cut end
    rc, lines, s, err = cli("mavlink", bad)
    assert rc == 0 and "Traceback" not in err and s is not None
    assert s["rejected"]["capture:tlog_unframed"] >= 2 and lines
    assert any("could not be read as [timestamp][MAVLink frame]" in n for n in s["notes"])
    flipped = bytearray(good)
    flipped[8 + 10 + 2] ^= 0xFF  # in the first heartbeat's payload (after stamp, v2 header): CRC fails
    (tmp_path / "crc.tlog").write_bytes(bytes(flipped))
    rc, _, s, err = cli("mavlink", tmp_path / "crc.tlog")
    assert rc == 0 and s is not None and "Traceback" not in err
    assert s["rejected"].get("bad_frame", 0) >= 1 and any("could not be parsed" in n for n in s["notes"])
    (tmp_path / "x.pb").write_bytes(b"\x0a\xff\xff garbage")
    (tmp_path / "x.json").write_bytes(b'{"response": {"header": ')
    for source, f, reason in (("gtfs_rt", "x.pb", "malformed_protobuf"),
                              ("airkorea", "x.json", "malformed_json")):
        rc, lines, s, err = cli(source, tmp_path / f)
        assert rc == 0 and "Traceback" not in err and s is not None and lines == []
        assert s["rejected"] == {reason: 1} and any(reason in n for n in s["notes"])


@pytest.mark.parametrize("args, says", [
    (["ferry", "x"], "unknown source"),
    (["gtfs_rt", "/nonexistent/feed.pb"], "cannot read"),
    (["gtfs_rt", "tests/field/captures/gtfs_portland.pb", "--area", "45,-122,44,-121"], "--area"),
    (["gtfs_rt", "tests/field/captures/gtfs_portland.pb", "--area", "a,b"], "--area"),
    (["gtfs_rt"], "required"),
    (["mavlink", "x", "--clock", "tomorrow"], "--clock"),
])
def test_usage_errors_exit_2_with_one_line(args: list[str], says: str) -> None:
    rc, lines, s, err = cli(*args)
    assert rc == 2 and lines == [] and s is None
    assert len(err.strip().splitlines()) == 1 and says in err and "Traceback" not in err


def test_not_a_replay_command() -> None:
    p = subprocess.run([sys.executable, "-m", "feeds"], cwd=ROOT, capture_output=True, timeout=60)
    assert p.returncode == 2 and b"usage" in p.stderr


def test_frigate_log_replays_reviews_and_camera_status() -> None:
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(CAP / "frigate.log")],
                       cwd=ROOT, capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    cams = [(x["id"], x["props"]["status"]) for x in out if "layer" in x]
    assert cams == [("frigate-gate-yard", "online"), ("frigate-gate-yard", "offline")]
    events = [x["event"] for x in out if "event" in x]
    assert [(e["type"], e["props"]["phase"], e["title"]) for e in events] == [
        ("frigate_alert", "new", "Gate yard: person in driveway"),
        ("frigate_alert", "end", "Gate yard: person in driveway ended")]
    assert events[0]["ts"] == 1714532410500  # Frigate's own start time
    s = out[-1]["summary"]
    assert s["events"] == 2 and s["records"] == 5 and "offline" in s["health"]["error"]
    # The feed clock, as for every source: health is judged at the capture's own time (2024).
    assert s["clock"] == "feed" and abs(s["health"]["ts"] - 1714532410500) < 3_600_000
    # Without servers configured the replay cannot map topics: a usage error, one line.
    rc, _, _, err = cli("frigate", CAP / "frigate.log")
    assert rc == 2 and "feeds.frigate.servers" in err and len(err.strip().splitlines()) == 1


def test_parse_area() -> None:
    assert parse_area("45.4,-122.8,45.6,-122.5") == (45.4, -122.8, 45.6, -122.5)
    for bad in ("1,2,3", "nan,0,1,1", "0,10,1,5", "0,0,91,1"):
        with pytest.raises(UsageError):
            parse_area(bad)


# --- readers under hypothesis -------------------------------------------------------------------------
def _frames_len(data: bytes) -> int:
    return sum(len(r.data) for r in read_tlog(data, Tally()))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000), st.integers(0, 2000))
def test_tlog_reader_accounts_for_every_byte(noise: bytes, cut: int) -> None:
    good = (CAP / "drone.tlog").read_bytes()
    for data in (noise, good[:cut] + noise + good[cut:], good[:cut]):
        t = Tally()
        recs = list(read_tlog(data, t))
        assert t.records == len(recs)
        assert 8 * len(recs) + sum(len(r.data) for r in recs) + t.skipped_bytes == len(data)
        assert all(frame_len(r.data, 0) == len(r.data) for r in recs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, 1700), noise=st.binary(max_size=64), raw=st.booleans())
def test_spliced_mavlink_through_replay(area, cut: int, noise: bytes, raw: bool) -> None:
    """Good frames with noise spliced in or the end cut: every record is read or accounted for, and
    the adapter never raises."""
    good = (CAP / ("drone_raw.bin" if raw else "drone.tlog")).read_bytes()
    data = good[:cut] + noise + good[cut:] if noise else good[:cut]
    out: list[dict[str, Any]] = []
    s = replay("mavlink", [("spliced", data)], _feeds_config(), area, "feed", out.append)["summary"]
    assert not any("the adapter raised" in n for n in s["notes"])
    assert s["updates"] == sum(1 for x in out if "layer" in x)
    assert all(x["lat"] is None or abs(x["lat"]) > 1 for x in out)  # never at (0, 0)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000))
def test_raw_and_log_readers_never_raise(data: bytes) -> None:
    t = Tally()
    chunks = list(read_raw(data, t))
    assert b"".join(r.data for r in chunks) == data and t.records == len(chunks)
    list(read_mavlink(data, Tally()))
    t = Tally()
    recs = list(read_mqtt_log(data, t))
    lines = [ln.rstrip(b"\r") for ln in data.split(b"\n")]
    blank = sum(1 for ln in lines if not ln.strip() or ln.startswith(b"//"))
    assert len(recs) == t.records and t.records + sum(t.problems.values()) + blank == len(lines)
    for reader in (read_gtfs, read_airkorea):
        t = Tally()
        assert len(list(reader(data, t))) == 1 == t.records


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(["gtfs_rt", "airkorea", "mavlink", "mqtt_sensors"]),
       data=st.binary(max_size=2000))
def test_random_bytes_through_every_source(area, source: str, data: bytes) -> None:
    cfg = _feeds_config()
    out: list[dict[str, Any]] = []
    summary = replay(source, [("random", data)], cfg, area, "feed", out.append)["summary"]
    assert not any("the adapter raised" in n for n in summary["notes"])
    assert summary["updates"] == len([x for x in out if "layer" in x])
    msgspec.json.encode(out)  # every line is JSON


def test_mqtt_log_forms() -> None:
    t = Tally()
    data = (b'{"ts": 1714532400.5, "topic": "a/b", "payload": {"b64": "AAE="}}\n'
            b'1714532401.25 a/c hello world\n'
            b"a/d {\"x\": 1}\n"
            b"// a comment\n\n"
            b'{"topic": "a/e", "payload": {"k": [1, 2]}}\n'
            b'{"topic": "a/#", "payload": "x"}\n')
    recs = list(read_mqtt_log(data, t))
    assert [(r.context["topic"], r.data, r.t_s) for r in recs] == [
        ("a/b", b"\x00\x01", 1714532400.5), ("a/c", b"hello world", 1714532401.25),
        ("a/d", b'{"x": 1}', None), ("a/e", b'{"k":[1,2]}', None)]
    assert t.problems == {"capture:bad_line": 1}


def test_fixtures_are_what_make_captures_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mk, "HERE", tmp_path)
    mk.main()
    for f in tmp_path.iterdir():
        assert f.read_bytes() == (CAP / f.name).read_bytes(), f.name
    assert datetime.fromtimestamp(mk.T0, UTC).year == 2024


def test_deeply_nested_payloads_are_counted_not_a_crash(tmp_path: Path) -> None:
    """JSON nested past the decoder's recursion limit, in a JSON-lines payload and in a mosquitto-form
    payload: exit 0 with the line counted (capture:bad_line) or the payload refused by the adapter,
    never a traceback and never an 'adapter raised' note."""
    deep = b"[" * 5000 + b"]" * 5000
    good = (CAP / "sensors_mosquitto.txt").read_bytes().splitlines()[0]
    topic, _, obs = good.partition(b" ")
    log = tmp_path / "deep.log"
    log.write_bytes(b'{"topic": "' + topic + b'", "payload": ' + deep + b"}\n"
                    + topic + b" " + deep + b"\n" + topic + b" " + obs + b"\n")
    rc, _, s, err = cli("mqtt_sensors", log)
    assert rc == 0 and "Traceback" not in err and s is not None, err
    assert s["rejected"]["capture:bad_line"] == 1 and s["records"] == 2 and s["accepted"] == 1
    assert not any("the adapter raised" in n for n in s["notes"])
    flog = tmp_path / "frigate_deep.log"
    event = b'{"type": "new", "extra": ' + deep + b', "after": {"id": "1.1-a", "camera": "yard"}}'
    flog.write_bytes(b'{"topic": "frigate/events", "payload": ' + event + b"}\n"
                     + b"frigate/events " + event + b"\n")
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(flog)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr
    s = json.loads(p.stdout.decode().splitlines()[-1])["summary"]
    assert s["rejected"] == {"capture:bad_line": 1, "invalid:json": 1}
    assert not any("the adapter raised" in n for n in s["notes"])


def test_frigate_log_without_delivery_times_runs_on_frigates_own_clock(tmp_path: Path) -> None:
    """A plain `mosquitto_sub -v` capture (no `ts`): the feed clock takes the times Frigate's payloads
    carry (frame/start/end times, stats' last_updated), as sensor logs take their readings' times,
    instead of falling back to wall time and judging a 2024 capture in 2026 as current."""
    plain = []
    for line in (CAP / "frigate.log").read_text().splitlines():
        if line.startswith("{"):
            d = json.loads(line)
            p = d["payload"] if isinstance(d["payload"], str) else json.dumps(d["payload"])
            plain.append(f"{d['topic']} {p}")
        else:
            plain.append(line.split(" ", 1)[1])  # drop the leading epoch time
    log = tmp_path / "frigate_plain.log"
    log.write_text("\n".join(plain) + "\n")
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(log)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.decode().splitlines()]
    s = out[-1]["summary"]
    assert s["events"] == 2 and s["records"] == 5
    assert abs(s["health"]["ts"] - 1714532430500) < 60_000  # the capture's end, not today
    assert [x["event"]["ts"] for x in out if "event" in x] == [1714532410500, 1714532430500]


_NO_NET = """
import runpy, sys
def hook(event, args):
    if event in ("socket.connect", "socket.sendto", "socket.getaddrinfo"):
        sys.stderr.write(f"NETWORK {event} {args[1:]!r}\\n")
sys.addaudithook(hook)
sys.argv = ["feeds", *sys.argv[1:]]
runpy.run_module("feeds", run_name="__main__")
"""


@pytest.mark.parametrize("source,capture", [
    ("gtfs_rt", "gtfs_incheon.pb"), ("airkorea", "airkorea_p1.json"), ("mavlink", "drone.tlog"),
    ("mqtt_sensors", "sensors.jsonl"), ("frigate", "frigate.log")])
def test_replay_publishes_nothing_and_opens_no_connection(source: str, capture: str) -> None:
    """'It publishes nothing': no socket is opened at all (no Redis, no broker), audited by the
    interpreter's own socket.connect/sendto/getaddrinfo events, while entity or event lines come out."""
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-c", _NO_NET, "replay", source, str(CAP / capture)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    assert p.returncode == 0 and b"NETWORK" not in p.stderr, p.stderr[-2000:]
    out = p.stdout.decode().splitlines()
    assert len(out) > 1 and "summary" in json.loads(out[-1])


@pytest.mark.parametrize("stamp", ["1970", "zero"])
def test_tlog_with_an_unset_recorder_clock_is_still_a_tlog(tmp_path: Path, stamp: str) -> None:
    """A tlog written by a recorder whose clock was never set (a companion computer without RTC: 1970 +
    uptime, or zeros) is still [stamp][frame] records. Read as a raw stream, each stamp became junk
    and every good frame a 'bad_frame' the integrator would blame on the link; it must replay like
    the original, with a note naming the stamps instead."""
    good = (CAP / "drone.tlog").read_bytes()
    recs = list(read_tlog(good, Tally()))
    out = bytearray()
    for r in recs:
        u = 0 if stamp == "zero" else int((r.t_s - mk.T0 + 300) * 1e6)
        out += u.to_bytes(8, "big") + r.data
    f = tmp_path / "unset.tlog"
    f.write_bytes(bytes(out))
    assert is_tlog(bytes(out))
    rc, lines, s, err = cli("mavlink", f)
    rc0, lines0, s0, _ = cli("mavlink", CAP / "drone.tlog")
    assert rc == rc0 == 0 and s is not None and s0 is not None, err
    assert "bad_frame" not in s["rejected"] and s["records"] == len(recs)
    assert s["accepted"] == s0["accepted"] and _entities(lines).keys() == _entities(lines0).keys()
    assert any("recorder's clock" in n for n in s["notes"])


def test_frigate_capture_of_every_topic_replays_what_live_subscribes_to(tmp_path: Path) -> None:
    """`mosquitto_sub -v -t 'frigate/#'` records Frigate's per-camera topics too (counts, motion,
    detect state, snapshots). Live subscribes only to <prefix>/events, reviews, available and stats,
    so those are skipped as capture:topic_not_subscribed and noted, not 90 adapter rejects in health."""
    extra = "".join(f"1714532411.000 frigate/yard/{t}\n" for t in ("person 1", "motion ON", "detect/state ON")
                    ) * 30
    log = tmp_path / "all_topics.log"
    log.write_text((CAP / "frigate.log").read_text() + extra)
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(log)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout.decode().splitlines()[-1])["summary"]
    assert s["rejected"] == {"capture:topic_not_subscribed": 90} and s["health"]["rejects"] == 0
    assert s["events"] == 2 and any("/events" in n and "skipped" in n for n in s["notes"])


def test_a_file_without_an_end_is_refused_within_the_bound() -> None:
    """/dev/zero (or a pipe fed forever) has no size to check beforehand: the read itself stops at the
    256 MiB bound with a usage error, instead of filling memory until MemoryError."""
    p = subprocess.run(["bash", "-c", f"ulimit -v 3000000; exec {sys.executable} -m feeds replay gtfs_rt "
                        "/dev/zero"], cwd=ROOT, capture_output=True, timeout=120)
    err = p.stderr.decode()
    assert p.returncode == 2 and "over the 256 MiB" in err and "Traceback" not in err, err[-500:]


def test_frigate_unmapped_camera_is_named_in_the_notes(tmp_path: Path) -> None:
    """A capture's camera that the configuration does not map: counted, and the note says where to map it."""
    review = {"type": "new", "after": {"id": "1714532410.500000-rv0002", "camera": "porch",
                                       "start_time": 1714532410.5, "severity": "alert",
                                       "data": {"detections": [], "objects": ["person"]}}}
    log = tmp_path / "porch.log"
    log.write_text(json.dumps({"ts": 1714532410.5, "topic": "frigate/reviews", "payload": review}) + "\n")
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(log)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    s = json.loads(p.stdout.decode().splitlines()[-1])["summary"]
    assert p.returncode == 0 and s["rejected"] == {"unmapped_camera": 1}
    assert any("feeds.frigate.servers.<name>.cameras" in n for n in s["notes"])


def test_invalid_utf8_in_json_strings_is_counted_not_a_crash(tmp_path: Path) -> None:
    """Bad UTF-8 inside a JSON string (a log line's, a Frigate payload's, a sensor reading's peeked
    time): msgspec raises UnicodeDecodeError, which ended the replay with a traceback."""
    good = (CAP / "sensors_mosquitto.txt").read_bytes().splitlines()[0]
    topic, _, _ = good.partition(b" ")
    log = tmp_path / "utf8.log"
    log.write_bytes(b'{"topic": "x/\xf5", "payload": "a"}\n'
                    + topic + b' {"phenomenonTime": "\xf5", "result": 1}\n' + good + b"\n")
    rc, _, s, err = cli("mqtt_sensors", log)
    assert rc == 0 and "Traceback" not in err and s is not None, err[-800:]
    assert s["rejected"]["capture:bad_line"] == 1 and s["accepted"] == 1
    flog = tmp_path / "frigate_utf8.log"
    flog.write_bytes(b'frigate/events {"type": "new", "after": {"id": "1.1-a", "camera": "\xf5"}}\n')
    env = {**os.environ, "CC_FEEDS__FRIGATE__SERVERS": mk.FRIGATE_SERVERS}
    p = subprocess.run([sys.executable, "-m", "feeds", "replay", "frigate", str(flog)], cwd=ROOT,
                       capture_output=True, timeout=120, env=env)
    assert p.returncode == 0 and b"Traceback" not in p.stderr, p.stderr[-800:]
    s = json.loads(p.stdout.decode().splitlines()[-1])["summary"]
    assert s["rejected"] == {"invalid:json": 1} and not any("adapter raised" in n for n in s["notes"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=25),
       junk=st.binary(max_size=600), mode=st.sampled_from(["feed", "now"]))
def test_damaged_frigate_logs_through_the_replay(area, flips: list[tuple[int, int]], junk: bytes,
                                                 mode: str) -> None:
    """The Frigate capture with bytes flipped (bad UTF-8, broken JSON, odd ids and words) plus junk
    lines: every line is a record or a counted problem, the adapter never raises, output is JSON."""
    from feeds.frigate.config import FrigateConfig

    cfg = _feeds_config().model_copy(update={"frigate": FrigateConfig.model_validate(
        {"servers": msgspec.yaml.decode(mk.FRIGATE_SERVERS)})})
    data = bytearray((CAP / "frigate.log").read_bytes())
    for i, b in flips:
        data[i % len(data)] = b
    out: list[dict[str, Any]] = []
    s = replay("frigate", [("damaged", bytes(data) + b"\n" + junk)], cfg, area, mode, out.append)["summary"]
    assert not any("the adapter raised" in n for n in s["notes"]), s["notes"]
    assert s["events"] == len([x for x in out if "event" in x]) <= 5
    msgspec.json.encode(out)
