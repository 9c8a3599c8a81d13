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


KEY = "k" * 16 + "3y-of-the-test-0123456789"          # >= 32 bytes
PULL = ("import sys\nfrom bokeh.client import pull_session\n"
        "s = pull_session(url=sys.argv[1])\nprint('roots', len(s.document.roots))\ns.close()\n")


def _get(url: str) -> int:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def _pull(url: str, key: str | None) -> subprocess.CompletedProcess:
    """A Bokeh client session from another process: it signs its session id and token with
    ``key`` (Bokeh reads BOKEH_SECRET_KEY / BOKEH_SIGN_SESSIONS from its environment)."""
    import os
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOKEH_")}
    if key is not None:
        env.update(BOKEH_SECRET_KEY=key, BOKEH_SIGN_SESSIONS="true")
    return subprocess.run([sys.executable, "-c", PULL, url], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_session_ids_are_signed_a_forged_one_is_refused():
    from bokeh.util.token import generate_session_id
    dash = Dashboard(DashboardOptions(port=0, secret_key=KEY)).start()
    try:
        url = dash.url
        assert _get(url) == 200                                          # the page signs its own id
        assert _get(url + "?bokeh-session-id=forged") == 403
        other = generate_session_id(secret_key=("x" * 40).encode(), signed=True)
        assert _get(url + f"?bokeh-session-id={other}") == 403
        mine = generate_session_id(secret_key=KEY.encode(), signed=True)
        assert _get(url + f"?bokeh-session-id={mine}") == 200
        ok = _pull(url, KEY)
        assert ok.returncode == 0 and "roots" in ok.stdout, ok.stderr[-2000:]
        for key in (None, "w" * 40):                                     # unsigned, wrongly signed
            r = _pull(url, key)
            assert r.returncode != 0 and "roots" not in r.stdout, r.stdout
    finally:
        dash.stop()


def test_without_a_configured_key_one_is_made_at_start_and_never_shown():
    dash = Dashboard(DashboardOptions(port=0)).start()
    try:
        assert _get(dash.url) == 200
        assert _get(dash.url + "?bokeh-session-id=forged") == 403
        r = _pull(dash.url, None)
        assert r.returncode != 0 and "roots" not in r.stdout
    finally:
        dash.stop()
    assert KEY not in repr(DashboardOptions(secret_key=KEY))
    with pytest.raises(ValueError, match="dashboard.secret_key"):
        DashboardOptions(secret_key="short").validate()
