"""Small panels around the map. Their numbers are filled by assets/cc/panels.js from the live
socket (data-cc-* attributes), so they change with the map and cost the server nothing."""

from __future__ import annotations

from dash import html

from dashboard.i18n import _
from widgets.city_map import LAYER_LABELS


def live_status() -> html.Div:
    return html.Div(_("CONNECTING"), id="cc-live-status", className="cc-status cc-status-connecting",
                    role="status", **{"aria-live": "polite"})


def clock() -> html.Span:
    return html.Span("--:--:--", className="cc-clock", **{"data-cc-clock": "1"})


def kpi(label: str, key: str) -> html.Div:
    return html.Div([html.Div("-", className="cc-kpi-value", **{"data-cc-kpi": key}),
                     html.Div(label, className="cc-kpi-label")], className="cc-kpi")


def kpi_strip(layers: list[str]) -> html.Div:
    items = []
    if "bus" in layers:
        items += [kpi(_("buses live"), "bus"), kpi(_("buses late > 5 min"), "bus_late")]
    if "camera" in layers:
        items += [kpi(_("cameras with activity"), "camera_active")]
    if "sensor" in layers:
        items += [kpi(_("sensors over threshold"), "sensor_alarm")]
    if "air" in layers:
        items += [kpi(_("worst air grade"), "air_worst")]
    items.append(kpi(_("events (1 h)"), "events"))
    return html.Div(items, className="cc-kpis")


def event_list(title: str | None = None) -> html.Div:
    return html.Div([html.H2(title or _("Events"), className="cc-panel-title"),
                     html.Ul(id="cc-events", className="cc-events")], className="cc-panel")


def freshness_table(layers: list[str]) -> html.Div:
    rows = [html.Tr([html.Td(_(LAYER_LABELS[layer])),
                     html.Td("-", **{"data-cc-count": layer}),
                     html.Td("-", **{"data-cc-age": layer})]) for layer in layers]
    return html.Div([html.H2(_("Feeds"), className="cc-panel-title"),
                     html.Table([html.Thead(html.Tr([html.Th(_("layer")), html.Th(_("entities")),
                                                     html.Th(_("last update"))])),
                                 html.Tbody(rows)], className="cc-table")],
                    className="cc-panel")


def layer_toggles(layers: list[str]) -> html.Div:
    return html.Div([html.Button(_(LAYER_LABELS[layer]), className="cc-toggle cc-on",
                                 **{"data-cc-toggle": layer, "aria-pressed": "true"})
                     for layer in layers], className="cc-toggles")


def health_table() -> html.Div:
    """Feed health from the adapters (filled by cc/panels.js from /api/health every 5 s)."""
    return html.Div([html.H2(_("Feed health"), className="cc-panel-title"),
                     html.Table([html.Thead(html.Tr([html.Th(_("source")), html.Th(_("state")),
                                                     html.Th(_("age / contract")), html.Th(_("msg/s")),
                                                     html.Th(_("rejects"))])),
                                 html.Tbody([])], id="cc-health", className="cc-table")],
                    className="cc-panel")
