"""SOP steps of an incident: their records and the view of them, an operator's done or skipped,
the automatic action steps (cameras, drone request, CAP drafts, notices), and the timers: hold expiry,
overdue steps and staged escalation (tick). The rules themselves are incidents/sop.py; this part
reads and writes their records."""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from incidents import cap, sop
from incidents.schema import incident_steps, incidents
from incidents.store_base import OPEN_STATES, SYSTEM, Actor, Refused, _Tx, now_ms
from incidents.store_cameras import CamerasMixin
from incidents.store_shares import SharesMixin


class SopMixin(CamerasMixin, SharesMixin):
    """SOP steps and timers; an action step places cameras or drafts a share, hence its bases."""

    # -- SOP records and their view ------------------------------------------------------------------
    def _records(self, conn: Connection, incident_id: int) -> tuple[dict[str, sop.Record], dict[str, int]]:
        recs: dict[str, sop.Record] = {}
        alerted: dict[str, int] = {}
        for r in conn.execute(sa.select(incident_steps).where(incident_steps.c.incident_id == incident_id)):
            alerted[r.step_id] = r.alerted
            if r.status in ("done", "skipped"):
                recs[r.step_id] = sop.Record(r.status, r.ts, r.actor or "", r.answer, r.note or "")
        return recs, alerted

    def sop_view(self, conn: Connection, inc: dict, now: int) -> dict | None:
        s = self.sops.get(inc["sop"] or "")
        if s is None:
            return None
        recs, _ = self._records(conn, inc["id"])
        started = inc["sop_started_ts"] or inc["opened_ts"]
        views = sop.evaluate(s, recs, started, now)
        steps = []
        for v in views:
            st = s.step(v.id)
            assert st is not None
            steps.append(
                {
                    "id": v.id,
                    "order": v.order,
                    "title": st.title,
                    "kind": st.kind,
                    "required": st.required,
                    "role": st.role,
                    "detail": st.detail,
                    "action": st.action,
                    "auto": st.auto,
                    "question": st.question,
                    "answers": [a.model_dump() for a in st.answers],
                    "status": v.status,
                    "opened_ts": v.opened_ts,
                    "due_ts": v.due_ts,
                    "overdue": v.overdue,
                    "level": v.level,
                    "answer": v.answer,
                    "done_ts": v.done_ts,
                    "actor": v.actor,
                    "note": recs[v.id].note if v.id in recs else "",
                }
            )
        return {
            "id": s.id,
            "title": s.title,
            "description": s.description,
            "steps": steps,
            "missing_required": sop.missing_required(s, recs, started, now),
        }

    # -- SOP steps ------------------------------------------------------------------------------------------
    def step(
        self,
        incident_id: int,
        step_id: str,
        verb: Literal["done", "skipped"],
        actor: Actor,
        answer: str | None = None,
        note: str = "",
        now: int | None = None,
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                if inc["state"] == "resolved":
                    raise Refused(f"incident {incident_id} is resolved; reopen it first")
                s = self.sops.get(inc["sop"] or "")
                if s is None:
                    raise Refused(f"incident {incident_id} has no SOP")
                recs, alerted = self._records(tx.conn, inc["id"])
                try:
                    st = sop.check_action(
                        s, recs, inc["sop_started_ts"] or inc["opened_ts"], tx.now, step_id, verb, answer
                    )
                except sop.StepRefused as exc:
                    raise Refused(str(exc)) from None
                result = self._act(tx, inc, st, actor) if verb == "done" and st.kind == "action" else {}
                self._record(tx, inc, st, verb, actor, answer, note, alerted)
                if inc["state"] == "new" and not actor.name.startswith("system"):
                    inc["state"] = "in_progress"  # working the SOP takes the incident on
                    inc["owner"] = inc["owner"] or actor.name[:80]
                    tx.log(inc, "state", actor, "", before="new", after="in_progress", owner=inc["owner"])
                self._advance(tx, inc)
                return {**self._doc(tx.conn, inc), "result": result}

        return self._retrying(run)

    def _record(
        self,
        tx: _Tx,
        inc: dict,
        st: sop.Step,
        verb: str,
        actor: Actor,
        answer: str | None,
        note: str,
        alerted: dict[str, int],
    ) -> None:
        values = {
            "status": verb,
            "answer": answer,
            "ts": tx.now,
            "actor": actor.name[:80],
            "note": cap.clean(note, 500),
        }
        if st.id in alerted:
            tx.conn.execute(
                incident_steps.update()
                .where(incident_steps.c.incident_id == inc["id"], incident_steps.c.step_id == st.id)
                .values(values)
            )
        else:
            tx.conn.execute(
                incident_steps.insert().values(incident_id=inc["id"], step_id=st.id, alerted=0, **values)
            )
        label = next((a.label for a in st.answers if a.value == answer), answer)
        tx.log(
            inc,
            "step",
            actor,
            note,
            step=st.id,
            title=st.title,
            status=verb,
            answer=answer,
            answer_label=label,
        )

    def _advance(self, tx: _Tx, inc: dict) -> None:
        """Do the automatic action steps that are open, until none is (one may open the next)."""
        s = self.sops.get(inc["sop"] or "")
        if s is None:
            return
        for _ in range(len(s.steps)):
            recs, alerted = self._records(tx.conn, inc["id"])
            due = [
                s.step(v) for v in sop.open_steps(s, recs, inc["sop_started_ts"] or inc["opened_ts"], tx.now)
            ]
            autos = [st for st in due if st is not None and st.auto]
            if not autos:
                return
            for st in autos:
                self._act(tx, inc, st, SYSTEM)
                self._record(tx, inc, st, "done", SYSTEM, None, "", alerted)

    def _act(self, tx: _Tx, inc: dict, st: sop.Step, actor: Actor) -> dict:
        """What an action step does; its result goes into the timeline and the answer."""
        p = st.params
        if st.action == "nearest_cameras":
            count = int(p.get("count", self.cfg.nearest.count))
            return {"cameras": self._place_cameras(tx, inc, actor, count)}
        if st.action == "request_drone":
            tx.log(inc, "drone_request", actor, st.title, lat=inc["lat"], lon=inc["lon"])
            tx.notices.append(
                {
                    "t": "drone_request",
                    "incident": inc["id"],
                    "lat": inc["lat"],
                    "lon": inc["lon"],
                    "ts": tx.now,
                }
            )
            return {"drone": "requested"}
        if st.action in ("share_112", "share_119", "draft_public_alert"):
            agency = {"share_112": "112", "share_119": "119", "draft_public_alert": "public"}[st.action]
            share = self._share(tx, inc, agency, None, actor, send=False, note=st.title)  # type: ignore[arg-type]
            return {"share": share}
        if st.action == "notify":
            to = str(p.get("to", ""))
            tx.log(inc, "notify", actor, st.title, to=to)
            tx.notices.append(
                {"t": "notify", "incident": inc["id"], "to": to, "text": st.title, "ts": tx.now}
            )
            return {"notified": to}
        return {}

    # -- timers ------------------------------------------------
    def tick(self, now: int | None = None) -> int:
        """Hold expiry (back to in progress), step timers and staged escalation; returns the
        incidents changed. Everything is read first without a lock; only an incident whose hold
        expired or whose alert level rose is written (a write transaction per open incident every
        second would hold SQLite's writer lock for nothing)."""
        t = now or now_ms()
        due: list[int] = []
        with self.reader.connect() as conn:
            rows = [
                dict(r._mapping)
                for r in conn.execute(sa.select(incidents).where(incidents.c.state.in_(OPEN_STATES)))
            ]
            for inc in rows:
                if inc["state"] == "on_hold" and inc["hold_until"] is not None and inc["hold_until"] <= t:
                    due.append(inc["id"])
                    continue
                s = self.sops.get(inc["sop"] or "")
                if s is None:
                    continue
                recs, alerted = self._records(conn, inc["id"])
                views = [
                    v
                    for v in sop.evaluate(s, recs, inc["sop_started_ts"] or inc["opened_ts"], t)
                    if v.status == "open"
                ]
                worst = max((v.level for v in views), default=0)
                if worst != inc["level"] or any(v.level > alerted.get(v.id, 0) for v in views):
                    due.append(inc["id"])
        return sum(self._retrying(lambda i=iid: self._tick_one(i, t)) for iid in due)

    def _tick_one(self, incident_id: int, now: int) -> int:
        with self._tx(now) as tx:
            inc = self._row(tx.conn, incident_id)
            if inc["state"] not in OPEN_STATES:
                return 0
            if inc["state"] == "on_hold" and inc["hold_until"] is not None and inc["hold_until"] <= now:
                inc.update(state="in_progress", hold_until=None)
                tx.log(inc, "state", SYSTEM, "hold expired", before="on_hold", after="in_progress")
            s = self.sops.get(inc["sop"] or "")
            if s is not None:
                recs, alerted = self._records(tx.conn, inc["id"])
                worst = 0
                for v in sop.evaluate(s, recs, inc["sop_started_ts"] or inc["opened_ts"], now):
                    if v.status != "open":
                        continue
                    worst = max(worst, v.level)
                    if v.level > alerted.get(v.id, 0):
                        self._alert(tx, inc, s.step(v.id), v, alerted)  # type: ignore[arg-type]
                if worst != inc["level"]:
                    inc["level"] = worst
                    inc["updated_ts"] = now
                    tx.dirty[inc["id"]] = inc
            return int(inc["id"] in tx.dirty)

    def _alert(self, tx: _Tx, inc: dict, st: sop.Step, v: sop.StepView, alerted: dict[str, int]) -> None:
        before = alerted.get(st.id, 0)
        for level in range(before + 1, v.level + 1):
            if level == 1:
                tx.log(inc, "step_overdue", SYSTEM, st.title, step=st.id, due_ts=v.due_ts)
                tx.notices.append({"t": "overdue", "incident": inc["id"], "step": st.id, "ts": tx.now})
            else:
                e = st.escalation[level - 2]
                tx.log(
                    inc, "escalated", SYSTEM, e.text or st.title, step=st.id, stage=level - 1, notify=e.notify
                )
                tx.notices.append(
                    {
                        "t": "escalation",
                        "incident": inc["id"],
                        "step": st.id,
                        "stage": level - 1,
                        "notify": e.notify,
                        "text": e.text or st.title,
                        "ts": tx.now,
                    }
                )
        if st.id in alerted:
            tx.conn.execute(
                incident_steps.update()
                .where(incident_steps.c.incident_id == inc["id"], incident_steps.c.step_id == st.id)
                .values(alerted=v.level)
            )
        else:
            tx.conn.execute(
                incident_steps.insert().values(incident_id=inc["id"], step_id=st.id, alerted=v.level)
            )
        alerted[st.id] = v.level
