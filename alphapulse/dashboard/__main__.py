"""``python -m alphapulse.dashboard``: a standalone dashboard on running rings.

Example (rings created by a running pipeline with prefix ``alphapulse_1234``)::

    python -m alphapulse.dashboard --signal-ring alphapulse_1234_signal \\
        --market-ring alphapulse_1234_market_data --metrics alphapulse_1234_metrics \\
        --tokens alphapulse/config/polygon.toml

Session ids are signed with the key in the environment variable BOKEH_SECRET_KEY (Bokeh's
own convention; at least 32 bytes), or with a random key made at start when it is unset.

Exit codes: 0 clean stop (SIGTERM, Ctrl-C), 2 bad arguments or token file, 3 port in use.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

from alphapulse.dashboard.options import DashboardOptions
from alphapulse.dashboard.server import Dashboard, PortInUse


def load_tokens(path: str) -> tuple[Any, ...]:
    """Token list from a TOML file (``[[chain.tokens]]`` of a pipeline config, or
    ``[[tokens]]``) or a JSON list of ``{"address", "symbol", "decimals"}``."""
    p = Path(path)
    raw = p.read_bytes()
    data: Any = json.loads(raw) if p.suffix == ".json" else tomllib.loads(raw.decode())
    if isinstance(data, dict):
        data = data.get("chain", {}).get("tokens", data.get("tokens"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: no token list ([[chain.tokens]], [[tokens]] or a JSON list)")
    out = []
    for i, t in enumerate(data):
        try:
            out.append((str(t["address"]), str(t["symbol"]), int(t["decimals"])))
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{path}: token {i} needs address, symbol and decimals") from None
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alphapulse.dashboard", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    d = DashboardOptions()
    ap.add_argument("--host", default=d.host, help="bind address (default %(default)s, loopback)")
    ap.add_argument("--port", type=int, default=d.port, help="default %(default)s")
    ap.add_argument("--rate-limit", type=float, default=d.rate_limit_hz, dest="rate_limit_hz",
                    help="max pushes per second per browser session (default %(default)s)")
    ap.add_argument("--signal-ring", help="ring name of the signal domain")
    ap.add_argument("--market-ring", help="ring name of the market-data domain")
    ap.add_argument("--execution-ring", help="ring name of the execution domain (signal checks, transactions)")
    ap.add_argument("--metrics", dest="metrics_block", help="metrics block name (alphapulse_...)")
    ap.add_argument("--tokens", help="token metadata file (TOML or JSON)")
    ap.add_argument("--allow-origin", action="append", default=[], dest="allow_origins",
                    help="extra websocket origin host:port (repeatable)")
    ap.add_argument("--log-level", default="INFO")
    a = ap.parse_args(argv)
    logging.basicConfig(level=a.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        tokens = load_tokens(a.tokens) if a.tokens else ()
        opts = DashboardOptions(host=a.host, port=a.port, rate_limit_hz=a.rate_limit_hz,
                                signal_ring=a.signal_ring, market_ring=a.market_ring,
                                execution_ring=a.execution_ring,
                                metrics_block=a.metrics_block, tokens=tokens,
                                allow_origins=tuple(a.allow_origins),
                                secret_key=os.environ.get("BOKEH_SECRET_KEY", "")).validate()
        dash = Dashboard(opts)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        dash.serve_forever(stop)
    except PortInUse as e:
        print(f"error: {e.strerror}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
