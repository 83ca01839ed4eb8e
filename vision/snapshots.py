"""Event snapshots on disk (data/snapshots/<event_id>.jpg) under a retention limit.

Only privacy-masked images are written when the camera's privacy mode is on (the pipeline passes
the outgoing frame). Retention: at most `max_files` and `max_days` (PIPA guideline: delete when
the period ends, <= 30 days when no other period is set); pruned on write, at most once a minute.
Pictures of people: the folder is 0700 and each file 0600, whatever the process umask.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)
SNAPSHOT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


class SnapshotStore:
    def __init__(self, directory: Path, max_files: int = 2000, max_days: float = 30.0) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):  # a folder made by an older version is tightened too
            self.dir.chmod(0o700)
        self.max_files = max_files
        self.max_age_s = max_days * 86400
        self._last_prune = 0.0
        self.written = 0
        self.pruned = 0

    def path_for(self, snapshot_id: str) -> Path | None:
        """The file for an id, or None for an id that could escape the folder."""
        if not SNAPSHOT_ID.match(snapshot_id) or snapshot_id.startswith("."):
            return None
        return self.dir / f"{snapshot_id}.jpg"

    def save(self, snapshot_id: str, jpeg: bytes) -> str | None:
        path = self.path_for(snapshot_id)
        if path is None:
            raise ValueError(f"bad snapshot id {snapshot_id!r}")
        tmp = path.with_suffix(".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.fchmod(fd, 0o600)  # a leftover temp file keeps its old mode otherwise
            with os.fdopen(fd, "wb") as f:
                f.write(jpeg)
            os.replace(tmp, path)  # readers never see half a file
        except OSError as exc:
            log.warning("snapshot %s not written: %s", path, exc)
            return None
        self.written += 1
        if time.monotonic() - self._last_prune > 60 or self.written % 200 == 0:
            self.prune()
        return snapshot_id

    def prune(self, now: float | None = None) -> int:
        self._last_prune = time.monotonic()
        now = now or time.time()
        try:
            files = sorted((e for e in os.scandir(self.dir) if e.name.endswith(".jpg")),
                           key=lambda e: e.stat().st_mtime)
        except OSError:
            return 0
        doomed = [e for e in files if now - e.stat().st_mtime > self.max_age_s]
        rest = [e for e in files if e not in doomed]
        doomed += rest[: max(0, len(rest) - self.max_files)]
        for e in doomed:
            with contextlib.suppress(OSError):
                os.unlink(e.path)
        self.pruned += len(doomed)
        return len(doomed)
