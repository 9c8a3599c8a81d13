"""Operations endpoints on loopback: ``/health`` (JSON) and ``/metrics`` (Prometheus text).

Hardened for a hostile local network or browser: each connection has a socket timeout (a
half-open client cannot hold a thread), at most ``max_connections`` are served at once (more are
closed at once, counted), and a request whose Host header names anything but the bind address
(or ``localhost`` on loopback) is refused with 421: a DNS-rebinding page cannot read it.
"""
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
                 metrics: Callable[[], str], *, timeout_s: float = 5.0, max_connections: int = 32) -> None:
        outer = self
        self.refused_connections = 0
        self.refused_hosts = 0

        class Handler(BaseHTTPRequestHandler):
            timeout = timeout_s                  # socket timeout of every read and write

            def do_GET(self) -> None:  # noqa: N802 (http.server API)
                if not outer._host_allowed(self.headers.get("Host")):
                    outer.refused_hosts += 1
                    self._send(421, "text/plain", b"misdirected request: unknown Host\n")
                    return
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
        slots = threading.BoundedSemaphore(max_connections)

        class Server(ThreadingHTTPServer):
            def process_request(self, request: Any, client_address: Any) -> None:
                if not slots.acquire(blocking=False):
                    outer.refused_connections += 1
                    self.shutdown_request(request)
                    return
                try:
                    super().process_request(request, client_address)
                except BaseException:
                    slots.release()
                    raise

            def process_request_thread(self, request: Any, client_address: Any) -> None:
                try:
                    super().process_request_thread(request, client_address)
                finally:
                    slots.release()

        try:
            self.httpd = Server((host, port), Handler)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(f"ops port {host}:{port} is already in use") from None
            raise
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="ops-http", daemon=True)

    def _host_allowed(self, header: str | None) -> bool:
        """Whether a Host header names this server: its bind address (with or without the port),
        or ``localhost`` when bound to loopback. No header (HTTP/1.0) is allowed; a wildcard
        bind address allows any."""
        if header is None:
            return True
        host, port = self.address
        if host in ("0.0.0.0", "::", ""):
            return True
        h = header.strip().lower()
        names = {host.lower(), f"[{host.lower()}]"}
        if host.startswith("127.") or host == "::1":
            names.add("localhost")
        return h in names or h in {f"{n}:{port}" for n in names}

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def start(self) -> "OpsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
