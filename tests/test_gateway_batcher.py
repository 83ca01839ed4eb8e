"""The gateway's batcher alone: latest-wins, frame numbering, gap and resync decisions (no I/O)."""

from __future__ import annotations

from gateway.batcher import Batcher
from spine.contract import LAYERS, EntityUpdate, Event, now_ms


def upd(id_: str, seq: int, layer: str = "bus", src: str = "p", lat: float = 37.4) -> EntityUpdate:
    return EntityUpdate(v=1, layer=layer, id=id_, ts=now_ms(), seq=seq, lat=lat, lon=126.6, src=src)


def ev(i: int) -> Event:
    return Event(v=1, id=f"ev-{i}", type="t", severity="low", ts=now_ms(), layer="sensor", entity="s",
                 lat=37.4, lon=126.6)


def test_nothing_to_send_is_none_and_numbers_nothing() -> None:
    b = Batcher(LAYERS)
    assert b.take(0.0) is None and b.n == 0


def test_latest_update_per_entity_wins_and_frames_count_up() -> None:
    b = Batcher(LAYERS)
    b.add_update(upd("a", 1, lat=37.1))
    b.add_update(upd("a", 2, lat=37.2))
    b.add_update(upd("b", 3))
    plan = b.take(0.0)
    assert plan is not None and plan.batch_n == 1 and plan.resync == ()
    assert [(u.id, u.lat) for u in plan.updates] == [("a", 37.2), ("b", 37.4)]
    assert b.counts.coalesced == 1
    b.add_event(ev(1))
    plan = b.take(0.1)
    assert plan is not None and plan.batch_n == 2 and plan.updates == []
    assert [e.id for e in plan.events] == ["ev-1"]


def test_a_gap_in_a_producers_sequence_resyncs_that_layer_first() -> None:
    b = Batcher(LAYERS)
    b.add_update(upd("a", 1))
    b.take(0.0)
    b.add_update(upd("c", 1, layer="camera"))
    b.add_update(upd("a", 3))  # seq 2 lost
    plan = b.take(10.0)
    assert plan is not None and plan.resync == ("bus",) and plan.snapshot_n == 2 and plan.batch_n == 3
    # The bus update is in the state the snapshot reads; only the camera rides in the batch.
    assert [u.id for u in plan.updates] == ["c"]
    assert b.counts.gaps == 1


def test_a_restarted_producer_is_followed_not_flagged() -> None:
    b = Batcher(LAYERS)
    for seq in (5, 6, 1, 2):  # restart after 6
        b.add_update(upd("a", seq))
    assert b.counts.gaps == 0
    b.add_update(upd("a", 4))  # but 3 was lost after the restart
    assert b.counts.gaps == 1


def test_first_connection_resyncs_nothing_and_a_reconnection_resyncs_everything() -> None:
    b = Batcher(LAYERS)
    b.redis_connected(resync_all=False)
    assert not b.has_work() and b.take(0.0) is None
    b.redis_connected(resync_all=True)
    plan = b.take(0.0)
    assert plan is not None and plan.resync == tuple(sorted(LAYERS)) and plan.snapshot_n == 1
    assert plan.batch_n is None and b.n == 1


def test_layer_resyncs_are_rate_limited_per_layer() -> None:
    b = Batcher(LAYERS, resync_min_s=1.0)
    b.request_resync(["bus"])
    assert b.take(100.0).resync == ("bus",)
    b.request_resync(["bus"])
    assert b.take(100.5) is None  # held back, still owed
    assert b.has_work()
    assert b.take(101.0).resync == ("bus",)


def test_a_flood_of_distinct_entities_is_bounded_and_resyncs_the_layer() -> None:
    b = Batcher(LAYERS, max_pending=100, max_events=10)
    for i in range(1000):
        b.add_update(upd(f"bus-{i}", i + 1))
    for i in range(50):
        b.add_event(ev(i))
    assert b.counts.pending_overflows == 900 and b.counts.events_dropped == 40
    plan = b.take(0.0)
    assert plan.resync == ("bus",) and plan.updates == [] and len(plan.events) == 10


def test_invented_producer_names_do_not_grow_the_sequence_table() -> None:
    b = Batcher(LAYERS, max_sources=50)
    for i in range(1000):
        b.add_update(upd("a", 1, src=f"src-{i}"))
    assert len(b._last_seq) <= 50
