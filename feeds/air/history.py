"""The per-station hourly history in Redis: one sorted set per station, scored by the hour (epoch ms).

Kept in Redis rather than in the adapter so the dashboard can serve it and a restarted adapter gets
its C24E and alert inputs back.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from spine.channels import PREFIX
from spine.contract import Rejected, RejectLog, decode_value

MAX_POINT_BYTES = 4096  # one hour's values: a few hundred bytes


def history_key(station: str) -> str:
    return f"{PREFIX}:air:history:{station}"


def store(client: redis.Redis, station: str, points: list[dict], keep_ms: int, now_ms: int) -> None:
    """Replace the given hours (a re-sent hour may carry corrected values) and trim old ones."""
    key = history_key(station)
    pipe = client.pipeline(transaction=False)
    for p in points:
        pipe.zremrangebyscore(key, p["t"], p["t"])
        pipe.zadd(key, {json.dumps(p, ensure_ascii=False, separators=(",", ":")): p["t"]})
    pipe.zremrangebyscore(key, "-inf", f"({now_ms - keep_ms}")
    pipe.execute()


def replace(pipe: Any, station: str, points: list[dict]) -> None:
    """Queue a rewrite of one station's whole history on a pipeline (built aside, then renamed into
    place, so a reader never sees it half written). Used to restore it after Redis lost it."""
    key, tmp = history_key(station), f"{PREFIX}:air:history-next:{station}"
    pipe.delete(tmp)
    if not points:
        pipe.delete(key)
        return
    pipe.zadd(tmp, {json.dumps(p, ensure_ascii=False, separators=(",", ":")): p["t"] for p in points})
    pipe.rename(tmp, key)


def load(client: redis.Redis, station: str, since_ms: int, rejects: RejectLog | None = None) -> list[dict]:
    """The station's points since `since_ms`. A point that is not a JSON object passing the contract's
    checks (NaN/Infinity, depth, UTF-8, huge numbers: json.loads let NaN through and raised
    RecursionError, a 500 on the history route) is left out and counted in `rejects`."""
    key = history_key(station)
    out = []
    for raw in client.zrangebyscore(key, since_ms, "+inf"):
        try:
            point = decode_value(raw, MAX_POINT_BYTES)
            if not isinstance(point, dict):
                raise Rejected("invalid", f"a point is a JSON object, not {type(point).__name__}")
            out.append(point)
        except Rejected as exc:
            if rejects is not None and rejects.first_time((key, b"", raw)):  # counted once, not per view
                rejects.add(exc.reason, exc.detail, key)
    return out
