"""Run a local ``nats-server -js`` (Debian package ``nats-server``) on loopback.

Used by the bridge tests and ``perf/bench_bridge.py``, and handy for a
single-machine demo of a bridged pipeline. The server binds 127.0.0.1 only,
keeps its JetStream store in ``store_dir`` and can be killed and restarted on
the same port with the same store (that is how the tests cut the network).
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class NatsServerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_binary() -> str:
    path = shutil.which("nats-server") or ("/usr/sbin/nats-server" if os.access("/usr/sbin/nats-server", os.X_OK) else None)
    if not path:
        raise NatsServerError("nats-server not found: install it with `apt-get install nats-server` "
                              "(scripts/install.sh --test does)")
    return path


class NatsServer:
    """A child ``nats-server -js`` process on 127.0.0.1:``port``.

    ``start()`` waits until the port accepts connections; ``kill()`` sends
    SIGKILL (no graceful shutdown), ``stop()`` SIGTERM; ``start()`` again reuses
    the port and the store. Context manager: stops and removes a temporary store.
    """

    def __init__(self, port: int | None = None, store_dir: str | Path | None = None,
                 max_payload: int | None = None) -> None:
        self.binary = find_binary()
        self.port = port or free_port()
        self._tmp = None if store_dir else tempfile.mkdtemp(prefix="alphapulse-nats-")
        self.store_dir = Path(store_dir or self._tmp)
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self.max_payload = max_payload
        self.proc: subprocess.Popen | None = None
        self.log_path = self.store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> "NatsServer":
        if self.proc and self.proc.poll() is None:
            return self
        args = [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port),
                "-sd", str(self.store_dir), "-l", str(self.log_path)]
        conf = self.store_dir / "nats-server.conf"
        if self.max_payload:
            conf.write_text(f"max_payload: {int(self.max_payload)}\n")
            args += ["-c", str(conf)]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
                raise NatsServerError(f"nats-server exited with {self.proc.returncode}: {err}{log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    pass
                if self.log_path.exists() and "Server is ready" in self.log_path.read_text(errors="replace"):
                    return self
            except OSError:
                pass
            time.sleep(0.02)
        self.stop()
        raise NatsServerError(f"nats-server did not become ready on port {self.port} within {timeout}s")

    def _signal(self, sig: int, timeout: float) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        # The next start() appends to the same log; a fresh "ready" line is what it waits for.
        if self.log_path.exists():
            self.log_path.rename(self.log_path.with_suffix(f".{time.time_ns()}.log"))

    def kill(self) -> None:
        """SIGKILL: the server dies without flushing or saying goodbye."""
        self._signal(signal.SIGKILL, 5.0)

    def stop(self) -> None:
        """SIGTERM: a clean shutdown."""
        self._signal(signal.SIGTERM, 10.0)

    def __enter__(self) -> "NatsServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
