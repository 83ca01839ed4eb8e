"""Feed health from the data's own age and from what is shown, on a real Adapter (real AdapterStats,
real RejectLog, real Redis publisher): frozen data is stale, a feed whose every record is refused is
an error with its main reason, positionless vehicles are notes, and a normal feed stays ok."""

from __future__ import annotations

import time

import redis

from feeds.adapter import Adapter
from spine.contract import now_ms
from spine.health import HealthWriter, assess


class Probe(Adapter):
    source = "probe"
    layer = "bus"

    def ingest(self, raw: bytes, **context: str) -> int:
        return 0

    def run_once(self) -> None:
        return None


def probe(redis_url: str, contract_s: float = 30.0) -> Probe:
    a = Probe(redis.Redis.from_url(redis_url), contract_s)
    a.stats.connected = True  # as run() sets it once the transport is open
    return a


def test_normal_feed_is_ok(redis_url: str) -> None:
    a = probe(redis_url)
    a.accepted(12, now_ms() - 5_000)
    h = assess(a, 1.0)
    assert h.state == "ok" and h.error == "" and h.messages == 12 and h.notes == {}
    assert 4 <= h.source_age_s <= 10


def test_fresh_arrival_of_years_old_data_is_stale(redis_url: str) -> None:
    """Bytes arrive every poll, but the newest record they carry is three years old."""
    a = probe(redis_url)
    three_years_ms = 3 * 365 * 86_400_000
    a.accepted(40, now_ms() - three_years_ms)
    h = assess(a, 1.0)
    assert h.age_s is not None and h.age_s < 1  # arrival alone would say ok
    assert h.state == "stale"
    assert "old" in h.error and h.source_age_s > 3 * 365 * 86_400 - 10


def test_data_just_past_twice_the_contract_is_stale_but_within_is_ok(redis_url: str) -> None:
    a = probe(redis_url, contract_s=10.0)
    a.accepted(1, now_ms() - 15_000)  # late but inside SOURCE_AGE_FACTOR x contract
    assert assess(a, 1.0).state == "ok"
    b = probe(redis_url, contract_s=10.0)
    b.accepted(1, now_ms() - 25_000)
    assert assess(b, 1.0).state == "stale"


def test_every_record_rejected_is_an_error_with_its_main_reason(redis_url: str) -> None:
    a = probe(redis_url)
    for i in range(7):
        a.reject("missing:position", f"car-{i}")
    a.reject("invalid:vehicle_id", "''")
    a.accepted(0, now_ms())  # the poll arrived, nothing of it is shown
    h = assess(a, 0.0)
    assert h.state == "error"
    assert h.error == "every record rejected: missing:position (7)"
    # Positionless vehicles are notes, not a reject storm; real rejects still count.
    assert h.notes == {"missing:position": 7} and h.reject_reasons == {"invalid:vehicle_id": 1}
    # The next poll delivers: the error clears, the notes stay counted.
    a.accepted(3, now_ms())
    h = assess(a, 1.0)
    assert h.state == "ok" and h.error == "" and h.notes == {"missing:position": 7}


def test_rejects_without_any_accepted_record_past_the_contract_are_an_error(redis_url: str) -> None:
    """An adapter that never calls accepted() for a refused payload (every reading out of range)."""
    a = probe(redis_url, contract_s=0.2)
    a.reject("out_of_range:pm10", "station x")
    a.reject("out_of_range:pm10", "station y")
    assert assess(a, 0.0).state == "error"  # nothing ever accepted, only refused
    b = probe(redis_url, contract_s=0.2)
    b.accepted(5, now_ms())
    b.reject("out_of_range:pm10", "station x")  # one bad record among good ones: still ok
    assert assess(b, 1.0).state == "ok"
    time.sleep(0.3)  # ... until the contract passes with only refused records
    h = assess(b, 0.0)
    assert h.state == "error" and h.error == "every record rejected: out_of_range:pm10 (1)"


def test_error_marks_the_layer_stale(redis_url: str) -> None:
    a = probe(redis_url)
    a.reject("missing:position", "car-1")
    a.accepted(0, now_ms())
    snap = HealthWriter(redis.Redis.from_url(redis_url), [a]).snapshot()
    assert snap["probe"].state == "error" and snap["layer:bus"].stale is True


def test_a_peer_that_says_it_is_offline_is_shown_at_once(redis_url: str) -> None:
    """Frigate's last will: the peer itself says it is gone, so health does not wait a contract period."""
    a = probe(redis_url)
    a.accepted(3, now_ms() - 1_000)
    assert assess(a, 1.0).state == "ok"
    a.stats.peer_state = "partial"
    a.stats.error = "frigate depot: offline (Frigate's last will)"
    h = assess(a, 1.0)
    assert h.state == "error" and "depot" in h.error
    a.stats.peer_state = "down"
    a.stats.connected = False
    assert assess(a, 1.0).state == "down"
    a.stats.peer_state = ""
    a.stats.connected = True
    assert assess(a, 1.0).state == "ok"
