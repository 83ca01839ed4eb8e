"""Small panels around the map. Their numbers are filled by assets/cc/panels.js from the live
socket (data-cc-* attributes), so they change with the map and cost the server nothing."""

from __future__ import annotations

from dash import html

from widgets.city_map import LAYER_LABELS


def live_status() -> html.Div:
    return html.Div("CONNECTING", id="cc-live-status", className="cc-status cc-status-connecting",
                    role="status", **{"aria-live": "polite"})


def clock() -> html.Span:
    return html.Span("--:--:--", className="cc-clock", **{"data-cc-clock": "1"})


def kpi(label: str, key: str) -> html.Div:
    return html.Div([html.Div("-", className="cc-kpi-value", **{"data-cc-kpi": key}),
                     html.Div(label, className="cc-kpi-label")], className="cc-kpi")


def kpi_strip(layers: list[str]) -> html.Div:
    items = []
    if "bus" in layers:
        items += [kpi("buses live", "bus"), kpi("buses late > 5 min", "bus_late")]
    if "camera" in layers:
        items += [kpi("cameras with activity", "camera_active")]
    if "sensor" in layers:
        items += [kpi("sensors over threshold", "sensor_alarm")]
    if "air" in layers:
        items += [kpi("worst air grade", "air_worst")]
    items.append(kpi("events (1 h)", "events"))
    return html.Div(items, className="cc-kpis")


def event_list(title: str = "Events") -> html.Div:
    return html.Div([html.H2(title, className="cc-panel-title"),
                     html.Ul(id="cc-events", className="cc-events")], className="cc-panel")


def freshness_table(layers: list[str]) -> html.Div:
    rows = [html.Tr([html.Td(LAYER_LABELS[layer]),
                     html.Td("-", **{"data-cc-count": layer}),
                     html.Td("-", **{"data-cc-age": layer})]) for layer in layers]
    return html.Div([html.H2("Feeds", className="cc-panel-title"),
                     html.Table([html.Thead(html.Tr([html.Th("layer"), html.Th("entities"),
                                                     html.Th("last update")])),
                                 html.Tbody(rows)], className="cc-table")],
                    className="cc-panel")


def layer_toggles(layers: list[str]) -> html.Div:
    return html.Div([html.Button(LAYER_LABELS[layer], className="cc-toggle cc-on",
                                 **{"data-cc-toggle": layer, "aria-pressed": "true"})
                     for layer in layers], className="cc-toggles")


def health_table() -> html.Div:
    """Feed health from the adapters (filled by cc/panels.js from /api/health every 5 s)."""
    return html.Div([html.H2("Feed health", className="cc-panel-title"),
                     html.Table([html.Thead(html.Tr([html.Th("source"), html.Th("state"),
                                                     html.Th("age / contract"), html.Th("msg/s"),
                                                     html.Th("rejects")])),
                                 html.Tbody([])], id="cc-health", className="cc-table")],
                    className="cc-panel")
