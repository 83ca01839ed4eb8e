"""Replay: the picture history gives for a moment T equals what live Redis held at T (state hashes,
the open-alarm hash of the real alarm service, the recent-event list), on SQLite and PostgreSQL;
and steps between two moments carry exactly the changes between them."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from alarms.config import load_alarm_config
from alarms.db import AlarmStore
from alarms.service import AlarmService
from history.config import load_history_config
from history.db import HistoryStore
from history.queries import picture_at, state_at, steps
from history.writer import HistoryWriter
from spine import channels
from spine.contract import Event, now_ms
from spine.publisher import Publisher, connect
from spine.servers.embedded_redis import EmbeddedRedis
from tests.history_support import drain, make_db

EXACT = ("sensor", "camera", "incident")  # layers kept at every reading or on change


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def hist_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from make_db(request.param, tmp_path)


def _event(i: int, entity: str, type_: str = "threshold", severity: str = "high") -> Event:
    return Event(v=1, id=f"ev-{i}", type=type_, severity=severity, ts=now_ms(), layer="sensor",
                 entity=entity, lat=37.45, lon=126.7, title=f"event {i}", props={"rule": "warn"})


def _live(r, layers: tuple[str, ...]) -> dict:
    """What the live screens would load at this moment (the gateway's snapshot sources)."""
    hashes = {layer: r.hgetall(channels.state_key(layer)) for layer in layers}
    return {"layers": {name: {k.decode(): json.loads(v) for k, v in h.items()} for name, h in hashes.items()},
            "alarms": {int(k): json.loads(v)["state"]
                       for k, v in r.hgetall(channels.ALARMS_OPEN_KEY).items()},
            "events": [json.loads(x)["id"] for x in r.lrange(channels.RECENT_EVENTS_KEY, 0, 199)]}


def _replayed(pic: dict, layers: tuple[str, ...]) -> dict:
    return {"layers": {layer: {u["id"]: u for u in pic["layers"][layer]} for layer in layers},
            "alarms": {a["id"]: a["state"] for a in pic["alarms"]},
            "events": [e["id"] for e in pic["events"]]}


def test_replay_at_t_equals_the_live_state_recorded_at_t(hist_db: str, tmp_path: Path, redis_url: str,
                                                         redis_server: EmbeddedRedis) -> None:
    store = HistoryStore(hist_db, load_history_config())
    writer = HistoryWriter(redis_server.url_for("history"), store, consumer="replay")
    writer.start()
    alarm_store = AlarmStore(f"sqlite:///{tmp_path / 'alarms.db'}", load_alarm_config())
    alarms = AlarmService(redis_server.url_for("alarms"), alarm_store, consumer="a1")
    alarms.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    inc = Publisher(connect(redis_server.url_for("incidents")), "incidents")
    r = connect(redis_server.url)

    def settle() -> None:
        assert pub.flush() and inc.flush()
        for _ in range(20):
            alarms.step()
        drain(writer)
        time.sleep(0.005)  # what is published next is strictly later than T

    # Moment 1: a city with sensors, drones, cameras, an incident, raised alarms, events.
    for i in range(20):
        pub.update("sensor", f"s{i}", 37.4 + i / 100, 126.7, {"value": float(i), "unit": "m"})
        pub.update("drone", f"d{i % 3}", 37.5, 126.6 + i / 1000, {"alt_m": 40.0 + i})
        pub.update("camera", f"c{i % 4}", 37.45, 126.65, {"status": "online", "people": i})
        assert pub.flush()
        time.sleep(0.002)  # one state per entity per millisecond (the first of a millisecond is kept)
    inc.update("incident", "inc-1", 37.46, 126.7, {"title": "flood", "status": "open"})
    for i in range(5):
        pub.event(_event(i, f"s{i}"))
        time.sleep(0.002)  # the live list is in push order, history in time order
    settle()
    t1 = now_ms()
    live1 = _live(r, EXACT)
    drones1 = _live(r, ("drone",))["layers"]["drone"]
    assert len(live1["alarms"]) == 5 and len(live1["layers"]["sensor"]) == 20
    time.sleep(0.005)

    # Moment 2: values change, a drone lands (gone), a camera goes offline, two alarms return to normal.
    for i in range(10):
        pub.update("sensor", f"s{i}", 37.4 + i / 100, 126.7, {"value": 100.0 + i, "unit": "m"})
    pub.update("drone", "d1", 37.5, 126.6, gone=True)
    pub.update("camera", "c2", 37.45, 126.65, {"status": "offline"})
    inc.update("incident", "inc-1", 37.46, 126.7, {"title": "flood", "status": "resolved"})
    for i in range(2):
        pub.event(_event(10 + i, f"s{i}", "threshold_clear", "info"))
        time.sleep(0.002)
    settle()
    t2 = now_ms()
    live2 = _live(r, EXACT)
    assert "d1" not in _live(r, ("drone",))["layers"]["drone"]
    # Two conditions cleared but not acknowledged: still open (RTNUN), as ISA-18.2 has it.
    assert sorted(live2["alarms"].values()) == ["RTNUN", "RTNUN", "UNACK", "UNACK", "UNACK"]

    for t, live in ((t1, live1), (t2, live2)):
        got = _replayed(picture_at(store, t), EXACT)
        for layer in EXACT:
            for eid in set(got["layers"][layer]) | set(live["layers"][layer]):
                assert got["layers"][layer].get(eid) == live["layers"][layer].get(eid), (t, layer, eid)
        assert got == live, f"replay at {t} differs from live"
    # Drones are kept once a second (the first fix of each second): the same drones, each at a fix
    # it really had within the second before; the landed one is gone from the map.
    d1 = {u["id"]: u for u in picture_at(store, t1)["layers"]["drone"]}
    assert set(d1) == {"d0", "d1", "d2"}
    assert {u["id"] for u in picture_at(store, t2)["layers"]["drone"]} == {"d0", "d2"}
    assert all(u["ts"] // 1000 == drones1[u["id"]]["ts"] // 1000 for u in d1.values())
    assert [i["id"] for i in picture_at(store, t1)["incidents"]] == ["inc-1"]
    assert picture_at(store, t2)["incidents"] == []  # resolved: no longer an open incident

    # Steps (t1, t2]: exactly the moment-2 changes, in time order.
    st = steps(store, t1, t2)
    assert sorted(u["id"] for u in st["updates"]) == sorted(
        [f"s{i}" for i in range(10)] + ["d1", "c2", "inc-1"])
    assert next(u for u in st["updates"] if u["id"] == "d1").get("gone") is True
    assert [e["id"] for e in st["events"]] == ["ev-10", "ev-11"]
    assert [a["state"] for a in st["alarms"]] == ["RTNUN", "RTNUN"]
    ts = [u["ts"] for u in st["updates"]]
    assert ts == sorted(ts) and not st["truncated"]
    # Before anything was recorded the map is empty.
    assert all(v == [] for v in state_at(store, t1 - 3_600_000 * 24 * 40).values())
    alarm_store.dispose()
    store.dispose()


def test_staleness_window_and_downsampled_layers(hist_db: str, redis_url: str,
                                                 redis_server: EmbeddedRedis) -> None:
    """A bus is on the replayed map at the position of its 10 s slot, and gone from it once its
    last state is older than the layer's window (120 s), as a live screen greys out a stale feed."""
    store = HistoryStore(hist_db, load_history_config())
    writer = HistoryWriter(redis_server.url_for("history"), store, consumer="w")
    writer.start()
    pub = Publisher(connect(redis_server.url_for("feeds")), "feeds")
    t0 = (now_ms() // 10_000) * 10_000 - 600_000
    for s in range(25):
        pub.update("bus", "b1", 37.4 + s / 1000, 126.7, {"route": "7"}, ts=t0 + s * 1000)
        assert pub.flush()
    drain(writer)
    at = state_at(store, t0 + 15_000, ("bus",))["bus"]
    assert [(u["id"], u["ts"]) for u in at] == [("b1", t0 + 10_000)]  # the slot's first position
    assert state_at(store, t0 + 20_000 + 119_000, ("bus",))["bus"] != []
    assert state_at(store, t0 + 20_000 + 121_000, ("bus",))["bus"] == []  # stale after 120 s
    store.dispose()
