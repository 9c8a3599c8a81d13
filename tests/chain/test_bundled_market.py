"""The bundled recording is a believable market, measured over all of it: the recording is made
again with the arguments it was made with (docs/running.md), byte for byte the bundled file,
while a probe reads every pool's value and every pair's cross-pool gap after fees from the chain
after each block; its backtest gives the opportunities."""
from __future__ import annotations

import pytest

from alphapulse.apps.make_recording import measure_market, record
from alphapulse.apps.pipeline import BUNDLED_RECORDING
from alphapulse.chain.market_stats import MarketProbe

# as in docs/running.md: make_recording --blocks 1200 --block-interval 1 --txs-per-block 8 (seed 7)
BLOCKS, SEED, BLOCK_INTERVAL_S, TXS_PER_BLOCK = 1200, 7, 1, 8


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_the_bundled_recording_is_a_believable_market(tmp_path):
    probe = MarketProbe()
    journal, market_toml, _ = record(blocks=BLOCKS, seed=SEED, out_dir=tmp_path, block_interval_s=BLOCK_INTERVAL_S,
                                     txs_per_block=TXS_PER_BLOCK, on_block=probe)
    assert journal.read_bytes() == BUNDLED_RECORDING.read_bytes(), "the bundled recording is not this run's"
    f = measure_market(journal, market_toml, probe, tmp_path)
    print(f"\n{ {k: v for k, v in f.items() if k not in ('worst_share', 'worst_gap')} }")
    assert f["blocks"] == BLOCKS and f["arbs"] and f["opportunities"]
    assert f["max_net_share"] <= 0.02, f["worst_share"]                 # net <= 2 % of the smallest pool
    assert f["median_open"] == 0, f                                     # the median block has none
    assert f["gaps"] and f["longest_gap_blocks"] <= 5, (f["worst_gap"], f["gap_blocks_histogram"])
