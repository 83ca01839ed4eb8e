"""Stream entries -> history rows, with the per-layer downsampling of config/history.yaml.

Downsampling is by slot: an update's slot is its time floored to the layer's interval, and the
primary key (layer, entity_id, slot) keeps the first update of each slot, so the result does not
depend on which writer saw what or how often an entry was delivered. On-change layers keep an update
when position, presence or props differ from the last one kept (remembered in memory: after a
restart the first update of each entity is kept once more, a new row, never a duplicate).
"""

from __future__ import annotations

from typing import Any

import msgspec

from history.config import HistoryConfig
from spine.contract import EntityUpdate, Event, encode

MAX_REMEMBERED = 500_000  # entities whose last slot / fingerprint is kept; past that, forgotten
# The trend key and value of each layer: a bus's route and delay, a sensor's kind and value...
SERIES: dict[str, tuple[str | None, str | None]] = {
    "bus": ("route", "delay_s"), "sensor": ("kind", "value"), "air": ("kind", "pm10"),
    "drone": (None, "alt_m"), "camera": ("status", "people"), "incident": ("status", None),
}


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _key(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) else None


class Sampler:
    def __init__(self, cfg: HistoryConfig) -> None:
        self.cfg = cfg
        self.last_slot: dict[tuple[str, str], int] = {}
        self.last_print: dict[tuple[str, str], bytes] = {}
        self.skipped = 0  # updates dropped by downsampling
        self.too_old = 0  # updates / events older than their retention (never written)

    def state_row(self, u: EntityUpdate, first_kept: int) -> dict | None:
        lc = self.cfg.layer(u.layer)
        key = (u.layer, u.id)
        if u.ts < first_kept:
            self.too_old += 1
            return None
        slot = u.ts if lc.on_change or lc.every_ms <= 0 or u.gone else u.ts - u.ts % lc.every_ms
        if lc.on_change and not u.gone:
            fp = encode((u.lat, u.lon, u.props))
            if self.last_print.get(key) == fp:
                self.skipped += 1
                return None
            self._remember(self.last_print, key, fp)
        elif lc.every_ms > 0 and not u.gone:
            if self.last_slot.get(key) == slot:
                self.skipped += 1
                return None
            self._remember(self.last_slot, key, slot)
        if u.gone:
            self.last_print.pop(key, None)
            self.last_slot.pop(key, None)
        kname, vname = SERIES.get(u.layer, (None, None))
        props = u.props
        return {"layer": u.layer, "entity_id": u.id, "slot": slot, "ts": u.ts, "lat": u.lat,
                "lon": u.lon, "gone": bool(u.gone), "k": _key(props.get(kname)) if kname else None,
                "v": _num(props.get(vname)) if vname else None, "doc": encode(u).decode()}

    @staticmethod
    def _remember(d: dict, key: tuple[str, str], value: Any) -> None:
        if len(d) >= MAX_REMEMBERED and key not in d:
            d.clear()  # a flood of invented ids: forget all (costs one extra row per entity)
        d[key] = value


def event_row(ev: Event) -> dict:
    return {"layer": ev.layer, "id": ev.id, "ts": ev.ts, "type": ev.type, "severity": ev.severity,
            "entity": ev.entity, "doc": encode(ev).decode()}


class AlarmDoc(msgspec.Struct):
    """The fields history needs from an alarm document of the alarm channel (others kept as sent)."""

    id: int
    state: str
    priority: str
    layer: str
    updated_ts: int
    active_since: int | None = None


_alarm_doc = msgspec.json.Decoder(AlarmDoc)


def alarm_row(raw: bytes) -> dict:
    """Raises msgspec errors / ValueError for a document that is not an alarm."""
    a = _alarm_doc.decode(raw)
    if not (0 < a.id < 2**31 and 0 <= a.updated_ts < 10**14) or len(a.state) > 5 \
            or len(a.priority) > 8 or len(a.layer) > 16:
        raise ValueError("alarm document out of bounds")
    return {"alarm_id": a.id, "ts": a.updated_ts, "state": a.state, "priority": a.priority,
            "layer": a.layer, "active_since": a.active_since, "doc": raw.decode("utf-8", "replace")}
