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
