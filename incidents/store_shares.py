"""Shares with the agencies as CAP 1.2 messages (incidents/cap.py): drafted or sent, each validated
before it is stored, Updates and Cancels referencing the earlier messages to the same agency; and the
message as it would be sent now, stored nowhere (the CLI's `incident cap ID`)."""

from __future__ import annotations

import sqlalchemy as sa

from incidents import cap
from incidents.schema import incident_shares
from incidents.store_base import Actor, NotFound, Refused, StoreBase, _Tx, now_ms


class SharesMixin(StoreBase):
    """CAP shares of an incident."""

    # -- shares (CAP) ----------------------------------------------------------------------------------------
    def _share(
        self,
        tx: _Tx,
        inc: dict,
        agency: cap.Agency,
        msg_type: cap.MsgType | None,
        actor: Actor,
        send: bool,
        note: str = "",
    ) -> dict:
        earlier = tx.conn.execute(
            sa.select(incident_shares)
            .where(incident_shares.c.incident_id == inc["id"], incident_shares.c.agency == agency)
            .order_by(incident_shares.c.id)
        ).all()
        if msg_type is None:
            msg_type = "Update" if earlier else "Alert"
        if msg_type != "Alert" and not earlier:
            raise Refused(f"no earlier message to {agency} to {msg_type.lower()}: send an Alert first")
        if earlier and earlier[-1].msg_type == "Cancel":
            raise Refused(f"the messages to {agency} were cancelled")
        seq = (
            tx.conn.execute(
                sa.select(sa.func.count())
                .select_from(incident_shares)
                .where(incident_shares.c.incident_id == inc["id"])
            ).scalar_one()
            + 1
        )
        ident = cap.identifier(self.cfg, inc["id"], inc["opened_ts"], seq)
        refs = [cap.reference(self.cfg, e.identifier, e.sent) for e in earlier]
        msg = cap.build(self.cfg, self._doc(tx.conn, inc), msg_type, agency, ident, tx.now, refs, note=note)
        problems = cap.validate(msg.xml)
        if problems:  # never store a message the agencies' systems would refuse
            raise Refused("the CAP message does not validate: " + "; ".join(problems[:3]))
        sid = tx.conn.execute(
            incident_shares.insert()
            .values(
                incident_id=inc["id"],
                agency=agency,
                msg_type=msg_type,
                identifier=ident,
                sent=msg.sent,
                references=" ".join(refs),
                status="sent" if send else "draft",
                xml=msg.xml,
                created_ts=tx.now,
                created_by=actor.name[:80],
                sent_ts=tx.now if send else None,
            )
            .returning(incident_shares.c.id)
        ).scalar_one()
        doc = {
            "id": sid,
            "agency": agency,
            "msg_type": msg_type,
            "identifier": ident,
            "sent": msg.sent,
            "references": refs,
            "status": "sent" if send else "draft",
        }
        tx.log(inc, "share", actor, note, **doc)
        if send:
            tx.notices.append({"t": "share", "incident": inc["id"], **doc})
        return doc

    def share(
        self,
        incident_id: int,
        agency: cap.Agency,
        actor: Actor,
        msg_type: cap.MsgType | None = None,
        send: bool = True,
        note: str = "",
        now: int | None = None,
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                if inc["state"] == "closed" and msg_type != "Cancel":
                    raise Refused(f"incident {incident_id} is closed; only a Cancel can still be sent")
                return self._share(tx, inc, agency, msg_type, actor, send, note)

        return self._retrying(run)

    def send_share(self, incident_id: int, share_id: int, actor: Actor, now: int | None = None) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                row = tx.conn.execute(
                    sa.select(incident_shares).where(
                        incident_shares.c.id == share_id, incident_shares.c.incident_id == incident_id
                    )
                ).first()
                if row is None:
                    raise NotFound(f"no share {share_id} in incident {incident_id}")
                if row.status == "sent":
                    raise Refused(f"share {share_id} was already sent")
                tx.conn.execute(
                    incident_shares.update()
                    .where(incident_shares.c.id == share_id)
                    .values(status="sent", sent_ts=tx.now)
                )
                doc = {
                    "id": share_id,
                    "agency": row.agency,
                    "msg_type": row.msg_type,
                    "identifier": row.identifier,
                    "sent": row.sent,
                    "status": "sent",
                }
                tx.log(inc, "share_sent", actor, "", **doc)
                tx.notices.append({"t": "share", "incident": incident_id, **doc})
                return doc

        return self._retrying(run)

    def shares(self, incident_id: int, with_xml: bool = False) -> list[dict]:
        cols = [c for c in incident_shares.columns if with_xml or c.name != "xml"]
        with self.reader.connect() as conn:
            return [
                dict(r._mapping)
                for r in conn.execute(
                    sa.select(*cols)
                    .where(incident_shares.c.incident_id == incident_id)
                    .order_by(incident_shares.c.id)
                )
            ]

    def cap_message(
        self,
        incident_id: int,
        msg_type: cap.MsgType | None = None,
        agency: cap.Agency = "112",
        now: int | None = None,
    ) -> cap.Message:
        """A message as it would be sent now (nothing stored): the CLI's `incident cap ID`."""
        t = now or now_ms()
        with self.reader.connect() as conn:
            inc = self._read_row(conn, incident_id)
            earlier = conn.execute(
                sa.select(incident_shares)
                .where(incident_shares.c.incident_id == incident_id, incident_shares.c.agency == agency)
                .order_by(incident_shares.c.id)
            ).all()
            doc = self._doc(conn, inc)
            seq = (
                conn.execute(
                    sa.select(sa.func.count())
                    .select_from(incident_shares)
                    .where(incident_shares.c.incident_id == incident_id)
                ).scalar_one()
                + 1
            )
        kind: cap.MsgType = msg_type or ("Update" if earlier else "Alert")
        if kind != "Alert" and not earlier:
            raise Refused(f"no earlier message to {agency} for this {kind} to reference: send an Alert first")
        refs = [cap.reference(self.cfg, e.identifier, e.sent) for e in earlier]
        return cap.build(
            self.cfg, doc, kind, agency, cap.identifier(self.cfg, incident_id, inc["opened_ts"], seq), t, refs
        )
