"""Block-true evaluation: the engine prices the states a block ends on, not those between its events."""
from __future__ import annotations

import numpy as np
import pytest

from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

from tests.strategy.feed import Feed, addr, signals

USDC, WETH = addr(0xA0), addr(0xB0)
P1, P2 = addr(0x1001), addr(0x1002)
E18 = 10**18
FLAT = (1000 * E18, 2_000_000 * E18)          # both pools at 2,000 USDC per WETH


def engine(**kw) -> StrategyEngine:
    base = dict(max_pools=64, max_tokens=64, max_v3_pools=16, max_ticks_per_pool=64, journal_size=256,
                signal_table_size=256, max_signals_per_batch=64)
    base.update(kw)
    return StrategyEngine(EngineConfig(**base))


def block_end(f: Feed) -> C.BlockEnd:
    return C.BlockEnd(block_number=f.block, block_ts_ns=0, event_count=0, chain_id=137, block_hash=bytes(32))


def round_trip_market(with_block_end: bool, n_blocks: int = 4) -> list[np.ndarray]:
    """Two pools at one price; in each later block a swap moves P1 away and a second swap of the
    same block moves it back: the only price gaps are inside blocks."""
    f = Feed()
    frames = [f.frame(f.v2_state(P1, WETH, USDC, *FLAT), f.v2_state(P2, WETH, USDC, *FLAT, venue=302))]
    if with_block_end:
        frames.append(f.frame(block_end(f)))
    for _ in range(n_blocks):
        f.block += 1
        frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_200_000 * E18)))
        frames.append(f.frame(f.v2_sync(P1, WETH, USDC, *FLAT)))
        if with_block_end:
            frames.append(f.frame(block_end(f)))
    return frames


def run(e: StrategyEngine, frames, batch: int = 1) -> list:
    out = []
    for i in range(0, len(frames), batch):
        out += e.process([np.concatenate(frames[i:i + batch])])
    out += e.end_input_frames()
    return signals(out)


@pytest.mark.parametrize("with_block_end", [True, False])
def test_price_gaps_inside_blocks_give_no_signal_in_block_mode(with_block_end):
    frames = round_trip_market(with_block_end)
    e = engine()
    assert e.config.evaluate == "block"            # the default
    assert run(e, frames) == []
    assert e.counters()["cycles"] >= 2             # the block ends were searched
    assert e.last_block == 104


@pytest.mark.parametrize("with_block_end", [True, False])
def test_frame_mode_flags_the_same_gaps_as_intra_block(with_block_end):
    sigs = run(engine(evaluate="frame", republish_min_blocks=0), round_trip_market(with_block_end))
    assert len(sigs) >= 4                          # one per block's first swap at least
    assert all(s.flags & L.SIGNAL_INTRA_BLOCK for s in sigs)


def test_a_block_is_searched_once_on_its_end_state_across_batches():
    """A block's events spread over several calls are searched once, after its BlockEnd; the
    figures are those of a fresh engine given the block-end state at once."""
    f = Feed()
    head = [f.frame(f.v2_state(P1, WETH, USDC, *FLAT), f.v2_state(P2, WETH, USDC, *FLAT, venue=302)),
            f.frame(block_end(f))]
    f.block += 1
    moves = [f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, r1 * E18)) for r1 in (2_300_000, 2_200_000, 2_100_000)]
    tail = [f.frame(block_end(f))]
    e = engine()
    assert run(e, head) == []
    got = []
    for fr in moves:                               # one call per event: the block stays open
        got += signals(e.process([fr]))
    assert got == [] and e.last_block == 100
    got = signals(e.process([tail[0]]))
    assert len(got) == 1 and e.last_block == 101
    g = Feed()
    fresh = engine()
    want = signals(fresh.process([g.frame(g.v2_state(P1, WETH, USDC, 1000 * E18, 2_100_000 * E18, block=101),
                                          g.v2_state(P2, WETH, USDC, *FLAT, venue=302))])
                   + fresh.end_input_frames())
    assert len(want) == 1
    for name in ("amount_in", "amount_out", "pools", "tokens"):
        assert getattr(got[0], name) == getattr(want[0], name)
    assert not got[0].flags & L.SIGNAL_INTRA_BLOCK


def test_republish_compares_block_end_states():
    """A live opportunity whose figures change within a block is published with the block-end
    figures: the mid-block state neither suppresses nor replaces them."""
    f = Feed()
    e = engine()
    first = [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_100_000 * E18),
                     f.v2_state(P2, WETH, USDC, *FLAT, venue=302)), f.frame(block_end(f))]
    assert len(run(e, first)) == 1
    f.block += 1
    block = [f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_300_000 * E18)),    # mid-block
             f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_200_000 * E18)),    # block end
             f.frame(block_end(f))]
    sigs = run(e, block)
    assert len(sigs) == 1 and sigs[0].block_number == 101
    g = Feed()
    fresh = engine()
    want = signals(fresh.process([g.frame(g.v2_state(P1, WETH, USDC, 1000 * E18, 2_200_000 * E18),
                                          g.v2_state(P2, WETH, USDC, *FLAT, venue=302))]) + fresh.end_input_frames())
    assert (sigs[0].amount_in, sigs[0].amount_out) == (want[0].amount_in, want[0].amount_out)


def test_block_mode_signals_do_not_depend_on_batching():
    frames = round_trip_market(False)
    f = Feed()
    f.block = 200
    # a last block whose end is the end of the input leaves a gap
    frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_300_000 * E18), seq=len(frames) + 1))
    one = run(engine(), frames)
    assert len(one) == 1
    for batch in (2, 3, len(frames)):
        assert run(engine(), frames, batch) == one
