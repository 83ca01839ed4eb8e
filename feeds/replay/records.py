"""What every capture reader yields: records for an adapter's ingest(), and a tally of what it skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class Record:
    data: bytes
    t_s: float | None = None  # the capture's own time for this record, when the format has one
    context: dict[str, str] = field(default_factory=dict)  # ingest() keywords (topic, ...)


@dataclass
class Tally:
    """Per capture: records handed on, and what could not be read (by reason), with notes."""

    records: int = 0
    problems: Counter[str] = field(default_factory=Counter)  # reason -> count; shown under rejected
    skipped_bytes: int = 0  # bytes of a binary capture that belong to no record
    notes: list[str] = field(default_factory=list)

    def problem(self, reason: str, n: int = 1) -> None:
        self.problems[reason] += n
