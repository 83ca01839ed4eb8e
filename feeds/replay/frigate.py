"""The `frigate` source in a replay: feeds.frigate.adapter.FrigateAdapter on a recorded MQTT log.

That adapter picks the server by topic prefix (ingest(raw, topic)); it runs on the replay's clock like
the others. Each configured server counts as connected: the capture was recorded from it.
"""

from __future__ import annotations

from feeds.adapter import Adapter, ServiceArea
from feeds.config import FeedsConfig
from feeds.replay.capture import CapturePublisher
from feeds.replay.clock import ReplayClock
from feeds.replay.records import Record


def available() -> bool:
    try:
        import feeds.frigate.adapter  # noqa: F401
    except ImportError:
        return False
    return True


def frigate_times(records: list[Record], cfg: FeedsConfig) -> None:
    """A log line without a delivery time (plain `mosquitto_sub -v`): the feed clock takes the time
    Frigate's payload carries (an event's frame time, a review's end or start, stats' last_updated),
    peeked here; the adapter parses it again and counts what is wrong. `available` carries none."""
    from feeds.frigate.payload import EventMessage, ReviewMessage, parse

    fcfg = getattr(cfg, "frigate", None)
    prefixes = sorted((s.topic_prefix + "/" for s in (fcfg.servers.values() if fcfg else [])),
                      key=len, reverse=True)
    for r in records:
        if r.t_s is not None:
            continue
        topic = r.context.get("topic", "")
        prefix = next((p for p in prefixes if topic.startswith(p)), None)
        if prefix is None or topic[len(prefix):] == "available":
            continue
        msg = parse(topic[len(prefix):], r.data, lambda reason, detail: None)
        if isinstance(msg, EventMessage):
            o = msg.after
            r.t_s = o.frame_time or o.end_time or o.start_time
        elif isinstance(msg, ReviewMessage):
            r.t_s = msg.after.end_time or msg.after.start_time
        elif isinstance(msg, dict):
            service = msg.get("service")
            t = service.get("last_updated") if isinstance(service, dict) else None
            r.t_s = float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None


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
