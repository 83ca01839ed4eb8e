"""The incident service: SQL outbox -> live channel and map layer; timers; automatic incidents.

    start   migrate; publish what was committed but not yet published; rewrite the open-incident
            hash and the "incident" map layer from SQL; announce a resync
    loop    every `tick_s`: open incidents for active alarms of the auto rules (config/incidents.yaml
            auto_from_alarms; one per activation, idempotent in SQL), hold expiry and SOP step timers
            with staged escalation; publish committed outbox rows (also those the web's actions wrote)

Publishing is the alarm service's (spine/outbox.py): the cursor is WATCHed and advanced in the MULTI
that PUBLISHes, so several services publish each row once, in commit order. Each incident
change is also an entity update on layer "incident" (spine.layers.IncidentProps) through the
Publisher, so the map shows open incidents and drops closed ones (gone).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import msgspec
import sqlalchemy as sa
from redis.client import Pipeline

from incidents import walls
from incidents.db import OPEN_STATES, IncidentStore, now_ms
from spine import channels
from spine.outbox import OutboxPublisher
from spine.publisher import Publisher, connect
from spine.stream_consumer import run_with_backoff, serve

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
        self.created = 0
        self._next = {"auto": 0.0, "tick": 0.0, "outbox": 0.0}
        self.outbox = OutboxPublisher(self.r, store, channels.INCIDENT_CHANNEL,
                                      channels.INCIDENTS_CURSOR_KEY, row_writes=self._row_writes,
                                      committed=self._committed)

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
        """Committed outbox rows on the incident channel (spine/outbox.py), then the map layer."""
        sent = self.outbox.publish()
        self.pub.flush()  # also repeats what an earlier flush could not write (Redis was away)
        return sent

    @staticmethod
    def _row_writes(pipe: Pipeline, decoded: dict[str, Any]) -> None:
        """In the publishing MULTI: the wall-pane and open-incident hashes follow the notices."""
        for x in decoded.get("x", []):
            if x.get("t") == "wall" and x.get("pane"):
                pipe.hset(channels.WALL_PANES_KEY, str(x["wall"]), msgspec.json.encode(x["pane"]))
            elif x.get("t") == "wall":
                pipe.hdel(channels.WALL_PANES_KEY, str(x["wall"]))
        docs = decoded.get("i", [])
        gone = [str(d["id"]) for d in docs if d["state"] not in OPEN_STATES]
        live = {str(d["id"]): msgspec.json.encode(d) for d in docs if d["state"] in OPEN_STATES}
        if gone:
            pipe.hdel(channels.INCIDENTS_OPEN_KEY, *gone)
        if live:
            pipe.hset(channels.INCIDENTS_OPEN_KEY, mapping=live)

    def _committed(self, decoded: list[dict[str, Any]]) -> None:
        """After the MULTI: each incident on the map layer (open ones shown, closed ones gone)."""
        for d in (d for row in decoded for d in row.get("i", [])):
            self.pub.update("incident", f"incident-{d['id']}", d["lat"], d["lon"], entity_props(d),
                            gone=d["state"] not in OPEN_STATES)

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
        run_with_backoff(stop, self.start, self.step, log, pause_s=0.02)


def make_store(database_url: str) -> IncidentStore:
    from incidents.config import load_incident_config
    from incidents.sop import load_sops
    from vision.config import load_vision_config

    return IncidentStore(database_url, load_incident_config(), load_sops(), load_vision_config().cameras)


def main(redis_url: str, database_url: str) -> None:
    store = make_store(database_url)
    serve(IncidentService(redis_url, store).run, store.dispose)
