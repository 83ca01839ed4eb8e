"""A video tile: the camera's live video with its name over it.

dashboard/assets/cc/video.js plays the tile while it is on screen and stops when it leaves: the grid's
tiles share one /video/live-tiles stream of H.264 substreams (Media Source Extensions, overlays on a
canvas), and a tile the browser cannot play that way gets JPEG frames over the live socket
(docs/vision.md). `/video/<id>.mjpg` stays available as a plain MJPEG stream for tools outside the UI.
"""

from __future__ import annotations

from dash import html

from dashboard.i18n import _


def video_tile(camera_id: str | None, name: str = "", index: int = 0) -> html.Div:
    """One tile; `camera_id` None gives an empty tile that cc/tiles.js fills from live activity."""
    return html.Div([
        html.Img(className="cc-video-img",
                 alt=_("Live video: {name}").format(name=name) if name else _("Live video")),
        html.Div([html.Span(name or "-", className="cc-video-name"),
                  html.Span("", className="cc-video-age")], className="cc-video-overlay"),
        html.Button(_("Pin"), className="cc-video-pin", title=_("Keep this camera in this tile"),
                    **{"aria-pressed": "false"}),
    ], className="cc-video-tile", id=f"cc-video-tile-{index}",
        **{"data-camera": camera_id or "", "data-name": name, "data-pinned": "false"})


def drone_tile(camera_id: str, drone_id: str, name: str) -> html.Div:
    """The drone's video with its telemetry over it (filled by cc/panels.js from the drone layer)."""
    tile = video_tile(camera_id, name, index=90)
    tile.children.append(html.Div("-", className="cc-telemetry", **{"data-cc-telemetry": drone_id}))
    return html.Div([html.H2(name, className="cc-panel-title"), tile], className="cc-panel cc-drone-panel")
