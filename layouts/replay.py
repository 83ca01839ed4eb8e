"""/replay: the control room as it was at a moment T (docs/history.md, "Screens").

The map, open alarms, open incidents and the event list as the history API gives them for T, a
slider over the last 24 hours, play at x1/x2/x4/x8 and a way back to live. The page opens no live
socket (cc/main.js and assets/early_socket.js skip it): dashboard/assets/cc/replay.js fills it from
/api/history/replay and /api/history/steps only, so no live frame is mixed into the past.
"""

from __future__ import annotations

import json

from dash import html

from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from history.queries import CLOSED_INCIDENT
from widgets.city_map import city_map
from widgets.panels import event_list

LAYERS = ["bus", "camera", "sensor", "air", "drone", "incident"]
SPEEDS = (1, 2, 4, 8)
# Always visible, whatever the theme: the operator must never take this page for live.
MARK_STYLE = {"fontWeight": "bold", "fontSize": "1.3em", "padding": "0.1em 0.6em",
              "border": "3px solid currentColor", "letterSpacing": "0.1em"}


def controls(touch: bool = False) -> html.Div:
    """Filled by cc/timeline.js: the slider (an <input type=range>, which Dash's html has not).
    `touch`: the tablet's 48 px targets (cc-touch)."""
    btn = "cc-link cc-touch" if touch else "cc-link"
    speeds = [html.Button(_("{n}x speed").format(n=n), className=f"{btn} cc-replay-speed",
                          **{"data-cc-speed": str(n), "aria-pressed": "false"}) for n in SPEEDS]
    return html.Div([html.Div(id="cc-replay-slider-box", className="cc-replay-slider-box",
                              style={"flex": "1", "minWidth": "12em"}),
                     html.Button(_("Pause"), id="cc-replay-pause", className=btn), *speeds,
                     html.A(_("Link to this moment"), id="cc-replay-link", href="/replay", className=btn),
                     html.Span("", id="cc-replay-status", role="status")],
                    className="cc-replay-controls",
                    style={"display": "flex", "gap": "0.5em", "alignItems": "center", "flexWrap": "wrap",
                           "padding": "0.3em 0.8em"})


def gap_note() -> html.Div:
    """Filled by cc/timeline.js when the history API says T falls in a gap of the recording."""
    return html.Div("", id="cc-replay-gap", className="cc-replay-gap", role="status", hidden=True)


def side_panels(touch: bool = False) -> list[html.Div]:
    """The lists of the picture at T (cc/timeline.js fills them): open alarms, open incidents (a tap
    centres the map on one) and the newest event snapshots, the camera tiles of replay."""
    tiles = "cc-replay-snaps cc-inc-cams" if touch else "cc-replay-snaps"
    return [html.Div([html.H2(_("Open alarms"), className="cc-panel-title"),
                      html.Ul(id="cc-replay-alarms", className="cc-events")], className="cc-panel"),
            html.Div([html.H2(_("Open incidents"), className="cc-panel-title"),
                      html.Ul(id="cc-replay-incidents", className="cc-events")], className="cc-panel"),
            html.Div([html.H2(_("Camera snapshots at this moment"), className="cc-panel-title"),
                      html.Div(id="cc-replay-snaps", className=tiles)], className="cc-panel")]


def replay_strip(live_href: str) -> html.Div:
    """The replay bar of a page that is live by default (the commander's tablet): the REPLAY mark,
    the moment, one touch back to live, then the controls. Hidden until cc/cmdreplay.js shows it."""
    return html.Div([
        html.Div([html.Strong(_("REPLAY"), id="cc-replay-mark", className="cc-replay-mark", style=MARK_STYLE),
                  html.Span("-", id="cc-replay-time", className="cc-replay-time"),
                  html.A(_("Back to live"), id="cc-replay-live", href=live_href,
                         className="cc-link cc-touch cc-replay-live"), gap_note()],
                 className="cc-replay-head"),
        controls(touch=True)], id="cc-replay-bar", className="cc-replay-bar cc-replay-only", hidden=True)


def page(ctx: PageContext) -> html.Div:
    return html.Div([
        html.Header([html.Strong(_("REPLAY"), id="cc-replay-mark", className="cc-replay-mark",
                                 style=MARK_STYLE),
                     html.Span("-", id="cc-replay-time", className="cc-replay-time"),
                     html.H1(_("Incheon integrated control - replay"), className="cc-title"),
                     html.A(_("Back to live"), id="cc-replay-live", href="/supervisor", className="cc-link"),
                     html.Span(ctx.username, className="cc-user")],
                    className="cc-header", style={"position": "sticky", "top": 0, "zIndex": 1000}),
        controls(), gap_note(),
        html.Main([city_map(ctx.settings.map, ctx.edition, LAYERS, routes=False),
                   html.Aside([*side_panels(), event_list()], className="cc-side")],
                  className="cc-body"),
    ], id="cc-replay", className="cc-page cc-replay",
        **{"data-cc-closed": json.dumps(list(CLOSED_INCIDENT))})


register_page("/replay", "supervisor", page)
