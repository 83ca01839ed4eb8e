"""JSON routes for incidents: list, one incident with its SOP and timeline, actions, shares (CAP),
nearest cameras, after-action report. Documented in docs/incidents.md.

    install_incident_routes(server, settings, app_store)     (dashboard/app_factory.py)

Login required (401); the rights are config/roles.yaml `incident_actions` (403). A POST carries the
session's form token (X-CSRF-Token header or a `csrf` field) like every form of the app. Bodies are
JSON or form fields, validated by pydantic (400 with one line per problem), unknown keys refused.
Every action writes the incident timeline (who, when, from where) and one row of the app's audit
log. The web never publishes: the incident service publishes the committed change (outbox).
"""

from __future__ import annotations

import logging
import re
import threading
from typing import TYPE_CHECKING, Annotated, Any, Literal

from flask import Flask, Response, jsonify, request
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.settings import Settings
from dashboard.auth import csrf_ok, csrf_token
from dashboard.store import Store
from dashboard.web_counters import EXTENSION, RefusalSampler
from incidents import cap, report
from incidents.cameras import nearest_cameras
from incidents.config import PRIORITIES, IncidentActions, load_incident_actions
from incidents.db import STATE_NAMES, STATES, Actor, IncidentStore, NotFound, Refused

if TYPE_CHECKING:
    from dashboard.video import StreamSlots

log = logging.getLogger(__name__)
Text500 = Annotated[str, Field(max_length=500)]
Code = Annotated[str, Field(min_length=1, max_length=48, pattern=r"^[a-z0-9][a-z0-9_]*$")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
INT = "int(max=2147483647)"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateBody(_Body):
    type: Code
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    title: Annotated[str, Field(max_length=200)] = ""
    description: Annotated[str, Field(max_length=2000)] = ""
    priority: Literal["low", "medium", "high", "critical"] | None = None
    parent_id: Id | None = None


class FromAlarmBody(_Body):
    alarm_id: Id
    type: Code | None = None


class StateBody(_Body):
    state: Literal["new", "in_progress", "on_hold", "resolved", "closed"]
    reason: Text500 = ""
    hold_minutes: float | None = Field(None, gt=0, le=7 * 24 * 60)
    force: bool = False


class AssignBody(_Body):
    owner: Annotated[str, Field(max_length=80)]


class PriorityBody(_Body):
    priority: Literal["low", "medium", "high", "critical"]
    reason: Text500 = ""


class CommentBody(_Body):
    text: Annotated[str, Field(min_length=1, max_length=2000)]


class EmptyBody(_Body):
    """An action with nothing to say (request the drone); unknown keys are still refused."""


class StepBody(_Body):
    verb: Literal["done", "skipped"] = "done"
    answer: Code | None = None
    note: Text500 = ""


class AlarmBody(_Body):
    alarm_id: Id


class NearestBody(_Body):
    count: int | None = Field(None, ge=1, le=32)


class CameraBody(_Body):
    camera_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")]
    on: bool = True


class MergeBody(_Body):
    into: Id
    reason: Text500 = ""


class ShareBody(_Body):
    agency: Literal["112", "119", "public"]
    msg_type: Literal["Alert", "Update", "Cancel"] | None = None
    send: bool = True
    note: Text500 = ""


class WallBody(_Body):
    """Send to (on) or clear from (on: false) wall screen `wall` (a config/walls.yaml number)."""

    wall: Annotated[int, Field(strict=True, ge=1, le=9999)]
    on: Annotated[bool, Field(strict=True)] = True


def _problems(exc: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()]


def _body() -> dict[str, Any] | None:
    if request.is_json:
        data = request.get_json(silent=True)
        return {k: v for k, v in data.items() if k != "csrf"} if isinstance(data, dict) else None
    return {k: v for k, v in request.form.items() if k != "csrf"}


class _Lazy:
    """The incident store, made (and migrated) at first use: the web starts even while SQL is slow."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._store: IncidentStore | None = None
        self._lock = threading.Lock()

    def get(self) -> IncidentStore:
        with self._lock:
            if self._store is None:
                from incidents.service import make_store

                store = make_store(self.url)
                store.migrate()
                self._store = store
            return self._store


def install_incident_routes(
    server: Flask, settings: Settings, app_store: Store | None = None, actions: IncidentActions | None = None,
    slots: StreamSlots | None = None,
) -> None:
    """`slots`: the video routes' StreamSlots (dashboard/video.py), so an agency link's camera
    streams count against the same per-user and total caps; None: a counter of their own."""
    allowed = actions or load_incident_actions()
    lazy = _Lazy(settings.database.resolved_url())

    def may(action: str) -> bool:
        return current_user.is_authenticated and allowed.allows(current_user.role, action)

    def refuse(action: str = "view") -> Any:
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        if not may(action):
            return jsonify(
                error=f"role {current_user.role} may not {action.replace('_', ' ')} incidents"
            ), 403
        return None

    def gate(action: str) -> Any:
        """Login, then the form token, then the role (the order that tells a page what to fix)."""
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        sent = request.headers.get("X-CSRF-Token") or request.form.get("csrf")
        if sent is None and request.is_json:
            data = request.get_json(silent=True)
            sent = data.get("csrf") if isinstance(data, dict) and isinstance(data.get("csrf"), str) else None
        if not csrf_ok(sent):
            return jsonify(error="the form token is missing or expired; reload the page"), 400
        return refuse(action)

    def actor() -> Actor:
        name = (
            current_user.name if current_user.kind == "user" else f"{current_user.kind}:{current_user.name}"
        )
        return Actor(name, request.remote_addr or "")

    def audit(action: str, incident_id: int | str, detail: str = "") -> None:
        if app_store is not None:
            app_store.audit(
                current_user.name,
                action[:32],
                f"incident:{incident_id}"[:128],
                request.remote_addr or "",
                detail=detail[:4000],
            )

    def validated(model: type[_Body]) -> Any:
        data = _body()
        if data is None:
            return jsonify(error="the body must be a JSON object"), 400
        try:
            return model(**data)
        except ValidationError as exc:
            return jsonify(error="invalid request", problems=_problems(exc)), 400
        except TypeError:
            return jsonify(error="invalid request"), 400

    def act(
        action: str, model: type[_Body], fn: Any, audit_name: str, target: Any = "", forbid: Any = None
    ) -> Any:
        """Gate, validate, run; a refusal by the rules is 409 (404 for what does not exist).
        `forbid(body)` names a further right the body needs (403), e.g. force-resolving."""
        if (r := gate(action)) is not None:
            return r
        body = validated(model)
        if not isinstance(body, model):
            return body
        if forbid is not None and (why := forbid(body)):
            return jsonify(error=why), 403
        try:
            result = fn(body)
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        except Refused as exc:
            return jsonify(error=str(exc)), 409
        audit(
            audit_name,
            result.get("id", target) if isinstance(result, dict) and not target else target,
            body.model_dump_json()[:4000],
        )
        return jsonify(result)

    # -- reads ------------------------------------------------------------------------------------
    @server.get("/api/incidents")
    def incidents_list():
        if (r := refuse()) is not None:
            return r
        raw = request.args.get("state", "")[:200]
        states = [s for s in raw.split(",") if s in STATES] or None
        try:
            limit = max(1, min(int(request.args.get("limit", "500")), 500))
        except ValueError:
            limit = 500
        return jsonify(incidents=lazy.get().list(states, limit))

    @server.get("/api/incidents/meta")
    def incidents_meta():
        if (r := refuse()) is not None:
            return r
        st = lazy.get()
        return jsonify(
            types={
                k: {"label": t.label, "priority": t.priority, "sop": t.sop} for k, t in st.cfg.types.items()
            },
            states={s: STATE_NAMES[s] for s in STATES},
            priorities=list(PRIORITIES),
            sops={k: s.title for k, s in st.sops.items()},
            on_hold_max_minutes=st.cfg.on_hold_max_minutes,
            walls={str(n): w.title for n, w in sorted(settings.walls.items())},
            may={a: may(a) for a in ("create", "work", "command", "force_resolve", "share", "report")},
            csrf=csrf_token(),
        )

    @server.get(f"/api/incidents/<{INT}:incident_id>")
    def incident_one(incident_id: int):
        if (r := refuse()) is not None:
            return r
        try:
            return jsonify(lazy.get().get(incident_id))
        except NotFound as exc:
            return jsonify(error=str(exc)), 404

    @server.get("/api/incidents/nearest-cameras")
    def nearest_preview():
        if (r := refuse()) is not None:
            return r
        try:
            lat, lon = float(request.args["lat"]), float(request.args["lon"])
            count = int(request.args.get("count", "0")) or None
        except (KeyError, ValueError):
            return jsonify(error="lat and lon are required numbers"), 400
        if not (-90 <= lat <= 90 and -180 <= lon <= 180) or (count is not None and not 1 <= count <= 32):
            return jsonify(error="lat, lon or count out of range"), 400
        st = lazy.get()
        return jsonify(cameras=[c.doc() for c in nearest_cameras(lat, lon, st.cameras, st.cfg, count=count)])

    def _xml(text: str, name: str) -> Response:
        return Response(
            text,
            mimetype="application/xml",
            headers={
                "Content-Disposition": f'attachment; filename="{name}"',
                "X-Content-Type-Options": "nosniff",
            },
        )

    @server.get(f"/api/incidents/<{INT}:incident_id>/cap")
    def cap_preview(incident_id: int):
        """The message as it would be sent now, not stored (?agency=112|119|public, type=Alert|...)."""
        if (r := refuse("share")) is not None:
            return r
        agency = request.args.get("agency", "112")
        kind = request.args.get("type") or None
        if agency not in ("112", "119", "public") or kind not in (None, "Alert", "Update", "Cancel"):
            return jsonify(error="agency is 112, 119 or public; type is Alert, Update or Cancel"), 400
        try:
            msg = lazy.get().cap_message(incident_id, kind, agency)  # type: ignore[arg-type]
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        except Refused as exc:
            return jsonify(error=str(exc)), 409
        return _xml(msg.xml, f"{msg.identifier}.xml")

    @server.get(f"/api/incidents/<{INT}:incident_id>/shares/<{INT}:share_id>.xml")
    def share_xml(incident_id: int, share_id: int):
        if (r := refuse("share")) is not None:
            return r
        found = [s for s in lazy.get().shares(incident_id, with_xml=True) if s["id"] == share_id]
        if not found:
            return jsonify(error="no such share"), 404
        audit("incident_share_read", incident_id, f"share {share_id}")
        return _xml(found[0]["xml"], f"{found[0]['identifier']}.xml")

    @server.get(f"/api/incidents/<{INT}:incident_id>/report.csv")
    def report_csv(incident_id: int):
        if (r := refuse("report")) is not None:
            return r
        try:
            data = report.collect(lazy.get(), incident_id)
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        audit("incident_report", incident_id, "csv")
        return Response(
            report.to_csv(data),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="incident-{incident_id}.csv"'},
        )

    @server.get(f"/incidents/<{INT}:incident_id>/report")
    def report_page(incident_id: int):
        """The printable after-action page (plain HTML, no script: it prints as it is)."""
        if (r := refuse("report")) is not None:
            return r
        try:
            data = report.collect(lazy.get(), incident_id)
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        audit("incident_report", incident_id, "html")
        return Response(report.to_html(data), mimetype="text/html")

    # -- actions -------------------------------------------------------------------------------------
    @server.post("/api/incidents")
    def incident_create():
        return act(
            "create",
            CreateBody,
            lambda b: lazy.get().create(
                b.type, b.lat, b.lon, actor(), b.title, b.description, b.priority, b.parent_id
            ),
            "incident_create",
        )

    @server.post("/api/incidents/from-alarm")
    def incident_from_alarm():
        return act(
            "create",
            FromAlarmBody,
            lambda b: lazy.get().create_from_alarm(b.alarm_id, actor(), b.type),
            "incident_from_alarm",
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/state")
    def incident_state(incident_id: int):
        return act(
            "work",
            StateBody,
            lambda b: lazy.get().set_state(incident_id, b.state, actor(), b.reason, b.hold_minutes, b.force),
            "incident_state",
            incident_id,
            forbid=lambda b: (
                b.force
                and not may("force_resolve")
                and f"role {current_user.role} may not force-resolve incidents"
            ),
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/assign")
    def incident_assign(incident_id: int):
        return act(
            "command",
            AssignBody,
            lambda b: lazy.get().assign(incident_id, b.owner, actor()),
            "incident_assign",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/priority")
    def incident_priority(incident_id: int):
        return act(
            "command",
            PriorityBody,
            lambda b: lazy.get().set_priority(incident_id, b.priority, actor(), b.reason),
            "incident_priority",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/comment")
    def incident_comment(incident_id: int):
        return act(
            "work",
            CommentBody,
            lambda b: lazy.get().comment(incident_id, b.text, actor()),
            "incident_comment",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/drone")
    def incident_drone(incident_id: int):
        return act(
            "work",
            EmptyBody,
            lambda b: lazy.get().request_drone(incident_id, actor()),
            "incident_drone",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/steps/<string(maxlength=48):step_id>")
    def incident_step(incident_id: int, step_id: str):
        return act(
            "work",
            StepBody,
            lambda b: lazy.get().step(incident_id, step_id, b.verb, actor(), b.answer, b.note),
            "incident_step",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/alarms")
    def incident_link_alarm(incident_id: int):
        return act(
            "work",
            AlarmBody,
            lambda b: lazy.get().link_alarm(incident_id, b.alarm_id, actor()),
            "incident_link_alarm",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/cameras/nearest")
    def incident_nearest(incident_id: int):
        return act(
            "work",
            NearestBody,
            lambda b: lazy.get().nearest(incident_id, actor(), b.count),
            "incident_cameras",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/cameras")
    def incident_camera(incident_id: int):
        return act(
            "work",
            CameraBody,
            lambda b: lazy.get().set_camera(incident_id, b.camera_id, actor(), b.on),
            "incident_camera",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/merge")
    def incident_merge(incident_id: int):
        return act(
            "command",
            MergeBody,
            lambda b: lazy.get().merge(incident_id, b.into, actor(), b.reason),
            "incident_merge",
            incident_id,
        )

    @server.post(f"/api/incidents/<{INT}:incident_id>/shares")
    def incident_share(incident_id: int):
        return act(
            "share",
            ShareBody,
            lambda b: lazy.get().share(incident_id, b.agency, actor(), b.msg_type, b.send, b.note),
            "incident_share",
            incident_id,
        )

    class _Empty(_Body):
        pass

    @server.post(f"/api/incidents/<{INT}:incident_id>/shares/<{INT}:share_id>/send")
    def incident_share_send(incident_id: int, share_id: int):
        return act(
            "share",
            _Empty,
            lambda b: lazy.get().send_share(incident_id, share_id, actor()),
            "incident_share_send",
            incident_id,
        )

    def wall_action(incident_id: int, b: WallBody) -> dict:
        from incidents import walls

        if b.wall not in settings.walls:
            raise NotFound(f"no wall screen {b.wall} in config/walls.yaml")
        fn = walls.send if b.on else walls.clear
        return fn(lazy.get(), incident_id, b.wall, actor())

    @server.post(f"/api/incidents/<{INT}:incident_id>/wall")
    def incident_wall(incident_id: int):
        return act("command", WallBody, lambda b: wall_action(incident_id, b), "incident_wall", incident_id)

    @server.get("/api/walls/<int(max=9999):wall>/pane")
    def wall_pane(wall: int):
        """The wall page polls this every 2 s (docs/incidents.md "Wall panes")."""
        from incidents import walls

        if (r := refuse()) is not None:
            return r
        if wall not in settings.walls:
            return jsonify(error=f"no wall screen {wall}"), 404
        return jsonify(wall=wall, pane=walls.pane(lazy.get(), wall))

    _ = cap  # the share routes build messages through the store (incidents/cap.py)
    _install_agency_routes(server, settings, lazy, app_store, gate, actor, audit, slots, allowed)


class LinkBody(_Body):
    agency: Literal["112", "119"]
    minutes: int | None = Field(None, ge=1, le=24 * 60)


KEY_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")  # an agency link key (incidents/agency.py new_key)


def _install_agency_routes(server: Flask, settings: Settings, lazy: _Lazy, app_store: Store | None,
                           gate: Any, actor: Any, audit: Any, slots: StreamSlots | None = None,
                           actions: IncidentActions | None = None) -> None:
    """Agency links (incidents/agency.py): made with the `share` right, opened only by a user of the
    matching agency role, for that incident's page and cameras only, until the link expires."""
    import redis as redis_lib
    from flask import current_app

    from dashboard.i18n import _
    from dashboard.video import (
        MAX_STREAM_S,
        NO_FRAME_END_S,
        SESSION_CHECK_S,
        StreamLimits,
        StreamSlots,
        _SlotStream,
        session_check,
        stream_refused,
    )
    from incidents import agency as ag
    from incidents.agency_page import cameras_with_positions, page_html
    from incidents.agency_stream import CLOSED_STATES, agency_frames
    from vision.config import load_vision_config

    view = ag.load_agency_view()
    actions = actions or load_incident_actions()
    refusals: RefusalSampler = server.extensions.get(EXTENSION) or RefusalSampler(
        app_store.audit if app_store is not None else (lambda *a: None))
    configured = {c.id: c for c in load_vision_config().cameras}
    client: list[redis_lib.Redis] = []
    stream_slots: StreamSlots = slots if slots is not None else StreamSlots(StreamLimits())

    def r() -> redis_lib.Redis:
        if not client:
            # A read timeout: a Redis that stops answering must not hold a stream's thread forever.
            client.append(redis_lib.Redis.from_url(settings.redis.url or "redis://127.0.0.1:6379/0",
                                                   socket_timeout=5, socket_connect_timeout=3))
        return client[0]

    def plain(text: str, status: int) -> Any:
        return text, status, {"Content-Type": "text/plain; charset=utf-8"}

    def refused_audit(target: str, reason: str) -> None:
        """An `agency_refused` row, sampled per (principal, reason, /agency/) per minute
        (dashboard/web_counters.py): a client repeating a refused request cannot fill the table."""
        if app_store is not None:
            principal = getattr(current_user, "principal", f"user:{current_user.name}")
            refusals.refused(current_user.name, principal, "agency_refused", reason, "/agency/", target,
                             request.remote_addr or "")

    def gate_read(action: str) -> Any:
        """A read: login and the role, no form token."""
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        if not actions.allows(current_user.role, action):
            return jsonify(error=f"role {current_user.role} may not {action} incidents"), 403
        return None

    def refuse_closed(link: ag.Link, inc: dict) -> Any:
        """A link ends with its incident: refused (410, audited) once it is resolved or closed."""
        if inc.get("state") not in CLOSED_STATES:
            return None
        refused_audit(f"incident:{link.incident_id}", f"incident {inc.get('state')}")
        return plain(_("This link is not valid or has expired."), 410)  # the existing text: no new msgid

    def secret() -> str | bytes:
        return current_app.secret_key or b""

    @server.post(f"/api/incidents/<{INT}:incident_id>/agency-link")
    def agency_link(incident_id: int):
        if (g := gate("share")) is not None:
            return g
        data = _body()
        try:
            body = LinkBody(**(data or {}))
        except (ValidationError, TypeError) as exc:
            problems = _problems(exc) if isinstance(exc, ValidationError) else []
            return jsonify(error="invalid request", problems=problems), 400
        minutes = body.minutes or view.default_minutes
        # The token names the link's row (its key), not its maker: who made it stays in SQL.
        token, link = ag.make_link(secret(), incident_id, body.agency, minutes, ag.new_key())
        try:
            lazy.get().agency_link(incident_id, body.agency, link.expires_ms, actor(), key=link.key)
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        except Refused as exc:
            return jsonify(error=str(exc)), 409
        audit("incident_agency_link", incident_id,
              f"agency={body.agency} until={link.expires_ms} key={link.key}")
        return jsonify(url=f"/agency/{token}", agency=body.agency, expires_ts=link.expires_ms, key=link.key)

    @server.get(f"/api/incidents/<{INT}:incident_id>/agency-links")
    def agency_links(incident_id: int):
        """The incident's links (newest first) with their status; never their URLs (the token is the
        key to the cameras: it is shown once, to whoever made it)."""
        if (g := gate_read("share")) is not None:
            return g
        try:
            links = lazy.get().agency_links(incident_id)
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        return jsonify(links=links)

    @server.post(f"/api/incidents/<{INT}:incident_id>/agency-links/<string(maxlength=32):key>/revoke")
    def agency_link_revoke(incident_id: int, key: str):
        """Revoke a link (the `share` right, the form token): refused at once, its streams end within
        the session re-check interval (dashboard/video.py SESSION_CHECK_S). Audited."""
        if (g := gate("share")) is not None:
            return g
        if not KEY_RE.fullmatch(key):
            return jsonify(error="no such agency link"), 404
        try:
            lazy.get().revoke_agency_link(incident_id, key, actor())
        except NotFound as exc:
            return jsonify(error=str(exc)), 404
        except Refused as exc:
            return jsonify(error=str(exc)), 409
        audit("incident_agency_revoke", incident_id, f"key={key}")
        return jsonify(id=incident_id, links=lazy.get().agency_links(incident_id))

    def opened(token: str) -> tuple[Any, ag.Link | None, ag.AgencyRole | None]:
        """(refusal, link, role): login, a valid unexpired link, a role of that agency. Audited."""
        if not current_user.is_authenticated:
            return (jsonify(error="login required"), 401), None, None
        role = view.roles.get(current_user.role)
        try:
            link = ag.read_link(secret(), token)
        except ag.LinkRefused as exc:
            refused_audit("agency-link", str(exc))
            return (_("This link is not valid or has expired."), 410 if str(exc) == "expired" else 404,
                    {"Content-Type": "text/plain; charset=utf-8"}), None, None
        # The row: a revoked link is refused at once (410); a signed token without a row (made
        # before links were stored, or its row gone) is not honoured (404). Fail closed on errors.
        try:
            row = lazy.get().agency_link_row(link.key)
        except Exception:
            log.exception("agency link %s: its row cannot be read", link.key)
            return plain(_("This link is not valid or has expired."), 503), None, None
        if row is None or row["incident_id"] != link.incident_id or row["agency"] != link.agency:
            refused_audit(f"incident:{link.incident_id}", "unknown link")
            return plain(_("This link is not valid or has expired."), 404), None, None
        if row["revoked_ts"] is not None:
            refused_audit(f"incident:{link.incident_id}", "revoked")
            return plain(_("This link is not valid or has expired."), 410), None, None
        if role is None or role.agency != link.agency:
            refused_audit(f"incident:{link.incident_id}", f"role {current_user.role}")
            return (_("This link is for another agency."), 403,
                    {"Content-Type": "text/plain; charset=utf-8"}), None, None
        return None, link, role

    @server.get("/agency/<string(maxlength=600):token>")
    def agency_page(token: str):
        refusal, link, role = opened(token)
        if refusal is not None:
            return refusal
        assert link is not None and role is not None
        try:
            inc = lazy.get().get(link.incident_id)
        except NotFound:
            return (_("This link is not valid or has expired."), 404,
                    {"Content-Type": "text/plain; charset=utf-8"})
        if (closed := refuse_closed(link, inc)) is not None:
            return closed
        if app_store is not None:
            app_store.audit(current_user.name, "agency_view", f"incident:{link.incident_id}",
                            request.remote_addr or "", detail=f"agency={link.agency}")
        from datetime import datetime

        from dashboard.i18n import KST

        until = datetime.fromtimestamp(link.expires_ms / 1000, KST).strftime("%Y-%m-%d %H:%M")
        texts = {"title": _("Shared incident"), "read_only": _("Read only"), "until": _("Link valid until"),
                 "blurred": _("Persons are obscured")}
        html = page_html(inc, cameras_with_positions(inc, configured), token, link.agency, until,
                         role.faces, texts)
        resp = Response(html, mimetype="text/html")
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Referrer-Policy"] = "no-referrer"  # the link is the key: never in a Referer
        return resp

    @server.get("/agency/<string(maxlength=600):token>/video/<string(maxlength=64):camera_id>.mjpg")
    def agency_video(token: str, camera_id: str):
        refusal, link, role = opened(token)
        if refusal is not None:
            return refusal
        assert link is not None and role is not None
        try:
            inc = lazy.get().get(link.incident_id)
        except NotFound:
            return jsonify(error="not found"), 404
        if (closed := refuse_closed(link, inc)) is not None:
            return closed
        if camera_id not in {c.get("camera_id") for c in inc.get("cameras") or []}:
            refused_audit(camera_id, f"not a camera of incident {link.incident_id}")
            return jsonify(error="not a camera of this incident"), 403
        principal = getattr(current_user, "principal", f"user:{current_user.name}")
        refused = stream_slots.acquire(principal)
        if refused is not None:  # the same caps, and answers, as dashboard/video.py's streams
            return stream_refused(stream_slots, refused)
        try:
            if app_store is not None:
                app_store.audit(current_user.name, "view_camera", camera_id, request.remote_addr or "",
                                detail=f"agency link incident {link.incident_id}")
                session_ok = session_check(app_store, current_user.sid)
            else:
                def session_ok() -> bool:
                    return False  # no session store to ask: fail closed after the first check
            incident_id = link.incident_id
            key = link.key

            def still_allowed() -> bool:
                """The viewer's session stands and the link is not revoked: asked every
                SESSION_CHECK_S, so a revoked link's open streams end within it."""
                if not session_ok():
                    return False
                try:
                    row = lazy.get().agency_link_row(key)
                except Exception:  # unreadable: the stream ends (fail closed)
                    return False
                return row is not None and row["revoked_ts"] is None

            def still_shown() -> bool:
                """The incident is still open and `camera_id` still one of its cameras."""
                try:
                    now_inc = lazy.get().get(incident_id, timeline=1)
                except Exception:  # gone or unreadable: the stream ends (fail closed)
                    return False
                return (now_inc.get("state") not in CLOSED_STATES
                        and camera_id in {c.get("camera_id") for c in now_inc.get("cameras") or []})

            frames = agency_frames(r(), camera_id, role.faces, link.expires_ms, still_allowed, still_shown,
                                   max_s=MAX_STREAM_S, no_frame_s=NO_FRAME_END_S,
                                   check_every_s=SESSION_CHECK_S)
            body = _SlotStream(frames, stream_slots, principal)
        except BaseException:
            stream_slots.release(principal)
            raise
        resp = Response(body, mimetype="multipart/x-mixed-replace; boundary=frame")
        resp.headers["X-Accel-Buffering"] = "no"
        resp.headers["Cache-Control"] = "no-store"
        return resp
