"""Content-Security-Policy for every response of the web server (pages, login, APIs, assets).

Scripts run only from this server (`script-src 'self'`) plus Dash's one inline bootstrap script
(`new DashRenderer(...)`), allowed by its SHA-256 hash: no 'unsafe-inline' and no 'unsafe-eval' for
scripts, so a string from a message that ever reached the DOM as markup still could not run.
The ES modules under assets/cc are 'self'. The live socket is on the gateway's own port, which
'self' does not cover, so connect-src names it (and the configured public URL, if any).

Styles keep 'unsafe-inline': dash-leaflet injects Leaflet's CSS as <style> elements at run time and
the login page has an inline style block; CSS cannot run script, and `img-src` stays closed.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import dash
from flask import Flask, Response, request

from config.settings import GatewaySettings


def _gateway_sources(gw: GatewaySettings, host: str) -> list[str]:
    """The live socket's origins as the page will address them (see the page's socket module)."""
    hostname = urlsplit(f"//{host}").hostname or "127.0.0.1"
    if ":" in hostname:  # IPv6 literal
        hostname = f"[{hostname}]"
    out = [f"ws://{hostname}:{gw.port}", f"wss://{hostname}:{gw.port}"]
    if gw.public_url:
        u = urlsplit(gw.public_url)
        if u.scheme in ("ws", "wss", "http", "https") and u.netloc:
            out.append(f"{u.scheme}://{u.netloc}")
    return out


def policy(script_hashes: list[str], connect: list[str]) -> str:
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:",
        "font-src 'self' data:",
        "connect-src 'self' " + " ".join(connect),
        "worker-src 'self' blob:",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ])


def install_csp(server: Flask, app: dash.Dash, gw: GatewaySettings) -> None:
    """Set the policy on every response. The hashes are taken at the first request, after every
    callback (and so every inline script Dash may add) has been registered."""
    hashes: list[str] = []

    def script_hashes() -> list[str]:
        if not hashes:
            hashes.extend(app.csp_hashes("sha256"))
        return hashes

    @server.after_request
    def content_security_policy(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = policy(script_hashes(),
                                                            _gateway_sources(gw, request.host))
        return response
