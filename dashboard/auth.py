"""Login, roles and the guard in front of every page, API and Dash callback.

Nothing is served to an anonymous request except the login forms. A wall screen signs in once
with a long-lived device token (`/device/login?token=...`) and keeps a one-year cookie, so it
comes back by itself after a reboot.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import wraps
from html import escape
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, abort, jsonify, redirect, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from config.settings import Settings
from dashboard.store import Store
from spine.tickets import issue_ticket

PUBLIC_PATHS = {"/login", "/device/login", "/healthz"}
HOME_BY_ROLE = {"operator": "/wall/1", "supervisor": "/supervisor", "commander": "/commander",
                "admin": "/supervisor"}


@dataclass
class SessionUser:
    """What flask-login keeps for a signed-in person or wall device."""

    id: str  # "user:<name>" or "device:<name>"
    name: str
    role: str
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.id


def page_kind(path: str) -> str | None:
    """Which permission a page path needs ("wall", "supervisor", "commander"), if it is a page."""
    first = path.strip("/").split("/", 1)[0]
    return first if first in ("wall", "supervisor", "commander") else None


def may_open(settings: Settings, role: str, kind: str) -> bool:
    return kind in settings.roles.get(role, [])


def safe_next(target: str | None, fallback: str) -> str:
    """Only same-site relative paths, so the login form cannot be used as an open redirect."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


_LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in - Incheon control room</title><style>
body{{margin:0;height:100vh;display:flex;align-items:center;justify-content:center;
background:#0b111a;color:#e6edf3;font-family:"Noto Sans KR","DejaVu Sans",sans-serif}}
form{{background:#141c27;padding:32px;border:1px solid #2b3645;border-radius:8px;width:340px}}
h1{{font-size:22px;margin:0 0 20px}} label{{display:block;margin:12px 0 4px;font-size:15px}}
input{{width:100%;box-sizing:border-box;min-height:48px;font-size:18px;padding:8px;
background:#0b111a;color:#e6edf3;border:1px solid #3d4b5e;border-radius:4px}}
button{{margin-top:20px;width:100%;min-height:52px;font-size:18px;background:#2f6feb;color:#fff;
border:0;border-radius:4px;cursor:pointer}} .err{{color:#ff7b72;margin-top:12px}}
</style></head><body><form method="post" action="/login">
<h1>Incheon control room</h1>
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label for="username">User</label><input id="username" name="username" autocomplete="username"
 autofocus required>
<label for="password">Password</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit" id="login-button">Sign in</button>{error}</form></body></html>"""


def api_login_required(fn: Callable[..., Any]) -> Callable[..., Any]:
    """401 JSON for an anonymous request. The app-wide guard already refuses these; routes keep
    their own check so they stay safe if mounted on a server without the guard."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user or not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        return fn(*args, **kwargs)

    return wrapper


class LoginThrottle:
    """Refuses further tries for a user name from one address after repeated failures.

    Kept in memory per web process: enough to make guessing slow; a deployment with several
    web processes behind a balancer gets the limit per process.
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures[key]
        while times and time.monotonic() - times[0] > self.window_s:
            times.popleft()
        return times

    def wait_s(self, name: str, addr: str) -> float:
        times = self._recent((name.lower(), addr))
        if len(times) < self.max_failures:
            return 0.0
        return max(0.0, self.window_s - (time.monotonic() - times[0]))

    def failed(self, name: str, addr: str) -> None:
        self._recent((name.lower(), addr)).append(time.monotonic())

    def succeeded(self, name: str, addr: str) -> None:
        self._failures.pop((name.lower(), addr), None)


def install_auth(server: Flask, store: Store, settings: Settings, secret: str) -> None:
    server.secret_key = secret
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.web.session_hours),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_DURATION=timedelta(days=365),
        SESSION_COOKIE_SECURE=settings.web.secure_cookies,
        REMEMBER_COOKIE_SECURE=settings.web.secure_cookies,
    )
    manager = LoginManager(server)
    throttle = LoginThrottle()

    @server.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        # Content-Security-Policy (with frame-ancestors): dashboard/csp.py, on every response.
        return response

    @manager.user_loader
    def load_user(user_id: str) -> SessionUser | None:
        kind, _, name = user_id.partition(":")
        if kind == "user":
            user = store.get_user(name)
            return SessionUser(user_id, user.username, user.role) if user else None
        if kind == "device":
            # A revoked token logs the screen out at its next request.
            row = store.device_token_by_name(name)
            return SessionUser(user_id, name, row.role) if row and not row.revoked else None
        return None

    def remote() -> str:
        return request.remote_addr or ""

    @server.before_request
    def guard():
        path = request.path
        if path in PUBLIC_PATHS:
            return None
        if not current_user.is_authenticated:
            if path.startswith(("/_dash", "/api", "/assets", "/_reload", "/_favicon")):
                return jsonify(error="login required"), 401
            return redirect(f"/login?next={escape(request.full_path.rstrip('?'))}")
        if path == "/":
            return redirect(HOME_BY_ROLE.get(current_user.role, "/wall/1"))
        kind = page_kind(path)
        if kind and not may_open(settings, current_user.role, kind):
            abort(403, description=f"role {current_user.role} may not open {kind} pages")
        return None

    @server.route("/login", methods=["GET", "POST"])
    def login():
        error = ""
        nxt = request.values.get("next", "")
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            if not sent or not hmac.compare_digest(sent, session.get("csrf", "")):
                abort(400, description="the form expired; reload the page")
            name = request.form.get("username", "").strip()
            wait = throttle.wait_s(name, remote())
            if wait > 0:
                store.audit(name[:64] or "?", "login_throttled", remote_addr=remote())
                minutes = max(1, round(wait / 60))
                error = (f'<div class="err" role="alert">Too many failed sign-ins. Try again in '
                         f'{minutes} min.</div>')
                session["csrf"] = session.get("csrf") or secrets.token_urlsafe(24)
                return _LOGIN_PAGE.format(csrf=session["csrf"], next=escape(nxt), error=error), 429
            user = store.authenticate(name, request.form.get("password", ""))
            if user is not None:
                throttle.succeeded(name, remote())
                session.clear()
                session.permanent = True
                login_user(SessionUser(f"user:{user.username}", user.username, user.role))
                store.audit(user.username, "login", remote_addr=remote())
                return redirect(safe_next(nxt, HOME_BY_ROLE.get(user.role, "/wall/1")))
            throttle.failed(name, remote())
            store.audit(name[:64] or "?", "login_failed", remote_addr=remote())
            error = '<div class="err" role="alert">Wrong user or password.</div>'
        session["csrf"] = session.get("csrf") or secrets.token_urlsafe(24)
        return _LOGIN_PAGE.format(csrf=session["csrf"], next=escape(nxt), error=error)

    @server.route("/device/login")
    def device_login():
        row = store.check_device_token(request.args.get("token", ""))
        if row is None:
            store.audit("?", "device_login_failed", remote_addr=remote())
            abort(401, description="unknown or revoked device token")
        session.clear()
        login_user(SessionUser(f"device:{row.name}", row.name, row.role), remember=True)
        store.audit(row.name, "device_login", remote_addr=remote())
        return redirect(safe_next(request.args.get("next"), HOME_BY_ROLE.get(row.role, "/wall/1")))

    @server.route("/logout")
    def logout():
        if current_user.is_authenticated:
            store.audit(current_user.name, "logout", remote_addr=remote())
        logout_user()
        session.clear()
        return redirect("/login")

    @server.route("/api/live/ticket")
    def live_ticket():
        gw = settings.gateway
        return jsonify(ticket=issue_ticket(secret, current_user.name, current_user.role),
                       url=gw.public_url, port=gw.port, user=current_user.name,
                       role=current_user.role)

    @server.route("/healthz")
    def healthz():
        return "ok\n"
