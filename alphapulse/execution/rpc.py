"""A small JSON-RPC client over one keep-alive HTTP connection, with a timeout on every request.

The checker's round trip to the node is its largest cost; web3's provider stack adds ~1 ms of
middleware per request, this adds microseconds. Batches go in one request.
"""
from __future__ import annotations

import http.client
import json
import socket
from typing import Any
from urllib.parse import urlsplit


class RpcError(RuntimeError):
    """The node answered with a JSON-RPC error (``code``, ``message``, ``data``)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"RPC error {code}: {message}")
        self.code = code
        self.message = message
        self.data = data


class RpcUnavailable(RuntimeError):
    """The node did not answer in time, refused the connection, or answered garbage."""


class JsonRpc:
    def __init__(self, url: str, timeout_s: float = 2.0) -> None:
        u = urlsplit(url.replace("ws://", "http://").replace("wss://", "https://"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"not an http(s) JSON-RPC URL: {url!r}")
        self.url = url
        self._host, self._port = u.hostname, u.port
        self._https = u.scheme == "https"
        self._path = u.path or "/"
        self.timeout_s = timeout_s
        self._conn: http.client.HTTPConnection | None = None
        self._id = 0

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=self.timeout_s)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _post(self, body: bytes) -> Any:
        for attempt in (0, 1):   # a keep-alive connection the node closed is retried once
            conn = self._connection()
            try:
                conn.request("POST", self._path, body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                raw = resp.read()
                if resp.status != 200:
                    raise RpcUnavailable(f"{self.url}: HTTP {resp.status}")
                return json.loads(raw)
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                self.close()
                if attempt:
                    raise RpcUnavailable(f"{self.url}: {type(e).__name__}: {e}") from None
            except (socket.timeout, TimeoutError) as e:
                self.close()
                raise RpcUnavailable(f"{self.url}: no answer within {self.timeout_s:g} s") from e
            except (OSError, http.client.HTTPException, ValueError) as e:
                self.close()
                raise RpcUnavailable(f"{self.url}: {type(e).__name__}: {e}") from None
        raise AssertionError("unreachable")

    def call(self, method: str, params: list | None = None) -> Any:
        self._id += 1
        out = self._post(json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method,
                                     "params": params or []}).encode())
        return _result(out)

    def batch(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Results of several calls sent in one request, in order; an error is returned as an
        RpcError instance in its place (the others still count)."""
        base = self._id + 1
        self._id += len(calls)
        body = json.dumps([{"jsonrpc": "2.0", "id": base + i, "method": m, "params": p}
                           for i, (m, p) in enumerate(calls)]).encode()
        out = self._post(body)
        if not isinstance(out, list):
            _result(out)   # a whole-batch error
            raise RpcUnavailable(f"{self.url}: batch answered with {type(out).__name__}")
        by_id = {o.get("id"): o for o in out if isinstance(o, dict)}
        res: list[Any] = []
        for i in range(len(calls)):
            o = by_id.get(base + i)
            if o is None:
                raise RpcUnavailable(f"{self.url}: batch answer lacks id {base + i}")
            try:
                res.append(_result(o))
            except RpcError as e:
                res.append(e)
        return res


def _result(o: Any) -> Any:
    if not isinstance(o, dict):
        raise RpcUnavailable(f"malformed JSON-RPC answer: {type(o).__name__}")
    if "error" in o and o["error"] is not None:
        e = o["error"]
        raise RpcError(int(e.get("code", 0)), str(e.get("message", "")), e.get("data"))
    return o.get("result")
