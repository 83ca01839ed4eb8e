"""The alarm service (`app.py --only alarms`): event stream -> SQL -> live channel.

    start   migrate the alarm tables; create the consumer group (from the stream's start, so events
            written before the first start are not lost); publish what was committed but not yet
            published; rewrite the open-alarm hash from SQL and announce a resync
    loop    take this consumer's own pending entries (after a restart), entries another consumer
            left pending longer than `claim_idle_ms` (XAUTOCLAIM: a consumer killed with -9), then
            new entries (XREADGROUP >: spine/stream_consumer.py); apply them in one SQL
            transaction; publish the committed outbox rows (PUBLISH + the open-alarm hash + the
            cursor, one MULTI: spine/outbox.py); XACK only then
    timers  grouping quiet time, one-off auto clear, shelve expiry, chattering (every `tick_s`);
            suppression from camera state, feed health and silences (every suppression.poll_s);
            outbox rows written by the web's operator actions (every `outbox_s`)
    publish each committed change on the alarm channel (live pages) and, in the same MULTI, to the
            alarm stream (ALARMS_STREAM: durable, what the history writer records)

At-least-once delivery from the stream plus an idempotent SQL write (event id) gives exactly-once
alarms; the outbox cursor in Redis, advanced in the same MULTI as the PUBLISH, gives each committed
change one message on the channel. Any number of services may share the group.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import msgspec
from redis.client import Pipeline

from alarms.config import AlarmConfig, load_alarm_config
from alarms.db import AlarmStore, Context, now_ms
from spine import channels
from spine.contract import RejectLog, decode_stored_event
from spine.outbox import OutboxPublisher
from spine.publisher import REDIS_DOWN, connect
from spine.stream_consumer import Entry, StreamConsumer, consumer_name, run_with_backoff, serve

log = logging.getLogger(__name__)

BATCH = 200  # entries per read: small batches keep the entries in flight (and a kill's cost) small
BLOCK_MS = 50
CLAIM_IDLE_MS = 3000  # an entry pending this long belongs to a dead consumer (a batch takes ~10 ms)
CLAIM_EVERY_S = 0.5
TICK_S = 0.5
OUTBOX_S = 0.1
STATS_S = 2.0
LINGER_S = 0.01  # after a small read, wait this long for more before the transaction (see read_new)
INSTANCE_ENV = "CC_ALARMS_INSTANCE"  # a second service on the same host sets it


class AlarmService:
    def __init__(self, redis_url: str, store: AlarmStore, consumer: str | None = None,
                 batch: int = BATCH, claim_idle_ms: int = CLAIM_IDLE_MS) -> None:
        self.r = connect(redis_url)
        self.store = store
        self.cfg: AlarmConfig = store.cfg
        self.consumer = consumer or consumer_name(INSTANCE_ENV)
        self.rejects = RejectLog(log)
        self.ctx = Context()
        self.processed = 0  # stream entries acknowledged
        self.applied = 0  # events that changed an alarm
        self._next = {"claim": 0.0, "tick": 0.0, "ctx": 0.0, "outbox": 0.0, "stats": 0.0}
        self.reader = StreamConsumer(
            self.r, channels.ALARMS_GROUP, self.consumer, (channels.EVENTS_STREAM,), self.rejects,
            batch=batch, block_ms=BLOCK_MS, claim_idle_ms=claim_idle_ms, claim_every_s=CLAIM_EVERY_S,
            linger_s=LINGER_S, timers=self._next)
        self.outbox = OutboxPublisher(self.r, store, channels.ALARM_CHANNEL, channels.ALARMS_CURSOR_KEY,
                                      row_writes=self._row_writes)

    # -- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.store.migrate()
        self.reader.create_groups()
        self.refresh_context()
        self.publish_outbox()
        self.rebuild_open()
        log.info("alarm service %s consuming %s (group %s)", self.consumer, channels.EVENTS_STREAM,
                 channels.ALARMS_GROUP)

    def rebuild_open(self) -> None:
        """The open-alarm hash from SQL (the truth), then a resync notice for pages."""
        docs = self.store.open_docs()
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(channels.ALARMS_OPEN_KEY)
        if docs:
            pipe.hset(channels.ALARMS_OPEN_KEY, mapping={str(d["id"]): json.dumps(d) for d in docs})
        pipe.publish(channels.ALARM_CHANNEL, json.dumps({"t": "resync", "ts": now_ms()}))
        pipe.execute()

    # -- suppression context -------------------------------------------------------------------------
    def refresh_context(self) -> None:
        ctx = Context(silences=self.store.active_silences())
        try:
            if self.cfg.suppression.stale_feed:
                for name, raw in self.r.hgetall(channels.HEALTH_KEY).items():
                    if not name.startswith(b"layer:"):
                        continue
                    try:
                        h = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(h, dict) and h.get("stale") is True:
                        ctx.stale_layers.add(name.decode("utf-8", "replace")[6:])
            if self.cfg.suppression.camera_offline:
                for cid, raw in self.r.hscan_iter(channels.state_key("camera"), count=1000):
                    if b'"offline"' not in raw:  # cheap: most cameras are online
                        continue
                    try:
                        props = json.loads(raw).get("props") or {}
                    except (ValueError, AttributeError):
                        continue
                    if props.get("status") == "offline":
                        ctx.offline_cameras.add(cid.decode("utf-8", "replace"))
        except REDIS_DOWN as exc:
            log.warning("could not read feed health / camera state (%s); suppression unchanged", exc)
            ctx.offline_cameras, ctx.stale_layers = self.ctx.offline_cameras, self.ctx.stale_layers
        self.ctx = ctx

    # -- the stream ------------------------------------------------------------------------------------
    def handle(self, entries: list[Entry]) -> None:
        items = []
        for stream, eid, fields in entries:
            raw = fields.get(b"e")
            entry = eid.decode()
            if not isinstance(raw, bytes):
                self.rejects.add("malformed_entry", f"entry {entry} has no event", stream)
                continue
            ev = decode_stored_event(raw, self.rejects, stream)
            if ev is not None:
                items.append((entry, ev))
        if items:
            self.applied += self.store.ingest(items, self.ctx)  # committed here
        self.publish_outbox()
        self.reader.ack(entries)  # only after the commit; hostile entries too (counted above)
        self.processed += len(entries)

    # -- publishing ---------------------------------------------------------------------------------
    def publish_outbox(self) -> int:
        """Publish committed outbox rows after the cursor, in order; each once, even with several
        services (spine/outbox.py)."""
        return self.outbox.publish()

    @staticmethod
    def _row_writes(pipe: Pipeline, doc: dict[str, Any]) -> None:
        """In the publishing MULTI: the open-alarm hash follows, and each change goes to the durable
        stream the history writer reads (on the channel and in the stream, or in neither)."""
        docs = doc.get("a", [])
        gone = [str(a["id"]) for a in docs if a["state"] == "NORM"]
        live = {str(a["id"]): msgspec.json.encode(a) for a in docs if a["state"] != "NORM"}
        if gone:
            pipe.hdel(channels.ALARMS_OPEN_KEY, *gone)
        if live:
            pipe.hset(channels.ALARMS_OPEN_KEY, mapping=live)
        for a in docs:
            pipe.xadd(channels.ALARMS_STREAM, {"a": live.get(str(a["id"])) or msgspec.json.encode(a)},
                      maxlen=channels.ALARMS_STREAM_MAXLEN, approximate=True)

    # -- the loop --------------------------------------------------------------------------------------
    def step(self) -> None:
        """One round: read and apply a batch, then whatever timer is due."""
        entries = self.reader.read()
        if entries:
            self.handle(entries)
        now = time.monotonic()
        if now >= self._next["ctx"]:
            self._next["ctx"] = now + self.cfg.suppression.poll_s
            self.refresh_context()
        if now >= self._next["tick"]:
            self._next["tick"] = now + TICK_S
            self.store.tick(self.ctx)
            self.publish_outbox()
        if now >= self._next["outbox"]:
            self._next["outbox"] = now + OUTBOX_S
            self.publish_outbox()
        if now >= self._next["stats"]:
            self._next["stats"] = now + STATS_S
            self.r.hset(channels.ALARMS_STATS_KEY, self.consumer, json.dumps(self.stats()))

    def stats(self) -> dict[str, Any]:
        return {"ts": now_ms(), "processed": self.processed, "applied": self.applied,
                "published": self.outbox.published, "rejects": self.rejects.summary(),
                "offline_cameras": len(self.ctx.offline_cameras),
                "stale_layers": sorted(self.ctx.stale_layers), "silences": len(self.ctx.silences)}

    def run(self, stop: threading.Event) -> None:
        run_with_backoff(stop, self.start, self.step, log)


def main(redis_url: str, database_url: str) -> None:
    store = AlarmStore(database_url, load_alarm_config())
    serve(AlarmService(redis_url, store).run, store.dispose)
