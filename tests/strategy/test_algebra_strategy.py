"""Algebra (QuickSwap V3, pool_kind 3) pools in the strategy: state, fee in force, cycles with V3 and V2."""
from __future__ import annotations

import numpy as np

from alphapulse.jit import amm_algebra
from alphapulse.jit.wideint import from_limbs
from alphapulse.protocol import layout as L
from alphapulse.strategy import reference as R
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine
from tests.strategy.feed import Feed, addr, signals

USDC, WETH = addr(0xA0), addr(0xB0)
P_V2, P_V3, P_ALG = addr(0x2001), addr(0x2002), addr(0x2003)
E18 = 10**18
ALGEBRA = int(L.PoolKind.CONCENTRATED_DYNAMIC_FEE)


def engine(**kw) -> StrategyEngine:
    base = dict(evaluate="frame", max_pools=64, max_tokens=64, max_v3_pools=16, max_ticks_per_pool=64, journal_size=256,
                signal_table_size=256, max_signals_per_batch=64)
    base.update(kw)
    return StrategyEngine(EngineConfig(**base))


def _book(price_tick: int = 0):
    positions = [(-887220, 887220, 10**20), (-600, 600, 5 * 10**20), (-1200, -120, 3 * 10**20),
                 (120, 1800, 2 * 10**20)]
    sp = R.get_sqrt_ratio_at_tick(price_tick) + 10**20
    return (sp, *R.pool_from_positions(positions, sp))


def _algebra_frames(f: Feed, fee: int):
    sp, tick, liq, ticks, nets = _book()
    recs = [f.algebra_state(P_ALG, WETH, USDC, sp, liq, tick, fee=fee),
            *f.v3_ticks(P_ALG, ticks, nets, venue=int(L.Venue.QUICKSWAP_V3))]
    return recs, (sp, tick, liq, ticks, nets)


def algebra_out(amount: int, zfo: bool, info) -> int:
    """The Algebra v1.0 kernel on the registry's view of the pool (the hop the engine must price)."""
    from alphapulse.jit.amm_v3 import _limbs
    t = np.array([k for k, _ in info.ticks], np.int32)
    nets = np.zeros((max(len(t), 1), 2), np.uint64)
    for i, (_, n) in enumerate(info.ticks):
        n &= (1 << 128) - 1
        nets[i] = (n & (2**64 - 1), n >> 64)
    out, ok = amm_algebra.algebra_exact_input(_limbs(amount), zfo, _limbs(info.sqrt_price_x96), info.tick,
                                              _limbs(info.liquidity), info.fee_pips, t, nets, len(t))
    assert ok
    return from_limbs(out)


def ref_path(e, sig) -> int:
    amt = sig.amount_in
    for i in range(sig.hops):
        info = e.registry.pool(bytes(sig.pools[i]))
        zfo = bytes(sig.tokens[i]) == info.token0
        if info.kind == 1:
            r_in, r_out = (info.reserve0, info.reserve1) if zfo else (info.reserve1, info.reserve0)
            amt = R.v2_get_amount_out(amt, r_in, r_out, info.fee_pips)
        elif info.kind == ALGEBRA:
            amt = algebra_out(amt, zfo, info)
        else:
            amt = R.v3_exact_input(amt, zfo, info.sqrt_price_x96, info.tick, info.liquidity, info.fee_pips,
                                   info.tick_spacing, [t for t, _ in info.ticks], [n for _, n in info.ticks])
    return amt


def test_algebra_pool_state_is_held_with_its_fee_in_force():
    e, f = engine(), Feed()
    recs, (sp, tick, liq, ticks, nets) = _algebra_frames(f, 777)
    e.process([f.frame(*recs)])
    info = e.registry.pool(P_ALG)
    assert info.kind == ALGEBRA and info.fee_pips == 777 and info.venue == int(L.Venue.QUICKSWAP_V3)
    assert info.sqrt_price_x96 == sp and info.liquidity == liq and info.tick == tick
    assert info.ticks == tuple(zip(ticks, nets)) and not info.stale
    assert e.counters()["bad_event"] == 0


def test_algebra_v2_cycle_is_exact_at_the_fee_in_force_and_a_pool_fee_changes_it():
    e, f = engine(), Feed()
    recs, _ = _algebra_frames(f, 500)
    out = e.process([f.frame(f.v2_state(P_V2, WETH, USDC, 10**24, 103 * 10**22), *recs)])
    sigs = signals(out)
    assert len(sigs) == 1
    s = sigs[0]
    assert int(L.Venue.QUICKSWAP_V3) in list(s.venues)[:2]
    k = [bytes(s.pools[i]) for i in range(2)].index(P_ALG)
    assert s.fees_pips[k] == 500
    assert s.amount_out == ref_path(e, s) and s.amount_out > s.amount_in
    # the ticks the sizing crosses: the Algebra kernel equals the Uniswap step sequence at spacing 60
    info = e.registry.pool(P_ALG)
    zfo = bytes(s.tokens[k]) == info.token0
    for x in (10**15, 10**20, 3 * 10**21):
        assert algebra_out(x, zfo, info) == R.v3_exact_input(
            x, zfo, info.sqrt_price_x96, info.tick, info.liquidity, info.fee_pips, 60,
            [t for t, _ in info.ticks], [n for _, n in info.ticks])
    # a Fee event: the engine prices the next cycle at the new fee
    f.block += 1
    e.process([f.frame(f.pool_fee(P_ALG, 9000))])
    assert e.registry.pool(P_ALG).fee_pips == 9000
    path = [(bytes(s.pools[i]), bytes(s.tokens[i])) for i in range(2)]
    assert e.simulate(path, s.amount_in) == ref_path(e, s) < s.amount_out


def test_cycle_mixing_algebra_uniswap_v3_and_v2_is_searched_and_exact():
    e, f = engine(), Feed()
    recs, (sp, tick, liq, ticks, nets) = _algebra_frames(f, 300)
    v3 = [f.v3_state(P_V3, WETH, USDC, sp, liq, tick, fee=500), *f.v3_ticks(P_V3, ticks, nets)]
    out = e.process([f.frame(*recs, *v3, f.v2_state(P_V2, WETH, USDC, 10**24, 96 * 10**22))])
    sigs = signals(out)
    assert sigs, "no cycle found"
    pools_seen = set()
    for s in sigs:
        assert s.amount_out == ref_path(e, s) and s.amount_out > s.amount_in
        pools_seen |= {bytes(s.pools[i]) for i in range(s.hops)}
    assert P_ALG in pools_seen
    # the Algebra pool's own moves: a Swap event then a Mint, applied like a V3 pool's
    f.block += 1
    s_alg = [s for s in sigs if P_ALG in {bytes(s.pools[i]) for i in range(s.hops)}][0]
    e.process([f.frame(f.v3_swap(P_ALG, WETH, USDC, sp - 10**21, liq, tick - 3, venue=int(L.Venue.QUICKSWAP_V3)),
                       f.v3_mint(P_ALG, WETH, USDC, -180, 240, 7 * 10**19, venue=int(L.Venue.QUICKSWAP_V3)))]
              )
    info = e.registry.pool(P_ALG)
    assert info.sqrt_price_x96 == sp - 10**21 and info.tick == tick - 3 and not info.stale
    path = [(bytes(s_alg.pools[i]), bytes(s_alg.tokens[i])) for i in range(s_alg.hops)]
    assert e.simulate(path, s_alg.amount_in) == ref_path(e, s_alg)


def test_pool_fee_reorg_restores_the_fee_and_state_reads_do_not_advance_the_event_position():
    e, f = engine(), Feed()
    recs, _ = _algebra_frames(f, 500)
    e.process([f.frame(*recs)])
    before = e.snapshot()
    f.block += 1
    ev = f.pool_fee(P_ALG, 1234, log=7)
    e.process([f.frame(ev)])
    assert e.registry.pool(P_ALG).fee_pips == 1234
    e.process([f.frame(f.pool_fee(P_ALG, 1234, log=7, flags=L.EVENT_REMOVED))])
    restored = e.snapshot()
    for k in before:
        assert np.array_equal(before[k], restored[k]), k
    assert e.registry.pool(P_ALG).fee_pips == 500
    # a fee read from globalState at a block: applied, and an event of that block still applies after it
    e.process([f.frame(f.pool_fee(P_ALG, 2000, log=L.LOG_INDEX_FROM_STATE))])
    assert e.registry.pool(P_ALG).fee_pips == 2000
    e.process([f.frame(f.pool_fee(P_ALG, 2500, log=9))])
    assert e.registry.pool(P_ALG).fee_pips == 2500 and e.counters()["duplicate_events"] == 0
    # an older state read is a duplicate
    e.process([f.frame(f.pool_fee(P_ALG, 1, log=L.LOG_INDEX_FROM_STATE, block=f.block - 5))])
    assert e.registry.pool(P_ALG).fee_pips == 2500 and e.counters()["duplicate_events"] == 1


def test_pool_fee_for_a_fixed_fee_pool_or_beyond_a_uint16_is_a_counted_bad_event():
    e, f = engine(), Feed()
    recs, (sp, tick, liq, ticks, nets) = _algebra_frames(f, 500)
    e.process([f.frame(*recs, f.v3_state(P_V3, WETH, USDC, sp, liq, tick), *f.v3_ticks(P_V3, ticks, nets))])
    e.process([f.frame(f.pool_fee(P_V3, 100, venue=int(L.Venue.UNISWAP_V3)))])
    e.process([f.frame(f.pool_fee(P_ALG, 1_000_000))])
    e.process([f.frame(f.pool_fee(P_ALG, 0x10000))])          # an Algebra v1.0 fee is a uint16
    e.process([f.frame(f.pool_fee(addr(0x9999), 100))])
    f.block += 1
    e.process([f.frame(f.algebra_state(addr(0x2004), WETH, USDC, sp, liq, tick, fee=0x10000))])
    c = e.counters()
    assert c["bad_event"] == 4 and c["unknown_pool"] == 1
    assert e.registry.pool(P_ALG).fee_pips == 500 and len(e.registry) == 2
    e.process([f.frame(f.pool_fee(P_ALG, 0xFFFF))])
    assert e.registry.pool(P_ALG).fee_pips == 0xFFFF
    assert e.registry.pool(P_V3).fee_pips == 3000
