"""A living local market in one command: anvil + Uniswap V2/V3 market + seeded simulator.

    python -m alphapulse.chain [--seed 1] [--block-interval 0.5] [--txs-per-block 8]
                               [--blocks N | --duration S] [--port P] [--market-json PATH]
                               [--genesis-timestamp T --timestamp-interval S]

Prints one JSON line ``{"http_url", "ws_url", "chain_id", "market": Market.to_dict()}`` once the
market is deployed (also written to ``--market-json``), then one status line per 10 blocks on
stderr; runs until the block/duration budget is spent or SIGINT/SIGTERM. Exit codes: 0 done,
3 anvil not installed (the message names the install command).
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alphapulse.chain", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--txs-per-block", type=int, default=8)
    ap.add_argument("--block-interval", type=float, default=0.5, help="seconds per block (0: as fast as possible)")
    ap.add_argument("--blocks", type=int, default=None, help="stop after this many simulated blocks")
    ap.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    ap.add_argument("--port", type=int, default=None, help="fixed port (default: a free one)")
    ap.add_argument("--chain-id", type=int, default=137)
    ap.add_argument("--market-json", type=Path, default=None)
    ap.add_argument("--genesis-timestamp", type=int, default=None)
    ap.add_argument("--timestamp-interval", type=int, default=None, help="block timestamp step in seconds")
    args = ap.parse_args(argv)

    from alphapulse.chain.anvil import Anvil, AnvilNotFound
    from alphapulse.chain.deploy import deploy_market
    from alphapulse.chain.simulator import MarketSimulator, SimulatorConfig

    try:
        node = Anvil(chain_id=args.chain_id, port=args.port, genesis_timestamp=args.genesis_timestamp)
    except AnvilNotFound as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    with node:
        if args.timestamp_interval:
            node.set_block_timestamp_interval(args.timestamp_interval)
        market = deploy_market(node.http_url)
        info = {"http_url": node.http_url, "ws_url": node.ws_url, "chain_id": args.chain_id,
                "market": market.to_dict()}
        if args.market_json:
            args.market_json.write_text(json.dumps(info, indent=1))
        print(json.dumps(info), flush=True)

        sim = MarketSimulator(market, SimulatorConfig(seed=args.seed, txs_per_block=args.txs_per_block,
                                                      block_interval_s=args.block_interval or None))
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: sim.stop())

        def status(block) -> None:
            if block.block_number % 10 == 0:
                print(f"block {block.block_number}: {block.txs} txs, {block.reverted} reverted",
                      file=sys.stderr, flush=True)

        report = sim.run(args.blocks, duration_s=args.duration, on_block=status)
        print(f"done: {report.n_blocks} blocks, {report.txs} txs, {report.reverted} reverted",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
