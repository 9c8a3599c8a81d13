"""Planted credentials in the RPC URLs of a running live pipeline never come out.

A real anvil with the Uniswap market; the pipeline in ``rpc`` mode reaches it through
``ws://alice:PLANTED_PASS@127.0.0.1:PORT/v3/PLANTED_PATH_KEY`` (the source) and
``http://127.0.0.1:PORT/?apikey=PLANTED_QUERY`` (the execution component's checks). anvil
ignores user info and query but answers only on ``/``; the WebSocket URL goes through
:class:`Gateway`, which does what a provider's gateway does with a key in the path and basic
auth: refuses a request without them (401) and passes it on to the node. The run logs at DEBUG
(third-party clients' records included). Once a swap has given market frames, a signal and an
execution check through the HTTP endpoint, every place that prints the URLs is collected (every process's output, ``/health``,
``/metrics``, the dashboard's page and its Bokeh document, ``--print-config``) and searched for the
planted strings; the host and port, which the mask keeps, must be there (so the search does look
at text that names the endpoints)."""
import base64
import os
import socket
import subprocess
import sys
import threading
import urllib.request
import uuid

from tests.apps.pipeline_helpers import REPO, PipelineProcess

PASS = "PLANTED_PASS_123"
PATH_KEY = "PLANTED_PATH_KEY_456"
QUERY_KEY = "PLANTED_QUERY_789"
BASIC = base64.b64encode(f"alice:{PASS}".encode()).decode()     # what the handshake sends
PLANTED = (PASS, PATH_KEY, QUERY_KEY, BASIC)


class Gateway:
    """A provider's WebSocket gateway in front of anvil: the upgrade request must be
    ``GET /v3/PATH_KEY`` with ``Authorization: Basic alice:PASS``, else 401; it then reaches the
    node as ``GET /`` and the bytes are relayed both ways."""

    def __init__(self, node_port: int) -> None:
        self.node_port = node_port
        self.accepted = self.refused = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:                     # closed
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(4096)
            if not chunk:
                conn.close()
                return
            head += chunk
        first, rest = head.split(b"\r\n", 1)
        if first != f"GET /v3/{PATH_KEY} HTTP/1.1".encode() or f"Authorization: Basic {BASIC}\r\n".encode() not in rest:
            self.refused += 1
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            conn.close()
            return
        self.accepted += 1
        up = socket.create_connection(("127.0.0.1", self.node_port))
        up.sendall(b"GET / HTTP/1.1\r\n" + rest)

        def pipe(a: socket.socket, b: socket.socket) -> None:
            try:
                while data := a.recv(65536):
                    b.sendall(data)
            except OSError:
                pass
            finally:
                for s in (a, b):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        threading.Thread(target=pipe, args=(up, conn), daemon=True).start()
        pipe(conn, up)

    def close(self) -> None:
        self.sock.close()


def _config(tmp_path, anvil, market, gateway: Gateway) -> tuple:
    from alphapulse.apps.config import ChainConfig
    from alphapulse.apps.make_recording import market_toml
    from alphapulse.apps.pipeline import market_chain_config
    port = anvil.port
    ws = f"ws://alice:{PASS}@127.0.0.1:{gateway.port}/v3/{PATH_KEY}"
    http = f"http://127.0.0.1:{port}/?apikey={QUERY_KEY}"
    chain = market_chain_config(ChainConfig(chain_id=anvil.chain_id), market)
    toml = market_toml(chain).replace(
        "[chain]\n", f'[chain]\npool_cache = "{tmp_path / "pools.sqlite"}"\n', 1)
    toml += f'\n[source]\nkind = "rpc"\nrpc_urls = ["{ws}"]\n\n[execution]\nrpc_url = "{http}"\n'
    cfg = tmp_path / "live.toml"
    cfg.write_text(toml)
    return cfg, ws, http


_PULL = """
import json, sys
from bokeh.client import pull_session
session = pull_session(url=sys.argv[1])
# Serialized wrappers by their content; binary buffers (numeric columns) by their repr
print(json.dumps(session.document.to_json(), default=lambda o: getattr(o, "content", repr(o))))
session.close()
"""


def _bokeh_document(url: str, key: str) -> str:
    """The dashboard's Bokeh document as a client pulls it, as JSON text. A process of its own:
    Bokeh reads the session-signing key from the environment once per process."""
    r = subprocess.run([sys.executable, "-c", _PULL, url], cwd=REPO, capture_output=True, text=True,
                       timeout=60, env={**os.environ, "BOKEH_SECRET_KEY": key, "BOKEH_SIGN_SESSIONS": "true"})
    assert r.returncode == 0 and r.stdout.strip(), f"could not pull the dashboard's document: {r.stderr[-2000:]}"
    return r.stdout


def test_planted_rpc_credentials_never_leave_a_running_live_pipeline(tmp_path, anvil, market):
    from alphapulse.protocol.layout import Venue
    gateway = Gateway(anvil.port)
    cfg, ws, http = _config(tmp_path, anvil, market, gateway)
    key = uuid.uuid4().hex + uuid.uuid4().hex
    p = PipelineProcess("--config", str(cfg), "--log-level", "DEBUG",   # third-party clients' records too
                        env={"ALPHAPULSE__DASHBOARD__SECRET_KEY": f'"{key}"'})
    texts: dict[str, str] = {}
    try:
        p.wait_for(lambda: p.metric("alphapulse_rpc_connected", "source") == 1, 60, "adapter connected")
        # every component up (a cold strategy compiles its kernels first: minutes on a loaded host,
        # seconds from Numba's cache), so that the run ends as cleanly as it would in production
        p.wait_for(lambda: (p.health() or {}).get("ready"), 480, "ready")
        pair = market.pools_for("WMATIC", "USDC")
        for pool in pair:                        # first sight: the source snapshots each pool
            market.move_price(pool, 1.0005)
        p.wait_for(lambda: p.metric("alphapulse_pools", "source") >= len(pair), 30, "pools snapshotted")
        frames = p.metric("alphapulse_frames_out_total", "source")
        market.move_price(market.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP), 1.015)
        p.wait_for(lambda: p.metric("alphapulse_frames_out_total", "source") > frames, 20,
                   "market frames after the swap")
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > 0, 30, "a signal")
        p.wait_for(lambda: p.metric("alphapulse_checks_total", "execution") > 0, 30,
                   "a check by eth_call through the query-key HTTP endpoint")
        texts["/health"] = p.get("/health")[1]
        texts["/metrics"] = p.get("/metrics")[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{p.dash_port}/", timeout=10) as r:
            texts["dashboard page"] = r.read().decode()
        texts["dashboard document"] = _bokeh_document(f"http://127.0.0.1:{p.dash_port}/", key)
    finally:
        code = p.stop()
        gateway.close()
    assert gateway.accepted > 0 and gateway.refused == 0   # the credentials did reach the gateway
    texts["pipeline output"] = p.output()
    r = subprocess.run([sys.executable, "-m", "alphapulse.apps.pipeline", "--config", str(cfg),
                        "--print-config"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    texts["--print-config"] = r.stdout + r.stderr
    assert code == 0, texts["pipeline output"][-3000:]

    for where, text in texts.items():
        for s in PLANTED:
            assert s not in text, f"{s} leaked in {where}:\n" + "\n".join(
                ln for ln in text.splitlines() if s in ln)[:3000]
    # the search looks at text that names the endpoints: the mask keeps scheme, host and port
    ws_host, http_host = f"127.0.0.1:{gateway.port}", f"127.0.0.1:{anvil.port}"
    assert f"ws://***@{ws_host}/***" in texts["--print-config"]
    assert f"http://{http_host}/***" in texts["--print-config"]
    assert f"ws://***@{ws_host}/***" in texts["pipeline output"], texts["pipeline output"][-3000:]
    assert f"http://{http_host}/***" in texts["pipeline output"]
    # websockets' DEBUG records of the handshake (path and basic auth) were printed, masked
    assert "> GET /*** HTTP/1.1" in texts["pipeline output"]
    assert "> Authorization: ***" in texts["pipeline output"]
