"""The supervisor's trend panels (issue 13, point 2): bus delay per route (the worst routes, average
with a min..max band) and alarm rate per priority, over 1 h / 6 h / 24 h / 7 d / 30 d.

Drawn by dashboard/assets/cc/suptrends.js with Plotly from /api/history/bus-delays and
/api/history/alarm-rates (docs/history.md); this shell holds the fixed, translated labels and the
alarm-rate benchmarks of config/alarms.yaml (`targets_per_10min`, ISA-18.2's ~1 acceptable and ~2
manageable per operator per 10 min, and `flood_per_10min`) as data for the chart's guide lines.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from dash import html

from dashboard.i18n import _

log = logging.getLogger(__name__)
RANGES = ("1h", "6h", "24h", "7d", "30d")
DEFAULT_RANGE = "6h"


@lru_cache(maxsize=1)
def rate_targets() -> dict[str, float]:
    """Alarms per 10 min: acceptable, manageable (ISA-18.2 / EEMUA 191) and the flood threshold."""
    try:
        from alarms.config import load_alarm_config

        cfg = load_alarm_config()
        tg = cfg.targets_per_10min
        return {"acceptable": tg.acceptable, "manageable": tg.manageable, "flood": float(cfg.flood_per_10min)}
    except Exception as exc:  # guide lines are a decoration: the standard's figures if config is unreadable
        log.warning("alarm targets unavailable (%s): ISA-18.2 defaults", type(exc).__name__)
        return {"acceptable": 1.0, "manageable": 2.0, "flood": 10.0}


def _range_label(code: str) -> str:
    return {"1h": _("1 h"), "6h": _("6 h"), "24h": _("24 h"), "7d": _("7 days"), "30d": _("30 days")}[code]


def trends_panel() -> html.Section:
    ranges = [html.Button(_range_label(r), type="button", className="cc-link cc-suptrends-range",
                          **{"data-cc-trend-range": r,
                             "aria-pressed": "true" if r == DEFAULT_RANGE else "false"})
              for r in RANGES]
    return html.Section([
        html.Div([html.H2(_("Trends"), className="cc-panel-title"),
                  html.Div(ranges, className="cc-suptrends-ranges", role="group",
                           **{"aria-label": _("Time range")}),
                  html.Button(_("Larger view"), id="cc-suptrends-large", type="button", className="cc-link",
                              **{"aria-pressed": "false"})],
                 className="cc-suptrends-head"),
        html.H3(_("Bus delay by route (worst routes, average and min-max)"), className="cc-suptrends-title"),
        html.Div(id="cc-suptrend-bus", className="cc-suptrend-chart", **{"data-cc-state": "empty"}),
        html.P("", id="cc-suptrend-bus-note", className="cc-suptrends-note", role="status"),
        html.H3(_("Alarm rate per priority (alarms per 10 min)"), className="cc-suptrends-title"),
        html.Div(id="cc-suptrend-alarms", className="cc-suptrend-chart", **{"data-cc-state": "empty"}),
        html.P("", id="cc-suptrend-alarms-note", className="cc-suptrends-note", role="status"),
        html.P(_("Click a point of the last 24 h to replay that moment."), className="cc-suptrends-hint"),
    ], id="cc-suptrends", className="cc-panel cc-suptrends",
        **{"data-cc-range": DEFAULT_RANGE, "data-cc-targets": json.dumps(rate_targets())})
