"""Redis names used between producers and the gateway (documented in docs/channels.md)."""

PREFIX = "cc:v1"
EVENTS_CHANNEL = f"{PREFIX}:event"
ENTITY_PATTERN = f"{PREFIX}:entity:*"
RECENT_EVENTS_KEY = f"{PREFIX}:events:recent"
RECENT_EVENTS_KEEP = 200
HEALTH_KEY = f"{PREFIX}:health"
FRAME_CHANNEL = f"{PREFIX}:frame"  # PUBLISH <camera_id> when a new annotated frame is stored
FRAME_TTL_S = 10  # a dead worker's last frame disappears instead of freezing a tile


def entity_channel(layer: str) -> str:
    return f"{PREFIX}:entity:{layer}"


def state_key(layer: str) -> str:
    """Hash id -> latest update JSON: the source of every snapshot."""
    return f"{PREFIX}:state:{layer}"


def layer_of_channel(channel: str) -> str:
    return channel.rsplit(":", 1)[-1]


def frame_key(camera_id: str) -> str:
    """Latest annotated (and, in privacy mode, masked) JPEG of one camera."""
    return f"{PREFIX}:frame:{camera_id}"


# ---- the live gateway -------------------------------------------------------------------------
GATEWAY_STATS_KEY = f"{PREFIX}:gateway:stats"  # hash: instance id -> stats JSON, rewritten every 2 s
TICKET_USED_TTL_S = 120  # longer than a ticket lives (60 s), so a claimed ticket stays claimed


def ticket_used_key(ticket_id: str) -> str:
    """SET NX by the gateway when it accepts a live-socket ticket: a second use is refused."""
    return f"{PREFIX}:ticket-used:{ticket_id}"
