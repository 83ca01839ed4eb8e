"""The live gateway: Redis pub/sub -> every browser over WebSocket, one job per module.

    reader.py     the pub/sub subscription, reconnect, a guard around every message
    batcher.py    latest-wins batching, frame numbering, gap and resync decisions (pure)
    snapshots.py  the current picture from the state hashes and recent events, bad entries skipped
    video.py      camera frames to the pages watching them, each new view audited
    sessions.py   single-use tickets and the sweep that ends revoked sessions' sockets
    server.py     the websockets server: pages, per-client buffer limit, heartbeats, limits
    stats.py      counters, written to Redis for /api/health

Run it with `python app.py --only gateway` (or `python -m gateway`).
"""

from gateway.server import Gateway, main
from gateway.stats import GatewayStats

__all__ = ["Gateway", "GatewayStats", "main"]
