"""The `frigate` source in a replay: feeds.frigate.adapter.FrigateAdapter on a recorded MQTT log.

That adapter picks the server by topic prefix (ingest(raw, topic)); it runs on the replay's clock like
the others. Each configured server counts as connected: the capture was recorded from it.
"""

from __future__ import annotations

from feeds.adapter import Adapter, ServiceArea
from feeds.config import FeedsConfig
from feeds.replay.capture import CapturePublisher
from feeds.replay.clock import ReplayClock


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
    a = FrigateAdapter(None, fcfg, cameras, area, clock=clock, publisher=pub)  # type: ignore[arg-type]
    for srv in a.servers.values():
        srv.connected = True
    return a
