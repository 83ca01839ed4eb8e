"""Languages: Korean first, English per user or per wall screen, through Babel / Flask-Babel.

Catalogues are gettext files under translations/<lang>/LC_MESSAGES/messages.po (msgids are the
English source strings; Korean is the default locale). The compiled .mo files are built from the
.po files at start when missing or older (compile_catalogues), never edited by hand.

Which language a response speaks:
  - a wall screen (/wall, /wall/<n>): the screen's `lang` in config/walls.yaml, whoever is signed
    in (a shared screen stays in the room's language; a supervisor's choice does not change it);
  - every other page and callback: the signed-in user's choice, kept in SQL (Store.user_lang),
    or the anonymous browser's session choice (login page), else Korean.
The browser gets the page language's catalogue as JSON in the page (`<script type=
"application/json" id="cc-i18n">`, data, not code, for the CSP) and renders the texts it builds
(popups, panels, events) through cc/i18n.js t(key, params).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask import (
    Flask,
    abort,
    current_app,
    g,
    has_app_context,
    has_request_context,
    redirect,
    request,
    session,
)
from flask_babel import Babel, force_locale
from flask_babel import gettext as _babel_gettext
from flask_babel import ngettext as _babel_ngettext
from flask_login import current_user

from dashboard import pages
from spine.layers import set_label_translator

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "translations"
DOMAIN = "messages"
LANGS: tuple[str, ...] = ("ko", "en")
DEFAULT_LANG = "ko"
KST = ZoneInfo("Asia/Seoul")
WALL_TEMPLATES = {"/wall", "/wall/<int(max=9999):screen>"}
# Endonyms: a language is offered in its own name, so a user who cannot read the current one finds it.
LANG_NAMES = {"ko": "한국어", "en": "English"}



def _babel_ready() -> bool:
    return has_app_context() and "babel" in current_app.extensions


def gettext(text: str) -> str:
    """The text in the current request's language. Outside a Flask-Babel app (a unit test that
    builds a layout alone, a script) the msgid itself: English, as gettext's own fallback is."""
    return _babel_gettext(text) if _babel_ready() else text


def ngettext(singular: str, plural: str, n: int) -> str:
    if _babel_ready():
        return _babel_ngettext(singular, plural, n)
    return singular if n == 1 else plural


_ = gettext
__all__ = ["N_", "_", "gettext", "ngettext"]


def N_(text: str) -> str:  # noqa: N802 - the gettext convention: marks a string for extraction only
    return text



def valid_lang(value: object) -> str | None:
    return value if isinstance(value, str) and value in LANGS else None


def kst_now() -> datetime:
    """Now in Korea, whatever the server's zone (the control room reads KST everywhere)."""
    return datetime.now(KST)


# ---- catalogues ------------------------------------------------------------------------------------

def _po(lang: str, root: Path = TRANSLATIONS) -> Path:
    return root / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def compile_catalogues(root: Path = TRANSLATIONS) -> list[Path]:
    """Build each .mo from its .po (every start: a few milliseconds, and no stale .mo can survive
    an edit whatever the file times say); returns those written. Fuzzy entries are left out, as
    pybabel compile does without --use-fuzzy."""
    written = []
    for lang in LANGS:
        po = _po(lang, root)
        mo = po.with_suffix(".mo")
        if not po.exists():
            continue
        with po.open("rb") as f:
            catalog = read_po(f, locale=lang)
        tmp = mo.with_suffix(f".mo.{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            write_mo(f, catalog, use_fuzzy=False)
        tmp.replace(mo)  # atomic: another process starting at the same time reads a whole file
        written.append(mo)
    return written


_browser_cache: dict[str, str] = {}
_cache_lock = threading.Lock()


def catalogue(lang: str, root: Path = TRANSLATIONS) -> dict[str, str]:
    """msgid -> text in `lang` for every message (the msgid itself where the catalogue has no text,
    as gettext does): ids from the .po, texts from the compiled .mo (so fuzzy ones stay out)."""
    po = _po(lang, root)
    mo = po.with_suffix(".mo")
    out: dict[str, str] = {}
    if po.exists():  # every msgid, so the browser knows which keys are messages at all
        with po.open("rb") as f:
            for m in read_po(f, locale=lang):
                if m.id and isinstance(m.id, str):
                    out[m.id] = m.id
    if mo.exists():
        with mo.open("rb") as f:
            for m in read_mo(f):
                if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string:
                    out[m.id] = m.string
    return out


def browser_catalogue_json(lang: str) -> str:
    """The page's catalogue for a `<script type="application/json">`: `<` escaped so no text can
    close the element."""
    lang = valid_lang(lang) or DEFAULT_LANG
    with _cache_lock:
        if lang not in _browser_cache:
            data = {"lang": lang, "tz": "Asia/Seoul", "messages": catalogue(lang)}
            _browser_cache[lang] = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace(
                "<", "\\u003c")
        return _browser_cache[lang]


# ---- which language ------------------------------------------------------------------------------

class LangResolver:
    """The language of the current request: the user's stored choice, or the session's, or ko."""

    def __init__(self, store: Any, walls: dict[int, Any]) -> None:
        self.store = store
        self.walls = walls

    def user_lang(self) -> str:
        if not has_request_context():
            return DEFAULT_LANG
        if "cc_user_lang" in g:
            return g.cc_user_lang
        lang = None
        if current_user and current_user.is_authenticated:
            lang = valid_lang(self.store.user_lang(current_user.name, current_user.kind))
        lang = lang or valid_lang(session.get("lang")) or DEFAULT_LANG
        g.cc_user_lang = lang
        return lang

    def page_lang(self, path: str) -> str:
        """A wall screen speaks its configured language; other pages the viewer's."""
        found = pages.match(path or "/")
        if found is not None and found[0].template in WALL_TEMPLATES:
            wall = self.walls.get(int(found[1].get("screen", 1)))
            if wall is not None:
                return valid_lang(getattr(wall, "lang", None)) or DEFAULT_LANG
        return self.user_lang()

    def locale(self) -> str:
        forced = g.get("cc_lang") if has_request_context() else None
        return forced or self.user_lang()


def in_lang(lang: str) -> Any:
    """A context in which gettext speaks `lang` (and spine.layers' labels with it)."""
    if has_request_context():
        g.cc_lang = lang
    return force_locale(lang)


def current_lang() -> str:
    if has_request_context() and g.get("cc_lang"):
        return g.cc_lang
    return DEFAULT_LANG


def install_i18n(server: Flask, resolver: LangResolver, csrf_ok: Callable[[str | None], bool],
                 safe_next: Callable[[str | None, str], str]) -> None:
    """Flask-Babel with our locale selector, and POST /lang: the language switch (form token)."""
    compile_catalogues()
    server.config["BABEL_DEFAULT_LOCALE"] = DEFAULT_LANG
    server.config["BABEL_DEFAULT_TIMEZONE"] = "Asia/Seoul"
    server.config["BABEL_TRANSLATION_DIRECTORIES"] = str(TRANSLATIONS)
    Babel(server, locale_selector=resolver.locale, timezone_selector=lambda: "Asia/Seoul")
    server.extensions["cc_lang"] = resolver
    set_label_translator(gettext)  # server-rendered legends speak the request's language

    @server.route("/lang", methods=["POST"])
    def set_lang():
        if not csrf_ok(request.form.get("csrf")):
            abort(400, description=_("The form expired; reload the page."))
        lang = valid_lang(request.form.get("lang"))
        if lang is None:
            abort(400, description=_("The language must be one of: {langs}.").format(langs=", ".join(LANGS)))
        if current_user and current_user.is_authenticated:
            resolver.store.set_user_lang(current_user.name, current_user.kind, lang)
            resolver.store.audit(current_user.name, "set_lang", target=lang,
                                 remote_addr=request.remote_addr or "")
        session["lang"] = lang  # the login page too, and a user who signs in next on this browser
        return redirect(safe_next(request.form.get("next"), "/"))
