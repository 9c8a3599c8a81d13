"""Sequence anomalies are acted on only for frames whose checksum holds, and a gap costs only
what it could have touched: a constant-product pool is whole again at its next PoolSync."""
from __future__ import annotations

import numpy as np

from tests.strategy.feed import Feed, signals
from tests.strategy.test_engine import E18, P1, P2, P3, USDC, WETH, engine


def _flip_sequence_bit(frame: np.ndarray, bit: int) -> np.ndarray:
    bad = frame.copy()
    bad[8 + bit // 8] ^= 1 << (bit % 8)        # the header's sequence field (bytes 8-15)
    return bad


def test_a_flipped_sequence_bit_outside_the_checksum_sample_drops_nothing_behind_it():
    e, f = engine(market_checksum_every=100), Feed()
    e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18))])
    frames = []
    for k in range(1, 11):
        f.block += 1
        frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, (2_000_000 + k) * E18)))
    frames[2] = _flip_sequence_bit(frames[2], 40)     # a far-future sequence, checksum now wrong
    for fr in frames:
        e.process([fr])
    c = e.counters()
    assert c["frames_rejected"] == 1 and c["frames_duplicate"] == 0, c
    assert c["seq_gaps"] == 1                          # the rejected frame is a real loss
    pool = e.registry.pool(P1)
    assert pool.reserve1 == 2_000_010 * E18 and not pool.stale


def test_a_flipped_bit_making_a_duplicate_is_rejected_not_a_duplicate():
    e, f = engine(market_checksum_every=100), Feed()
    fr = [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18)) for _ in range(4)]
    fr[2] = _flip_sequence_bit(fr[2], 0)               # seq 3 -> 2: looks like a duplicate
    fr[3] = _flip_sequence_bit(fr[3], 1)               # seq 4 -> 6: looks like a gap
    for x in fr:
        e.process([x])
    c = e.counters()
    assert c["frames_duplicate"] == 0 and c["frames_rejected"] == 2 and c["seq_gaps"] == 0, c


def test_a_gap_heals_each_constant_product_pool_at_its_next_sync():
    e, f = engine(), Feed()
    e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                       f.v2_state(P2, WETH, USDC, 1000 * E18, 2_000_000 * E18, venue=302))])
    next(f.seq)                                        # a frame is lost
    f.block += 1
    assert e.process([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_200_000 * E18, venue=302))]) == []
    assert e.registry.pool(P1).stale and not e.registry.pool(P2).stale
    f.block += 1
    out = e.process([f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18))])
    assert len(signals(out)) == 1 and not e.registry.pool(P1).stale


def test_a_gap_marks_stale_only_the_pools_fed_by_the_source_that_lost_frames():
    from alphapulse.protocol import layout as L
    from tests.strategy.test_engine import _v3_setup
    e, a, b = engine(), Feed(), Feed(source=int(L.Source.IMPORTER))
    v3_frames, _ = _v3_setup(a)
    e.process([a.frame(a.v2_state(P1, WETH, USDC, 10**24, 10**24), *v3_frames)])
    e.process([b.frame(b.v2_state(P2, WETH, USDC, 10**24, 10**24, venue=302))])
    next(b.seq)                                        # source B loses a frame
    a.block = b.block = a.block + 1
    e.process([b.frame(b.gas())])
    c = e.counters()
    assert c["seq_gaps"] == 1 and c["gap_stale_pools"] == 1, c
    assert e.registry.pool(P2).stale
    assert not e.registry.pool(P1).stale and not e.registry.pool(P3).stale
    # source A's V3 pool (no snapshot since) still trades against A's V2 pool
    a.block += 1
    out = e.process([a.frame(a.v2_sync(P1, WETH, USDC, 10**24, 103 * 10**22))])
    assert len(signals(out)) == 1
    # a gap of source A now reaches A's pools, and only them
    next(a.seq)
    a.block += 1
    e.process([a.frame(a.gas())])
    assert e.registry.pool(P1).stale and e.registry.pool(P3).stale
    assert e.counters()["gap_stale_pools"] == 3
