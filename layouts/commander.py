"""/commander: the incident commander's tablet. Works at 1024x768; every target >= 48 px."""

from __future__ import annotations

from dash import html

from config.settings import Settings
from dashboard.auth import lang_form, sign_out_form
from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from layouts.drone_panel import drone_cameras, drone_panel
from spine.geography import Edition
from widgets.city_map import city_map
from widgets.panels import event_list, layer_toggles, live_status

LAYERS = ["camera", "sensor", "drone", "bus", "air"]


def layout(settings: Settings, edition: Edition, username: str) -> html.Div:
    return html.Div([
        html.Header([html.H1(_("Incident command"), className="cc-title"), live_status(),
                     lang_form("cc-link cc-touch"), sign_out_form("cc-link cc-touch")],
                    className="cc-header"),
        layer_toggles(LAYERS),
        html.Main([city_map(settings.map, edition, LAYERS, routes=False, layers_collapsed=True),
                   html.Aside([*[p for c in drone_cameras() for p in drone_panel(c.id)],
                               event_list(_("Events - tap to locate"))], className="cc-side")],
                  className="cc-body"),
    ], className="cc-page cc-commander")


def page(ctx: PageContext) -> html.Div:
    return layout(ctx.settings, ctx.edition, ctx.username)


register_page("/commander", "commander", page)
