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


def controls() -> html.Div:
    """Filled by cc/replay.js: the slider (an <input type=range>, which Dash's html has not)."""
    speeds = [html.Button(_("{n}x speed").format(n=n), className="cc-link cc-replay-speed",
                          **{"data-cc-speed": str(n), "aria-pressed": "false"}) for n in SPEEDS]
    return html.Div([html.Div(id="cc-replay-slider-box", className="cc-replay-slider-box",
                              style={"flex": "1"}),
                     html.Button(_("Pause"), id="cc-replay-pause", className="cc-link"), *speeds,
                     html.A(_("Link to this moment"), id="cc-replay-link", href="/replay",
                            className="cc-link"),
                     html.Span("", id="cc-replay-status", role="status")],
                    className="cc-replay-controls",
                    style={"display": "flex", "gap": "0.5em", "alignItems": "center",
                           "padding": "0.3em 0.8em"})


def page(ctx: PageContext) -> html.Div:
    return html.Div([
        html.Header([html.Strong(_("REPLAY"), id="cc-replay-mark", className="cc-replay-mark",
                                 style=MARK_STYLE),
                     html.Span("-", id="cc-replay-time", className="cc-replay-time"),
                     html.H1(_("Incheon integrated control - replay"), className="cc-title"),
                     html.A(_("Back to live"), id="cc-replay-live", href="/supervisor", className="cc-link"),
                     html.Span(ctx.username, className="cc-user")],
                    className="cc-header", style={"position": "sticky", "top": 0, "zIndex": 1000}),
        controls(),
        html.Main([city_map(ctx.settings.map, ctx.edition, LAYERS, routes=False),
                   html.Aside([html.Div([html.H2(_("Open alarms"), className="cc-panel-title"),
                                         html.Ul(id="cc-replay-alarms", className="cc-events")],
                                        className="cc-panel"),
                               html.Div([html.H2(_("Open incidents"), className="cc-panel-title"),
                                         html.Ul(id="cc-replay-incidents", className="cc-events")],
                                        className="cc-panel"),
                               event_list()], className="cc-side")],
                  className="cc-body"),
    ], id="cc-replay", className="cc-page cc-replay",
        **{"data-cc-closed": json.dumps(list(CLOSED_INCIDENT))})


register_page("/replay", "supervisor", page)
