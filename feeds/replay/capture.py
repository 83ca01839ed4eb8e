"""What replaced Redis in a replay: a Publisher that writes each flush's updates as JSON lines."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from spine.contract import EntityUpdate, Event, now_ms
from spine.publisher import Publisher, Writer

Emit = Callable[[dict[str, Any]], None]


def _coord(v: float | None) -> float | None:
    return v if v is not None and math.isfinite(v) else None


def entity_line(layer: str, id: str, lat: float | None, lon: float | None, props: dict[str, Any],
                gone: bool = False) -> dict[str, Any]:
    line: dict[str, Any] = {"layer": layer, "id": id, "lat": _coord(lat), "lon": _coord(lon),
                            "props": props}
    if gone:
        line["gone"] = True  # the entity leaves the map (faded out, or its source stopped)
    return line


class CapturePublisher(Publisher):
    """Same interface as the Redis Publisher (the adapters cannot tell), no connection at all.

    Updates are coalesced per flush exactly as live (the latest per entity wins), so the lines are the
    updates a browser would receive. Retained writers (route shapes, air history) are Redis data, not
    entity updates: they are counted, not run."""

    def __init__(self, emit: Emit, src: str) -> None:
        super().__init__(None, src=src)  # type: ignore[arg-type]  # never used: flush() is ours
        self.emit = emit
        self.updates: dict[tuple[str, str], EntityUpdate] = {}
        self.events: list[Event] = []
        self.retained_names: set[str] = set()
        self.lines = 0
        self.event_lines = 0

    def update(self, layer: str, id: str, lat: float, lon: float, props: dict[str, Any] | None = None,
               ts: int | None = None, gone: bool = False) -> EntityUpdate:
        upd = EntityUpdate(v=1, layer=layer, id=id, ts=ts or now_ms(), seq=0, lat=lat, lon=lon,
                           props=props or {}, src=self.src, gone=gone)
        self.updates[(layer, id)] = upd
        return upd

    def event(self, event: Event) -> None:
        self.events.append(event)

    def retain(self, name: str, write: Writer, refresh_s: float | None = None) -> None:
        self.retained_names.add(name)

    def forget(self, name: str) -> None:
        self.retained_names.discard(name)

    def flush(self) -> bool:
        for u in self.updates.values():
            self.emit(entity_line(u.layer, u.id, u.lat, u.lon, dict(u.props), u.gone))
            self.lines += 1
        for ev in self.events:
            self.emit({"event": msgspec.to_builtins(ev)})
            self.event_lines += 1
        self.updates.clear()
        self.events.clear()
        return True
