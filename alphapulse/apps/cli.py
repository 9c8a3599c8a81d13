"""Command line of ``python -m alphapulse.apps.pipeline``: flags -> config overrides."""
from __future__ import annotations

import argparse
from typing import Any

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2            # invalid config or flags
EXIT_PORT_IN_USE = 3
EXIT_RPC_UNREACHABLE = 4
EXIT_ANVIL_MISSING = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m alphapulse.apps.pipeline",
        description="AlphaPulse: ingest DEX events, find arbitrage, show it live. With no "
                    "arguments it replays the bundled recording of a simulated market, looping.",
        epilog="exit codes: 0 ok, 1 failure, 2 bad config/flags, 3 port in use, "
               "4 RPC unreachable, 5 anvil missing")
    p.add_argument("--config", metavar="TOML", help="configuration file (see --print-config)")
    p.add_argument("--print-config", action="store_true", help="print the effective configuration and exit")
    src = p.add_argument_group("source (default: the bundled recording)")
    src.add_argument("--source", choices=["replay", "local-chain", "rpc"], help="where market data comes from")
    src.add_argument("--rpc", action="append", metavar="WSS_URL",
                     help="live WebSocket JSON-RPC endpoint; repeat for failover (implies --source rpc)")
    src.add_argument("--replay", metavar="FILE", help="replay a recording (PROTOCOL.md section 6)")
    src.add_argument("--speed", metavar="S",
                     help="replay pace: 'recorded', 'max' (backtest: run to the end, summarise, exit) or a multiple")
    src.add_argument("--loop", action=argparse.BooleanOptionalAction, default=None,
                     help="replay: start over at the end")
    src.add_argument("--report", metavar="PATH", help="backtest: also write a JSON report")
    src.add_argument("--no-timings", action="store_true",
                     help="backtest: leave wall-clock figures out of the report (reports of one recording "
                          "then compare byte for byte)")
    p.add_argument("--record", metavar="DIR", help="record the market-data ring to journals in DIR")
    p.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    p.add_argument("--dashboard-port", type=int, metavar="PORT")
    p.add_argument("--ops-port", type=int, metavar="PORT", help="port of /health and /metrics (0 = any free)")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="stop cleanly after this many seconds (for demos and tests)")
    return p


def overrides_from_args(a: argparse.Namespace) -> dict[str, Any]:
    """Config overrides (a nested dict) for the flags that were given."""
    o: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: Any) -> None:
        if value is not None:
            o.setdefault(section, {})[key] = value

    if a.rpc:
        put("source", "kind", "rpc")
        put("source", "rpc_urls", list(a.rpc))
    if a.replay:
        put("source", "kind", "replay")
        put("source", "replay_file", a.replay)
        if a.loop is None:
            put("source", "loop", False)
    put("source", "kind", a.source)
    put("source", "speed", a.speed)
    put("source", "loop", a.loop)
    if a.record:
        put("recorder", "enabled", True)
        put("recorder", "directory", a.record)
    if a.no_dashboard:
        put("dashboard", "enabled", False)
    put("dashboard", "port", a.dashboard_port)
    put("ops", "port", a.ops_port)
    put("logging", "level", a.log_level)
    return o
