"""The simulated market behaves like one: a short seeded run, recorded through the web3 adapter
and backtested by the strategy, shows opportunities that are small next to the pools they
trade, absent from most blocks, and closed by the arbitrageurs within a few blocks."""
from __future__ import annotations

import io
import json
import statistics
from fractions import Fraction

from alphapulse.apps.backtest import run_backtest
from alphapulse.apps.config import load_config
from alphapulse.apps.make_recording import record
from alphapulse.chain.simulator import fee_gaps

BLOCKS = 40
SEED = 7


def test_a_short_seeded_run_is_a_believable_market(tmp_path):
    pool_usd: dict[int, dict[str, float]] = {}       # block -> pool -> USD value held
    gaps: dict[int, dict[frozenset, Fraction]] = {}  # block -> pair -> best two-pool edge after fees
    arbs = []

    def measure(sim, rep):
        m = sim.market
        values = {}
        for p in m.pools:
            values["0x" + p.address[2:].lower()] = sum(
                m.balance(p.address, t) / 10 ** m.token(t).decimals * sim.reference[t] for t in (p.token0, p.token1))
        pool_usd[rep.block_number] = values
        gaps[rep.block_number] = fee_gaps(m)
        arbs.extend(a for a in rep.actions if a.kind == "arb")

    journal, market_toml, _ = record(blocks=BLOCKS, seed=SEED, out_dir=tmp_path, txs_per_block=6, on_block=measure)
    cfg = load_config(None, environ={}, base=market_toml,
                      overrides={"source": {"kind": "replay", "replay_file": str(journal)}})
    out = io.StringIO()
    assert run_backtest(cfg, report=str(tmp_path / "report.json"), out=out) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    opps = report["opportunities"]
    blocks = sorted(pool_usd)
    assert len(blocks) == BLOCKS and arbs, "the arbitrageurs never traded"
    assert opps, f"a market with shocks shows some opportunity:\n{out.getvalue()}"

    # no opportunity's net profit above 2 % of the value of the smallest pool it trades
    for o in opps:
        if o["best_net_profit_usd_e8"] is None:
            continue
        smallest = min(pool_usd[o["first_block"]][p] for p in o["pools"])
        assert o["best_net_profit_usd_e8"] / 1e8 <= 0.02 * smallest, (o, smallest)

    # the median block has no opportunity (alive at any point of the block)
    last = blocks[-1]

    def alive(o, b):
        end = o["closed_block"] if o["closed_block"] is not None else last + 1
        return o["first_block"] <= b < max(end, o["first_block"] + 1)
    per_block = [sum(1 for o in opps if alive(o, b)) for b in blocks]
    assert statistics.median(per_block) == 0, per_block

    # the largest cross-pool price gap after fees closes within 5 blocks (so does every gap)
    worst_block, worst_pair = max(((b, k) for b in blocks for k in gaps[b]), key=lambda bk: gaps[bk[0]][bk[1]])
    assert gaps[worst_block][worst_pair] > 0, "no cross-pool gap ever opened"
    for b in blocks:
        for pair, edge in gaps[b].items():
            if edge > 0 and (b - 1 not in gaps or gaps[b - 1][pair] <= 0):     # a gap opens at b
                closed = [c for c in blocks if c > b and gaps[c][pair] <= 0]
                assert (closed and closed[0] - b <= 5) or last - b < 5, (b, pair, [float(gaps[c][pair]) for c in blocks if c >= b])
