"""One-record-per-file captures: GTFS-realtime `.pb` messages and AirKorea JSON bodies (pages)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.message import DecodeError
from google.transit import gtfs_realtime_pb2 as rt

from feeds.air.airkorea import parse_page
from feeds.replay.records import Record, Tally


def _ignore(reason: str, detail: str) -> None:
    """Peeking at a capture's time: the adapter parses it again and counts what is wrong."""


def gtfs_time(data: bytes) -> float | None:
    msg = rt.FeedMessage()
    try:
        msg.ParseFromString(data)
    except (DecodeError, RuntimeError, ValueError):
        return None
    return float(msg.header.timestamp) or None


def read_gtfs(data: bytes, tally: Tally, name: str = "") -> Iterator[Record]:
    """The header timestamp is the feed clock: the moment the agency wrote this snapshot."""
    tally.records += 1
    yield Record(data, gtfs_time(data))


@dataclass
class Paging:
    """AirKorea pages across the files of one replay: received rows against totalCount."""

    received: int = 0
    total: int | None = None
    totals: set[int] | None = None
    pages: int = 0

    def add(self, items: int, total: int | None) -> None:
        self.pages += 1
        self.received += items
        if total is not None:
            self.totals = (self.totals or set()) | {total}
            self.total = max(self.totals)


def read_airkorea(data: bytes, tally: Tally, name: str = "", paging: Paging | None = None
                  ) -> Iterator[Record]:
    """The newest dataTime in the body is the feed clock (the hour AirKorea measured)."""
    page = parse_page(data, _ignore)
    if paging is not None and page.ok:
        paging.add(page.items, page.total_count)
    newest = max((r.hour_ms for r in page.rows), default=None)
    tally.records += 1
    yield Record(data, None if newest is None else newest / 1000)
