"""A drone's video tile with telemetry, for the pages that show one (wall config, commander)."""

from __future__ import annotations

from dash import html

from config.settings import ConfigError
from dashboard.i18n import _
from vision.config import load_vision_config
from widgets.video_tile import drone_tile


def drone_cameras() -> list:
    try:
        return [c for c in load_vision_config().cameras if c.enabled and c.mount]
    except ConfigError:
        return []


def drone_panel(camera_id: str | None) -> list:
    """[] without a camera id; an explanation when the id is not a drone-mounted camera."""
    if not camera_id:
        return []
    cam = next((c for c in drone_cameras() if c.id == camera_id), None)
    if cam is None:
        return [html.Div(_("Camera {camera} is not a drone-mounted camera in config/cameras.yaml")
                         .format(camera=camera_id),
                         className="cc-panel cc-error")]
    return [drone_tile(cam.id, cam.mount, cam.name)]
