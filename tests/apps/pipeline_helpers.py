"""Run the real pipeline command in a subprocess and talk to it over its ops endpoints."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PipelineProcess:
    """``python -m alphapulse.apps.pipeline ARGS`` with free ports and a unique ring prefix."""

    def __init__(self, *args: str, env: dict | None = None, dashboard: bool = True) -> None:
        self.prefix = "t" + uuid.uuid4().hex[:8]
        self.ops_port = free_port()
        self.dash_port = free_port()
        full = [sys.executable, "-m", "alphapulse.apps.pipeline", "--ops-port", str(self.ops_port)]
        full += ["--dashboard-port", str(self.dash_port)] if dashboard else ["--no-dashboard"]
        full += list(args)
        e = {**os.environ, "ALPHAPULSE__RINGS__PREFIX": self.prefix, **(env or {})}
        self.log_path = Path(f"/tmp/alphapulse-test-{self.prefix}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(full, cwd=REPO, env=e, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self) -> str:
        if not self.log.closed:          # stop() closes it; the file stays readable
            self.log.flush()
        return self.log_path.read_text()

    def get(self, path: str):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.ops_port}{path}", timeout=5) as r:
                body = r.read().decode()
                return r.status, body
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def health(self) -> dict | None:
        try:
            return json.loads(self.get("/health")[1])
        except (OSError, ValueError):
            return None

    def metric(self, name: str, component: str) -> float:
        try:
            _, text = self.get("/metrics")
        except OSError:
            return -1.0
        needle = f'{name}{{component="{component}"}} '
        for line in text.splitlines():
            if line.startswith(needle):
                return float(line[len(needle):])
        return -1.0

    def wait_for(self, pred, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"pipeline exited {self.proc.returncode} while waiting for {what}:\n"
                                     + self.output()[-4000:])
            v = pred()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}:\n" + self.output()[-4000:])

    def segments(self) -> list[str]:
        return [n for n in os.listdir("/dev/shm") if self.prefix in n]

    def stop(self, sig=signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
