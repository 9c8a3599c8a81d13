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
