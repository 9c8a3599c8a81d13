"""Start the dashboard: Bokeh server + reader threads, in the calling process.

Three ways in:

* the pipeline's supervisor runs :func:`run_component` in a spawned process
  (``"alphapulse.dashboard.server:run_component"``, kwargs = the fields of
  :class:`DashboardOptions`), which serves until ``stop`` is set;
* ``python -m alphapulse.dashboard`` (see ``__main__``) for a standalone dashboard
  on running rings;
* tests use :class:`Dashboard` directly, ``start()`` / ``stop()`` in a thread.
"""
from __future__ import annotations

import asyncio
import errno
import logging
import secrets
import socket
import threading
import time
from typing import Any

from bokeh.application import Application
from bokeh.application.handlers.function import FunctionHandler
from bokeh.server.server import Server
from tornado.ioloop import IOLoop

from alphapulse.dashboard.aggregate import Aggregator, TokenBook
from alphapulse.dashboard.app import Hub
from alphapulse.dashboard.feed import RingReader, StatsPoller
from alphapulse.dashboard.options import MIN_SECRET_KEY_BYTES, DashboardOptions

log = logging.getLogger("alphapulse.dashboard")


class PortInUse(OSError):
    """The dashboard's port is taken; the message names host and port."""


def websocket_origins(host: str, port: int, extra: tuple[str, ...] = ()) -> list[str]:
    """Origins (host:port) whose pages may open the Bokeh websocket.

    Loopback hosts accept both the numeric address and ``localhost``; a wildcard
    bind address (0.0.0.0, ::) accepts only what ``extra`` lists, besides the
    machine's own names: never ``*``.
    """
    names = {f"{host}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"}
    if host in ("0.0.0.0", "::", ""):
        names.discard(f"{host}:{port}")
        names.add(f"{socket.gethostname()}:{port}")
    names.update(extra)
    return sorted(names)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Dashboard:
    """The dashboard in this process: aggregator, reader threads, Bokeh server."""

    def __init__(self, options: DashboardOptions) -> None:
        self.options = options.validate()
        o = options
        self.agg = Aggregator(TokenBook(o.tokens), max_rows=o.max_rows,
                              price_history=o.price_history,
                              price_interval_ns=o.price_interval_ms * 1_000_000,
                              market_crc_every=o.market_crc_every, venue_names=o.venue_names)
        labels = tuple(lb for ring, lb in ((o.signal_ring, "signal"), (o.market_ring, "market")) if ring)
        self.hub = Hub(self.agg, max_updates_per_s=o.rate_limit_hz,
                       latency_component=o.latency_component, title=o.title, ring_labels=labels)
        self.stop_event = threading.Event()
        self.readers: list[RingReader] = []
        # signals: every one, at once; market data: bounded CPU (see feed.py)
        for ring, label, budget, share in (
                (o.signal_ring, "signal", None, 1.0),
                (o.market_ring, "market", o.max_market_frames_per_batch, o.market_cpu_share),
                (o.system_ring, "system", None, 1.0),
                (o.execution_ring, "execution", None, 1.0)):
            if ring:
                self.readers.append(RingReader(
                    ring, label, self.agg, self.hub.notify_all, self.stop_event,
                    consumer_name=o.consumer_name, poll_timeout_s=o.poll_timeout_ms / 1000,
                    max_frames_per_batch=budget, max_cpu_share=share))
        self.stats = StatsPoller(self.agg, self.hub.notify_all, self.stop_event, self.readers,
                                 o.metrics_block, interval_s=o.stats_interval_ms / 1000)
        # the key that signs session ids: configured, or made here and known to this process only
        self._secret_key = (o.secret_key or secrets.token_urlsafe(MIN_SECRET_KEY_BYTES)).encode()
        self.server: Server | None = None
        self.port: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.port}/"

    def _make_server(self, io_loop: IOLoop) -> Server:
        o = self.options
        port = o.port or _free_port(o.host)
        app = Application(FunctionHandler(self.hub.make_document))
        try:
            server = Server({"/": app}, io_loop=io_loop, address=o.host, port=port,
                            allow_websocket_origin=websocket_origins(o.host, port, o.allow_origins),
                            sign_sessions=True, secret_key=self._secret_key,
                            keep_alive_milliseconds=10_000, check_unused_sessions_milliseconds=5_000,
                            unused_session_lifetime_milliseconds=15_000)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(errno.EADDRINUSE,
                                f"dashboard port {o.host}:{port} is already in use "
                                f"(set dashboard.port or --dashboard-port)") from None
            raise
        self.port = server.port
        return server

    def _start_readers(self) -> None:
        for r in self.readers:
            r.start()
        self.stats.start()

    # ---------------------------------------------------------------- in a thread
    def start(self, timeout: float = 30.0) -> "Dashboard":
        """Serve from a background thread (own event loop); returns once listening."""
        def main() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            loop = IOLoop.current()
            try:
                self.server = self._make_server(loop)
                self.server.start()
            except BaseException as e:
                self._error = e
                self._ready.set()
                return
            self._start_readers()
            self._ready.set()
            loop.start()
            loop.close(all_fds=True)

        self._thread = threading.Thread(target=main, name="dashboard-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("dashboard server did not start")
        if self._error is not None:
            raise self._error
        log.info("dashboard on %s", self.url)
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for r in self.readers:
            if r.is_alive():
                r.join(5)
        if self.stats.is_alive():
            self.stats.join(5)
        if self.server is not None and self._thread is not None:
            loop = self.server.io_loop

            def _halt() -> None:
                self.server.stop()
                loop.stop()
            loop.add_callback(_halt)
            self._thread.join(10)

    # ---------------------------------------------------------------- in this thread
    def serve_forever(self, stop: Any = None, poll_s: float = 0.2) -> None:
        """Serve on this thread until ``stop`` (an Event) is set or KeyboardInterrupt."""
        asyncio.set_event_loop(asyncio.new_event_loop())
        loop = IOLoop.current()
        self.server = self._make_server(loop)
        self.server.start()
        self._start_readers()
        log.info("dashboard on %s", self.url)
        if stop is not None:
            def check() -> None:
                if stop.is_set():
                    loop.stop()
            from tornado.ioloop import PeriodicCallback
            PeriodicCallback(check, poll_s * 1000).start()
        try:
            loop.start()
        except KeyboardInterrupt:
            pass
        finally:
            self.stop_event.set()
            for r in self.readers:
                r.join(5)
            self.stats.join(5)
            self.server.stop()


def run_component(stop: Any, **kwargs: Any) -> None:
    """Supervisor entry point (``fn(stop, **kwargs)``): serve until ``stop`` is set."""
    from alphapulse.apps.control import on_reload
    dash = Dashboard(DashboardOptions(**kwargs))
    on_reload(lambda s: dash.hub.set_rate_limit(float(s["dashboard"]["rate_limit_hz"])))
    dash.serve_forever(stop)


def wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {host}:{port}") from None
            time.sleep(0.05)
