"""The history writer (`app.py --only history`): update and event streams -> SQL (docs/history.md).

    start   migrate the history tables; create the `history` consumer group on the updates, event
            and alarm streams (from their start, so nothing written before the first start is lost);
            record the open-alarm hash as it is now
    loop    this consumer's own pending entries first (after a restart), then entries another
            consumer left pending longer than `claim_idle_ms` (XAUTOCLAIM: one killed with -9),
            then new ones (XREADGROUP >, the streams in one call: spine/stream_consumer.py); rows
            downsampled per layer (history/rows.py) and written in one transaction; XACK only
            after the commit; pending entries trimmed before their commit are a gap at their times
    gaps    before each read of new entries: has the stream been trimmed past the group's last
            delivered entry (a writer away longer than the stream holds)? Then the lost span is
            recorded in hist_gaps and counted, and replay answers name it (history/queries.py)
    timers  retention (history.yaml `retention_every_s`, and at start); stats every 2 s

At-least-once delivery plus idempotent keys (history/schema.py) gives every row once. Alarm changes
come from the alarm service's stream (ALARMS_STREAM, appended in the MULTI that publishes them), so a
transition made while the writer is down is recorded when it returns. A Redis user without access to
that stream (an ACL from before it) falls back to the alarm channel (pub/sub) plus the open-alarm
snapshot at each start, and says so in its stats (`alarm_source`).
"""

from __future__ import annotations

import json
import logging
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
from spine.publisher import connect
from spine.stream_consumer import Entry, StreamConsumer, consumer_name, run_with_backoff, serve

log = logging.getLogger(__name__)

BATCH = 500  # stream entries per read (an updates entry holds up to 500 updates)
BLOCK_MS = 100
CLAIM_IDLE_MS = 5000
CLAIM_EVERY_S = 1.0
STATS_S = 2.0
SUMMARIZE_S = 5.0  # PostgreSQL: BRIN ranges of today's partitions summarized this often
MAX_ENTRY_BYTES = 8 * 1024 * 1024
MAX_ALARM_MESSAGE_BYTES = 4 * 1024 * 1024
MAX_ALARM_ENTRY_BYTES = 1024 * 1024  # one alarm document
FUTURE_MS = 86_400_000  # a state or event dated more than a day ahead is refused (a broken clock)
STREAMS = (channels.UPDATES_STREAM, channels.EVENTS_STREAM, channels.ALARMS_STREAM)
# The stream's name in hist_gaps and in replay answers.
GAP_NAMES = {channels.UPDATES_STREAM: "updates", channels.EVENTS_STREAM: "events",
             channels.ALARMS_STREAM: "alarms"}
SLOW_CHECK_S = 1.0  # Redis 6.2 (no entries-read counter): the first-entry check at most this often
INSTANCE_ENV = "CC_HISTORY_INSTANCE"  # a second writer on the same host sets it


def _sid(eid: bytes | str) -> tuple[int, int]:
    """A stream id as a comparable pair (ms, seq)."""
    text = eid.decode() if isinstance(eid, bytes) else eid
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


class HistoryWriter:
    def __init__(self, redis_url: str, store: HistoryStore, consumer: str | None = None,
                 batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.r = connect(redis_url)
        self.store = store
        self.cfg: HistoryConfig = store.cfg
        self.consumer = consumer or consumer_name(INSTANCE_ENV)
        self.rejects = RejectLog(log)
        self.sampler = Sampler(self.cfg)
        self.pubsub: Any = None
        self.alarm_rows: list[dict] = []
        self.processed = 0  # stream entries acknowledged
        self.rows = 0  # rows offered to SQL
        self.lag_ms = 0  # now - the newest acknowledged entry's time, at its ack
        self.alarm_source = "stream"  # or "channel" (pub/sub + snapshots) when the stream is refused
        self.gaps = 0  # spans lost to trimming, recorded in hist_gaps
        self.gap_ms = 0  # their total length
        self._next = {"claim": 0.0, "retention": 0.0, "stats": 0.0, "summarize": 0.0}
        self._slow_check: dict[str, float] = {}
        self._cutoffs: dict[tuple[str, str | None], int] = {}
        # Trimmed pending entries are a gap at their times; the gap check runs before each read of
        # new entries (check_gaps).
        self.reader = StreamConsumer(
            self.r, channels.HISTORY_GROUP, self.consumer, STREAMS, self.rejects, batch=batch,
            block_ms=BLOCK_MS, claim_idle_ms=claim_idle_ms, claim_every_s=CLAIM_EVERY_S,
            timers=self._next, on_trimmed=self._lost_pending, before_new=self.check_gaps)

    @property
    def streams(self) -> tuple[str, ...]:
        """The streams this Redis user may read (start() decides)."""
        return self.reader.streams

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()
        self.reader.create_groups(optional=(channels.ALARMS_STREAM,))
        self.alarm_source = "stream" if channels.ALARMS_STREAM in self.streams else "channel"
        if self.alarm_source == "channel":
            # An ACL from before the alarm stream (spine/servers/redis_acl.py): alarms from the
            # channel, as before; changes made while the writer is down are then lost.
            log.warning("no access to %s for this Redis user: alarm changes from the alarm channel "
                        "only (those made while the writer is down are not recorded)", channels.ALARMS_STREAM)
        if self.pubsub is not None:
            self.pubsub.close()
            self.pubsub = None
        if self.alarm_source == "channel":
            self.pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            self.pubsub.subscribe(channels.ALARM_CHANNEL)
        # The open set as it is now: alarms raised before the stream existed, or trimmed from it.
        self.snapshot_alarms()
        self._cutoffs = self.store.cutoffs(now_ms())
        log.info("history writer %s consuming %s (group %s)", self.consumer, ", ".join(self.streams),
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
        """Alarm-channel messages waiting now (never blocks); only without the alarm stream."""
        if self.pubsub is None:
            return
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

    # -- gaps: entries trimmed before this group read them ---------------------------------------
    def check_gaps(self) -> None:
        """Before reading new entries: was any stream trimmed past the group's last delivered entry?
        Cheap per read (XINFO GROUPS + XLEN, no entry payloads): Redis 7's `lag` (entries added
        after the group's position) larger than the stream's length means entries after that
        position were trimmed undelivered. Only then is the stream itself looked at (its first
        entry: the lost span ends there), the span recorded, and the group's read counter set to
        what it really read, so `lag` is exact again. Redis 6.2 has no counter: the first entry is
        compared with the position at most once a second. A trim between this check and the read
        that follows (well under a millisecond) goes unseen; a writer that stays behind is checked
        again at every read."""
        pipe = self.r.pipeline(transaction=False)
        for stream in self.streams:
            pipe.xinfo_groups(stream)
            pipe.xlen(stream)
        got = pipe.execute(raise_on_error=False)  # a stream gone (deleted) is the read's to report
        for i, stream in enumerate(self.streams):
            if isinstance(got[2 * i], Exception) or isinstance(got[2 * i + 1], Exception):
                continue
            group = next((g for g in got[2 * i] if g.get("name") in (b"history", "history")), None)
            if group is None:
                continue
            length = int(got[2 * i + 1])
            lag = group.get("lag")
            if "lag" in group and lag is not None and int(lag) <= length:
                continue  # Redis 7, counter valid: nothing undelivered was trimmed
            if "lag" not in group or lag is None:  # no counter (6.2) or not computable: rate-limited
                now = time.monotonic()
                if now < self._slow_check.get(stream, 0.0):
                    continue
                self._slow_check[stream] = now + SLOW_CHECK_S
            self._check_stream(stream, group, length)

    def _check_stream(self, stream: str, group: dict, length: int) -> None:
        last = group["last-delivered-id"]
        info = self.r.xinfo_stream(stream)
        first = info.get("first-entry")
        # The lost span ends at the first entry kept (or, all trimmed, just after the last one made).
        end = _sid(first[0])[0] if first else _sid(info.get("last-generated-id") or b"0-0")[0] + 1
        first_id = first[0] if first else info.get("last-generated-id") or b"0-0"
        added = info.get("entries-added")
        read = group.get("entries-read")
        if added is not None and read is not None:  # Redis 7: entries lost = before first - read
            lost = int(added) - int(info.get("length", length)) - int(read)
        else:  # 6.2: the first entry is past the position (from a group made at 0: nothing known)
            lost = 1 if _sid(first_id) > _sid(last) and _sid(last) != (0, 0) else 0
        if lost <= 0:
            return
        self.record_gap(stream, _sid(last)[0], end, lost if added is not None else None)
        if added is not None:
            # The group's read counter as if the lost entries had been read (its position is
            # unchanged): `lag` is exact again, so the cheap check above stays cheap. With a second
            # writer in the group that read on meanwhile, this sets the position back to `last`:
            # entries delivered again, written nothing twice (idempotent keys).
            try:
                self.r.execute_command("XGROUP", "SETID", stream, channels.HISTORY_GROUP, last,
                                       "ENTRIESREAD", int(added) - int(info.get("length", length)))
            except redis.ResponseError as exc:
                log.warning("could not reset the read counter of %s: %s", stream, exc)

    def _lost_pending(self, stream: str, ids: list[bytes]) -> None:
        """Entries this group had read but not acknowledged, trimmed before it could write them (the
        consumer has counted them and acknowledges them after this)."""
        times = [_sid(i)[0] for i in ids]
        self.record_gap(stream, min(times) - 1, max(times) + 1, len(ids))

    def record_gap(self, stream: str, t_from: int, t_to: int, entries: int | None) -> None:
        name = GAP_NAMES.get(stream, stream[-16:])
        self.store.write_gap(name, t_from, t_to, entries, now_ms())
        self.gaps += 1
        self.gap_ms += max(0, t_to - t_from)
        log.warning("history gap on %s: %s entries between %d and %d were trimmed before the writer "
                    "read them (recorded in hist_gaps)", name, entries if entries is not None else "some",
                    t_from, t_to)

    def handle(self, entries: list[Entry]) -> None:
        now = now_ms()
        states: list[dict] = []
        events: list[dict] = []
        alarm_rows = self.alarm_rows
        for stream, _eid, fields in entries:
            if stream == channels.ALARMS_STREAM:
                raw = fields.get(b"a")
                if not isinstance(raw, bytes) or len(raw) > MAX_ALARM_ENTRY_BYTES:
                    self.rejects.add("malformed_entry", "no alarm or too large", stream)
                    continue
                self._alarm_doc(raw)
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
        alarms = [a for a in alarm_rows if a["ts"] >= self._cutoffs.get(("hist_alarms", None), 0)]
        self.rows += self.store.write(states, events, alarms)  # committed here
        self.alarm_rows = []
        newest = self.reader.ack(entries)  # only after the commit
        self.processed += len(entries)
        if newest:
            self.lag_ms = max(0, now_ms() - newest)

    # -- the loop --------------------------------------------------------------------------------------
    def step(self) -> None:
        self.poll_alarms()
        entries = self.reader.read()
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
                "gaps": self.gaps, "gap_ms": self.gap_ms, "alarm_source": self.alarm_source,
                "rejects": self.rejects.summary()}

    def run(self, stop: threading.Event) -> None:
        run_with_backoff(stop, self.start, self.step, log)


def main(redis_url: str, database_url: str) -> None:
    store = HistoryStore(database_url, load_history_config())
    serve(HistoryWriter(redis_url, store).run, store.dispose)
