"""One small HTTP server for the simulator's pull feeds: GTFS-realtime, static GTFS and AirKorea JSON."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

PATHS = {
    "vehicles": "/gtfs-rt/vehicle-positions.pb",
    "trips": "/gtfs-rt/trip-updates.pb",
    "static": "/gtfs/static.zip",
    "air_province": "/B552584/ArpltnInforInqireSvc/getCtprvnRltmMesureDnsty",
    "air_station": "/B552584/ArpltnInforInqireSvc/getMsrstnAcctoRltmMesureDnsty",
}
Route = Callable[[dict[str, list[str]]], tuple[bytes, str]]


class WireHttpServer:
    def __init__(self, routes: dict[str, Route], host: str = "127.0.0.1", port: int = 0) -> None:
        handlers = routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                route = handlers.get(parts.path)
                if route is None:
                    self.send_error(404)
                    return
                try:
                    body, ctype = route(parse_qs(parts.query))
                except Exception:
                    log.exception("simulator route %s failed", parts.path)
                    self.send_error(500)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *args: object) -> None:
                log.debug(fmt, *args)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, name="sim-http", daemon=True)

    def url(self, key: str, query: str = "") -> str:
        return f"http://{self.host}:{self.port}{PATHS[key]}{'?' + query if query else ''}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
