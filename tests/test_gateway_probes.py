"""Issue 7 point 2: no message can take a screen down.

The probe messages that ended the old gateway's reader (RecursionError / UnicodeDecodeError: every
page went RECONNECTING), replayed against a real gateway on a real Redis: each is now a counted
reject with a reason and a source, and the pages connected keep receiving live data. The same for
bad values in the state hashes a new page's snapshot is read from.
"""

from __future__ import annotations

import asyncio
import json

import pytest
import redis
from websockets.asyncio.client import connect

from spine import channels
from spine.contract import EntityUpdate, now_ms
from tests.gateway_support import next_frame, publish, start_gateway, stop_gateway, update, ws_url

BUS = channels.entity_channel("bus")
NOW = str(now_ms()).encode()
DEEP = b"[" * 1000 + b"]" * 1000  # ~2 KB
BAD_UTF8_UPDATE = (b'{"v":1,"layer":"bus","id":"bus-\xff\xfe","ts":' + NOW
                   + b',"seq":1,"lat":37.4,"lon":126.6,"props":{"route":"\xc3\x28"}}')
BAD_UTF8_EVENT = (b'{"v":1,"id":"ev-1","type":"x","severity":"high","ts":' + NOW
                  + b',"layer":"sensor","entity":"s","lat":37.4,"lon":126.6,"title":"\xed\xa0\x80"}')

PROBES = [  # (channel, payload, reason): the five messages of the issue, then the rest of the classes
    (BUS, DEEP, "too_deep"),
    (channels.EVENTS_CHANNEL, DEEP, "too_deep"),
    (BUS, BAD_UTF8_UPDATE, "bad_utf8"),
    (channels.EVENTS_CHANNEL, BAD_UTF8_EVENT, "bad_utf8"),
    (b"cc:v1:entity:\xff\xfe", update("bus", "bus-x", 1), "bad_channel"),
    (BUS, b'{"v":1,"layer":"bus","id":"n","ts":' + NOW + b',"seq":1,"lat":NaN,"lon":126.6}', "not_finite"),
    (BUS, b'{"v":1,"layer":"bus","id":"i","ts":' + NOW + b',"seq":1,"lat":1e999,"lon":126.6}', "not_finite"),
    (BUS, b'{"v":1,"layer":"bus","id":"h","ts":' + NOW + b',"seq":99999999999999999999,"lat":37,"lon":126}',
     "huge_number"),
    (BUS, update("bus", "bus-future", 1, ts=10**14), "future_ts"),
    (BUS, update("bus", "bus-ancient", 1, ts=1_000), "stale_ts"),
    (channels.entity_channel("tank"), update("bus", "bus-t", 1), "unknown_layer"),
]


@pytest.mark.parametrize(("channel", "payload", "reason"), PROBES,
                         ids=[f"{i}-{p[2]}" for i, p in enumerate(PROBES)])
async def test_probe_message_is_a_counted_reject_and_pages_stay_live(
        redis_url: str, channel: str | bytes, payload: bytes, reason: str) -> None:
    gw, task = await start_gateway(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        async with connect(ws_url(gw)) as ws:
            snap = await next_frame(ws, "snapshot")
            client.publish(channel, payload)
            publish(redis_url, ("bus", "bus-ok", 37.45, 126.70))
            batch = await next_frame(ws, "batch")
            assert [u["id"] for u in batch["u"]] == ["bus-ok"] and batch["e"] == []
            assert batch["n"] == snap["n"] + 1
        assert not task.done(), "the gateway stopped"
        assert gw.rejects.counts == {reason: 1}
        source = channel.decode("utf-8", "backslashreplace") if isinstance(channel, bytes) else channel
        if reason in ("future_ts", "stale_ts"):  # decoded far enough to name the producer
            source += " src=t"
        assert gw.rejects.by_source == {source: {reason: 1}}
    finally:
        await stop_gateway(task)


async def test_a_future_dated_update_cannot_move_or_freeze_an_entity(redis_url: str) -> None:
    # The "bus moved to Busan and frozen there": ts = 10^14 with a far-away position.
    gw, task = await start_gateway(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        async with connect(ws_url(gw)) as ws:
            await next_frame(ws, "snapshot")
            client.publish(BUS, update("bus", "bus-7", 1, lat=35.1, lon=129.0, ts=10**14))
            client.publish(BUS, update("bus", "bus-7", 2, lat=37.46, lon=126.7))
            batch = await next_frame(ws, "batch")
            assert [(u["id"], u["lat"]) for u in batch["u"]] == [("bus-7", 37.46)]
        assert gw.rejects.counts == {"future_ts": 1}
    finally:
        await stop_gateway(task)


async def test_bad_state_entries_are_skipped_and_the_snapshot_still_comes(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    publish(redis_url, ("bus", "bus-good", 37.45, 126.70), ("camera", "cam-good", 37.46, 126.71))
    bad = {
        "deep": DEEP,
        "utf8": BAD_UTF8_UPDATE,
        "nan": b'{"v":1,"layer":"bus","id":"nan","ts":' + NOW + b',"seq":1,"lat":NaN,"lon":1}',
        "future": update("bus", "future", 1, ts=10**14),
        "other-layer": update("camera", "other-layer", 1),
        "not-json": b"\x00\x01",
    }
    client.hset(channels.state_key("bus"), mapping=bad)
    client.set(channels.state_key("air"), b"clobbered: a string where a hash belongs")
    client.lpush(channels.RECENT_EVENTS_KEY, DEEP, BAD_UTF8_EVENT)
    gw, task = await start_gateway(redis_url)
    try:
        async with connect(ws_url(gw)) as ws:
            snap = await next_frame(ws, "snapshot")
            assert {u["id"] for u in snap["u"]} == {"bus-good", "cam-good"}
            assert snap["e"] == []
        assert gw.rejects.by_source == {
            channels.state_key("bus"): {"too_deep": 1, "bad_utf8": 1, "not_finite": 1, "malformed_json": 1},
            channels.state_key("bus") + " src=t": {"future_ts": 1, "layer_mismatch": 1},
            channels.state_key("air"): {"bad_state_key": 1},
            channels.RECENT_EVENTS_KEY: {"too_deep": 1, "bad_utf8": 1},
        }
    finally:
        await stop_gateway(task)


async def test_an_unforeseen_error_in_handling_is_counted_as_internal_not_fatal(
        redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fault injection: a bug in the batcher for one entity id. The reader must count it and go on.
    gw, task = await start_gateway(redis_url)
    real_add = gw.batcher.add_update

    def buggy(upd: EntityUpdate) -> None:
        if upd.id == "bus-bug":
            raise KeyError("a bug nobody foresaw")
        return real_add(upd)

    monkeypatch.setattr(gw.batcher, "add_update", buggy)
    client = redis.Redis.from_url(redis_url)
    try:
        async with connect(ws_url(gw)) as ws:
            await next_frame(ws, "snapshot")
            client.publish(BUS, update("bus", "bus-bug", 1))
            client.publish(BUS, update("bus", "bus-after", 1, src="other"))
            batch = await next_frame(ws, "batch")
            assert [u["id"] for u in batch["u"]] == ["bus-after"]
        assert gw.rejects.counts == {"internal": 1}
        assert not task.done()
    finally:
        await stop_gateway(task)


async def test_a_flood_of_invented_channel_names_keeps_the_source_table_bounded(redis_url: str) -> None:
    gw, task = await start_gateway(redis_url)
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for i in range(500):
            pipe.publish(f"cc:v1:entity:made-up-{i}", b"{}")
        pipe.execute()
        for _ in range(200):
            if gw.rejects.total >= 500:
                break
            await asyncio.sleep(0.02)
        assert gw.rejects.counts == {"unknown_layer": 500}
        assert len(gw.rejects.by_source) <= 65
        assert sum(c["unknown_layer"] for c in gw.rejects.by_source.values()) == 500
        stats = json.loads(json.dumps(gw.stats_dict()))  # JSON-ready as written to Redis
        assert stats["rejects_total"] == 500
    finally:
        await stop_gateway(task)
