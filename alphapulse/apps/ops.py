"""Operations endpoints on loopback: ``/health`` (JSON) and ``/metrics`` (Prometheus text)."""
from __future__ import annotations

import errno
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

log = logging.getLogger("alphapulse.ops")


class PortInUse(OSError):
    """The configured port is taken; the message names host and port."""


class OpsServer:
    """Serves health and metrics from callables, in a daemon thread.

    ``health()`` returns ``{"live": bool, "ready": bool, "components": {...}}``;
    ``/health`` answers 200 when ready, 503 otherwise. ``metrics()`` returns
    Prometheus text exposition format.
    """

    def __init__(self, host: str, port: int, health: Callable[[], dict[str, Any]],
                 metrics: Callable[[], str]) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                try:
                    if self.path.split("?")[0] == "/health":
                        h = outer.health()
                        self._send(200 if h.get("ready") else 503, "application/json",
                                   json.dumps(h, sort_keys=True).encode())
                    elif self.path.split("?")[0] == "/metrics":
                        self._send(200, "text/plain; version=0.0.4; charset=utf-8",
                                   outer.metrics().encode())
                    else:
                        self._send(404, "text/plain", b"not found: try /health or /metrics\n")
                except Exception as e:  # a broken probe must not kill the server
                    log.exception("ops endpoint %s failed", self.path)
                    self._send(500, "text/plain", f"error: {e}\n".encode())

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.health, self.metrics = health, metrics
        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(f"ops port {host}:{port} is already in use") from None
            raise
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ops-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def start(self) -> "OpsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
