"""The outbox publisher: what SQL committed, on a Redis channel, each row once and in commit order.

The alarm and incident services write each change in the same SQL transaction as an outbox row
(id, JSON payload). `OutboxPublisher.publish` sends the rows after a cursor kept in Redis:

    read    the cursor, then the committed rows after it (the store's `outbox_after`)
    MULTI   WATCH the cursor; PUBLISH each row's JSON on the channel as stored with "n" (its id) put
            in front (no re-encoding), plus whatever the service queues per row (`row_writes`: the
            open-alarm hash and the alarm-change stream; the open-incident and wall-pane hashes);
            SET the cursor to the last row. One transaction: a row is on the channel, in the hashes
            and past the cursor, or none of these.
    lost    the cursor moved meanwhile (another service published them): WATCH fails, read again
    after   `committed` with the decoded rows (the incident map layer), then the store trims the
            rows up to the cursor (`outbox_trim`)

Any number of services may publish from the same outbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import redis
from redis.client import Pipeline


class OutboxSource(Protocol):
    """The SQL side: committed rows after an id, in id order; and their removal once published."""

    def outbox_after(self, after: int) -> list[tuple[int, str]]: ...

    def outbox_trim(self, upto: int) -> None: ...


# Queues a service's own writes for one decoded row in the publishing MULTI; never executes.
RowWrites = Callable[[Pipeline, dict[str, Any]], None]
Committed = Callable[[list[dict[str, Any]]], None]


def _nothing(*_: Any) -> None:
    return None


@dataclass
class OutboxPublisher:
    """Publishes `source`'s committed rows on `channel`, with the cursor at `cursor_key`."""

    r: redis.Redis
    source: OutboxSource
    channel: str
    cursor_key: str
    row_writes: RowWrites = _nothing
    committed: Committed = _nothing
    published: int = field(default=0, init=False)  # rows this publisher sent (others' are not counted)

    def publish(self) -> int:
        """Publish every committed row after the cursor; returns how many this call sent."""
        sent = 0
        while True:
            cursor = int(self.r.get(self.cursor_key) or 0)
            rows = self.source.outbox_after(cursor)
            if not rows:
                return sent
            docs: list[dict[str, Any]] = []
            try:
                with self.r.pipeline(transaction=True) as pipe:
                    pipe.watch(self.cursor_key)
                    if int(pipe.get(self.cursor_key) or 0) != cursor:
                        continue  # another publisher sent these meanwhile
                    pipe.multi()
                    for oid, payload in rows:
                        pipe.publish(self.channel, f'{{"n": {oid}, {payload.lstrip()[1:]}')
                        doc = msgspec.json.decode(payload)
                        docs.append(doc)
                        self.row_writes(pipe, doc)
                    pipe.set(self.cursor_key, rows[-1][0])
                    pipe.execute()
            except redis.WatchError:
                continue
            self.committed(docs)
            sent += len(rows)
            self.published += len(rows)
            self.source.outbox_trim(rows[-1][0])
