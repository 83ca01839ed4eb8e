"""/wall/<n>: one screen of the video wall. Full screen, no scrollbars, no mouse needed.

Text sizes are in vh so they keep a fixed share of the wall's height: on a 2x2 wall of 55-inch
panels (1.37 m tall) 2.4vh body text is ~33 mm, about 20 arc-minutes at 5 m (standards.md 7.2).
"""

from __future__ import annotations

from dash import html

from config.settings import Settings
from dashboard.i18n import _
from dashboard.pages import PageContext, register_page
from layouts.drone_panel import drone_panel
from spine.geography import Edition
from widgets.alarms import alarm_banner, alarm_list
from widgets.city_map import city_map
from widgets.panels import clock, event_list, kpi_strip, live_status


def layout(settings: Settings, edition: Edition, screen: int) -> html.Div:
    wall = settings.walls.get(screen)
    if wall is None:
        known = ", ".join(f"/wall/{n}" for n in sorted(settings.walls)) or _("none")
        return html.Div([html.H1(_("No wall screen {screen} in config/walls.yaml").format(screen=screen)),
                         html.P(_("Configured screens: {screens}").format(screens=known))],
                        className="cc-page cc-error")
    return html.Div([
        html.Header([html.H1(wall.title, className="cc-title"), kpi_strip(wall.layers),
                     live_status(), clock()], className="cc-header"),
        alarm_banner(),
        html.Main([city_map(settings.map, edition, wall.layers, wall.center, wall.zoom,
                            interactive=False, bounds=wall.bounds,
                            routes=True if wall.routes else None, view=wall.view()),
                   html.Aside([html.Section(id="cc-wall-pane", hidden=True),  # wallpane.js
                               alarm_list("wall"), *drone_panel(wall.drone_video),
                               event_list(_("Latest events"))],
                              className="cc-side")],
                  className="cc-body"),
    ], className="cc-page cc-wall", **{"data-cc-screen": str(screen)})


def page(ctx: PageContext, screen: int = 1) -> html.Div:
    return layout(ctx.settings, ctx.edition, screen)


register_page("/wall", "wall", page)
register_page("/wall/<int(max=9999):screen>", "wall", page)
