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
from dashboard.i18n import _, in_lang, ngettext
from spine.publisher import REDIS_DOWN

TOP_SOURCES = 8  # rows: the sources with most rejects; the total covers the rest
REFRESH_MS = 10_000


def rejects_panel() -> html.Div:
    return html.Div([html.H2(_("Rejected messages"), className="cc-panel-title"),
                     html.Div(_("waiting for the gateway"), id="cc-rejects-body",
                              className="cc-rejects-body"),
                     dcc.Interval(id="cc-rejects-tick", interval=REFRESH_MS, n_intervals=0)],
                    className="cc-panel cc-rejects")


def render(report: dict[str, Any], web: dict[str, Any] | None = None) -> list:
    """Dash components with text children only (React escapes text; no dangerouslySetInnerHTML).

    `web`: what this web process refused when it read producer-written hashes (health, shapes)."""
    rejects = report.get("rejects", {})
    live = report.get("live", 0)
    head = html.P(ngettext("{total} rejected since start · {live} gateway reporting",
                           "{total} rejected since start · {live} gateways reporting", live)
                  .format(total=rejects.get("total", 0), live=live), className="cc-rejects-total")
    if live == 0:
        head = html.P(_("no gateway reporting"), className="cc-rejects-total cc-health-down")
    by_reason = rejects.get("by_reason", {})
    reasons = html.P(_counts_text(by_reason) or _("none"), className="cc-rejects-reasons")
    by_source = sorted(rejects.get("by_source", {}).items(), key=lambda kv: -sum(kv[1].values()))
    rows = [html.Tr([html.Td(str(source)), html.Td(str(sum(counts.values()))), html.Td(_counts_text(counts))])
            for source, counts in by_source[:TOP_SOURCES]]
    head_row = html.Tr([html.Th(_("source")), html.Th(_("rejects")), html.Th(_("reasons"))])
    table = html.Table([html.Thead(head_row),
                        html.Tbody(rows)], className="cc-table")
    out = [head, reasons, table] if rows else [head, reasons]
    if web and web.get("total"):
        reasons_text = _counts_text(web.get("by_reason", {}))
        out.append(html.P(_("web: {total} stored values refused ({reasons})").format(
                              total=web["total"], reasons=reasons_text),
                          className="cc-rejects-web"))
    return out


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(counts.items(), key=lambda kv: -kv[1]))


@callback(Output("cc-rejects-body", "children"), Input("cc-rejects-tick", "n_intervals"))
def _refresh(_n: int | None) -> list | str:
    langs = flask.current_app.extensions.get("cc_lang")
    with in_lang(langs.user_lang() if langs else "ko"):  # the supervisor's own language
        client = flask.current_app.extensions.get(EXTENSION)
        if client is None:
            return _("no live store configured")
        try:
            return render(gateway_report(client), WEB_REJECTS.summary())
        except REDIS_DOWN:
            return _("live store unavailable")
