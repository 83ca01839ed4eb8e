"""An incident's cameras: the nearest ones placed (by the SOP's nearest_cameras step or on request,
recomputed each time) and cameras added or removed by hand, each change with its timeline row."""

from __future__ import annotations

import sqlalchemy as sa

from incidents import cap
from incidents.cameras import distance_m, nearest_cameras
from incidents.schema import incident_cameras
from incidents.store_base import Actor, NotFound, Refused, StoreBase, _Tx

MANUAL_RANK = 100  # cameras added by hand rank after any recomputed nearest list (1..32)


class CamerasMixin(StoreBase):
    """Placing and changing an incident's cameras."""

    # -- cameras ------------------------------------------------
    def _place_cameras(self, tx: _Tx, inc: dict, actor: Actor, count: int | None = None) -> list[dict]:
        ranked = nearest_cameras(inc["lat"], inc["lon"], self.cameras, self.cfg, count=count)
        tx.conn.execute(
            incident_cameras.delete().where(
                incident_cameras.c.incident_id == inc["id"], incident_cameras.c.added_by.like("nearest:%")
            )
        )
        kept = set(
            tx.conn.execute(
                sa.select(incident_cameras.c.camera_id).where(incident_cameras.c.incident_id == inc["id"])
            ).scalars()
        )
        rows = [
            {
                "incident_id": inc["id"],
                "camera_id": r.camera_id,
                "rank": r.rank,
                "distance_m": r.distance_m,
                "in_view": int(r.in_view),
                "preset": r.preset,
                "added_ts": tx.now,
                "added_by": cap.clean(f"nearest:{actor.name}", 80),  # recomputed; by hand: the name
            }
            for r in ranked
            if r.camera_id not in kept
        ]
        if rows:
            tx.conn.execute(incident_cameras.insert(), rows)
        docs = [r.doc() for r in ranked]
        tx.log(inc, "cameras", actor, ", ".join(r.camera_id for r in ranked), cameras=docs)
        return docs

    def nearest(
        self, incident_id: int, actor: Actor, count: int | None = None, now: int | None = None
    ) -> dict:
        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                self._place_cameras(tx, inc, actor, count)
                return self._doc(tx.conn, inc)

        return self._retrying(run)

    def set_camera(
        self, incident_id: int, camera_id: str, actor: Actor, on: bool = True, now: int | None = None
    ) -> dict:
        """Add a configured camera by hand (ranked after the others, kept when the nearest are
        recomputed) or remove one."""
        cam = next((c for c in self.cameras if c.id == camera_id), None)
        if cam is None:
            raise NotFound(f"no camera {camera_id!r} in the configuration")

        def run() -> dict:
            with self._tx(now) as tx:
                inc = self._open(tx.conn, incident_id)
                c = incident_cameras.c
                exists = (
                    tx.conn.execute(
                        sa.select(c.camera_id).where(c.incident_id == incident_id, c.camera_id == camera_id)
                    ).first()
                    is not None
                )
                if on and exists:
                    raise Refused(f"camera {camera_id} is already on incident {incident_id}")
                if not on and not exists:
                    raise Refused(f"camera {camera_id} is not on incident {incident_id}")
                if on:
                    rank = (
                        tx.conn.execute(
                            sa.select(sa.func.coalesce(sa.func.max(c.rank), MANUAL_RANK)).where(
                                c.incident_id == incident_id, c.rank >= MANUAL_RANK
                            )
                        ).scalar_one()
                        + 1
                    )
                    tx.conn.execute(
                        incident_cameras.insert().values(
                            incident_id=incident_id,
                            camera_id=camera_id,
                            rank=rank,
                            in_view=0,
                            preset=None,
                            distance_m=round(distance_m(cam.lat, cam.lon, inc["lat"], inc["lon"]), 1),
                            added_ts=tx.now,
                            added_by=cap.clean(actor.name, 80),
                        )
                    )
                else:
                    tx.conn.execute(
                        incident_cameras.delete().where(
                            c.incident_id == incident_id, c.camera_id == camera_id
                        )
                    )
                tx.log(inc, "camera_added" if on else "camera_removed", actor, camera_id, camera=camera_id)
                return self._doc(tx.conn, inc)

        return self._retrying(run)
