"""Alarm widgets: the banner and list (wall and supervisor), the shelved list and the operator-load
panel (supervisor). The server draws the frame and the controls; dashboard/assets/cc/alarms.js fills
them from the live socket (the gateway relays the alarm channel) and /api/alarms/*.

What a screen does with alarms is configuration (`config/alarm_screens.yaml`, or the file named by
CC_ALARM_SCREENS), embedded in the page as `data-cc-alarm-config` JSON: data, not code (CSP).
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from dash import dcc, html
from pydantic import BaseModel, ConfigDict, Field

from alarms.states import PRIORITIES  # lowest first
from dashboard.i18n import _

ROOT = Path(__file__).resolve().parent.parent
Shape = Literal["circle", "square", "diamond", "triangle", "star"]


class AlarmScreens(BaseModel):
    model_config = ConfigDict(extra="forbid")
    audible_critical: bool = True
    beep_hz: float = Field(880, ge=100, le=4000)
    beep_ms: int = Field(250, ge=50, le=2000)
    kpi_refresh_s: float = Field(30, ge=5, le=3600)
    kpi_hours: float = Field(24, gt=0, le=24 * 90)
    shapes: dict[Literal["low", "medium", "high", "critical"], Shape] = Field(
        default_factory=lambda: {"low": "circle", "medium": "square", "high": "triangle", "critical": "star"})


@lru_cache(maxsize=4)
def _load(path: str) -> AlarmScreens:
    p = Path(path)
    if not p.exists():
        return AlarmScreens()
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    return AlarmScreens(**(data.get("alarm_screens") or {}))


def screens_config() -> AlarmScreens:
    return _load(os.environ.get("CC_ALARM_SCREENS") or str(ROOT / "config" / "alarm_screens.yaml"))




def _config_attr(mode: str) -> dict[str, str]:
    cfg = screens_config().model_dump()
    cfg.update(mode=mode, priorities=list(PRIORITIES))
    # ISA-18.2 / EEMUA: motion only for what must be seen at once; the tone only for the worst.
    cfg.update(motion=list(PRIORITIES[2:]), audible=list(PRIORITIES[3:]) if cfg["audible_critical"] else [])
    return {"data-cc-alarm-config": json.dumps(cfg)}


def alarm_banner() -> html.Div:
    """Counts of unacknowledged alarms by priority and the most urgent one, across the screen's top."""
    return html.Div(_("No unacknowledged alarms"), id="cc-alarm-banner", className="cc-alarm-banner",
                    role="alert", **{"aria-live": "assertive", "data-state": "calm"})


def _select(id_: str, options: list[tuple[str, str]], label: str) -> html.Label:
    return html.Label([html.Span(label, className="cc-alarm-flabel"),
                       html.Select([html.Option(text, value=value) for value, text in options], id=id_)],
                      className="cc-alarm-filter")


def _actions() -> html.Div:
    """Action controls; alarms.js removes those this user's role may not use (GET /api/alarms/meta)."""
    return html.Div([
        html.Button(_("Select all"), id="cc-alarm-all", type="button", className="cc-alarm-btn",
                    hidden=True, **{"data-cc-right": "any"}),
        # dcc.Input: Dash's html package has no <input>; its wrapper carries the right and `hidden`.
        html.Span(dcc.Input(id="cc-alarm-comment", type="text", maxLength=500,
                            placeholder=_("Comment (optional)"), className="cc-alarm-input"),
                  hidden=True, **{"data-cc-right": "acknowledge"}),
        html.Button(_("Acknowledge"), id="cc-alarm-ack", type="button", className="cc-alarm-btn",
                    hidden=True, **{"data-cc-right": "acknowledge"}),
        html.Span([dcc.Input(id="cc-alarm-reason", type="text", maxLength=500,
                             placeholder=_("Reason for shelving"), className="cc-alarm-input"),
                   html.Select([], id="cc-alarm-minutes", className="cc-alarm-input",
                               **{"aria-label": _("Shelve for")})],
                  hidden=True, **{"data-cc-right": "shelve"}),
        html.Button(_("Shelve"), id="cc-alarm-shelve", type="button", className="cc-alarm-btn",
                    hidden=True, **{"data-cc-right": "shelve"}),
        html.Button(_("Unshelve"), id="cc-alarm-unshelve", type="button", className="cc-alarm-btn",
                    hidden=True, **{"data-cc-right": "shelve"}),
        html.Span("", id="cc-alarm-result", className="cc-alarm-result", role="status"),
    ], className="cc-alarm-actions")


def alarm_list(mode: Literal["wall", "desk"], title: str | None = None) -> html.Section:
    """The open alarms, unacknowledged first; actions by the user's rights. `desk` adds filters."""
    parts: list = [html.H2(title or _("Alarms"), className="cc-panel-title")]
    if mode == "desk":
        parts.append(html.Div([
            _select("cc-alarm-fprio", [("", _("All priorities")), ("critical", _("Critical")),
                                       ("high", _("High")), ("medium", _("Medium")), ("low", _("Low"))],
                    _("Priority")),
            _select("cc-alarm-fstate", [("", _("Not shelved")), ("UNACK,RTNUN", _("Unacknowledged")),
                                        ("ACKED", _("Acknowledged")), ("DSUPR,OOSRV", _("Suppressed"))],
                    _("State")),
            html.Label([html.Span(_("Source"), className="cc-alarm-flabel"),
                        dcc.Input(id="cc-alarm-fsource", type="search", maxLength=128)],
                       className="cc-alarm-filter"),
            html.Button(_("Mute the alarm tone"), id="cc-alarm-mute", type="button", className="cc-alarm-btn",
                        **{"aria-pressed": "false"}),
        ], className="cc-alarm-filters"))
    # Both screens act by the user's rights: an operator at the wall acknowledges, a supervisor shelves.
    parts.append(_actions())
    parts.append(html.Ul([], id="cc-alarm-list", className="cc-alarm-list"))
    return html.Section(parts, id="cc-alarms", className=f"cc-panel cc-alarms cc-alarms-{mode}",
                        **_config_attr(mode))


def shelved_list() -> html.Section:
    return html.Section([html.H2(_("Shelved alarms"), className="cc-panel-title"),
                         html.Ul([], id="cc-alarm-shelved", className="cc-alarm-list")],
                        className="cc-panel cc-alarms-shelved")


def load_panel() -> html.Section:
    """Operator load (ISA-18.2 / EEMUA 191) from GET /api/alarms/kpis, filled by alarms.js."""
    return html.Section([html.H2(_("Operator load"), className="cc-panel-title"),
                         html.Div(_("Loading..."), id="cc-alarm-load", className="cc-alarm-load")],
                        className="cc-panel cc-alarm-load-panel")
