"""/supervisor: the browser desk. Map plus side panels: alarms (list, shelved, operator load), trends
(bus delay per route, alarm rate per priority: widgets/trends_panel.py), feeds, KPIs and events.
Replay is one action away (the header's "Replay", or a click on a trend point of the last 24 h) and
back to live is one action there ("Back to live")."""

from __future__ import annotations

from dash import html

from config.settings import Settings
from dashboard.auth import lang_form, sign_out_form
from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from layouts.commander import incident_board  # issue 11: the incident list and board
from spine.geography import Edition
from widgets.alarms import alarm_banner, alarm_list, load_panel, shelved_list
from widgets.city_map import city_map
from widgets.panels import clock, event_list, freshness_table, health_table, kpi_strip, live_status
from widgets.rejects_panel import rejects_panel
from widgets.trends_panel import trends_panel

LAYERS = ["bus", "camera", "sensor", "air", "drone"]


def layout(settings: Settings, edition: Edition, username: str) -> html.Div:
    return html.Div([
        html.Header([html.H1(_("Incheon integrated control - supervisor"), className="cc-title"),
                     live_status(), clock(),
                     html.A(_("Replay"), id="cc-sup-replay", href="/replay", className="cc-link"),
                     html.Span(username, className="cc-user"),
                     lang_form("cc-link"), sign_out_form("cc-link")],
                    className="cc-header"),
        kpi_strip(LAYERS),
        alarm_banner(),
        html.Main([city_map(settings.map, edition, [*LAYERS, "incident"], routes=False),
                   html.Aside([alarm_list("desk"), incident_board(username),
                               shelved_list(), load_panel(), trends_panel(), freshness_table(LAYERS),
                               health_table(), rejects_panel(), event_list()],
                              className="cc-side")],
                  className="cc-body"),
    ], className="cc-page cc-supervisor")


def page(ctx: PageContext) -> html.Div:
    return layout(ctx.settings, ctx.edition, ctx.username)


register_page("/supervisor", "supervisor", page)
