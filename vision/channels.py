"""Redis names for the video path (frames for browsers). Small on purpose: the dashboard imports it.

Candidates for feeds/channels.py once the lead merges them.
"""

from feeds.channels import PREFIX

FRAME_CHANNEL = f"{PREFIX}:frame"  # PUBLISH <camera_id> when a new annotated frame is stored
FRAME_TTL_S = 10  # a dead worker's last frame disappears instead of freezing a tile


def frame_key(camera_id: str) -> str:
    """String key holding the latest annotated (and privacy-masked) JPEG of one camera."""
    return f"{PREFIX}:frame:{camera_id}"
