"""The page registry: every page declares its path and the permission it needs, beside its layout.

A layout module says, for example,

    register_page("/wall/<int(max=9999):screen>", "wall", page)

and both gates read this one registry: the Flask guard before a page is served (403 for a role
without the permission, 404 for a path no page declares), and the Dash router before a layout is
built (a forged callback for a forbidden page renders a refusal). A page that forgets to declare
itself is not reachable at all, instead of being reachable by everyone. Roles map to permissions
in config/roles.yaml. Path templates use Werkzeug's rule syntax, as Flask routes do.
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule

from config.settings import Settings

PERMISSIONS = ("wall", "supervisor", "commander")  # the names config/roles.yaml grants
MAX_PATH = 512  # longer paths are no page of ours


@dataclass(frozen=True)
class PageContext:
    """What every layout may use: the settings, the map edition and who is looking."""

    settings: Settings
    edition: Any  # spine.geography.Edition
    username: str
    role: str


@dataclass(frozen=True)
class Page:
    template: str
    permission: str
    layout: Callable[..., Any]  # layout(ctx: PageContext, **path_arguments)


_pages: dict[str, Page] = {}
_lock = threading.Lock()
_map: Map | None = None


def register_page(template: str, permission: str, layout: Callable[..., Any]) -> Page:
    """Declare a page. Declaring the same template again replaces it (module reloads, tests)."""
    global _map
    if permission not in PERMISSIONS:
        raise ValueError(f"page {template}: unknown permission {permission!r}; one of {PERMISSIONS}")
    if not template.startswith("/"):
        raise ValueError(f"page {template}: the path must start with /")
    Rule(template)  # a malformed template fails here, at import, not at the first request
    page = Page(template, permission, layout)
    with _lock:
        _pages[template] = page
        _map = None
    return page


def registered() -> list[Page]:
    return list(_pages.values())


def _url_map() -> Map:
    global _map
    with _lock:
        if _map is None:
            _map = Map([Rule(p.template, endpoint=p.template) for p in _pages.values()])
        return _map


def match(path: str) -> tuple[Page, dict[str, Any]] | None:
    """The page a path opens and the arguments taken from the path, or None."""
    if not isinstance(path, str) or len(path) > MAX_PATH:
        return None
    path = "/" + path.strip("/")
    try:
        template, args = _url_map().bind("localhost").match(path, method="GET")
    except HTTPException:  # not found, or a redirect to another spelling: not a page
        return None
    return _pages[template], args


def may_open(settings: Settings, role: str, page: Page) -> bool:
    return page.permission in settings.roles.get(role, [])


def discover(package: str = "layouts") -> None:
    """Import every module of the layouts package so each declares its pages (idempotent)."""
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{package}.{info.name}")
