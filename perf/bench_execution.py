"""Signal check latency on the local chain (anvil, real Uniswap V2/V3 bytecode), per method.

Each check executes a cycle with ArbExecutor.quote on the newest state:
* ``eth_call``: one batched request (eth_blockNumber, eth_call with a state override, gas price,
  eth_blockNumber) to the node;
* ``revm``: pyrevm forked from the node at the newest block, accounts cached per block; a check is
  one request for the newest header plus the in-process execution. Reported as: a check in a known
  block (``revm``), the in-process execution alone (``revm_exec``), the first check of a new block
  prepared by ``update()`` when the block arrived (``revm_new_block``: the fork made and the recent
  cycles re-executed before the check), ``update()``'s own cost per block (``revm_update``: off
  the check's path; it warms every cycle checked so far, up to ``warm_cycles``), and the first
  check of a new block no update prepared (``revm_new_block_refork``: the check forks and re-reads
  every touched account and slot itself).
The node round trip alone (``eth_blockNumber`` over the same keep-alive connection) is ``node_rtt``.

Cycles: 2 hops V2-V2, V2-V3, V3-V3; 3 hops V2 only and with a V3 pool (USDC in, $1,000).

Usage: python perf/bench_execution.py [--quick] [--json]
With --json the last line is one JSON object with every figure (microseconds), the host's load
average (``load_1min``) and the target's verdict: ``revm_new_block_p99_max_us`` (the worst shape)
and ``target_new_block_p99_under_5ms``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alphapulse.chain.anvil import Anvil  # noqa: E402
from alphapulse.chain.deploy import deploy_market  # noqa: E402
from alphapulse.execution.checker import EthCallMethod, RevmMethod  # noqa: E402
from alphapulse.execution.cycle import CHECK_CALLER, CHECK_EXECUTOR, CHECK_GAS_LIMIT, Hop, quote_calldata  # noqa: E402
from alphapulse.protocol.layout import PoolKind, Venue  # noqa: E402

Q, S = Venue.QUICKSWAP, Venue.SUSHISWAP_POLYGON


def cycles(mk) -> dict[str, list[tuple]]:
    """shape -> [(pool, token_in, token_out)] (USDC in and out)."""
    v2, v3 = mk.v2_pool, mk.v3_pool
    return {
        "2hop_v2_v2": [(v2("WETH", "USDC", Q), "USDC", "WETH"), (v2("WETH", "USDC", S), "WETH", "USDC")],
        "2hop_v2_v3": [(v2("WETH", "USDC", Q), "USDC", "WETH"), (v3("WETH", "USDC", 500), "WETH", "USDC")],
        "2hop_v3_v3": [(v3("WETH", "USDC", 3000), "USDC", "WETH"), (v3("WETH", "USDC", 500), "WETH", "USDC")],
        "3hop_v2": [(v2("WBTC", "USDC", Q), "USDC", "WBTC"), (v2("WBTC", "WETH", Q), "WBTC", "WETH"),
                    (v2("WETH", "USDC", S), "WETH", "USDC")],
        "3hop_v2_v3": [(v2("WBTC", "USDC", Q), "USDC", "WBTC"), (v2("WBTC", "WETH", S), "WBTC", "WETH"),
                       (v3("WETH", "USDC", 500), "WETH", "USDC")],
    }


def hops_of(mk, path) -> list[Hop]:
    out = []
    for pool, a, b in path:
        out.append(Hop(pool.address, int(pool.kind), mk.tokens[a].address, mk.tokens[b].address,
                       int(pool.fee_pips) if pool.kind == PoolKind.CONSTANT_PRODUCT else 0))
    return out


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def summary(ns: list[int]) -> dict[str, float]:
    us = [x / 1e3 for x in ns]
    return {"p50_us": round(statistics.median(us), 1), "p99_us": round(pct(us, 0.99), 1), "n": len(us)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (seconds, not a minute)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = ap.parse_args()
    n, n_blocks = (60, 20) if args.quick else (600, 100)
    out: dict = {"quick": args.quick, "checks_per_cycle": n, "new_blocks_per_cycle": n_blocks,
                 "load_1min": round(os.getloadavg()[0], 2)}
    with Anvil() as node:
        mk = deploy_market(node.http_url)
        amount_in = 1_000 * 10**6
        eth, revm = EthCallMethod(node.http_url), RevmMethod(node.http_url)
        lazy = RevmMethod(node.http_url, warm_cycles=0)   # each new block forked by the check
        out["warm_cycles"] = revm.warm_cycles
        rtt = []
        for _ in range(n):
            t = time.perf_counter_ns()
            eth.rpc.call("eth_blockNumber")
            rtt.append(time.perf_counter_ns() - t)
        out["node_rtt"] = summary(rtt)
        for shape, path in cycles(mk).items():
            hops = hops_of(mk, path)
            ref = eth.run(hops, amount_in)
            assert not ref.reverted, (shape, ref)
            row: dict = {}
            for name, m in (("eth_call", eth), ("revm", revm)):
                m.run(hops, amount_in)   # warm: connection, fork, first touch
                ts = []
                for _ in range(n):
                    t = time.perf_counter_ns()
                    ex = m.run(hops, amount_in)
                    ts.append(time.perf_counter_ns() - t)
                    assert ex.amount_out == ref.amount_out, (shape, name, ex, ref)   # exact, both methods
                row[name] = summary(ts)
            data = quote_calldata(hops, amount_in)
            ts = []
            for _ in range(n):
                t = time.perf_counter_ns()
                mark = revm.evm.snapshot()
                revm.evm.message_call(CHECK_CALLER, CHECK_EXECUTOR, data, gas=CHECK_GAS_LIMIT)
                revm.evm.revert(mark)
                ts.append(time.perf_counter_ns() - t)
            row["revm_exec"] = summary(ts)
            lazy.run(hops, amount_in)
            ts, ups, refork = [], [], []
            for _ in range(n_blocks):
                node.mine(1)
                t = time.perf_counter_ns()
                assert revm.update()                 # when the block arrives
                ups.append(time.perf_counter_ns() - t)
                t = time.perf_counter_ns()
                ex = revm.run(hops, amount_in)       # the first check of the block
                ts.append(time.perf_counter_ns() - t)
                assert ex.amount_out == ref.amount_out and ex.block == revm.block
                t = time.perf_counter_ns()
                ex = lazy.run(hops, amount_in)       # the first check of the block, forking itself
                refork.append(time.perf_counter_ns() - t)
                assert ex.amount_out == ref.amount_out and ex.block == revm.block
            row["revm_new_block"] = summary(ts)
            row["revm_update"] = summary(ups)
            row["revm_new_block_refork"] = summary(refork)
            row["gas_used"] = ref.gas_used
            out[shape] = row
        eth.close()
        revm.close()
        lazy.close()
    shapes = [k for k in out if k.startswith(("2hop", "3hop"))]
    out["revm_new_block_p99_max_us"] = max(out[k]["revm_new_block"]["p99_us"] for k in shapes)
    out["target_new_block_p99_under_5ms"] = out["revm_new_block_p99_max_us"] < 5_000
    if not args.json:
        print(f"load {out['load_1min']}; node round trip: p50 {out['node_rtt']['p50_us']} us, "
              f"p99 {out['node_rtt']['p99_us']} us")
        for shape in shapes:
            r = out[shape]
            print(f"{shape:12s} gas {r['gas_used']:>7,}")
            for m in ("eth_call", "revm", "revm_exec", "revm_new_block", "revm_update", "revm_new_block_refork"):
                print(f"    {m:22s} p50 {r[m]['p50_us']:>9.1f} us  p99 {r[m]['p99_us']:>9.1f} us")
        print(f"first check of a new block, worst shape p99: {out['revm_new_block_p99_max_us']} us "
              f"(target < 5 ms: {'met' if out['target_new_block_p99_under_5ms'] else 'NOT met'})")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
