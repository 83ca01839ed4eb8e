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
