"""JSON routes for alarms: the list, one alarm, operator actions, silences and the operator-load KPIs.

    install_alarm_routes(server, settings)        (one line in dashboard/app_factory.py)

    GET  /api/alarms                   ?state=UNACK,ACKED &priority=high,critical &layer= &source=
                                       &all=1 (normal ones too) &limit= -> {"alarms": [...]}
    GET  /api/alarms/meta              priorities, shelving choices, what this user may do, the form
                                       token for the POSTs (same-origin JSON, no CORS)
    GET  /api/alarms/<id>              the alarm and its history (state changes and actions)
    GET  /api/alarms/kpis?hours=24     operator load (alarms/kpis.py)
    GET  /api/alarms/silences          active silences
    POST /api/alarms/ack               {"ids": [..], "comment": ""}
    POST /api/alarms/shelve            {"ids": [..], "mode": "timed"|"oneshot", "minutes": 60, "reason": ".."}
    POST /api/alarms/unshelve          {"ids": [..], "reason": ""}
    POST /api/alarms/out-of-service    {"ids": [..], "reason": ".."}
    POST /api/alarms/return-to-service {"ids": [..], "reason": ""}
    POST /api/alarms/silences          {"source": "*", "condition": "*", "layer": "*", "minutes": 60,
                                        "reason": ".."}  (fnmatch patterns)
    POST /api/alarms/silences/<id>/cancel

A POST carries the session's form token (header X-CSRF-Token, or a `csrf` field) like every form of
the app, and is allowed by role as config/roles.yaml `alarm_actions` says (403 otherwise). Bodies are
JSON or form fields, validated (pydantic; 400 with one line per problem). Every action writes the
alarm history (who, when, why: alarms.db) and one row in the app's audit log. The web never
publishes: the alarm service publishes the committed change within ~0.1 s (docs/alarms.md).
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, Literal

from flask import Flask, jsonify, request
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from alarms.config import AlarmActions, load_alarm_actions, load_alarm_config
from alarms.db import Actor, AlarmStore, kpis
from alarms.states import PRIORITIES, STATE_NAMES, STATES
from config.settings import Settings
from dashboard.auth import csrf_ok, csrf_token
from dashboard.store import Store

log = logging.getLogger(__name__)
MAX_IDS = 500
Text500 = Annotated[str, Field(max_length=500)]
Ids = Annotated[list[Annotated[int, Field(ge=1, le=2**31 - 1)]], Field(min_length=1, max_length=MAX_IDS)]
Pattern = Annotated[str, Field(min_length=1, max_length=128)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AckBody(_Body):
    ids: Ids
    comment: Text500 = ""


class ShelveBody(_Body):
    ids: Ids
    mode: Literal["timed", "oneshot"] = "timed"
    minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    reason: Text500 = ""


class ReasonBody(_Body):
    ids: Ids
    reason: Text500 = ""


class SilenceBody(_Body):
    source: Pattern = "*"
    condition: Pattern = "*"
    layer: Annotated[str, Field(min_length=1, max_length=16)] = "*"
    minutes: float = Field(gt=0, le=7 * 24 * 60)
    reason: Annotated[str, Field(min_length=1, max_length=500)]


KPI_MAX_HOURS = 24 * 7


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


def _body() -> dict[str, Any]:
    if request.is_json:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return {"__invalid__": True}
        return {k: v for k, v in data.items() if k != "csrf"}
    form = {k: v for k, v in request.form.items() if k not in ("csrf", "ids")}
    if "ids" in request.form:
        form["ids"] = [v for raw in request.form.getlist("ids") for v in raw.split(",") if v.strip()]
    return form


class _Lazy:
    """The alarm store, made (and migrated) at first use: the web starts even while SQL is slow."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: AlarmStore | None = None
        self._lock = threading.Lock()

    def get(self) -> AlarmStore:
        with self._lock:
            if self._store is None:
                store = AlarmStore(self.url, load_alarm_config())
                store.migrate()
                self._store = store
            return self._store


def install_alarm_routes(server: Flask, settings: Settings, app_store: Store | None = None,
                         actions: AlarmActions | None = None) -> None:
    allowed = actions or load_alarm_actions()
    lazy = _Lazy(settings.database.resolved_url())
    cfg = load_alarm_config()

    def may(action: str) -> bool:
        return current_user.is_authenticated and allowed.allows(current_user.role, action)

    def refuse_read() -> Any:
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        if not may("view"):
            return jsonify(error=f"role {current_user.role} may not see alarms"), 403
        return None

    def gate(action: str) -> Any:
        """Login, then the form token, then the role: the order that tells a page what to fix."""
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if sent is None and request.is_json:
            data = request.get_json(silent=True)
            sent = data.get("csrf") if isinstance(data, dict) and isinstance(data.get("csrf"), str) else None
        if not csrf_ok(sent):
            return jsonify(error="the form token is missing or expired; reload the page"), 400
        if not may(action):
            return jsonify(error=f"role {current_user.role} may not {action.replace('_', ' ')} alarms"), 403
        return None

    def actor() -> Actor:
        return Actor(f"{current_user.kind}:{current_user.name}" if current_user.kind != "user"
                     else current_user.name, request.remote_addr or "")

    def audit(action: str, result: dict, detail: str) -> None:
        if app_store is None:
            return
        done = ",".join(str(d["id"]) for d in result.get("done", []))
        app_store.audit(current_user.name, action, f"alarms:{done}"[:128], request.remote_addr or "",
                        detail=detail[:4000])

    def validated(model: type[_Body]) -> _Body | Any:
        data = _body()
        if data.get("__invalid__"):
            return jsonify(error="the body must be a JSON object"), 400
        try:
            return model(**data)
        except ValidationError as exc:
            return jsonify(error="invalid request", problems=_problems(exc)), 400
        except TypeError:
            return jsonify(error="invalid request"), 400

    def _csv(name: str, allowed_values: tuple[str, ...]) -> list[str] | None:
        raw = request.args.get(name, "")[:200]
        vals = [v.strip() for v in raw.split(",") if v.strip()]
        return [v for v in vals if v in allowed_values] or None

    @server.get("/api/alarms")
    def alarms_list():
        if (r := refuse_read()) is not None:
            return r
        try:
            limit = max(1, min(int(request.args.get("limit", "500")), 5000))
        except ValueError:
            limit = 500
        rows = lazy.get().list_alarms(
            states_in=_csv("state", STATES), priority=_csv("priority", PRIORITIES),
            layer=(request.args.get("layer") or None), source=(request.args.get("source") or None),
            include_normal=request.args.get("all") == "1", limit=limit)
        return jsonify(alarms=rows)

    @server.get("/api/alarms/meta")
    def alarms_meta():
        if (r := refuse_read()) is not None:
            return r
        return jsonify(
            priorities={p: {"label": c.label, "shelvable": c.shelvable, "target_share": c.target_share}
                        for p, c in cfg.priorities.items()},
            states={s: STATE_NAMES[s] for s in STATES},
            shelving={"max_minutes": cfg.shelving.max_minutes, "quick_minutes": cfg.shelving.quick_minutes,
                      "reason_required": cfg.shelving.reason_required},
            may={a: may(a) for a in ("acknowledge", "shelve", "silence", "out_of_service")},
            csrf=csrf_token())

    @server.get("/api/alarms/<int(max=2147483647):alarm_id>")
    def alarm_one(alarm_id: int):
        if (r := refuse_read()) is not None:
            return r
        found = lazy.get().get(alarm_id)
        if found is None:
            return jsonify(error="no such alarm"), 404
        return jsonify(found)

    @server.get("/api/alarms/kpis")
    def alarm_kpis():
        if (r := refuse_read()) is not None:
            return r
        try:
            hours = float(request.args.get("hours", "24"))
        except ValueError:
            hours = 24.0
        # At most a week: the figures are computed in Python over every change in the window, so a
        # 90-day window on a busy site would hold a web thread and its memory (EEMUA reviews are weekly).
        hours = hours if 0 < hours <= KPI_MAX_HOURS else 24.0
        return jsonify(kpis(lazy.get(), hours))

    @server.get("/api/alarms/silences")
    def silences_list():
        if (r := refuse_read()) is not None:
            return r
        return jsonify(silences=lazy.get().silences())

    @server.post("/api/alarms/ack")
    def alarms_ack():
        if (r := gate("acknowledge")) is not None:
            return r
        body = validated(AckBody)
        if not isinstance(body, AckBody):
            return body
        result = lazy.get().acknowledge(body.ids, actor(), body.comment)
        audit("alarm_ack", result, body.comment)
        return jsonify(result)

    @server.post("/api/alarms/shelve")
    def alarms_shelve():
        if (r := gate("shelve")) is not None:
            return r
        body = validated(ShelveBody)
        if not isinstance(body, ShelveBody):
            return body
        if cfg.shelving.reason_required and not body.reason.strip():
            return jsonify(error="invalid request", problems=["reason: a reason is required to shelve"]), 400
        if body.mode == "timed" and body.minutes is None:
            return jsonify(error="invalid request", problems=["minutes: a timed shelve needs minutes"]), 400
        result = lazy.get().shelve(body.ids, actor(), body.reason, body.mode, body.minutes)
        audit("alarm_shelve", result, f"{body.mode} {body.minutes or ''} min: {body.reason}")
        return jsonify(result)

    @server.post("/api/alarms/unshelve")
    def alarms_unshelve():
        if (r := gate("shelve")) is not None:
            return r
        body = validated(ReasonBody)
        if not isinstance(body, ReasonBody):
            return body
        result = lazy.get().unshelve(body.ids, actor(), body.reason)
        audit("alarm_unshelve", result, body.reason)
        return jsonify(result)

    def _service(on: bool):
        if (r := gate("out_of_service")) is not None:
            return r
        body = validated(ReasonBody)
        if not isinstance(body, ReasonBody):
            return body
        if on and not body.reason.strip():
            return jsonify(error="invalid request",
                           problems=["reason: say why the alarm goes out of service"]), 400
        result = lazy.get().out_of_service(body.ids, actor(), on, body.reason)
        audit("alarm_oos" if on else "alarm_in_service", result, body.reason)
        return jsonify(result)

    server.add_url_rule("/api/alarms/out-of-service", "alarms_oos", lambda: _service(True), methods=["POST"])
    server.add_url_rule("/api/alarms/return-to-service", "alarms_in_service", lambda: _service(False),
                        methods=["POST"])

    @server.post("/api/alarms/silences")
    def silences_add():
        if (r := gate("silence")) is not None:
            return r
        body = validated(SilenceBody)
        if not isinstance(body, SilenceBody):
            return body
        sid = lazy.get().add_silence(actor(), body.reason, body.minutes, body.source, body.condition,
                                     body.layer)
        if app_store is not None:
            app_store.audit(current_user.name, "alarm_silence", f"silence:{sid}", request.remote_addr or "",
                            detail=f"{body.source}|{body.condition}|{body.layer} {body.minutes} min: "
                                   f"{body.reason}"[:4000])
        return jsonify(id=sid)

    @server.post("/api/alarms/silences/<int(max=2147483647):silence_id>/cancel")
    def silences_cancel(silence_id: int):
        if (r := gate("silence")) is not None:
            return r
        if not lazy.get().cancel_silence(silence_id, actor()):
            return jsonify(error="no such active silence"), 404
        if app_store is not None:
            app_store.audit(current_user.name, "alarm_silence_cancel", f"silence:{silence_id}",
                            request.remote_addr or "")
        return jsonify(cancelled=silence_id)
