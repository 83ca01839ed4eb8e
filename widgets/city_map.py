"""The city map: an offline district base, live layers filled by the page modules (assets/cc), a legend.

Live markers are not Dash props: assets/cc/map.js finds each `dl.LayerGroup(id="cc-layer-<layer>")` when
Leaflet creates it and moves markers in place, because rebuilding a GeoJSON layer per update
saturates the browser at a few thousand points (docs/architecture.md).
"""

from __future__ import annotations

import json
from functools import lru_cache

import dash_leaflet as dl
from dash import html
from shapely.geometry import Point

from config.settings import MapSettings
from dashboard.i18n import _, current_lang
from spine.geography import Edition, district_geojson
from spine.layers import LAYER_COLORS, LAYER_LABELS, LEGEND_TITLES, label
from spine.layers import legend as registry_legend

__all__ = ["LAYER_COLORS", "LAYER_LABELS", "LEVEL_SHAPES", "bus_fade_s", "city_map", "legend"]

# Severity carried by shape as well as colour (issue 9): the calm state is a circle, the worst a star,
# so a colour-blind operator, or a glance at a far wall, still tells the levels apart. The page draws
# markers with these (assets/cc/markers.js reads them from the map's data-cc-shapes) and the legend
# shows the same shapes.
LEVEL_SHAPES: dict[str, dict[str, str]] = {
    "sensor": {"normal": "circle", "attention": "square", "caution": "diamond", "warning": "triangle",
               "critical": "star"},
    "air": {"좋음": "circle", "보통": "square", "나쁨": "triangle", "매우나쁨": "star"},
}


@lru_cache(maxsize=1)
def bus_fade_s() -> float:
    """`feeds.transit.fade_s` from the configuration root (the same files, overlay and CC_* variables
    the web part started with): the page fades a silent bus after it, like the transit adapter does.
    Read once; the web part reads its configuration once too."""
    from config.root import load_config

    return load_config(check_references=False).feeds.transit.fade_s


def _district_labels(edition: Edition) -> list:
    # An English page names districts in English (the boundary file carries both names); a Korean
    # one, the default, in Korean. A district without an English name keeps its Korean one.
    english = current_lang() == "en"
    labels = []
    for d in edition.districts:
        p: Point = d.geometry.representative_point()
        name = (d.name_en or d.name_ko) if english else d.name_ko
        labels.append(dl.CircleMarker(
            center=[p.y, p.x], radius=0, stroke=False, interactive=False,
            children=dl.Tooltip(name, permanent=True, direction="center", className="cc-district-label")))
    return labels


def legend(layers: list[str], edition: Edition) -> html.Div:
    """Swatches from the layer registry; a layer whose colour carries meaning (air grade, sensor
    level) shows its scale. The browser colours markers from the same registry."""
    rows: list = []
    for layer in layers:
        entries = registry_legend(layer)
        title = LEGEND_TITLES.get(layer)
        if title:
            rows.append(html.Div(label(title), className="cc-legend-title", **{"data-cc-legend": layer}))
        shapes = LEVEL_SHAPES.get(layer, {})
        items = [html.Div([html.Span(className=f"cc-swatch cc-shape-{shapes.get(e['code'], 'circle')}",
                                     style={"background": e["color"]}), e["label"]],
                          className="cc-legend-row", **({} if title else {"data-cc-legend": layer}))
                 for e in entries]
        # A scale (several colours of one layer) wraps into rows, so the legend hides less of the map.
        rows += [html.Div(items, className="cc-legend-scale")] if title else items
    rows.append(html.Div(edition.label, className="cc-legend-edition"))
    return html.Div(rows, className="cc-legend")


def city_map(settings: MapSettings, edition: Edition, layers: list[str],
             center: list[float] | None = None, zoom: float | None = None,
             interactive: bool = True, bounds: list[list[float]] | None = None,
             routes: bool | None = None, layers_collapsed: bool | None = None,
             view: dict | None = None) -> html.Div:
    """routes: None leaves out the bus-route overlay, False adds it unchecked, True checked.
    view: a wall screen's physical size (WallScreen.view()), from which the page scales map marks."""
    base: list = []
    if settings.tile_url:
        base.append(dl.TileLayer(url=settings.tile_url, attribution=settings.tile_attribution))
    # District features carry no `tooltip` property: dash-leaflet would bind it as HTML, and the names
    # come from `map.boundary_file`. assets/leaflet_hooks.js binds each name as a text node instead.
    # Own pane (and so own canvas) under the live layers: dash-leaflet loads GeoJSON lazily, and on
    # the shared canvas the late-added district fill would be drawn over the markers.
    base.append(dl.Pane(dl.GeoJSON(data=district_geojson(edition), id="cc-districts",
                                   style={"color": "#4b5d73", "weight": 1.5, "fillColor": "#172130",
                                          "fillOpacity": 0.85 if not settings.tile_url else 0.1}),
                        name="cc-base", style={"zIndex": 300}))
    overlays = [dl.Overlay(dl.LayerGroup(id=f"cc-layer-{layer}"), name=label(LAYER_LABELS[layer]),
                           checked=True) for layer in layers]
    if routes is not None:
        overlays.append(dl.Overlay(dl.LayerGroup(id="cc-layer-routes"), name=_("Bus routes (GTFS shapes)"),
                                   checked=routes))
    overlays.append(dl.Overlay(dl.LayerGroup(_district_labels(edition)), name=_("District names"),
                               checked=True))
    # The map always gets a centre: a map given `bounds` alone has no `center` prop, and dash-leaflet's
    # viewport tracker calls L.latLng(center).equals(...) on it, which threw "Cannot read properties
    # of undefined (reading 'equals')" at every load of /wall/1 (issue 9). With bounds, the centre is
    # theirs and no zoom is given: react-leaflet fits the bounds when it has no zoom, and dash-leaflet
    # re-applies a `zoom` prop after the fit, so a zoom would undo it.
    if bounds:
        (s, w), (n, e) = bounds
        view_props: dict = {"bounds": bounds, "center": [(s + n) / 2, (w + e) / 2]}
    else:
        view_props = {"center": center or settings.center, "zoom": zoom or settings.zoom}
    collapsed = (not interactive) if layers_collapsed is None else layers_collapsed
    # `overlays` (the checked names) given from the start: dash-leaflet's overlayremove handler filters
    # that prop, and without it the first layer switched off (a commander's toggle) threw a TypeError.
    checked = [o.name for o in overlays if o.checked]
    children = [*base, dl.LayersControl(overlays, collapsed=collapsed, overlays=checked),
                dl.ScaleControl(position="bottomleft", imperial=False)]
    data = {"data-cc-bus-fade-s": f"{bus_fade_s():g}", "data-cc-shapes": json.dumps(LEVEL_SHAPES),
            "data-cc-view": json.dumps(view or {})}
    return html.Div([
        # trackViewport off as well: no callback reads the view, and tracking costs a Dash round
        # trip on every pan and zoom of every wall.
        dl.Map(children, id="cc-map", **view_props, zoomSnap=0.25, preferCanvas=True, trackViewport=False,
               zoomControl=interactive, attributionControl=True,
               style={"width": "100%", "height": "100%"}),
        legend(layers, edition),
    ], className="cc-map-wrap", **data)
