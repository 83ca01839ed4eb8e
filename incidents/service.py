"""The incident service: SQL outbox -> live channel and map layer; timers; automatic incidents.

    start   migrate; publish what was committed but not yet published; rewrite the open-incident
            hash and the "incident" map layer from SQL; announce a resync
    loop    every `tick_s`: open incidents for active alarms of the auto rules (config/incidents.yaml
            auto_from_alarms; one per activation, idempotent in SQL), hold expiry and SOP step timers
            with staged escalation; publish committed outbox rows (also those the web's actions wrote)

Publishing is the alarm service's pattern (alarms/service.py): the cursor is WATCHed and advanced in
the MULTI that PUBLISHes, so several services publish each row once, in commit order. Each incident
change is also an entity update on layer "incident" (spine.layers.IncidentProps) through the
Publisher, so the map shows open incidents and drops closed ones (gone).
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from typing import Any

import msgspec
import redis
import sqlalchemy as sa

from incidents import walls
from incidents.db import OPEN_STATES, IncidentStore, now_ms
from spine import channels
from spine.publisher import REDIS_DOWN, Publisher, connect

log = logging.getLogger(__name__)
AUTO_S = 0.1  # alarms that open an incident: one cheap query (a bell press should reach the tablet fast)
TICK_S = 1.0  # step timers and hold expiry: one transaction per open incident, timers are in seconds
OUTBOX_S = 0.1


def entity_props(doc: dict) -> dict[str, Any]:
    """An incident as the map layer's props (IncidentProps)."""
    return {
        "title": doc["title"][:200],
        "kind": doc["type"],
        "severity": doc["priority"],
        "status": doc["state"],
        "district": (doc.get("district_name") or "")[:200],
        "description": (doc.get("description") or "")[:2000],
        "opened": doc["opened_ts"],
    }


class IncidentService:
    def __init__(self, redis_url: str, store: IncidentStore) -> None:
        self.r = connect(redis_url)
        self.store = store
        self.pub = Publisher(self.r, src="incidents", refresh_s={})
        self.published = 0
        self.created = 0
        self._next = {"auto": 0.0, "tick": 0.0, "outbox": 0.0}

    def start(self) -> None:
        self.store.migrate()
        self.store.district_at(37.45, 126.7)  # load the boundaries now (~0.3 s), not at a press
        self.publish_outbox()
        self.rebuild_open()

    def rebuild_open(self) -> None:
        docs = self.store.open_docs()
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(channels.INCIDENTS_OPEN_KEY)
        if docs:
            pipe.hset(channels.INCIDENTS_OPEN_KEY, mapping={str(d["id"]): json.dumps(d) for d in docs})
        pipe.delete(channels.WALL_PANES_KEY)
        if panes := walls.panes(self.store):
            pipe.hset(channels.WALL_PANES_KEY, mapping={str(w): json.dumps(p) for w, p in panes.items()})
        pipe.publish(channels.INCIDENT_CHANNEL, json.dumps({"t": "resync", "ts": now_ms()}))
        pipe.execute()
        known = {k.decode() for k in self.r.hkeys(channels.state_key("incident"))}
        for d in docs:
            self.pub.update("incident", f"incident-{d['id']}", d["lat"], d["lon"], entity_props(d))
            known.discard(f"incident-{d['id']}")
        for gone in known:
            self.pub.update("incident", gone, 0.0, 0.0, {}, gone=True)
        self.pub.flush()

    def publish_outbox(self) -> int:
        sent = 0
        while True:
            cursor = int(self.r.get(channels.INCIDENTS_CURSOR_KEY) or 0)
            rows = self.store.outbox_after(cursor)
            if not rows:
                break
            docs_all: list[dict] = []
            try:
                with self.r.pipeline(transaction=True) as pipe:
                    pipe.watch(channels.INCIDENTS_CURSOR_KEY)
                    if int(pipe.get(channels.INCIDENTS_CURSOR_KEY) or 0) != cursor:
                        continue
                    pipe.multi()
                    for oid, payload in rows:
                        pipe.publish(channels.INCIDENT_CHANNEL, f'{{"n": {oid}, {payload.lstrip()[1:]}')
                        decoded = msgspec.json.decode(payload)
                        docs = decoded.get("i", [])
                        for x in decoded.get("x", []):  # wall panes: the hash follows the notices
                            if x.get("t") == "wall" and x.get("pane"):
                                pane = msgspec.json.encode(x["pane"])
                                pipe.hset(channels.WALL_PANES_KEY, str(x["wall"]), pane)
                            elif x.get("t") == "wall":
                                pipe.hdel(channels.WALL_PANES_KEY, str(x["wall"]))
                        docs_all += docs
                        gone = [str(d["id"]) for d in docs if d["state"] not in OPEN_STATES]
                        live = {
                            str(d["id"]): msgspec.json.encode(d) for d in docs if d["state"] in OPEN_STATES
                        }
                        if gone:
                            pipe.hdel(channels.INCIDENTS_OPEN_KEY, *gone)
                        if live:
                            pipe.hset(channels.INCIDENTS_OPEN_KEY, mapping=live)
                    pipe.set(channels.INCIDENTS_CURSOR_KEY, rows[-1][0])
                    pipe.execute()
            except redis.WatchError:
                continue
            for d in docs_all:  # the map layer follows (a later flush repeats it if Redis was away)
                self.pub.update(
                    "incident",
                    f"incident-{d['id']}",
                    d["lat"],
                    d["lon"],
                    entity_props(d),
                    gone=d["state"] not in OPEN_STATES,
                )
            sent += len(rows)
            self.published += len(rows)
            self.store.outbox_trim(rows[-1][0])
        self.pub.flush()
        return sent

    def step(self) -> None:
        now = time.monotonic()
        if now >= self._next["auto"]:
            self._next["auto"] = now + AUTO_S
            try:
                made = self.store.auto_from_alarms()
            except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
                # No alarm tables yet (the alarm service has not started once): nothing to open.
                log.debug("alarm tables not readable yet (%s)", type(exc).__name__)
                made = []
            if made:
                self.created += len(made)
                cfg = self.store.cfg
                walls.auto_bells(self.store, made, cfg.bell_wall, tuple(cfg.bell_types))
                self._next["outbox"] = 0.0  # publish the new incidents in this round
        if now >= self._next["tick"]:
            self._next["tick"] = now + TICK_S
            self.store.tick()
        if now >= self._next["outbox"]:
            self._next["outbox"] = now + OUTBOX_S
            self.publish_outbox()

    def run(self, stop: threading.Event) -> None:
        backoff = 0.5
        started = False
        while not stop.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                self.step()
                stop.wait(0.02)
                backoff = 0.5
            except REDIS_DOWN as exc:
                log.warning("Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                started = False
                stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)


def make_store(database_url: str) -> IncidentStore:
    from incidents.config import load_incident_config
    from incidents.sop import load_sops
    from vision.config import load_vision_config

    return IncidentStore(database_url, load_incident_config(), load_sops(), load_vision_config().cameras)


def main(redis_url: str, database_url: str) -> None:
    store = make_store(database_url)
    service = IncidentService(redis_url, store)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        service.run(stop)
    except KeyboardInterrupt:
        pass
    finally:
        store.dispose()
