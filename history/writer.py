"""The history writer (`app.py --only history`): update and event streams -> SQL (docs/history.md).

    start   migrate the history tables; create the `history` consumer group on the updates stream
            and on the event stream (from their start, so nothing written before the first start is
            lost); subscribe to the alarm channel and record the open-alarm hash as it is now
    loop    this consumer's own pending entries first (after a restart), then entries another
            consumer left pending longer than `claim_idle_ms` (XAUTOCLAIM: one killed with -9),
            then new ones (XREADGROUP >, both streams in one call); rows downsampled per layer
            (history/rows.py) and written in one transaction; XACK only after the commit
    timers  retention (history.yaml `retention_every_s`, and at start); stats every 2 s

At-least-once delivery plus idempotent keys (history/schema.py) gives every row once. Alarm changes
come from the alarm channel (pub/sub, not durable): what happens while the writer is down is caught
up by the open-alarm snapshot at its next start (the alarm service's own tables keep every change).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

import msgspec
import redis

from history.config import HistoryConfig, load_history_config
from history.db import HistoryStore
from history.rows import Sampler, alarm_row, event_row
from spine import channels
from spine.contract import RejectLog, decode_stored_event, decode_updates, now_ms
from spine.publisher import REDIS_DOWN, connect

log = logging.getLogger(__name__)

BATCH = 500  # stream entries per read (an updates entry holds up to 500 updates)
BLOCK_MS = 100
CLAIM_IDLE_MS = 5000
CLAIM_EVERY_S = 1.0
STATS_S = 2.0
SUMMARIZE_S = 5.0  # PostgreSQL: BRIN ranges of today's partitions summarized this often
MAX_ENTRY_BYTES = 8 * 1024 * 1024
MAX_ALARM_MESSAGE_BYTES = 4 * 1024 * 1024
FUTURE_MS = 86_400_000  # a state or event dated more than a day ahead is refused (a broken clock)
STREAMS = (channels.UPDATES_STREAM, channels.EVENTS_STREAM)


def consumer_name() -> str:
    """Stable per host and instance: a restarted writer re-reads its own pending entries at once."""
    return f"{socket.gethostname()[:40]}-{os.environ.get('CC_HISTORY_INSTANCE', '1')[:20]}"


class HistoryWriter:
    def __init__(self, redis_url: str, store: HistoryStore, consumer: str | None = None,
                 batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.r = connect(redis_url)
        self.store = store
        self.cfg: HistoryConfig = store.cfg
        self.consumer = consumer or consumer_name()
        self.batch = batch
        self.claim_idle_ms = claim_idle_ms
        self.rejects = RejectLog(log)
        self.sampler = Sampler(self.cfg)
        self.pubsub: Any = None
        self.alarm_rows: list[dict] = []
        self.processed = 0  # stream entries acknowledged
        self.rows = 0  # rows offered to SQL
        self.lag_ms = 0  # now - the newest acknowledged entry's time, at its ack
        self._own_pending = {s: True for s in STREAMS}
        self._next = {"claim": 0.0, "retention": 0.0, "stats": 0.0, "summarize": 0.0}
        self._cutoffs: dict[tuple[str, str | None], int] = {}

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()
        for stream in STREAMS:
            try:
                self.r.xgroup_create(stream, channels.HISTORY_GROUP, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._own_pending = {s: True for s in STREAMS}
        if self.pubsub is not None:
            self.pubsub.close()
        self.pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channels.ALARM_CHANNEL)
        self.snapshot_alarms()
        self._cutoffs = self.store.cutoffs(now_ms())
        log.info("history writer %s consuming %s (group %s)", self.consumer, ", ".join(STREAMS),
                 channels.HISTORY_GROUP)

    def snapshot_alarms(self) -> None:
        for raw in self.r.hvals(channels.ALARMS_OPEN_KEY):
            self._alarm_doc(raw)

    def _alarm_doc(self, raw: bytes) -> None:
        try:
            self.alarm_rows.append(alarm_row(raw))
        except (msgspec.DecodeError, msgspec.ValidationError, ValueError, UnicodeError) as exc:
            self.rejects.add("bad_alarm", str(exc)[:200], channels.ALARM_CHANNEL)

    def poll_alarms(self) -> None:
        """Alarm-channel messages waiting now (never blocks)."""
        for _ in range(1000):
            msg = self.pubsub.get_message(timeout=0)
            if msg is None:
                return
            data = msg.get("data")
            if not isinstance(data, bytes) or len(data) > MAX_ALARM_MESSAGE_BYTES:
                self.rejects.add("bad_alarm", "not bytes or too large", channels.ALARM_CHANNEL)
                continue
            try:
                doc = msgspec.json.decode(data)
            except msgspec.DecodeError as exc:
                self.rejects.add("bad_alarm", str(exc)[:200], channels.ALARM_CHANNEL)
                continue
            if not isinstance(doc, dict):
                continue
            if doc.get("t") == "resync":
                self.snapshot_alarms()
            elif doc.get("t") == "alarms" and isinstance(doc.get("a"), list):
                for a in doc["a"][:10_000]:
                    self._alarm_doc(msgspec.json.encode(a))

    # -- the streams ----------------------------------------------------------------------------
    def _read(self) -> list[tuple[str, bytes, dict]]:
        out: list[tuple[str, bytes, dict]] = []
        for stream in STREAMS:
            if not self._own_pending[stream]:
                continue
            got = self.r.xreadgroup(channels.HISTORY_GROUP, self.consumer, {stream: "0"}, count=self.batch)
            entries = got[0][1] if got else []
            if len(entries) < self.batch:
                self._own_pending[stream] = False
            out += [(stream, eid, f) for eid, f in entries]
        if out:
            return out
        now = time.monotonic()
        if now >= self._next["claim"]:
            self._next["claim"] = now + CLAIM_EVERY_S
            for stream in STREAMS:
                res = self.r.xautoclaim(stream, channels.HISTORY_GROUP, self.consumer, self.claim_idle_ms,
                                        start_id="0-0", count=self.batch)
                out += [(stream, eid, f) for eid, f in (res[1] if len(res) > 1 else [])]
            if out:
                log.info("claimed %d entries left pending by a stopped consumer", len(out))
                return out
        got = self.r.xreadgroup(channels.HISTORY_GROUP, self.consumer, dict.fromkeys(STREAMS, ">"),
                                count=self.batch, block=BLOCK_MS)
        for stream, entries in got or []:
            name = stream.decode() if isinstance(stream, bytes) else stream
            out += [(name, eid, f) for eid, f in entries]
        return out

    def handle(self, entries: list[tuple[str, bytes, dict]]) -> None:
        now = now_ms()
        states: list[dict] = []
        events: list[dict] = []
        for stream, _eid, fields in entries:
            if not fields:  # trimmed away while pending: nothing to write
                self.rejects.add("trimmed", "a pending entry was trimmed from the stream", stream)
                continue
            if stream == channels.UPDATES_STREAM:
                raw = fields.get(b"u")
                if not isinstance(raw, bytes) or len(raw) > MAX_ENTRY_BYTES:
                    self.rejects.add("malformed_entry", "no updates or too large", stream)
                    continue
                for u in decode_updates(raw, self.rejects, where=stream, now=now):
                    if u.ts > now + FUTURE_MS:
                        self.rejects.add("future_ts", f"{u.layer}/{u.id} ts {u.ts}", stream)
                        continue
                    row = self.sampler.state_row(u, self._cutoffs.get(("hist_states", u.layer), 0))
                    if row is not None:
                        states.append(row)
            else:
                raw = fields.get(b"e")
                if not isinstance(raw, bytes):
                    self.rejects.add("malformed_entry", "no event", stream)
                    continue
                ev = decode_stored_event(raw, self.rejects, stream, now=now)
                if ev is None:
                    continue
                if ev.ts > now + FUTURE_MS or ev.ts < self._cutoffs.get(("hist_events", ev.layer), 0):
                    self.rejects.add("out_of_range_ts", f"event {ev.id} ts {ev.ts}", stream)
                    continue
                events.append(event_row(ev))
        alarms = [a for a in self.alarm_rows if a["ts"] >= self._cutoffs.get(("hist_alarms", None), 0)]
        self.rows += self.store.write(states, events, alarms)  # committed here
        self.alarm_rows = []
        by_stream: dict[str, list[bytes]] = {}
        for stream, eid, _ in entries:
            by_stream.setdefault(stream, []).append(eid)
        newest = 0
        for stream, ids in by_stream.items():
            self.r.xack(stream, channels.HISTORY_GROUP, *ids)  # only after the commit
            newest = max(newest, max(int(i.split(b"-")[0]) for i in ids))
        self.processed += len(entries)
        if newest:
            self.lag_ms = max(0, now_ms() - newest)

    # -- the loop --------------------------------------------------------------------------------------
    def step(self) -> None:
        self.poll_alarms()
        entries = self._read()
        if entries or self.alarm_rows:
            self.handle(entries)
        now = time.monotonic()
        if now >= self._next["retention"]:
            self._next["retention"] = now + self.cfg.retention_every_s
            self._cutoffs = self.store.cutoffs(now_ms())
            done = self.store.enforce_retention(now_ms())
            if any(done.values()):
                log.info("retention: %s", done)
        if self.store.pg and now >= self._next["summarize"]:
            self._next["summarize"] = now + SUMMARIZE_S
            self.store.summarize(now_ms())
        if now >= self._next["stats"]:
            self._next["stats"] = now + STATS_S
            self.r.hset(channels.HISTORY_STATS_KEY, self.consumer, json.dumps(self.stats()))

    def stats(self) -> dict[str, Any]:
        return {"ts": now_ms(), "processed": self.processed, "rows": self.rows, "lag_ms": self.lag_ms,
                "skipped": self.sampler.skipped, "too_old": self.sampler.too_old,
                "rejects": self.rejects.summary()}

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        started = False
        while not stop.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                self.step()
                backoff = 0.5
            except REDIS_DOWN as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                started = False  # the group may be gone (a Redis restarted empty): made again
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


def main(redis_url: str, database_url: str) -> None:
    store = HistoryStore(database_url, load_history_config())
    writer = HistoryWriter(redis_url, store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        writer.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        store.dispose()
