"""Login, roles and the guard in front of every page, API and Dash callback.

Nothing is served to an anonymous request except the login forms. A wall screen signs in once
with a long-lived device token (`/device/login?token=...`) and keeps a one-year cookie, so it
comes back by itself after a reboot.

Every sign-in is a row in the store's `sessions` table and the cookie carries only its random
id; each request looks the session up once (flask-login caches it for the request), so a session
ended by logout, a password change, a disabled user or a revoked wall token is refused at its
next request, whoever still holds a copy of the cookie. Logout is a POST with the form token:
a link or an image on another page cannot sign a control room screen out.
Failed sign-ins are throttled per name and address (/login) and per address (/device/login), and
their audit rows are bounded per address (dashboard/audit_limit.py): a script cannot flood the log.
Which pages a role may open is declared by the pages themselves (dashboard/pages.py).
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
from urllib.parse import urlencode, urlsplit

from dash import dcc, html
from flask import Flask, abort, g, has_request_context, jsonify, redirect, request, session
from flask_login import LoginManager, current_user, login_user, logout_user

from config.settings import Settings
from dashboard import pages
from dashboard.audit_limit import AuditSampler
from dashboard.i18n import LANG_NAMES, LANGS, _, current_lang, in_lang, valid_lang
from dashboard.store import Store
from dashboard.web_counters import COUNTERS, EXTENSION, RefusalSampler, path_prefix
from spine.tickets import issue_ticket

PUBLIC_PATHS = {"/login", "/device/login", "/healthz", "/logout", "/lang"}
# Dash serves its index page for "/" and any other path: these are the page requests.
PAGE_ENDPOINTS = {"/", "/<path:path>"}
# What a role without pages (agency_view roles) may reach: its shared incidents and the page assets.
NO_PAGE_ROLE_PATHS = ("/agency/", "/assets/", "/_favicon")
API_PREFIXES = ("/_dash", "/api", "/assets", "/_reload", "/_favicon", "/video")
DEVICE_TOKEN_KEY = "\x00device-token"  # the device throttle's one "name": per address only; no user has it
HOME_BY_ROLE = {"operator": "/wall/1", "supervisor": "/supervisor", "commander": "/commander",
                "admin": "/supervisor"}


@dataclass
class SessionUser:
    """What flask-login knows of a signed-in person or wall device, loaded from its session row."""

    id: str  # the server-side session id: all the cookie carries
    name: str
    role: str
    kind: str = "user"  # "user" | "device"
    is_authenticated: bool = True
    is_active: bool = True
    is_anonymous: bool = False

    def get_id(self) -> str:
        return self.id

    @property
    def sid(self) -> str:
        return self.id

    @property
    def principal(self) -> str:
        """One key per person or screen, whatever session it uses (limits are per principal)."""
        return f"{self.kind}:{self.name}"


def csrf_token() -> str:
    """The form token of this browser session (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(sent: str | None) -> bool:
    expected = session.get("csrf")
    return bool(sent) and isinstance(expected, str) and hmac.compare_digest(sent, expected)


def sign_out_form(class_name: str = "cc-link") -> html.Form:
    """A sign-out button: a POST to /logout carrying the form token (in the button's value)."""
    token = csrf_token() if has_request_context() else ""
    # Looks like the link it replaced unless the page styles it as a touch target (cc-touch).
    look = {} if "cc-touch" in class_name else {"background": "none", "border": "0", "padding": "0",
                                                  "color": "inherit", "font": "inherit",
                                                  "textDecoration": "underline", "cursor": "pointer"}
    return html.Form(html.Button(_("Sign out"), type="submit", name="csrf", value=token,
                                 className=class_name, id="cc-sign-out", style=look),
                     action="/logout", method="POST", className="cc-sign-out",
                     style={"display": "inline", "margin": 0})


def lang_form(class_name: str = "cc-link") -> html.Form:
    """The language switch: one button per other language, a POST to /lang with the form token;
    the choice is kept in SQL for the user (dashboard/i18n.py) and the page reloads in it."""
    token = csrf_token() if has_request_context() else ""
    here = (g.get("cc_page_path") if has_request_context() else None) or "/"
    now = current_lang()
    look = {} if "cc-touch" in class_name else {"background": "none", "border": "0", "padding": "0",
                                                  "color": "inherit", "font": "inherit",
                                                  "textDecoration": "underline", "cursor": "pointer"}
    buttons = [html.Button(LANG_NAMES[lang], type="submit", name="lang", value=lang, lang=lang, style=look,
                           className=f"{class_name} cc-lang-button", id=f"cc-lang-{lang}")
               for lang in LANGS if lang != now]
    # dcc.Input: Dash's html package has no <input>; a hidden one is sent with the form as usual.
    return html.Form([dcc.Input(type="hidden", name="csrf", value=token, id="cc-lang-csrf"),
                      dcc.Input(type="hidden", name="next", value=here, id="cc-lang-next"), *buttons],
                     action="/lang", method="POST", className="cc-lang-form",
                     title=_("Interface language"), style={"display": "inline", "margin": 0})


def safe_next(target: str | None, fallback: str) -> str:
    """Only same-site relative paths, so the login form cannot be used as an open redirect.

    A backslash is refused anywhere: browsers read `/\\evil.example` as `//evil.example` (another
    host). So is any control character (C0, DEL, C1): browsers drop tab and newline from a URL, so
    `/<tab>/evil.example` becomes `//evil.example`, and the rest has no place in a path of ours."""
    if not target:
        return fallback
    if "\\" in target or any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in target):
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


_LOGIN_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{t_title}</title><style>
body{{margin:0;height:100vh;display:flex;align-items:center;justify-content:center;
background:#0b111a;color:#e6edf3;font-family:"Noto Sans KR","DejaVu Sans",sans-serif}}
form{{background:#141c27;padding:32px;border:1px solid #2b3645;border-radius:8px;width:340px}}
h1{{font-size:22px;margin:0 0 20px}} label{{display:block;margin:12px 0 4px;font-size:15px}}
input{{width:100%;box-sizing:border-box;min-height:48px;font-size:18px;padding:8px;
background:#0b111a;color:#e6edf3;border:1px solid #3d4b5e;border-radius:4px}}
button{{margin-top:20px;width:100%;min-height:52px;font-size:18px;background:#2f6feb;color:#fff;
border:0;border-radius:4px;cursor:pointer}} .err{{color:#ff7b72;margin-top:12px}}
.lang{{background:none;border:0;margin:0;width:auto;min-height:48px;color:#e6edf3;text-decoration:underline;
font-size:16px}} .langs{{position:fixed;top:12px;right:16px;background:none;border:0;padding:0;width:auto}}
</style></head><body><form method="post" action="/login">
<h1>{t_heading}</h1>
<input type="hidden" name="csrf" value="{csrf}"><input type="hidden" name="next" value="{next}">
<label for="username">{t_user}</label><input id="username" name="username" autocomplete="username"
 autofocus required>
<label for="password">{t_password}</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit" id="login-button">{t_sign_in}</button>{error}</form>
<form method="post" action="/lang" class="langs"><input type="hidden" name="csrf" value="{csrf}">
<input type="hidden" name="next" value="/login?next={next}">
<button type="submit" class="lang" name="lang" value="{other}" lang="{other}"
 id="cc-lang-{other}">{other_name}</button>
</form></body></html>"""

# GET /logout (an old bookmark, a link) only asks; signing out takes the POST this form sends.
_LOGOUT_PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<title>{t_title}</title></head><body>
<form method="post" action="/logout"><input type="hidden" name="csrf" value="{csrf}">
<button type="submit" id="logout-button">{t_sign_out}</button></form></body></html>"""


def _anon_lang() -> str:
    """Before sign-in: the language this browser chose (session), else Korean."""
    return valid_lang(session.get("lang")) or LANGS[0]


def login_page(nxt: str, error: str = "") -> str:
    lang = _anon_lang()
    other = next(x for x in LANGS if x != lang)
    with in_lang(lang):
        return _LOGIN_PAGE.format(
            lang=lang, csrf=csrf_token(), next=escape(nxt), error=error, other=other,
            other_name=LANG_NAMES[other], t_title=escape(_("Sign in - Incheon control room")),
            t_heading=escape(_("Incheon control room")), t_user=escape(_("User")),
            t_password=escape(_("Password")), t_sign_in=escape(_("Sign in")))


def logout_page() -> str:
    lang = _anon_lang()
    with in_lang(lang):
        return _LOGOUT_PAGE.format(lang=lang, csrf=csrf_token(),
                                   t_title=escape(_("Sign out - Incheon control room")),
                                   t_sign_out=escape(_("Sign out")))


def _login_error(text: str) -> str:
    """An error line of the login page; `text` is already translated."""
    return f'<div class="err" role="alert">{escape(text)}</div>'



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

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys  # made-up names from many addresses cannot grow memory unbounded
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        times = self._failures[key]
        while times and time.monotonic() - times[0] > self.window_s:
            times.popleft()
        return times

    def wait_s(self, name: str, addr: str) -> float:
        key = (name.lower()[:64], addr)
        if key not in self._failures:
            return 0.0  # a lookup must not add a key
        times = self._recent(key)
        if len(times) < self.max_failures:
            return 0.0
        return max(0.0, self.window_s - (time.monotonic() - times[0]))

    def failed(self, name: str, addr: str) -> None:
        if len(self._failures) >= self.max_keys:
            self._forget_old()
        self._recent((name.lower()[:64], addr)).append(time.monotonic())

    def _forget_old(self) -> None:
        """Drop keys whose failures left the window; if still full, the least recent half."""
        now = time.monotonic()
        for key in [k for k, times in self._failures.items() if not times or now - times[-1] > self.window_s]:
            del self._failures[key]
        if len(self._failures) >= self.max_keys:
            by_age = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in by_age[: len(by_age) // 2]:
                del self._failures[key]

    def succeeded(self, name: str, addr: str) -> None:
        self._failures.pop((name.lower()[:64], addr), None)


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
    # Wall tokens are long random strings, so a legitimate screen fails rarely; an address that
    # fails 10 times in 5 minutes is guessing, and waits (a screen behind the same NAT waits too).
    device_throttle = LoginThrottle(max_failures=10, window_s=300.0)
    # Rows anyone can cause without signing in: the first few per address and window are
    # written, the rest counted into one summary row (dashboard/audit_limit.py).
    unsigned_audit = AuditSampler(store.audit)
    # Refusals of signed-in principals: the first per (principal, reason, path prefix) and minute
    # is a row, the rest counted (dashboard/web_counters.py); the agency routes share this one.
    refusals = server.extensions[EXTENSION] = RefusalSampler(store.audit)

    @server.after_request
    def security_headers(response):
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        # Content-Security-Policy (with frame-ancestors): dashboard/csp.py, on every response.
        return response

    @manager.user_loader
    def load_user(sid: str) -> SessionUser | None:
        # Once per request (flask-login keeps the result for the request). An ended session, a
        # disabled user, a revoked token or a cookie from before sessions were stored: anonymous.
        active = store.active_session(sid)
        if active is None:
            return None
        return SessionUser(active.sid, active.name, active.role, active.kind)

    def remote() -> str:
        return request.remote_addr or ""

    @server.before_request
    def guard():
        path = request.path
        if path in PUBLIC_PATHS:
            return None
        if not current_user.is_authenticated:
            if path.startswith(API_PREFIXES):
                return jsonify(error="login required"), 401
            # URL-encoded (not HTML-escaped): every query parameter survives, and a control
            # character in the path cannot reach the Location header.
            return redirect("/login?" + urlencode({"next": request.full_path.rstrip("?")}))
        if not settings.roles.get(current_user.role) and not path.startswith(NO_PAGE_ROLE_PATHS):
            # A role that opens no page (the 112/119 agency roles) sees only what was shared with
            # it through a signed, expiring /agency/ link: not the live socket, the camera routes,
            # the snapshot files or any API, whatever camera id it knows or guesses.
            refusals.refused(current_user.name, current_user.principal, "refused", "role without pages",
                             path_prefix(path), path[:200], remote())
            if path.startswith(API_PREFIXES):
                return jsonify(error=_("This role sees only the incidents shared with it.")), 403
            abort(403, description=_("This role sees only the incidents shared with it."))
        if path == "/":
            return redirect(HOME_BY_ROLE.get(current_user.role, "/wall/1"))
        if request.endpoint in PAGE_ENDPOINTS:
            found = pages.match(path)
            if found is None:
                abort(404, description=_("No such page."))
            if not pages.may_open(settings, current_user.role, found[0]):
                abort(403, description=_("Role {role} may not open {permission} pages.").format(
                    role=current_user.role, permission=found[0].permission))
        return None

    @server.route("/login", methods=["GET", "POST"])
    def login():
        error = ""
        nxt = request.values.get("next", "")
        if request.method == "POST":
            if not csrf_ok(request.form.get("csrf")):
                abort(400, description=_("The form expired; reload the page."))
            name = request.form.get("username", "").strip()
            wait = throttle.wait_s(name, remote())
            if wait > 0:
                unsigned_audit.audit(name[:64] or "?", "login_throttled", remote())
                minutes = max(1, round(wait / 60))
                with in_lang(_anon_lang()):
                    error = _login_error(_("Too many failed sign-ins. Try again in {minutes} min.")
                                         .format(minutes=minutes))
                return login_page(nxt, error), 429
            user = store.authenticate(name, request.form.get("password", ""))
            if user is not None:
                throttle.succeeded(name, remote())
                chosen = valid_lang(session.get("lang"))  # picked on the login page
                session.clear()  # a new session id and form token: nothing carried over
                session.permanent = True
                if chosen and store.user_lang(user.username, "user") is None:
                    store.set_user_lang(user.username, "user", chosen)
                sid = store.create_session(user.username, "user", remote())
                login_user(SessionUser(sid, user.username, user.role, "user"))
                csrf_token()
                store.audit(user.username, "login", remote_addr=remote())
                return redirect(safe_next(nxt, HOME_BY_ROLE.get(user.role, "/wall/1")))
            throttle.failed(name, remote())
            unsigned_audit.audit(name[:64] or "?", "login_failed", remote())
            with in_lang(_anon_lang()):
                error = _login_error(_("Wrong user or password."))
        return login_page(nxt, error)

    @server.route("/device/login")
    def device_login():
        wait = device_throttle.wait_s(DEVICE_TOKEN_KEY, remote())
        if wait > 0:
            unsigned_audit.audit("?", "device_login_throttled", remote())
            resp = jsonify(error="too many failed device sign-ins from this address; try later")
            resp.status_code = 429
            resp.headers["Retry-After"] = str(max(1, int(wait)))
            return resp
        row = store.check_device_token(request.args.get("token", ""))
        if row is None:
            device_throttle.failed(DEVICE_TOKEN_KEY, remote())
            unsigned_audit.audit("?", "device_login_failed", remote())
            abort(401, description=_("Unknown or revoked device token."))
        session.clear()
        sid = store.create_session(row.name, "device", remote())
        login_user(SessionUser(sid, row.name, row.role, "device"), remember=True)
        store.audit(row.name, "device_login", remote_addr=remote())
        return redirect(safe_next(request.args.get("next"), HOME_BY_ROLE.get(row.role, "/wall/1")))

    @server.route("/logout", methods=["GET", "POST"])
    def logout():
        if request.method == "GET":  # never signs out: a GET can come from any page's <img>
            if not current_user.is_authenticated:
                return redirect("/login")
            return logout_page()
        if not csrf_ok(request.form.get("csrf")):
            abort(400, description=_("The form expired; reload the page."))
        if current_user.is_authenticated:
            store.revoke_session(current_user.sid, "logout")
            store.audit(current_user.name, "logout", remote_addr=remote())
        session.clear()
        logout_user()  # after the clear: it leaves the flag that deletes a wall's remember cookie
        return redirect("/login")

    @server.route("/api/live/ticket")
    def live_ticket():
        # The guard (through load_user) has just checked the session; this check keeps the route
        # safe if it is ever mounted without the guard.
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        gw = settings.gateway
        ticket = issue_ticket(secret, current_user.name, current_user.role, current_user.sid,
                              current_user.kind)
        return jsonify(ticket=ticket, url=gw.public_url, port=gw.port, user=current_user.name,
                       role=current_user.role)

    @server.route("/healthz")
    def healthz():
        return "ok\n"

    @server.get("/api/health/web")
    def web_health():
        """This web process's refusal counters (sampled audit rows, busy history queries). Any
        control-room role (the guard refuses the roles without pages); writes the closed minutes'
        summary rows first, so a quiet server's last summary does not wait for the next refusal."""
        if not current_user.is_authenticated:
            return jsonify(error="login required"), 401
        refusals.sweep()
        return jsonify(counters=COUNTERS.snapshot(), window_s=refusals.window_s)
