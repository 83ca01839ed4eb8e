"""Redis names for the video path, defined with the others in feeds/channels.py."""

from feeds.channels import FRAME_CHANNEL, FRAME_TTL_S, frame_key

__all__ = ["FRAME_CHANNEL", "FRAME_TTL_S", "frame_key"]
