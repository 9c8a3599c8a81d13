"""Ops endpoints over real HTTP on loopback."""
import json
import socket
import urllib.error
import urllib.request

import pytest

from alphapulse.apps.ops import OpsServer, PortInUse


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_health_and_metrics():
    state = {"ready": False}
    srv = OpsServer("127.0.0.1", 0, lambda: {"live": True, "ready": state["ready"], "components": {}},
                    lambda: "# TYPE x counter\nx 3\n").start()
    try:
        host, port = srv.address
        code, body = _get(f"http://{host}:{port}/health")
        assert code == 503 and json.loads(body)["live"] is True
        state["ready"] = True
        assert _get(f"http://{host}:{port}/health")[0] == 200
        code, body = _get(f"http://{host}:{port}/metrics")
        assert code == 200 and "x 3" in body
        assert _get(f"http://{host}:{port}/nope")[0] == 404
    finally:
        srv.stop()


def test_port_in_use_is_a_clear_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        with pytest.raises(PortInUse, match=f"127.0.0.1:{s.getsockname()[1]} is already in use"):
            OpsServer("127.0.0.1", s.getsockname()[1], dict, str)
    finally:
        s.close()


def _raw(host, port, request: bytes, timeout=5.0) -> bytes:
    with socket.create_connection((host, port), timeout=timeout) as c:
        c.sendall(request)
        out = b""
        while chunk := c.recv(65536):
            out += chunk
        return out


@pytest.fixture
def ops():
    srv = OpsServer("127.0.0.1", 0, lambda: {"live": True, "ready": True, "components": {}}, lambda: "x 1\n",
                    timeout_s=0.5, max_connections=4).start()
    yield srv
    srv.stop()


def test_a_foreign_host_header_is_refused(ops):
    host, port = ops.address
    for h in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LOCALHOST"):
        assert _raw(host, port, f"GET /health HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n".encode()
                    ).startswith(b"HTTP/1.0 200"), h
    for h in (f"evil.example:{port}", "attacker.test", f"127.0.0.2:{port}"):
        got = _raw(host, port, f"GET /metrics HTTP/1.1\r\nHost: {h}\r\nConnection: close\r\n\r\n".encode())
        assert got.startswith(b"HTTP/1.0 421") and b"x 1" not in got, h
    assert ops.refused_hosts == 3


def test_half_open_connections_time_out_and_are_bounded(ops):
    """12 clients that connect and send nothing: at most 4 (the bound) are served at once, each
    timing out after 0.5 s, the ones beyond the bound are closed at once; every socket ends
    closed and the server still answers."""
    import time
    host, port = ops.address
    idle = [socket.create_connection((host, port), timeout=5) for _ in range(12)]
    try:
        t0 = time.monotonic()
        for c in idle:
            assert c.recv(1024) == b""                     # closed by the server
        assert time.monotonic() - t0 < 4.0
        assert ops.refused_connections >= 1                # more than the bound at once: closed
    finally:
        for c in idle:
            c.close()
    assert _get(f"http://{host}:{port}/health")[0] == 200
