"""Supervisor panel: messages the live gateway refused, by reason and by source.

Read server-side every 10 s by its own Dash callback from the stats each gateway instance writes
to Redis (the same numbers as /api/health "_gateway"), and rendered as text only: a source is a
channel name any local process can choose, so it must never be markup. A rise here is the first
sign of a broken or hostile producer; the page itself never shows such a message on the map.
"""

from __future__ import annotations

from typing import Any

import flask
from dash import Input, Output, callback, dcc, html

from dashboard.feeds_api import EXTENSION, WEB_REJECTS, gateway_report
from spine.publisher import REDIS_DOWN

TOP_SOURCES = 8  # rows: the sources with most rejects; the total covers the rest
REFRESH_MS = 10_000


def rejects_panel() -> html.Div:
    return html.Div([html.H2("Rejected messages", className="cc-panel-title"),
                     html.Div("waiting for the gateway", id="cc-rejects-body", className="cc-rejects-body"),
                     dcc.Interval(id="cc-rejects-tick", interval=REFRESH_MS, n_intervals=0)],
                    className="cc-panel cc-rejects")


def render(report: dict[str, Any], web: dict[str, Any] | None = None) -> list:
    """Dash components with text children only (React escapes text; no dangerouslySetInnerHTML).

    `web`: what this web process refused when it read producer-written hashes (health, shapes)."""
    rejects = report.get("rejects", {})
    live = report.get("live", 0)
    head = html.P(f"{rejects.get('total', 0)} rejected since start · {live} gateway"
                  f"{'' if live == 1 else 's'} reporting", className="cc-rejects-total")
    if live == 0:
        head = html.P("no gateway reporting", className="cc-rejects-total cc-health-down")
    by_reason = rejects.get("by_reason", {})
    reasons = html.P(_counts_text(by_reason) or "none", className="cc-rejects-reasons")
    by_source = sorted(rejects.get("by_source", {}).items(), key=lambda kv: -sum(kv[1].values()))
    rows = [html.Tr([html.Td(str(source)), html.Td(str(sum(counts.values()))), html.Td(_counts_text(counts))])
            for source, counts in by_source[:TOP_SOURCES]]
    table = html.Table([html.Thead(html.Tr([html.Th("source"), html.Th("rejects"), html.Th("reasons")])),
                        html.Tbody(rows)], className="cc-table")
    out = [head, reasons, table] if rows else [head, reasons]
    if web and web.get("total"):
        reasons_text = _counts_text(web.get("by_reason", {}))
        out.append(html.P(f"web: {web['total']} stored values refused ({reasons_text})",
                          className="cc-rejects-web"))
    return out


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


@callback(Output("cc-rejects-body", "children"), Input("cc-rejects-tick", "n_intervals"))
def _refresh(_n: int | None) -> list | str:
    client = flask.current_app.extensions.get(EXTENSION)
    if client is None:
        return "no live store configured"
    try:
        return render(gateway_report(client), WEB_REJECTS.summary())
    except REDIS_DOWN:
        return "live store unavailable"
