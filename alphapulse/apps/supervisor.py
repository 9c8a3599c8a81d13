"""Process supervision: start components (spawn), restart crashes with backoff,
stop everything cleanly, keep one log stream.

A component is a plain function ``fn(stop: Event, **kwargs)`` importable by
name (``"package.module:function"``); it runs in its own spawned process until
``stop`` is set (SIGTERM sets it too) and returns. Returning on its own means
"finished" (exit code 0); an exception or a signal is a crash, restarted with
exponential backoff unless the component is ``oneshot``.

A component that stopped making progress is restarted the same way: with
``liveness_timeout_s`` and a ``heartbeat_ns(name)`` source (wall-clock ns of the
component's last sign of life, 0 when none), a running component whose last
heartbeat since it started is older than the timeout is killed (SIGKILL),
counted as hung and restarted. A component is judged only once it has beaten
(its first start may compile for minutes).

Logs: every child sends its records through a ``QueueHandler`` to one
``QueueListener`` in the supervisor (the standard library's process-safe
pattern, which works with the spawn start method), so all processes write one
stream, each record tagged with its component name.
"""
from __future__ import annotations

import ctypes
import importlib
import logging
import logging.handlers
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from alphapulse import redact

log = logging.getLogger("alphapulse.supervisor")

_PR_SET_PDEATHSIG = 1


@dataclass
class ComponentSpec:
    name: str
    target: str                          # "module:function"
    kwargs: dict[str, Any] = field(default_factory=dict)
    oneshot: bool = False                # finishing (exit 0) ends the pipeline; never restarted
    critical: bool = True                # a oneshot/critical component ending stops the pipeline


@dataclass
class _Running:
    spec: ComponentSpec
    proc: Any
    stop: Any
    started: float
    restarts: int = 0
    crashes_in_row: int = 0
    next_start: float = 0.0              # when waiting for a restart
    exitcode: int | None = None
    finished: bool = False
    started_ns: int = 0                  # wall clock of the start (heartbeats before it are stale)
    hangs: int = 0                       # times killed for silence
    killed_at_shutdown: bool = False


def _set_parent_death_signal() -> None:
    """Linux: SIGKILL this child when the supervisor dies, so nothing is orphaned."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def resolve(target: str) -> Callable[..., Any]:
    mod, _, fn = target.partition(":")
    return getattr(importlib.import_module(mod), fn)


#: Numba's compiler logs its intermediate representation at DEBUG (megabytes per kernel, which
#: slows a cold compile many times over): below INFO it stays out of ``--log-level DEBUG``.
COMPILER_LOGGERS = ("numba",)


def set_log_level(level: int) -> None:
    """The root logger's level; the compiler's loggers (:data:`COMPILER_LOGGERS`) stay at INFO or above."""
    logging.getLogger().setLevel(level)
    for name in COMPILER_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.INFO))


def _child_main(name: str, target: str, kwargs: dict, stop: Any, log_queue: Any,
                level: int, parent_pid: int, control: str | None = None) -> None:
    _set_parent_death_signal()
    if os.getppid() != parent_pid:       # parent died before prctl took effect
        os._exit(1)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(log_queue)]
    set_log_level(level)
    old_factory = logging.getLogRecordFactory()

    def factory(*a: Any, **kw: Any) -> logging.LogRecord:
        rec = old_factory(*a, **kw)
        rec.component = name
        return rec
    logging.setLogRecordFactory(factory)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the supervisor decides
    if control:
        from alphapulse.apps.control import watch
        threading.Thread(target=watch, args=(control, stop), name="control", daemon=True).start()
    try:
        resolve(target)(stop, **kwargs)
    except SystemExit:
        raise
    except BaseException:
        logging.getLogger(f"alphapulse.{name}").exception("component %s crashed", name)
        sys.exit(70)


class _ComponentFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "component"):
            record.component = "supervisor"
        return super().format(record)


TEXT_FORMAT = "%(asctime)s %(levelname)-7s [%(component)s] %(name)s: %(message)s"
#: Attributes every LogRecord has; whatever else a record carries is an extra field.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (UTC, ISO 8601 with microseconds),
    ``level``, ``component``, ``pid``, ``logger``, ``message`` (with the traceback, when there
    is one, under ``exc``) and every extra field of the record (``log.info(..., extra={..})``);
    values JSON cannot hold are written as their ``str``. Ready for Loki/promtail or any log
    shipper that reads JSON lines."""

    def format(self, record: logging.LogRecord) -> str:
        import datetime
        import json
        out = {"time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
               .isoformat(timespec="microseconds").replace("+00:00", "Z"),
               "level": record.levelname, "component": getattr(record, "component", "supervisor"),
               "pid": record.process, "logger": record.name, "message": record.getMessage()}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        for k, v in vars(record).items():
            if k not in _RECORD_ATTRS and k != "component" and k not in out:
                out[k] = v
        return json.dumps(out, default=str, ensure_ascii=False)


def log_formatter(kind: str) -> logging.Formatter:
    """The formatter of the log stream: ``text`` (one readable line) or ``json`` (JSON lines)."""
    if kind == "json":
        return JsonFormatter()
    if kind == "text":
        return _ComponentFormatter(TEXT_FORMAT)
    raise ValueError(f"log format {kind!r}: expected 'text' or 'json'")


CRASH_LOOP = 2        # crashes in a row, without 30 s of stable running between them


STOP_SET_TIMEOUT_S = 1.0
LISTENER_STOP_TIMEOUT_S = 5.0


def _within(fn: Callable[[], Any], timeout_s: float) -> bool:
    """Call ``fn`` on a daemon thread; False if it has not returned within ``timeout_s`` (it may
    block for good on a lock a stopped or killed process holds: the thread is then left behind)."""
    def run() -> None:
        try:
            fn()
        except Exception:  # e.g. a listener already stopped
            pass
    t = threading.Thread(target=run, name="supervisor-bounded-call", daemon=True)
    t.start()
    t.join(timeout_s)
    return not t.is_alive()


class Supervisor:
    """Runs components, restarts crashes, stops them all on request."""

    def __init__(self, specs: list[ComponentSpec], *, backoff_s: float = 0.5,
                 backoff_max_s: float = 30.0, shutdown_timeout_s: float = 10.0,
                 log_level: int = logging.INFO, log_stream: Any = None, log_format: str = "text",
                 liveness_timeout_s: float = 0.0,
                 heartbeat_ns: Callable[[str], int] | None = None, control: str | None = None) -> None:
        self.specs = specs
        self.control = control
        self.liveness_timeout_s = liveness_timeout_s
        self.heartbeat_ns = heartbeat_ns
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.ctx = mp.get_context("spawn")
        self.log_queue = self.ctx.Queue()
        handler = logging.StreamHandler(log_stream or sys.stderr)
        handler.setFormatter(log_formatter(log_format))
        self.log_level = log_level
        self._handler = redact.install(handler)         # no URL secret reaches the stream
        self.listener = logging.handlers.QueueListener(self.log_queue, handler,
                                                       respect_handler_level=False)
        self.running: dict[str, _Running] = {}
        self._displaced: list[logging.Handler] = []
        self.stopping = threading.Event()
        self.finished_reason: str | None = None

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> "Supervisor":
        self.listener.start()
        root = logging.getLogger()
        # one stream: this process logs through the same handler as the children
        self._displaced = [h for h in root.handlers if isinstance(h, logging.StreamHandler)]
        for h in self._displaced:
            root.removeHandler(h)
        root.addHandler(self._handler)
        root.setLevel(self.log_level)
        for spec in self.specs:
            self._start(spec)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def _start(self, spec: ComponentSpec, prev: _Running | None = None) -> None:
        stop = self.ctx.Event()
        proc = self.ctx.Process(target=_child_main, name=f"alphapulse-{spec.name}",
                                args=(spec.name, spec.target, spec.kwargs, stop, self.log_queue,
                                      self.log_level, os.getpid(), self.control), daemon=False)
        proc.start()
        r = _Running(spec, proc, stop, time.monotonic(), started_ns=time.time_ns())
        if prev is not None:
            r.restarts, r.crashes_in_row, r.hangs = prev.restarts + 1, prev.crashes_in_row, prev.hangs
        self.running[spec.name] = r
        log.info("started %s (pid %d)%s", spec.name, proc.pid,
                 f", restart #{r.restarts}" if r.restarts else "")

    def poll(self) -> bool:
        """One supervision step; False once the pipeline should end."""
        now = time.monotonic()
        for name, r in list(self.running.items()):
            if r.finished:
                continue
            if r.proc is None:                        # waiting out a restart backoff
                if now >= r.next_start and not self.stopping.is_set():
                    self._start(r.spec, r)
                continue
            if r.proc.is_alive():
                silent = self._silent_for(r)
                if silent is None:
                    if r.crashes_in_row and now - r.started > 30.0:
                        r.crashes_in_row = 0          # stable again: reset the backoff
                    continue
                r.hangs += 1
                log.error("%s silent for %.1f s (liveness timeout %.1f s): killing pid %d", name, silent,
                          self.liveness_timeout_s, r.proc.pid)
                r.proc.kill()
                r.proc.join(5.0)
            r.exitcode = r.proc.exitcode
            r.proc.join(0)
            if self.stopping.is_set():
                continue
            if r.exitcode == 0 and (r.spec.oneshot or r.spec.critical):
                log.info("%s finished", name)
                r.finished = True
                if r.spec.oneshot:
                    self.finished_reason = f"{name} finished"
                    return False
                continue
            r.crashes_in_row += 1
            delay = min(self.backoff_max_s, self.backoff_s * 2 ** (r.crashes_in_row - 1))
            log.error("%s died (exit code %s); restarting in %.1f s", name, r.exitcode, delay)
            r.proc = None
            r.next_start = now + delay
        return not self.stopping.is_set()

    def _silent_for(self, r: _Running) -> float | None:
        """Seconds since ``r``'s last heartbeat when beyond the liveness timeout, else None."""
        if self.liveness_timeout_s <= 0 or self.heartbeat_ns is None:
            return None
        hb = self.heartbeat_ns(r.spec.name)
        if not hb or hb < r.started_ns:
            return None                               # not beaten since this start
        age = (time.time_ns() - hb) / 1e9
        return age if age > self.liveness_timeout_s else None

    def failures(self) -> str:
        """What makes a run a failure, one line ('' when none): components that were killed at
        shutdown, whose last start died (waiting out a restart), or that crashed twice or more
        without running stably in between. One crash followed by a live restart is a recovery."""
        bad = []
        for name, r in self.running.items():
            if r.killed_at_shutdown:
                bad.append(f"{name} killed at shutdown")
            elif not r.finished and (r.proc is None or r.crashes_in_row >= CRASH_LOOP):
                bad.append(f"{name} crash-looping ({r.restarts} restarts, {r.hangs} for silence)")
        return "; ".join(bad)

    def run(self, tick: Callable[[], None] | None = None, interval: float = 0.1) -> None:
        """Supervise until a stop signal or a oneshot component finishes."""
        while self.poll():
            if tick is not None:
                tick()
            self.stopping.wait(interval)

    def request_stop(self, *_: Any) -> None:
        self.stopping.set()

    def shutdown(self) -> None:
        """Ask every component to stop, wait, then terminate/kill stragglers."""
        self.stopping.set()
        for r in self.running.values():
            if r.proc is not None and r.proc.is_alive() and not _within(r.stop.set, STOP_SET_TIMEOUT_S):
                # the stop flag's lock is held by the process itself (stopped, or killed while it
                # held it): it cannot be told to stop and is killed at the deadline
                log.warning("%s cannot be told to stop (its stop flag is locked)", r.spec.name)
        deadline = time.monotonic() + self.shutdown_timeout_s
        for r in self.running.values():
            if r.proc is not None:
                r.proc.join(max(0.0, deadline - time.monotonic()))
        for r in self.running.values():
            if r.proc is not None and r.proc.is_alive():
                log.warning("%s did not stop in %.0f s; killing it", r.spec.name, self.shutdown_timeout_s)
                r.killed_at_shutdown = True
                r.proc.kill()
                r.proc.join(2.0)
        root = logging.getLogger()
        if self._handler in root.handlers:
            root.removeHandler(self._handler)
            for h in self._displaced:
                root.addHandler(h)
        # a child killed while writing to the log queue leaves its write lock taken: the
        # listener's end-of-stream marker may then never arrive, and the run must still end
        _within(self.listener.stop, LISTENER_STOP_TIMEOUT_S)

    # ------------------------------------------------------------ status
    def status(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, r in self.running.items():
            alive = r.proc is not None and r.proc.is_alive()
            out[name] = {"alive": alive, "pid": r.proc.pid if r.proc is not None else None,
                         "restarts": r.restarts, "hangs": r.hangs, "finished": r.finished,
                         "last_exitcode": r.exitcode,
                         "uptime_s": round(time.monotonic() - r.started, 3) if alive else 0.0}
        return out
