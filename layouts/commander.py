"""/commander: the incident commander's tablet. Works at 1024x768; every target >= 48 px.

The open incidents as a list; tapping one shows it: the map zoomed to it with its cameras, the
nearest cameras live, the SOP checklist with step timers, the timeline and the actions
(dashboard/assets/cc/incident.js fills all of it from /api/incidents, as text only). The shell here
holds only fixed, translated labels; the drone video and the live events stay below.

Replay ("as of T", docs/history.md): /commander?t=<epoch ms> opens the same page as it was at T
(dashboard/assets/cc/cmdreplay.js, on cc/timeline.js which /replay uses too): the REPLAY bar with the
moment, slider, play x1..x8, "link to this moment" and one touch back to live; the open incidents,
open alarms and the event snapshots at T instead of the live incident panel and drone video. That
page opens no live socket. The "Replay" button of the header opens it five minutes back.
"""

from __future__ import annotations

import json

from dash import html

from config.settings import Settings
from dashboard.auth import lang_form, sign_out_form
from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from history.queries import CLOSED_INCIDENT
from layouts.drone_panel import drone_cameras, drone_panel
from layouts.replay import replay_strip, side_panels
from spine.geography import Edition
from widgets.city_map import city_map
from widgets.panels import event_list, layer_toggles, live_status

LAYERS = ["incident", "camera", "sensor", "drone", "bus", "air"]
TILES = 3  # the nearest cameras shown live (issue 11: "the nearest 3 cameras")


def camera_tile(i: int) -> html.Div:
    return html.Div([html.Img(className="cc-video-img cc-inc-video-img", alt=""),
                     html.Div("-", className="cc-inc-cam-name")],
                    className="cc-inc-cam", id=f"cc-inc-cam-{i}")


def incident_panel(username: str, mode: str = "commander") -> html.Div:
    """The list, then one incident; incident.js fills and switches them. `mode` commander: the list
    gives way to the incident; board (supervisor): both stay."""
    detail = html.Div([
        html.Div([html.Button(_("Back to list"), id="cc-inc-back", className="cc-inc-btn", type="button"),
                  html.H2("", id="cc-inc-title", className="cc-inc-title")], className="cc-inc-head"),
        html.Div("", id="cc-inc-meta", className="cc-inc-meta"),
        html.Div("", id="cc-inc-msg", className="cc-inc-msg", role="status", **{"aria-live": "polite"}),
        html.Div([], id="cc-inc-actions", className="cc-inc-actions"),
        html.H3(_("Nearest cameras"), className="cc-panel-title"),
        html.Div([camera_tile(i) for i in range(TILES)], id="cc-inc-cams", className="cc-inc-cams"),
        html.Ul([], id="cc-inc-cam-list", className="cc-inc-cam-list"),
        html.H3(_("SOP checklist"), className="cc-panel-title"),
        html.Ol([], id="cc-inc-sop", className="cc-inc-sop"),
        html.Form([html.Textarea(id="cc-inc-comment", maxLength=2000, rows=2,
                                 placeholder=_("Comment for the timeline"),
                                 **{"aria-label": _("Comment for the timeline")}),
                   html.Button(_("Add comment"), id="cc-inc-comment-send", className="cc-inc-btn",
                               type="submit")],
                  id="cc-inc-comment-form", className="cc-inc-comment"),
        html.H3(_("Timeline"), className="cc-panel-title"),
        html.Ol([], id="cc-inc-timeline", className="cc-inc-timeline"),
    ], id="cc-inc-detail", className="cc-inc-detail", hidden=True)
    return html.Div([
        html.Div([html.H2(_("Open incidents"), className="cc-panel-title"),
                  html.Ul([], id="cc-inc-list", className="cc-inc-list"),
                  html.P(_("No open incidents"), id="cc-inc-none", className="cc-inc-none", hidden=True)],
                 id="cc-inc-index", className="cc-panel"),
        detail,
    ], id="cc-incidents", className=f"cc-incidents cc-incidents-{mode}",
        **{"data-cc-incidents": mode, "data-cc-user": username})


def incident_board(username: str) -> html.Div:
    """The supervisor's incident board (layouts/supervisor.py): open incidents by state, then the
    list and one incident as on the tablet."""
    board = html.Div([html.Div([html.H4(word), html.Ul([], **{"data-cc-board": state})])
                      for state, word in (("new", _("New")), ("in_progress", _("In progress")),
                                          ("on_hold", _("On hold")))],
                     id="cc-inc-board", className="cc-inc-board")
    return html.Div([html.H2(_("Incident board"), className="cc-panel-title"), board,
                     incident_panel(username, "board")], className="cc-panel")


def layout(settings: Settings, edition: Edition, username: str) -> html.Div:
    return html.Div([
        html.Header([html.H1(_("Incident command"), className="cc-title"),
                     live_status(),
                     # t=now: cc/timeline.js opens five minutes back (a plain link: works before the JS).
                     html.A(_("Replay"), id="cc-cmd-replay", href="/commander?t=now",
                            className="cc-link cc-touch cc-live-only"),
                     lang_form("cc-link cc-touch"), sign_out_form("cc-link cc-touch")],
                    className="cc-header"),
        replay_strip("/commander"),
        layer_toggles(LAYERS),
        html.Main([city_map(settings.map, edition, LAYERS, routes=False, layers_collapsed=True),
                   html.Aside([html.Div([incident_panel(username),
                                         *[p for c in drone_cameras() for p in drone_panel(c.id)]],
                                        className="cc-live-only"),
                               html.Div(side_panels(touch=True), className="cc-replay-only", hidden=True),
                               event_list(_("Events - tap to locate"))], className="cc-side cc-inc-side")],
                  className="cc-body"),
    ], id="cc-commander", className="cc-page cc-commander",
        **{"data-cc-closed": json.dumps(list(CLOSED_INCIDENT))})


def page(ctx: PageContext) -> html.Div:
    return layout(ctx.settings, ctx.edition, ctx.username)


register_page("/commander", "commander", page)
