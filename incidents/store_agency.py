"""Agency links of an incident (incidents/agency.py signs them): the row that records who handed
one out, until when, and who revoked it; the web reads that row at every agency request."""

from __future__ import annotations

import sqlalchemy as sa

from incidents import cap
from incidents.schema import incident_agency_links
from incidents.store_base import Actor, NotFound, Refused, StoreBase, now_ms


def link_status(row: dict, now: int) -> str:
    """An agency link row's status: revoked, expired or active."""
    if row.get("revoked_ts") is not None:
        return "revoked"
    return "expired" if row["expires_ts"] <= now else "active"


class AgencyLinksMixin(StoreBase):
    """Handing out, listing and revoking agency links."""

    # -- agency links ------------------------------------------------
    def agency_link(self, incident_id: int, agency: str, expires_ms: int, actor: Actor,
                    now: int | None = None, key: str = "") -> dict:
        """A read-only agency link was handed out (incidents/agency.py): its row (`key`, the token's
        name for it, so it can be revoked) and a `share` timeline row, in one transaction."""
        if not key or len(key) > 32:
            raise Refused("an agency link needs a key of at most 32 characters")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                tx.conn.execute(incident_agency_links.insert().values(
                    key=key, incident_id=inc["id"], agency=agency, created_ts=tx.now,
                    created_by=cap.clean(actor.name, 80), expires_ts=expires_ms))
                tx.log(inc, "share", actor, f"{agency} view link", agency=agency, link=True,
                       expires_ts=expires_ms, link_key=key)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def revoke_agency_link(self, incident_id: int, key: str, actor: Actor, now: int | None = None) -> dict:
        """End an agency link before its expiry: its page and streams are refused from now on (the
        web reads the row at every request and every stream's re-check). 404 for a link that is not
        this incident's; 409 for one already revoked or expired (nothing left to end). A closed
        incident's links may still be revoked: it costs nothing and the record says who did."""

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._row(tx.conn, incident_id)
                q = sa.select(incident_agency_links).where(incident_agency_links.c.key == key,
                                                           incident_agency_links.c.incident_id == incident_id)
                if self.pg:
                    q = q.with_for_update()
                row = tx.conn.execute(q).first()
                if row is None:
                    raise NotFound(f"no such agency link of incident {incident_id}")
                if row.revoked_ts is not None:
                    raise Refused(f"the link was already revoked by {row.revoked_by}")
                if row.expires_ts <= tx.now:
                    raise Refused("the link has already expired")
                tx.conn.execute(incident_agency_links.update()
                                .where(incident_agency_links.c.key == key)
                                .values(revoked_ts=tx.now, revoked_by=cap.clean(actor.name, 80)))
                tx.log(inc, "share", actor, f"{row.agency} view link revoked", agency=row.agency,
                       link=True, revoked=True, link_key=key)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def agency_links(self, incident_id: int, now: int | None = None) -> list[dict]:
        """The incident's agency links, newest first, each with `status`: active, expired or revoked."""
        t = now or now_ms()
        with self.reader.connect() as conn:
            self._read_row(conn, incident_id)
            rows = conn.execute(sa.select(incident_agency_links)
                                .where(incident_agency_links.c.incident_id == incident_id)
                                .order_by(incident_agency_links.c.created_ts.desc()).limit(200)).all()
        return [{**dict(r._mapping), "status": link_status(dict(r._mapping), t)} for r in rows]

    def agency_link_row(self, key: str) -> dict | None:
        """One link's row by its key (one primary-key read: each agency request and stream re-check)."""
        if not key or len(key) > 32:
            return None
        with self.reader.connect() as conn:
            row = conn.execute(sa.select(incident_agency_links)
                               .where(incident_agency_links.c.key == key)).first()
        return dict(row._mapping) if row is not None else None
