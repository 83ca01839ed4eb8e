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


# ---- alarms (docs/alarms.md) ----------------------------------------------------------------------
# Every event is also appended to this stream (in the Publisher's flush pipeline, beside the LPUSH and
# PUBLISH), one entry {"e": <event JSON>}: the durable path the alarm service reads with a consumer
# group. Trimmed to about EVENTS_STREAM_MAXLEN entries (MAXLEN ~), so an alarm service that stays
# away longer than that many events loses the oldest: the health of the group says so (lag).
EVENTS_STREAM = f"{PREFIX}:events:stream"
EVENTS_STREAM_MAXLEN = 100_000
ALARMS_GROUP = "alarms"  # the consumer group of the alarm service(s)
ALARM_CHANNEL = f"{PREFIX}:alarm"  # pub/sub: {"t": "alarms", "n", "a": [alarms], "ev"} or {"t": "resync"}
ALARMS_OPEN_KEY = f"{PREFIX}:alarms:open"  # hash: alarm id -> alarm JSON, every alarm not NORM
ALARMS_CURSOR_KEY = f"{PREFIX}:alarms:published"  # the last outbox id published on ALARM_CHANNEL
ALARMS_STATS_KEY = f"{PREFIX}:alarms:stats"  # hash: consumer -> its stats JSON, every few seconds
# Every alarm change the service publishes is also appended here, one entry {"a": <alarm JSON>} per
# changed alarm, in the same MULTI as the PUBLISH: the durable path the history writer reads with its
# consumer group (HISTORY_GROUP), so a writer that was down records every transition it missed, not
# only the open set at its restart. Trimmed to about ALARMS_STREAM_MAXLEN entries (MAXLEN ~; ~600 bytes
# each, ~60 MB): at one alarm change a second that is ~28 h of writer absence.
ALARMS_STREAM = f"{PREFIX}:alarms:changes"
ALARMS_STREAM_MAXLEN = 100_000

# ---- incidents (docs/incidents.md) ---------------------------------------------------------------
# Published by the incident service from its SQL outbox (the web never publishes). Incidents are
# also entity updates on layer "incident" (entity_channel / state_key), so every map shows them.
INCIDENT_CHANNEL = f"{PREFIX}:incident"  # pub/sub: {"t": "incidents", "n", "i": [incidents], "x": [notices]}
INCIDENTS_OPEN_KEY = f"{PREFIX}:incidents:open"  # hash: incident id -> incident JSON, every open one
INCIDENTS_CURSOR_KEY = f"{PREFIX}:incidents:published"  # the last outbox id published
# hash: wall number -> pane JSON {wall, incident, title, priority, cameras[3], ...} (incidents/walls.py);
# under cc:v1:incidents:* so the incident service's Redis user may write it.
WALL_PANES_KEY = f"{PREFIX}:incidents:walls"

# ---- history (docs/history.md) -----------------------------------------------------------------
# Every PUBLISH of entity updates is also appended here, one entry {"u": <the same JSON array>}, in
# the Publisher's flush pipeline: the durable path the history writer reads with its consumer group.
# Trimmed to about UPDATES_STREAM_MAXLEN entries (MAXLEN ~; an entry holds 1..500 updates, up to
# ~100 kB): at most ~200 MB of Redis memory, which at 10,000 updates/s is ~100 s of writer absence
# (far longer at the demo's rates); a writer away longer loses the oldest (docs/history.md).
UPDATES_STREAM = f"{PREFIX}:updates:stream"
UPDATES_STREAM_MAXLEN = 2_000
HISTORY_GROUP = "history"  # the history writer's consumer group, on UPDATES_STREAM and EVENTS_STREAM
HISTORY_STATS_KEY = f"{PREFIX}:history:stats"  # hash: consumer -> its stats JSON, every few seconds

# ---- live video (vision/relay.py, docs/vision.md "Live video") ------------------------------------
# Written (never read) by the vision worker, read by the web's /video/<cam>.live; perishable (short
# TTL, capped streams). Per camera and variant ("sub" grid tiles, "main" enlarged view).


def video_init_key(camera_id: str, variant: str) -> str:
    """hash {data: ftyp+moov, codec, gen}: the init segment of the current generation."""
    return f"{PREFIX}:video:init:{camera_id}:{variant}"


def video_seg_key(camera_id: str, variant: str) -> str:
    """stream of media segments {d: moof+mdat, k: keyframe?, t: source time, m: media time, g: gen}."""
    return f"{PREFIX}:video:seg:{camera_id}:{variant}"


def video_meta_key(camera_id: str) -> str:
    """stream of analytics per processed frame (boxes, zones, lines) for the browser's overlays."""
    return f"{PREFIX}:video:meta:{camera_id}"
