"""Activity wall: N video tiles showing the N cameras with the most recent activity.

The page is static; dashboard/assets/cc/tiles.js re-orders the tiles live from the camera layer
(`window.ccLive.entities.camera`, props.last_activity) and lets the operator pin a tile; the tile
styles are in assets/controlroom.css (a CSP without inline scripts; no injected <style>).
The first picture comes from config/cameras.yaml so the page is never empty.
"""

from __future__ import annotations

from dash import html

from config.settings import ConfigError, Settings
from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from vision.config import load_vision_config
from widgets.panels import clock, live_status
from widgets.video_tile import video_tile


def _columns(n: int) -> int:
    return 1 if n <= 1 else 2 if n <= 4 else 3 if n <= 9 else 4


def layout(settings: Settings, n_tiles: int) -> html.Div:
    n = max(1, min(int(n_tiles), 16))
    try:
        cameras = [c for c in load_vision_config().cameras if c.enabled]
        problem = ""
    except ConfigError as exc:
        cameras, problem = [], str(exc)
    tiles = []
    for i in range(n):
        cam = cameras[i] if i < len(cameras) else None
        tiles.append(video_tile(cam.id if cam else None, cam.name if cam else "", i))
    header = [html.H1(_("Activity wall: {n} most active cameras").format(n=n), className="cc-title"),
              live_status(), clock()]
    if problem:
        header.append(html.P(problem, className="cc-error"))
    return html.Div([
        html.Header(header, className="cc-header"),
        html.Main(tiles, className="cc-activity-grid", id="cc-activity-grid",
                  style={"display": "grid", "gridTemplateColumns": f"repeat({_columns(n)}, 1fr)"}),
    ], className="cc-page cc-activity-wall", **{"data-cc-tiles": str(n)})


def page(ctx: PageContext, tiles: int = 6) -> html.Div:
    return layout(ctx.settings, tiles)


register_page("/wall/activity", "wall", page)
register_page("/wall/activity/<int(max=64):tiles>", "wall", page)
