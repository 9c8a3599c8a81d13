"""Server start-up: origins, a clear error when the port is taken, CLI exit codes."""
from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from alphapulse.dashboard.options import DashboardOptions
from alphapulse.dashboard.server import Dashboard, PortInUse, websocket_origins
from tests.dashboard.conftest import REPO


def test_websocket_origins():
    assert websocket_origins("127.0.0.1", 5006) == ["127.0.0.1:5006", "localhost:5006"]
    wide = websocket_origins("0.0.0.0", 80, ("desk.example:443",))
    assert "0.0.0.0:80" not in wide and "*" not in wide and "desk.example:443" in wide


def test_options_are_validated_naming_the_field():
    with pytest.raises(ValueError, match="dashboard.rate_limit_hz"):
        DashboardOptions(rate_limit_hz=0).validate()
    with pytest.raises(ValueError, match="dashboard.port"):
        DashboardOptions(port=70_000).validate()
    with pytest.raises(ValueError, match="dashboard.max_rows"):
        DashboardOptions(max_rows=0).validate()


def test_port_taken_is_a_clear_error_in_process_and_from_the_cli():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            Dashboard(DashboardOptions(port=port)).start()
        r = subprocess.run([sys.executable, "-m", "alphapulse.dashboard", "--port", str(port)],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert f"dashboard port 127.0.0.1:{port} is already in use" in r.stderr


def test_cli_bad_arguments_exit_2(tmp_path):
    r = subprocess.run([sys.executable, "-m", "alphapulse.dashboard", "--rate-limit", "0"],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "dashboard.rate_limit_hz" in r.stderr
    bad = tmp_path / "tokens.toml"
    bad.write_text('[[tokens]]\naddress = "0x1"\n')
    r = subprocess.run([sys.executable, "-m", "alphapulse.dashboard", "--tokens", str(bad)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "token 0 needs address, symbol and decimals" in r.stderr
