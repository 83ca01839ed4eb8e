"""The `frigate` source in a replay: feeds.frigate.adapter.FrigateAdapter on a recorded MQTT log.

That adapter picks the server by topic prefix (ingest(raw, topic)) and reads the real clocks itself,
so a Frigate replay always runs on wall time (the summary says so). Each configured server counts as
connected: the capture was recorded from it.
"""

from __future__ import annotations

from feeds.adapter import Adapter, AdapterStats, ServiceArea
from feeds.config import FeedsConfig
from feeds.replay.capture import CapturePublisher
from feeds.replay.clock import ReplayClock

WALL_CLOCK_NOTE = ("frigate: the adapter reads wall time itself, so this replay ran on wall time "
                   "(--clock has no effect on it yet)")


def available() -> bool:
    try:
        import feeds.frigate.adapter  # noqa: F401
    except ImportError:
        return False
    return True


def make_frigate(cfg: FeedsConfig, area: ServiceArea | None, clock: ReplayClock,
                 pub: CapturePublisher) -> Adapter:
    from feeds.frigate.adapter import FrigateAdapter, map_cameras

    fcfg = getattr(cfg, "frigate", None)
    if fcfg is None or not fcfg.servers:
        from feeds.replay.run import UsageError

        raise UsageError("frigate: no feeds.frigate.servers configured; the replay needs them to map "
                         "topic prefixes and Frigate cameras (see config/feeds.yaml)")
    try:
        from vision.config import load_vision_config  # the map's cameras, as the live feed uses

        cameras = map_cameras(load_vision_config().cameras)
    except Exception:
        cameras = {}
    a = FrigateAdapter(None, fcfg, cameras, area)  # type: ignore[arg-type]
    a.publisher = pub
    a.clock = clock
    a.stats = AdapterStats(started_at=clock.monotonic())
    for srv in a.servers.values():
        srv.connected = True
    return a
