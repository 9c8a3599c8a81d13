"""Opportunity accounting on hand-built streams: every expected number is worked out by hand."""
from __future__ import annotations

from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.strategy.accounting import OpportunityBook, best_disjoint_set, cycle_key

A, B, C = (bytes([0xA0 + i]) * 20 for i in range(3))
P1, P2, P3, P4, P5, P6, P7 = (bytes([i]) * 20 for i in range(1, 8))
_ids = iter(range(1, 1000))


def sync(pool: bytes, block: int, r0: int, r1: int, token0: bytes = A, token1: bytes = B):
    return codec.PoolSync(reserve0=r0, reserve1=r1, block_number=block, pool=pool, token0=token0, token1=token1)


def sig(pools, tokens, net: int, block: int, flags: int = 0):
    n = len(pools)
    pad = lambda xs, z: tuple(xs) + (z,) * (3 - n)  # noqa: E731
    return codec.ArbitrageSignal(net_profit_usd_e8=net, block_number=block, signal_id=next(_ids), hops=n,
                                 flags=flags, fees_pips=pad([3000] * n, 0), pools=pad(pools, bytes(20)),
                                 tokens=pad(tokens, bytes(20)))


def block_end(block: int):
    return codec.BlockEnd(block_number=block)


def test_cycle_key_ignores_the_start_token_but_keeps_the_direction():
    ab = sig((P1, P2), (A, B), 1, 1)
    ba = sig((P2, P1), (B, A), 1, 1)
    reverse = sig((P2, P1), (A, B), 1, 1)
    assert cycle_key(ab) == cycle_key(ba) == ((P1, A), (P2, B))
    assert cycle_key(reverse) != cycle_key(ab)
    tri = sig((P3, P1, P4), (C, A, B), 1, 1)
    assert cycle_key(tri) == ((P1, A), (P4, B), (P3, C))


def test_best_disjoint_set_is_exact_where_greedy_is_not():
    cands = [(300, frozenset({P1, P3, P4})), (200, frozenset({P1, P2})), (250, frozenset({P3, P5})),
             (-50, frozenset({P6})), (0, frozenset({P7}))]
    assert best_disjoint_set(cands) == (450, [1, 2], True)       # greedy by value takes 300 alone
    assert best_disjoint_set([]) == (0, [], True)
    total, chosen, exact = best_disjoint_set([(1, frozenset({bytes([i % 7]) * 20})) for i in range(60)],
                                             node_limit=50)
    assert not exact and total <= 7


def test_opportunities_lifetimes_and_capturable_profit_of_a_hand_built_stream():
    per_block = []
    book = OpportunityBook(on_block=lambda b, v: per_block.append((b, v)))
    stream = [
        sync(P1, 10, 10**6, 10**6), sync(P2, 10, 10**6, 10**6), block_end(10),
        # block 11: P1 at 1.02 B per A; A -> B on P1, B -> A on P2: 1.02 x 0.997^2 > 1
        sync(P1, 11, 10**6, 1_020_000), sig((P1, P2), (A, B), 500, 11), block_end(11),
        # block 12: P1 at 1.01 (still 1.0039 after fees): a republication, two more cycles
        # (a triangle through P1 and a pair on P3/P5: their prices are not in the stream), an
        # intra-block signal and an unpriced one, which never count as profit
        sync(P1, 12, 10**6, 1_010_000), sig((P1, P2), (A, B), 200, 12),
        sig((P1, P3, P4), (A, B, C), 300, 12), sig((P3, P5), (B, C), 250, 12),
        sig((P6, P7), (A, B), 10**12, 12, flags=L.SIGNAL_INTRA_BLOCK),
        sig((P6, P7), (B, A), 0, 12, flags=L.SIGNAL_UNPRICED), block_end(12),
        # block 13: P1 back at 1: 0.994 after fees, the P1/P2 cycle closes (lifetime 13 - 11)
        sync(P1, 13, 10**6, 10**6), block_end(13),
        # block 14 (no BlockEnd from here on: a later block's record ends it): the cycle
        # reopens, started from B this time; block 15 republishes it
        sync(P1, 14, 10**6, 1_030_000), sig((P2, P1), (B, A), 900, 14),
        sync(P2, 15, 10**6, 999_000), sig((P1, P2), (A, B), 1000, 15),
    ]
    book.feed_all(stream)
    book.finish()
    s = book.summary()
    assert s["signals"] == 8 and s["signals_intra_block"] == 1 and s["signals_unpriced"] == 1
    assert s["opportunities"] == 5 and s["opportunities_unpriced"] == 1 and s["opportunities_open"] == 4
    # 500 (block 11) + max disjoint {200 P1P2, 300 P1P3P4, 250 P3P5} = 450 + 900 + 1000
    assert s["capturable_profit_usd_e8"] == 2850
    assert per_block == [(11, 500), (12, 450), (14, 900), (15, 1000)]
    assert book.capturable_by_block == {11: 500, 12: 450, 14: 900, 15: 1000}
    assert s["signals_net_profit_usd_e8"] == 500 + 200 + 300 + 250 + 900 + 1000
    assert s["lifetime_blocks"] == {"closed": 1, "p50": 2, "p90": 2, "max": 2, "histogram": {"2": 1}}
    assert s["best_opportunity_net_profit_usd_e8"] == 1000
    opps = book.all_opportunities()
    first = opps[0]
    assert (first.first_block, first.closed_block, first.signals, first.best_net_profit_usd_e8) == (11, 13, 2, 500)
    again = [o for o in opps if o.first_block == 14]
    assert len(again) == 1 and again[0].signals == 2 and again[0].best_net_profit_usd_e8 == 1000
    assert again[0].closed_block is None and again[0].lifetime_blocks(book.current_block) == 1
    unpriced = [o for o in opps if o.best_net_profit_usd_e8 is None]
    assert len(unpriced) == 1 and unpriced[0].key == ((P6, B), (P7, A))


def test_a_signal_gone_by_its_block_end_is_not_capturable():
    book = OpportunityBook()
    book.feed_all([sync(P1, 20, 10**6, 10**6), sync(P2, 20, 10**6, 10**6), block_end(20),
                   sync(P1, 21, 10**6, 1_050_000), sig((P1, P2), (A, B), 700, 21),
                   sync(P2, 21, 10**6, 1_050_000), block_end(21)])      # arbitraged in the same block
    s = book.summary()
    assert s["opportunities"] == 1 and s["capturable_profit_usd_e8"] == 0
    assert s["lifetime_blocks"]["histogram"] == {"0": 1}


def test_v3_prices_and_unusable_records():
    q96 = 1 << 96
    swap = codec.PoolSwap(sqrt_price_x96_after=q96 * 11 // 10, block_number=30, pool=P1, token_in=B,
                          token_out=A, flags=0)                        # token0 = A (token_out)
    state = codec.PoolState(sqrt_price_x96=q96, block_number=30, pool=P2, token0=A, token1=B,
                            pool_kind=L.PoolKind.CONCENTRATED)
    empty = codec.PoolSync(reserve0=0, reserve1=5, block_number=30, pool=P3, token0=A, token1=B)
    book = OpportunityBook()
    book.feed_all([swap, state, empty, sig((P1, P2), (A, B), 10, 30), block_end(30)])
    assert book.skipped_records == 1
    assert book.summary()["opportunities_open"] == 1                   # 1.21 x 0.997^2 > 1
    back = codec.PoolSwap(sqrt_price_x96_after=q96, block_number=31, pool=P1, token_in=A, token_out=B,
                          flags=0x02)
    book.feed_all([back, block_end(31)])
    assert book.summary()["opportunities_open"] == 0


def test_removed_events_are_skipped_and_the_current_block_is_provisional():
    book = OpportunityBook(keep_blocks=1)
    removed = codec.PoolSync(reserve0=10**6, reserve1=2 * 10**6, block_number=40, pool=P1, token0=A, token1=B,
                             flags=L.EVENT_REMOVED)
    book.feed_all([sync(P1, 40, 10**6, 10**6), sync(P2, 40, 10**6, 10**6), removed, block_end(40)])
    assert book.skipped_records == 1 and book._marks[P1].price01 == 1
    book.feed_all([sync(P1, 41, 10**6, 1_040_000), sig((P1, P2), (A, B), 300, 41), sig((P3, P5), (B, C), 200, 41)])
    assert book.pending_capturable_usd_e8() == 500 and book.capturable_usd_e8 == 0
    book.feed_all([block_end(41), sig((P1, P2), (A, B), 400, 42), block_end(42)])
    assert book.capturable_usd_e8 == 900 and book.capturable_by_block == {42: 400}   # the newest block kept
    assert book.pending_capturable_usd_e8() == 0
    bad = codec.ArbitrageSignal(hops=4, block_number=43, net_profit_usd_e8=10**9)
    book.signal(bad)
    assert book.skipped_signals == 1 and book.signals == 3 and book.summary()["skipped_signals"] == 1
