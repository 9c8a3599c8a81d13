"""The simulated market behaves like one: a short seeded run, recorded through the web3 adapter
and backtested by the strategy, shows opportunities that are small next to the pools they
trade, absent from most blocks, and closed by the arbitrageurs within a few blocks."""
from __future__ import annotations

from fractions import Fraction

from alphapulse.apps.make_recording import measure_market, record
from alphapulse.chain.market_stats import MarketProbe, gap_spans

BLOCKS = 40
SEED = 7


def test_a_short_seeded_run_is_a_believable_market(tmp_path):
    probe = MarketProbe()
    journal, market_toml, _ = record(blocks=BLOCKS, seed=SEED, out_dir=tmp_path, txs_per_block=6, on_block=probe)
    f = measure_market(journal, market_toml, probe, tmp_path)
    assert f["blocks"] == BLOCKS and f["arbs"], "the arbitrageurs never traded"
    assert f["opportunities"], "a market with shocks shows some opportunity"
    # no opportunity's net profit above 2 % of the value of the smallest pool it trades
    assert f["max_net_share"] <= 0.02, f["worst_share"]
    # the median block has no opportunity (alive at any point of the block)
    assert f["median_open"] == 0, f
    # the largest cross-pool price gap after fees closes within 5 blocks (so does every gap)
    assert f["gaps"], "no cross-pool gap ever opened"
    assert f["longest_gap_blocks"] <= 5, (f["worst_gap"], f["gap_blocks_histogram"])


def test_gap_spans_run_from_opening_to_the_first_closed_block():
    a, b = frozenset(("A", "B")), frozenset(("A", "C"))
    up, down = Fraction(1, 100), Fraction(-1, 100)
    gaps = {10: {a: down, b: up}, 11: {a: up, b: up}, 12: {a: Fraction(2, 100), b: down},
            13: {a: down, b: down}, 14: {a: up, b: down}}
    spans = gap_spans(gaps)
    assert [(s.pair, s.opened, s.closed, s.blocks, s.peak) for s in spans] == [
        (("A", "C"), 10, 12, 2, up), (("A", "B"), 11, 13, 2, Fraction(2, 100)), (("A", "B"), 14, None, None, up)]
