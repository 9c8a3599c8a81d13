"""URL secrets (credentials, API keys in paths) never reach a log stream or the terminal."""
import io
import logging

import pytest

from alphapulse import redact
from alphapulse.apps.supervisor import ComponentSpec, Supervisor

KEY = "k3yS3CRET0123456789"


@pytest.mark.parametrize("url,shown", [
    (f"wss://user:{KEY}@rpc.example.com:8546/v3/{KEY}", "wss://***@rpc.example.com:8546/***"),
    (f"wss://polygon.example.com/v2/{KEY}", "wss://polygon.example.com/***"),
    (f"https://host:443/?apikey={KEY}", "https://host:443/***"),
    ("ws://127.0.0.1:8545", "ws://127.0.0.1:8545"),
    ("http://127.0.0.1:5006/", "http://127.0.0.1:5006/"),
])
def test_mask_urls_keeps_scheme_host_and_port_only(url, shown):
    assert redact.mask_urls(f"endpoint {url}: TimeoutError") == f"endpoint {shown}: TimeoutError"
    assert redact.mask_urls(f"got {url!r}") == f"got {shown!r}"


def test_third_party_records_and_tracebacks_are_masked_in_the_supervisor_stream():
    stream = io.StringIO()
    sup = Supervisor([], log_stream=stream)
    with sup:
        url = f"wss://u:{KEY}@rpc.example.com/v3/{KEY}"
        logging.getLogger("web3.providers.WebSocketProvider").warning("connecting to %s", url)
        try:
            raise ConnectionError(f"cannot reach {url}")
        except ConnectionError:
            logging.getLogger("websockets.client").exception("failed")
    out = stream.getvalue()
    assert "rpc.example.com" in out and "ConnectionError" in out
    assert KEY not in out


@pytest.mark.parametrize("line, shown", [
    ("> GET /v3/KEY123 HTTP/1.1", "> GET /*** HTTP/1.1"),
    ("> GET / HTTP/1.1", "> GET / HTTP/1.1"),
    ('http://h:1 "POST /?apikey=KEY123 HTTP/1.1" 200 None', 'http://h:1 "POST /*** HTTP/1.1" 200 None'),
    ("> Authorization: Basic S0VZMTIz", "> Authorization: ***"),
    ("headers {'Authorization': 'Bearer KEY123', 'n': 1}", "headers {'Authorization': '***', 'n': 1}"),
    ("x-api-key: ***", "x-api-key: ***"),
    ("HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /v3/KEY123?apikey=KEY123 (Caused",
     "HTTPConnectionPool(host='h', port=1): Max retries exceeded with url: /*** (Caused"),
])
def test_request_lines_and_auth_headers_are_masked(line, shown):
    assert redact.redact(line) == shown


def test_http_clients_debug_records_of_a_credentialed_request_are_masked(anvil):
    """websockets' handshake (request line, Authorization: Basic) and urllib3's request line, logged
    at DEBUG by the real clients talking to a real node, reach a redacting handler masked."""
    import asyncio
    import base64

    import websockets
    from web3 import HTTPProvider, Web3
    key, pw = "PLANTEDq1", "PLANTEDp2"
    stream = io.StringIO()
    handler = redact.install(logging.StreamHandler(stream))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        async def handshake():
            async with websockets.connect(f"ws://alice:{pw}@127.0.0.1:{anvil.port}/?key={key}") as ws:
                await ws.send('{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}')
                return await ws.recv()
        assert "result" in asyncio.run(handshake())
        assert Web3(HTTPProvider(f"http://127.0.0.1:{anvil.port}/?apikey={key}")).eth.chain_id == anvil.chain_id
        from tests.apps.pipeline_helpers import free_port
        try:                                    # nothing listens there: urllib3's error names the path
            Web3(HTTPProvider(f"http://127.0.0.1:{free_port()}/v3/{key}")).eth.chain_id
        except Exception:
            logging.getLogger("alphapulse.test").exception("check failed")
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    out = stream.getvalue()
    assert "> GET /*** HTTP/1.1" in out and "Authorization: ***" in out, out  # the records were there
    assert '"POST /*** HTTP/1.1"' in out and "with url: /***" in out, out
    basic = base64.b64encode(f"alice:{pw}".encode()).decode()
    for s in (key, pw, basic):
        assert s not in out, out
