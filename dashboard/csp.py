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

import re
from urllib.parse import urlsplit

import dash
from flask import Flask, Response, request

from config.settings import GatewaySettings

# What a Host header may be to reach the policy: a DNS name or IPv4 address, or a bracketed IPv6
# literal, with an optional port. Anything else (spaces, ';', quotes, commas) could add directives
# of its own ("Host: evil; report-uri https://...") and is replaced by the configured host.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?")
_WILDCARD = {"", "0.0.0.0", "::", "[::]"}


def _page_host(host: str, gw: GatewaySettings) -> str:
    """The host name the page was loaded from, if the header is a well-formed host; else the
    gateway's configured host (127.0.0.1 when it listens on every address)."""
    if _HOST.fullmatch(host):
        hostname = urlsplit(f"//{host}").hostname
        if hostname:
            return f"[{hostname}]" if ":" in hostname else hostname
    configured = gw.host.strip()
    if ":" in configured and not configured.startswith("["):
        configured = f"[{configured}]"
    if configured in _WILDCARD or not _HOST.fullmatch(configured):
        return "127.0.0.1"
    return configured


def _gateway_sources(gw: GatewaySettings, host: str) -> list[str]:
    """The live socket's origins as the page will address them (see the page's socket module)."""
    hostname = _page_host(host, gw)
    out = [f"ws://{hostname}:{gw.port}", f"wss://{hostname}:{gw.port}"]
    if gw.public_url:
        u = urlsplit(gw.public_url)
        if u.scheme in ("ws", "wss", "http", "https") and _HOST.fullmatch(u.netloc):
            out.append(f"{u.scheme}://{u.netloc}")
    return out


def policy(script_hashes: list[str], connect: list[str]) -> str:
    return "; ".join([
        "default-src 'self'",
        "script-src 'self' " + " ".join(script_hashes),
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' blob: data:",
        "font-src 'self' data:",
        # Live video: Media Source Extensions play from a blob: URL of the page's own MediaSource.
        "media-src 'self' blob:",
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
