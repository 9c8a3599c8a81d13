"""Local-chain toolkit speed: what tests and the local-chain pipeline source pay.

1. anvil start-up (binary -> eth_chainId answers), median of several starts;
2. deploy of the default market (tokens, 2 V2 venues, V3, pools, liquidity, funded traders);
3. swaps one at a time with automine (Router02 / SwapRouter, receipt awaited): swaps/s;
4. the market simulator, many txs per block (automine off + evm_mine): txs/s and blocks/s;
5. reading a V3 pool's full state (bitmap scan + ticks, JSON-RPC batches): ms per pool.

Usage: python perf/bench_chain.py [--quick] [--json]
With --json the last line is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alphapulse.chain.anvil import Anvil  # noqa: E402
from alphapulse.chain.deploy import deploy_market  # noqa: E402
from alphapulse.chain.simulator import MarketSimulator, SimulatorConfig  # noqa: E402
from alphapulse.protocol.layout import PoolKind  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (seconds, not a minute)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = ap.parse_args()
    n_starts, n_swaps, n_blocks = (3, 40, 20) if args.quick else (10, 300, 150)
    out: dict[str, float | int | str] = {"quick": args.quick}

    starts = []
    for _ in range(n_starts):
        t = time.perf_counter()
        node = Anvil().start()
        starts.append(time.perf_counter() - t)
        node.stop()
    out["anvil_start_ms_median"] = round(statistics.median(starts) * 1e3, 1)

    with Anvil() as node:
        t = time.perf_counter()
        market = deploy_market(node.http_url)
        out["deploy_s"] = round(time.perf_counter() - t, 3)
        out["deploy_blocks"] = node.block_number()
        out["pools"] = len(market.pools)

        v2 = [p for p in market.pools if p.kind == PoolKind.CONSTANT_PRODUCT]
        v3 = [p for p in market.pools if p.kind == PoolKind.CONCENTRATED]
        snap = node.snapshot()
        t = time.perf_counter()
        for i in range(n_swaps):
            pool = (v2 if i % 2 == 0 else v3)[i % 5]
            token_in = pool.token0 if i % 4 < 2 else pool.token1
            tok = market.token(token_in)   # 100 USD per swap: small against the pools' depth
            market.swap(pool, token_in, max(1, int(100 / market.usd_prices[tok.symbol] * 10**tok.decimals)))
        dt = time.perf_counter() - t
        out["automine_swaps_per_s"] = round(n_swaps / dt, 1)
        node.revert(snap)

        snap = node.snapshot()
        sim = MarketSimulator(market, SimulatorConfig(seed=1, txs_per_block=20))
        t = time.perf_counter()
        report = sim.run(n_blocks)
        dt = time.perf_counter() - t
        out["simulator_txs_per_s"] = round(report.txs / dt, 1)
        out["simulator_blocks_per_s"] = round(n_blocks / dt, 2)
        out["simulator_reverted_share"] = round(report.reverted / max(1, report.txs), 4)
        node.revert(snap)

        t = time.perf_counter()
        for pool in v3:
            market.v3_state(pool)
        out["v3_state_ms_per_pool"] = round((time.perf_counter() - t) / len(v3) * 1e3, 1)

    for k, v in out.items():
        print(f"{k:28s} {v}")
    if args.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
