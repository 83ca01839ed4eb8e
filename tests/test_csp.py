"""The Content-Security-Policy of dashboard/csp.py is on every response of the web server."""

from __future__ import annotations

import pytest

from config.settings import load_settings
from dashboard.app_factory import create_app
from dashboard.store import Store


@pytest.fixture
def app(sqlite_url: str):
    return create_app(load_settings(), Store(sqlite_url), "csp-test-secret")


def directives(header: str) -> dict[str, list[str]]:
    out = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out


@pytest.mark.parametrize("path", ["/login", "/wall/1", "/api/live/ticket", "/assets/cc/main.js",
                                  "/no-such-page", "/healthz"])
def test_every_response_carries_the_policy(app, path: str) -> None:
    client = app.server.test_client()
    r = client.get(path, headers={"Host": "wall.example:8050"})
    d = directives(r.headers["Content-Security-Policy"])
    # Scripts: this server and Dash's own inline bootstrap by hash; nothing inline, no eval.
    assert d["script-src"][0] == "'self'"
    assert d["script-src"][1:] == app.csp_hashes("sha256") and len(d["script-src"]) == 2
    assert d["object-src"] == ["'none'"] and d["base-uri"] == ["'self'"]
    assert d["frame-ancestors"] == ["'self'"]
    # The live socket is on the gateway's port, on the host the page was loaded from.
    port = load_settings().gateway.port
    assert {f"ws://wall.example:{port}", f"wss://wall.example:{port}"} <= set(d["connect-src"])
    assert d["img-src"] == ["'self'", "blob:", "data:"]


def test_the_hash_is_the_one_inline_script_of_the_page(app) -> None:
    import base64
    import hashlib
    import re

    html = app.index()
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>(.*?)</script>", html, re.S)
    assert len(inline) == 1  # Dash's renderer bootstrap; the page code is modules from 'self'
    digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
    assert app.csp_hashes("sha256") == [f"'sha256-{digest}'"]
