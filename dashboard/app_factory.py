"""Build the Dash app: Flask server with the auth guard, one router callback, local assets."""

from __future__ import annotations

from pathlib import Path

import dash
from dash import Input, Output, dcc, html
from flask import Flask, g, has_request_context, request
from flask_login import current_user

from config.settings import Settings
from dashboard import bench_pages, pages
from dashboard.alarms_api import install_alarm_routes
from dashboard.auth import csrf_ok, install_auth, safe_next
from dashboard.csp import install_csp
from dashboard.feeds_api import install_feed_routes
from dashboard.history_api import install_history_routes
from dashboard.i18n import DEFAULT_LANG, LangResolver, _, browser_catalogue_json, in_lang, install_i18n
from dashboard.incidents_api import install_incident_routes
from dashboard.store import Store
from dashboard.video import StreamLimits, StreamSlots, install_video_routes
from spine.geography import load_edition
from spine.layers import registry_json

ASSETS = Path(__file__).resolve().parent / "assets"

# The page code is ES modules under assets/cc (one job each; entry cc/main.js). Dash would load
# every assets/*.js as a classic script, so that folder is left out of its list (assets_path_ignore)
# and loaded here as a module, preloaded in <head> so the module graph arrives with Dash's scripts.
# The layer registry (spine/layers.py) is embedded as JSON; a JSON script is data, not code, for
# the Content-Security-Policy (dashboard/csp.py). So is the page language's message catalogue
# (dashboard/i18n.py), and `<html lang>` is the page's language: both filled per request.
MODULES = ("main", "i18n", "state", "registry", "dom", "map", "markers", "popups", "store", "events",
           "panels", "socket", "video", "tiles", "alarms", "incident", "wallpane", "replay", "trends",
           "timeline", "cmdreplay", "suptrends", "plotly", "http")
_PRELOAD = "".join(f'<link rel="modulepreload" href="/assets/cc/{m}.js">' for m in MODULES)
INDEX = ("""<!DOCTYPE html>
<html lang="__CC_LANG__">
<head>{%metas%}<title>{%title%}</title>{%favicon%}{%css%}""" + _PRELOAD + """</head>
<body>{%app_entry%}<script type="application/json" id="cc-i18n">__CC_I18N__</script>
<script type="application/json" id="cc-layers">""" + registry_json() + """</script>
<footer>{%config%}{%scripts%}{%renderer%}<script type="module" src="/assets/cc/main.js"></script></footer>
</body>
</html>""")


def render_page(settings: Settings, edition, path: str, role: str, username: str):
    """The layout of the page a path opens, if the role holds that page's permission."""
    found = pages.match(path or "/")
    if found is None:
        return html.Div([html.H1(_("Page not found")), html.A(_("Home"), href="/")],
                        className="cc-page cc-error")
    page, args = found
    # The Flask guard already refused the page load; this covers a forged callback request.
    if not pages.may_open(settings, role, page):
        return html.Div(html.H1(_("Role {role} may not open this page").format(role=role)),
                        className="cc-page cc-error")
    return page.layout(pages.PageContext(settings, edition, username, role), **args)


MAX_BODY_BYTES = 1 << 20


def create_app(settings: Settings, store: Store, secret: str) -> dash.Dash:
    server = Flask(__name__)
    # No form or JSON body of this app comes near 1 MiB; without a bound any signed-in role could
    # POST a body large enough to exhaust the web process's memory (Werkzeug answers 413).
    server.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    install_auth(server, store, settings, secret)
    langs = LangResolver(store, settings.walls)
    install_i18n(server, langs, csrf_ok, safe_next)
    edition = load_edition(settings.map.boundary_file)
    app = dash.Dash(
        __name__, server=server, assets_folder=str(ASSETS), serve_locally=True,
        title="Incheon control room", update_title=None, suppress_callback_exceptions=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
        assets_path_ignore=["^cc$"],
    )
    app.index_string = INDEX
    dash_index = app.interpolate_index

    def interpolate_index(**kwargs):
        # The page load itself: its language decides <html lang> and the catalogue it carries.
        lang = langs.page_lang(request.path) if has_request_context() else DEFAULT_LANG
        with in_lang(lang):
            kwargs["title"] = _("Incheon control room")
        page = dash_index(**kwargs)
        return page.replace("__CC_LANG__", lang, 1).replace("__CC_I18N__", browser_catalogue_json(lang), 1)

    app.interpolate_index = interpolate_index
    install_csp(server, app, settings.gateway)
    install_alarm_routes(server, settings, store)  # alarm list, actions, KPIs (docs/alarms.md)
    # One stream counter for the video routes and the agency links' streams: one cap for both.
    slots = StreamSlots(StreamLimits(settings.web.video_streams_per_user, settings.web.video_stream_cap(),
                                     settings.web.video_tiles_per_stream))
    install_incident_routes(server, settings, store, slots=slots)  # incidents, SOPs, shares
    install_history_routes(server, settings, store)  # trends and replay (docs/history.md)
    app.layout = html.Div([dcc.Location(id="url", refresh=False), html.Div(id="cc-root")])

    if settings.redis.url:
        install_feed_routes(server, settings.redis.url)
        install_video_routes(server, store, settings.redis.url, slots=slots)
    bench = bench_pages.enabled() and settings.redis.url
    if bench:
        bench_pages.install(app, settings.redis.url)
        pages.register_page(bench_pages.PATH, "wall", lambda ctx: bench_pages.layout())
    pages.discover()  # each layouts/ module declares its pages and their permission

    @app.callback(Output("cc-root", "children"), Input("url", "pathname"))
    def route(pathname: str | None):
        path = pathname or "/"
        g.cc_page_path = path  # where the language switch returns to
        with in_lang(langs.page_lang(path)):
            return render_page(settings, edition, path, current_user.role, current_user.name)

    return app
