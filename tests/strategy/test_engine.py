"""StrategyEngine on synthetic frames: exact figures, no flooding, stale pools, reorg undo."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

from alphapulse.jit import arb as A
from alphapulse.protocol import layout as L
from alphapulse.strategy import reference as R
from alphapulse.strategy.config import EngineConfig, EngineConfigError
from alphapulse.strategy.engine import StrategyEngine
from alphapulse.jit.wideint import from_limbs

from tests.strategy.feed import Feed, addr, signals

USDC, WETH, WBTC = addr(0xA0), addr(0xB0), addr(0xC0)
P1, P2, P3, P4 = addr(0x1001), addr(0x1002), addr(0x1003), addr(0x1004)
E18 = 10**18


def engine(**kw) -> StrategyEngine:
    """An engine that searches after every frame (these tests exercise the search on each state;
    block-end evaluation: test_block_eval)."""
    base = dict(evaluate="frame", max_pools=64, max_tokens=64, max_v3_pools=16, max_ticks_per_pool=64, journal_size=256,
                signal_table_size=256, max_signals_per_batch=64)
    base.update(kw)
    return StrategyEngine(EngineConfig(**base))


def ref_path(engine_, sig) -> int:
    """Exact output of the signal's path recomputed with the pure-Python reference on the engine's state."""
    amt = sig.amount_in
    for i in range(sig.hops):
        info = engine_.registry.pool(bytes(sig.pools[i]))
        tin = bytes(sig.tokens[i])
        zfo = tin == info.token0
        if info.kind == 1:
            r_in, r_out = (info.reserve0, info.reserve1) if zfo else (info.reserve1, info.reserve0)
            amt = R.v2_get_amount_out(amt, r_in, r_out, info.fee_pips)
        else:
            amt = R.v3_exact_input(amt, zfo, info.sqrt_price_x96, info.tick, info.liquidity, info.fee_pips,
                                   info.tick_spacing, [t for t, _ in info.ticks], [n for _, n in info.ticks])
    return amt


def test_equal_prices_give_no_signal_but_cycles_are_evaluated():
    e, f = engine(), Feed()
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                             f.v2_state(P2, WETH, USDC, 500 * E18, 1_000_000 * E18, venue=302))])
    assert out == []
    c = e.counters()
    assert c["applied"] == 2 and c["cycles"] >= 2 and c["candidates"] == 0


def test_a_pair_row_lists_its_first_pools_and_the_search_finds_them_all():
    from alphapulse.jit import pool_state as S
    e, f = engine(), Feed()
    pools = [addr(100 + k) for k in range(6)]
    e.process([f.frame(*[f.v2_state(p, WETH, USDC, 1000 * E18, 2_000_000 * E18, venue=300 + k)
                         for k, p in enumerate(pools)])])
    rows = [e.registry.index(p) for p in pools]
    pr = int(e.state["pools"][rows[0], S.C_PAIR])
    pair = e.state["pairs"][pr]
    assert pair[S.P_COUNT] == 6 and e.registry.pools_of_pair(WETH, USDC) == sorted(rows)
    assert pair[S.P_MEMBERS:S.P_MEMBERS + S.P_NMEMBERS].tolist() == rows[:S.P_NMEMBERS]
    # the sixth pool (past the inline members) moves: its cycles with all five others are found
    f.block += 1
    out = e.process([f.frame(f.v2_sync(pools[5], WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=305))])
    assert sorted(bytes(s.pools[k]) for s in signals(out) for k in range(2) if bytes(s.pools[k]) != pools[5]) \
        == pools[:5]


def test_v2_v2_signal_is_exact_and_not_repeated():
    e, f = engine(), Feed()
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                             f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302))])
    sigs = signals(out)
    assert len(sigs) == 1
    s = sigs[0]
    assert s.hops == 2 and s.amount_out > s.amount_in > 0
    assert s.amount_out == ref_path(e, s)
    # buys WETH where it is cheap (P1), sells where it is dear (P2)
    assert bytes(s.pools[0]) in (P1, P2) and s.flags & L.SIGNAL_UNPRICED  # no stable configured
    assert s.gross_profit_usd_e8 == 0 and s.net_profit_usd_e8 == 0
    assert set(map(bytes, s.pools[:2])) == {P1, P2}
    assert s.fees_pips[0] == 3000 and s.venues[:2] in ((300, 302), (302, 300))
    assert s.spread_bps > 0
    # same state again: no new signal (no flooding)
    f.block += 1
    n0 = e.counters()["signals_suppressed"]
    again = e.process([f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18))])
    assert again == [] and e.counters()["signals_suppressed"] == n0 + 1
    assert e.counters()["duplicate_events"] == 0
    # a material change in a later block is published ...
    f.block += 1
    moved = e.process([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_200_000 * E18, venue=302, log=1))])
    assert len(signals(moved)) == 1
    # ... another in the same block waits (at most one publication per cycle and block) ...
    early = e.process([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_300_000 * E18, venue=302, log=2))])
    assert early == [] and e.counters()["signals_suppressed"] == n0 + 2
    # ... until the next block
    f.block += 1
    later = e.process([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_400_000 * E18, venue=302, log=1))])
    assert len(signals(later)) == 1
    # without the limit every material change is published
    e2, f2 = engine(republish_min_blocks=0), Feed()
    assert len(signals(e2.process([f2.frame(f2.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                                            f2.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302))]))) == 1
    f2.block += 1
    for log, r1 in ((1, 2_200_000), (2, 2_300_000)):
        assert len(signals(e2.process([f2.frame(f2.v2_sync(P2, WETH, USDC, 1000 * E18, r1 * E18, venue=302,
                                                           log=log))]))) == 1


def test_optimal_input_beats_every_other_input():
    # small reserves so that every input can be tried
    e, f = engine(), Feed()
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 20_000, 31_000),
                             f.v2_state(P2, WETH, USDC, 15_000, 29_000, venue=302))])
    (s,) = signals(out)
    path = [(bytes(s.pools[i]), bytes(s.tokens[i])) for i in range(2)]
    best = max(e.simulate(path, x) - x for x in range(1, 8000)
               if _ok(e, path, x))
    assert s.amount_out - s.amount_in == best


def _ok(e, path, x):
    try:
        e.simulate(path, x)
        return True
    except ValueError:
        return False


def test_closed_form_matches_brute_force_on_random_v2_pairs():
    rng = np.random.default_rng(5)
    checked = 0
    for k in range(25):
        e, f = engine(), Feed()
        r0 = int(rng.integers(5_000, 60_000))
        r1 = int(rng.integers(5_000, 60_000))
        q = float(rng.uniform(1.03, 1.4))
        out = e.process([f.frame(f.v2_state(P1, WETH, USDC, r0, r1),
                                 f.v2_state(P2, WETH, USDC, int(r0 * q), int(r1 / q) + 1, venue=302,
                                            fee=int(rng.choice([3000, 2500, 1000]))))])
        sigs = signals(out)
        if not sigs:
            continue
        s = sigs[0]
        path = [(bytes(s.pools[i]), bytes(s.tokens[i])) for i in range(2)]
        best = max((e.simulate(path, x) - x for x in range(1, 30_000) if _ok(e, path, x)), default=0)
        assert s.amount_out - s.amount_in == best, (k, r0, r1, q)
        checked += 1
    assert checked >= 15


def test_triangle_signal_is_exact():
    e, f = engine(), Feed()
    out = e.process([f.frame(
        f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
        f.v2_state(P2, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
        f.v2_state(P3, WBTC, USDC, 100 * 10**8, 4_400_000 * E18, d0=8))])
    sigs = signals(out)
    assert sigs and all(s.hops == 3 for s in sigs)
    for s in sigs:
        assert s.amount_out == ref_path(e, s) and s.amount_out > s.amount_in


def test_usd_valuation_and_gas_are_integer_and_consistent():
    e, f = engine(stable_token="0x" + USDC.hex(), native_token="0x" + WETH.hex(), gas_units_base=0,
                  gas_units_v2_hop=100_000), Feed()
    out = e.process([f.frame(f.gas(base=10 * 10**9, prio=0),
                             f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),
                             f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * 10**6, venue=302, d1=6))])
    (s,) = signals(out)
    assert not s.flags & L.SIGNAL_UNPRICED
    assert bytes(s.tokens[0]) == USDC  # the stable coin is the start token
    gross = s.amount_out - s.amount_in
    assert s.gross_profit_usd_e8 == gross * 10**8 // 10**6
    assert s.gas_cost_wei == 200_000 * 10 * 10**9
    # gas valued at the deepest WETH/USDC pool's mid price (P2 is deeper on the USDC side)
    exp_gas = s.gas_cost_wei * (2_100_000 * 10**6) // (1000 * E18) * 10**8 // 10**6
    assert s.gas_cost_usd_e8 == exp_gas
    assert s.net_profit_usd_e8 == s.gross_profit_usd_e8 - s.gas_cost_usd_e8
    assert s.chain_id == 137 and s.strategy_id == 1 and s.signal_id == 1


def test_usd_figures_follow_the_price_pools_as_they_change():
    """The engine caches each token's price pool and the gas values between searches: a move
    of the native token's price pool, and a deeper pool to the stable coin appearing, both show
    in the next signal's USD figures (integer, at that pool's mid price)."""
    e, f = engine(stable_token="0x" + USDC.hex(), native_token="0x" + WETH.hex(), gas_units_base=0,
                  gas_units_v2_hop=100_000), Feed()
    P4 = addr(0x1004)

    def check(sig, r_usdc, r_weth):
        assert bytes(sig.tokens[0]) == WETH and not sig.flags & L.SIGNAL_UNPRICED
        gross = sig.amount_out - sig.amount_in
        assert sig.gross_profit_usd_e8 == gross * r_usdc // r_weth * 10**8 // 10**6
        assert sig.gas_cost_usd_e8 == sig.gas_cost_wei * r_usdc // r_weth * 10**8 // 10**6

    (s1,) = signals(e.process([f.frame(f.gas(base=10 * 10**9, prio=0),
                                       f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),
                                       f.v2_state(P2, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
                                       f.v2_state(P3, WBTC, WETH, 100 * 10**8, 2100 * E18, d0=8, venue=302))]))
    check(s1, 2_000_000 * 10**6, 1000 * E18)
    f.block += 1
    (s2,) = signals(e.process([f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 3_000_000 * 10**6, d1=6),
                                       f.v2_sync(P3, WBTC, WETH, 100 * 10**8, 2200 * E18, d0=8, venue=302))]))
    check(s2, 3_000_000 * 10**6, 1000 * E18)
    f.block += 1
    # deeper, and 0.17 % off P1: within the two fees, so no WETH/USDC cycle of its own
    (s3,) = signals(e.process([f.frame(f.v2_state(P4, WETH, USDC, 2000 * E18, 6_010_000 * 10**6, d1=6, venue=302),
                                       f.v2_sync(P3, WBTC, WETH, 100 * 10**8, 2300 * E18, d0=8, venue=302))]))
    check(s3, 6_010_000 * 10**6, 2000 * E18)


def test_min_net_profit_threshold_blocks_small_opportunities():
    e, f = engine(stable_token="0x" + USDC.hex(), min_net_profit_usd_e8=10**15), Feed()
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),
                             f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * 10**6, venue=302, d1=6))])
    assert out == [] and e.counters()["candidates"] >= 1


def test_unpriced_per_token_minimum():
    def run(**cfg):
        e, f = engine(**cfg), Feed()
        return signals(e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                                          f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302))]))
    (free,) = run()
    start = bytes(free.tokens[0])
    gross = free.amount_out - free.amount_in
    assert free.flags & L.SIGNAL_UNPRICED
    assert run(unpriced_min_profit={"0x" + start.hex(): gross}) == []          # must exceed the minimum
    assert len(run(unpriced_min_profit={"0x" + start.hex(): gross - 1})) == 1
    other = USDC if start == WETH else WETH
    assert len(run(unpriced_min_profit={"0x" + other.hex(): 10**37})) == 1    # other tokens' minimum


def test_stale_pool_gives_no_signal_until_snapshot():
    e, f = engine(), Feed()
    e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                       f.v2_state(P2, WETH, USDC, 1000 * E18, 2_000_000 * E18, venue=302))])
    next(f.seq)  # a frame is lost: sequence gap
    f.block += 1
    out = e.process([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_200_000 * E18, venue=302))])
    assert out == []
    c = e.counters()
    assert c["seq_gaps"] == 1 and c["duplicate_events"] == 0
    assert e.registry.pool(P1).stale and not e.registry.pool(P2).stale   # its PoolSync made it whole
    # a fresh snapshot of both clears it and the opportunity is published
    f.block += 1
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                             f.v2_state(P2, WETH, USDC, 1000 * E18, 2_200_000 * E18, venue=302))])
    assert len(signals(out)) == 1


def test_duplicate_frames_and_events_are_skipped():
    e, f = engine(), Feed()
    e.process([f.frame(f.gas())])
    fr = f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18))
    e.process([fr])
    e.process([fr])
    assert e.counters()["frames_duplicate"] == 1 and e.counters()["seq_gaps"] == 0
    sync = f.v2_sync(P1, WETH, USDC, 5, 5, block=f.block)  # inside the snapshot's block: a duplicate
    e.process([f.frame(sync)])
    assert e.counters()["duplicate_events"] == 1 and e.registry.pool(P1).reserve0 == 1000 * E18


def _v3_setup(f, spacing=60):
    positions = [(-887220, 887220, 10**20), (-600, 600, 5 * 10**20), (-1200, -120, 3 * 10**20)]
    sp = R.get_sqrt_ratio_at_tick(0) + 10**20
    tick, liq, ticks, nets = R.pool_from_positions(positions, sp)
    frames = [f.v3_state(P3, WETH, USDC, sp, liq, tick), *f.v3_ticks(P3, ticks, nets)]
    return frames, (sp, tick, liq, ticks, nets)


def test_reorg_undo_restores_exact_prior_state():
    e, f = engine(), Feed()
    v3_frames, (sp, tick, liq, ticks, nets) = _v3_setup(f)
    e.process([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18), *v3_frames)])
    before = e.snapshot()
    f.block += 1
    b = f.block
    evs = [f.v2_sync(P1, WETH, USDC, 1001 * E18, 1_998_000 * E18, block=b, log=1),
           f.v3_mint(P3, WETH, USDC, -180, 240, 7 * 10**19, block=b, log=2),
           f.v3_swap(P3, WETH, USDC, sp - 10**21, liq + 7 * 10**19, tick - 3, block=b, log=3),
           f.v3_mint(P3, WETH, USDC, -600, 600, 5 * 10**20, burn=True, block=b, log=4),
           f.v3_mint(P3, WETH, USDC, 60, 3000, 10**18, block=b, log=5)]
    e.process([f.frame(*evs)])
    after = e.snapshot()
    assert not all(np.array_equal(before[k], after[k]) for k in before)
    assert e.registry.pool(P3).ticks != tuple(zip(ticks, nets))
    # the chain reorganises: the node re-sends the logs flagged removed (newest first here)
    removed = [type(ev)(**{**{k: getattr(ev, k) for k in ev.__dataclass_fields__}, "flags": L.EVENT_REMOVED})
               for ev in reversed(evs)]
    e.process([f.frame(*removed)])
    restored = e.snapshot()
    for k in before:
        assert np.array_equal(before[k], restored[k]), k
    assert e.registry.pool(P3).ticks == tuple(zip(ticks, nets))
    # removing only the oldest event also undoes the later ones of that pool
    e.process([f.frame(*evs[1:])])
    e.process([f.frame(type(evs[1])(**{**{k: getattr(evs[1], k) for k in evs[1].__dataclass_fields__},
                                         "flags": L.EVENT_REMOVED}))])
    final = e.snapshot()
    for k in before:
        assert np.array_equal(before[k], final[k]), k
    assert e.counters()["undone"] == 5 + 4


def test_v2_v3_signal_is_exact():
    e, f = engine(), Feed()
    v3_frames, (sp, tick, liq, ticks, nets) = _v3_setup(f)
    # V3 price ~ 1.0 USDC per WETH (raw units); the V2 pool is 3 % dearer
    out = e.process([f.frame(f.v2_state(P1, WETH, USDC, 10**24, 103 * 10**22), *v3_frames)])
    sigs = signals(out)
    assert len(sigs) == 1
    s = sigs[0]
    assert s.amount_out == ref_path(e, s) and s.amount_out > s.amount_in
    # the sizing crosses initialised ticks: check against the reference over nearby inputs
    path = [(bytes(s.pools[i]), bytes(s.tokens[i])) for i in range(2)]
    for x in (s.amount_in * 9 // 10, s.amount_in * 11 // 10):
        assert e.simulate(path, x) - x <= s.amount_out - s.amount_in


def test_swap_checkpoints_shared_by_the_cycles_of_a_search_never_outlive_the_state():
    """A V3 pool that moves opens cycles with each of three V2 pools of its pair: their exact
    sizings share its swap checkpoints (the engine's cache, keyed by meta[M_STATE_VER]). As it
    moves up and down over initialised ticks frame after frame, every signal is still the
    exact output of its path on the state of its frame (the Python reference), so no
    checkpoint of an earlier state is ever resumed."""
    e, f = engine(), Feed()
    v3_frames, (sp0, _, _, _, _) = _v3_setup(f)
    positions = [(-887220, 887220, 10**20), (-600, 600, 5 * 10**20), (-1200, -120, 3 * 10**20)]
    v2s = [(P1, 10**24, 10**24), (P2, 2 * 10**24, 2 * 10**24), (P4, 5 * 10**23, 5 * 10**23)]
    e.process([f.frame(*[f.v2_state(p, WETH, USDC, r0, r1) for p, r0, r1 in v2s], *v3_frames)])
    p3 = e.registry.index(P3)
    n_sigs = shared = 0
    for k, move in enumerate([1.03, 0.97, 1.05, 0.94, 1.02, 1.06, 0.95, 1.01]):
        f.block += 1
        sp = int(sp0 * move ** 0.5)
        tick, liq, _, _ = R.pool_from_positions(positions, sp)
        sigs = signals(e.process([f.frame(f.v3_swap(P3, WETH, USDC, sp, liq, tick, log=k))]))
        assert len(sigs) == 3, move            # one cycle with each V2 pool
        for s in sigs:
            assert s.amount_out == ref_path(e, s) and s.amount_out > s.amount_in, move
        n_sigs += len(sigs)
        ver = int(e.state["meta"][A.M_STATE_VER])
        shared += int(((e._swap_ck[:, A.SW_POOL] == p3 + 1) & (e._swap_ck[:, A.SW_VER] == ver)).sum())  # noqa: SLF001
    assert n_sigs == 24 and shared >= 8       # each search left the pool's checkpoint of its own state


def test_config_errors_name_the_key():
    with pytest.raises(EngineConfigError, match="max_hops"):
        EngineConfig(max_hops=4)
    with pytest.raises(EngineConfigError, match="stable_token"):
        EngineConfig(stable_token="0x12")
    with pytest.raises(EngineConfigError, match="v2_venue_fees"):
        EngineConfig(v2_venue_fees={300: 1_000_000})


def test_corrupt_input_is_counted_not_raised():
    e, f = engine(), Feed()
    good = f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18)).copy()
    bad = good.copy()
    bad[40] ^= 0xFF  # payload byte: checksum mismatch
    e2 = engine(market_checksum_every=1)
    assert e2.process([bad]) == [] and e2.counters()["frames_rejected"] == 1
    junk = np.frombuffer(b"\x00" * 50, np.uint8)
    assert e.process([junk]) == [] and e.counters()["frames_rejected"] == 1


def test_float_screen_skips_cycles_that_cannot_pay_gas():
    cfg = dict(stable_token="0x" + USDC.hex(), native_token="0x" + WETH.hex(), gas_units_base=10**7)

    def run(**kw):
        e, f = engine(**{**cfg, **kw}), Feed()
        out = e.process([f.frame(f.gas(base=10**12, prio=0),  # ~10 WETH of gas: more than the edge pays
                                 f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),
                                 f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * 10**6, venue=302, d1=6))])
        return out, e.counters()
    out, c = run()
    assert out == [] and c["candidates"] >= 1 and c["screened"] == c["candidates"]
    out, c = run(screen_pct=0)  # without the screen the exact search runs, and the threshold rejects it
    assert out == [] and c["candidates"] >= 1 and c["screened"] == 0
    out, c = run(gas_units_base=0, gas_units_v2_hop=0)
    assert len(out) == 1 and c["screened"] == 0


def test_two_pool_signals_are_handed_over_before_the_triangle_search():
    def frames(f):
        return [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                        f.v2_state(P4, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302),
                        f.v2_state(P2, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
                        f.v2_state(P3, WBTC, USDC, 100 * 10**8, 4_400_000 * E18, d0=8), ts=10**18)]
    plain = engine()
    expected = signals(plain.process(frames(Feed())))
    assert {s.hops for s in expected} == {2, 3}
    e = engine()
    chunks = []
    n, nbytes = e.process_raw(frames(Feed()), publish=lambda out, nb: chunks.append(bytes(out[:nb])))
    assert len(chunks) == 2 and n == len(expected) and nbytes == sum(map(len, chunks))
    first, second = (signals([c[i:i + A.SIG_FRAME] for i in range(0, len(c), A.SIG_FRAME)]) for c in chunks)
    assert first and all(s.hops == 2 for s in first)
    assert second and all(s.hops == 3 for s in second)
    assert first + second == expected       # the same signals, sequence numbers and ids either way



def test_bound_entry_point_gives_the_dispatcher_results_for_every_buffer_kind():
    """process_raw calls the compiled kernel directly once a buffer kind was seen; the results
    (signals, sequence numbers, counters) equal a dispatcher-only engine's for read-only bytes,
    a writable array and a strided view; read-only bytes are copied, so they share the writable
    array's binding (one compiled kernel for both), the strided view gets its own."""
    def frames(f):
        out = [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                       f.v2_state(P4, WETH, USDC, 1000 * E18, 2_000_000 * E18, venue=302), ts=10**18)]
        for k in range(1, 7):
            f.block += 1
            out.append(f.frame(f.v2_sync(P4, WETH, USDC, 1000 * E18, (2_000_000 + 50_000 * k) * E18, venue=302),
                               ts=10**18 + k))
        return out

    def as_kind(fr, k):
        if k == 0:
            return bytes(fr)
        if k == 1:
            return np.array(fr, np.uint8)
        wide = np.zeros(2 * len(fr), np.uint8)
        wide[::2] = fr
        return wide[::2]

    ref, new = engine(), engine()
    ref._bind = lambda args: A.process_packed  # noqa: SLF001 - the reference always dispatches
    n_sig = 0
    for i, (x, y) in enumerate(zip(frames(Feed()), frames(Feed()))):
        a, b = ref.process([as_kind(x, i % 3)]), new.process([as_kind(y, i % 3)])
        assert signals(a) == signals(b)       # (the frame headers carry the wall-clock time)
        n_sig += len(a)
    assert n_sig >= 3 and ref.counters() == new.counters()
    assert len(new._entry) == 2  # noqa: SLF001 - contiguous (bytes copied, writable), strided view
    assert all(writeable for _, _, writeable in new._entry)  # noqa: SLF001
    assert not ref._entry  # noqa: SLF001


def test_each_two_pool_signal_is_handed_over_as_soon_as_it_is_sized():
    """Three venues of one pair: every 2-pool signal leaves in its own publish call (before the
    next cycle is sized and before the triangles), and the signals are the same, in the same
    order with the same sequence numbers, as without handover; also for max_hops = 2."""
    P5 = addr(0x1005)

    def frames(f):
        return [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                        f.v2_state(P4, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302),
                        f.v2_state(P5, WETH, USDC, 1000 * E18, 2_250_000 * E18, venue=400),
                        f.v2_state(P2, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
                        f.v2_state(P3, WBTC, USDC, 100 * 10**8, 4_400_000 * E18, d0=8), ts=10**18)]
    for hops in (3, 2):
        expected = signals(engine(max_hops=hops).process(frames(Feed())))
        n_pairs = sum(s.hops == 2 for s in expected)
        assert n_pairs >= 2 and (hops == 2 or n_pairs < len(expected))
        e = engine(max_hops=hops)
        chunks = []
        n, nbytes = e.process_raw(frames(Feed()), publish=lambda out, nb: chunks.append(bytes(out[:nb])))
        got = [signals([c[i:i + A.SIG_FRAME] for i in range(0, len(c), A.SIG_FRAME)]) for c in chunks]
        assert [len(g) for g in got[:n_pairs]] == [1] * n_pairs
        assert all(g[0].hops == 2 for g in got[:n_pairs])
        assert all(s.hops == 3 for g in got[n_pairs:] for s in g)
        assert n == len(expected) and nbytes == sum(map(len, chunks))
        assert [s for g in got for s in g] == expected


def _sink_frames(f, extra_blocks=0):
    P5 = addr(0x1005)
    out = [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                   f.v2_state(P4, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302),
                   f.v2_state(P5, WETH, USDC, 1000 * E18, 2_250_000 * E18, venue=400),
                   f.v2_state(P2, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
                   f.v2_state(P3, WBTC, USDC, 100 * 10**8, 4_400_000 * E18, d0=8), ts=10**18)]
    for k in range(1, extra_blocks + 1):
        f.block += 1
        out.append(f.frame(f.v2_sync(P4, WETH, USDC, 1000 * E18, (2_100_000 + 60_000 * k) * E18, venue=302),
                           ts=10**18 + k))
    return out


def _ring_frames(cons, timeout: float = 0.0) -> list[bytes]:
    """The frames the consumer's poll returns (split), then release."""
    out = []
    for v in cons.poll(timeout=timeout):
        b = bytes(v)
        p = 0
        while p < len(b):
            size = L.HEADER_SIZE + int.from_bytes(b[p + 24:p + 28], "little")
            out.append(b[p:p + size])
            p += size
    cons.release()
    return out


@pytest.mark.parametrize("hops", [3, 2])
def test_sink_publishes_on_the_ring_what_process_returns(hops):
    """With ``sink`` the kernel publishes every signal on the ring itself: the ring holds the
    same frames, byte for byte but the header clock, in the same order, as ``process`` returns
    (2-pool signals before the triangles of each search), over several batches."""
    from alphapulse.ring import Ring
    ref, e = engine(max_hops=hops), engine(max_hops=hops)
    batches = _sink_frames(Feed(), 3), _sink_frames(Feed(), 3)
    expected = []
    for fr in batches[0]:
        expected += ref.process([fr])
    with Ring.create(f"t_sink_{hops}", 1 << 16, "lossless") as ring:
        cons = ring.consumer("reader", wait="sleep")
        prod = ring.producer()
        seen = []
        lat: list = []
        n_total = 0
        for fr in batches[1]:
            calls = len(seen)
            n, _ = e.process_raw([fr], sink=prod, observe=lambda out, nb: seen.append(nb),
                                 latency=lambda a: lat.extend(a.tolist()))
            n_total += n
            if n:
                # one kernel call did it all: every signal went out from the kernel (none was
                # left for Python: no consumer sleeps, the ring has room)
                assert len(seen) == calls + 1
                assert e._resume[A.RS_PUB] == seen[-1] and e._resume[A.RS_SINK] == 0  # noqa: SLF001
        got = _ring_frames(cons)
        # the kernel's publications beat the producer's heartbeat on the rings' clock (monotonic)
        age = ring.stats()["producer"]["heartbeat_age_s"]
        prod.close()
        cons.close()
    assert 0 <= age < 5
    assert len(expected) >= 4 and n_total == len(got) == len(expected)
    assert signals(got) == signals(expected)
    assert sum(seen) == n_total * A.SIG_FRAME
    assert len(lat) == n_total and all(v > 0 for v in lat)    # one trigger-to-publication each
    if hops == 3:
        assert {s.hops for s in signals(got)} == {2, 3}


def test_sink_wakes_a_sleeping_consumer():
    """A consumer asleep on the signal ring (futex) is woken by the kernel's publication: the
    kernel hands the wake to Python, which calls ``Producer.wake``."""
    import threading
    import time
    from alphapulse.ring import Ring
    e = engine(max_hops=2)
    with Ring.create("t_sink_wake", 1 << 16, "lossless") as ring:
        cons = ring.consumer("sleeper", wait="sleep")
        prod = ring.producer()
        got: list = []

        def sleeper():
            got.extend(bytes(v) for v in cons.poll(timeout=20.0))
            cons.release()

        t = threading.Thread(target=sleeper)
        t.start()
        deadline = time.monotonic() + 10
        while ring.stats()["sleeping_consumers"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert ring.stats()["sleeping_consumers"] == 1
        wakes0 = ring.stats()["producer"]["wakes"]
        t0 = time.monotonic()
        n, _ = e.process_raw(_sink_frames(Feed()), sink=prod)
        t.join(20)
        woke_after = time.monotonic() - t0
        wakes = ring.stats()["producer"]["wakes"] - wakes0
        prod.close()
        cons.close()
    assert n >= 2 and got, "the sleeping consumer got nothing"
    assert woke_after < 10 and wakes >= 1, "the consumer slept to its timeout: no wake"


def test_sink_on_a_full_lossless_ring_waits_then_raises_like_publish_batch():
    """A lossless signal ring whose consumer never reads: the kernel publishes what fits, hands
    the rest to ``publish_batch``, which waits and raises RingFullTimeout; what went out is intact."""
    from alphapulse.ring import Ring
    from alphapulse.ring.ring import RingFullTimeout
    e = engine(max_hops=3)
    cap = (2 * A.SIG_FRAME + 64 + 7) // 8 * 8
    with Ring.create("t_sink_full", cap, "lossless") as ring:
        cons = ring.consumer("stuck", wait="sleep")
        prod = ring.producer(publish_timeout=0.2)
        with pytest.raises(RingFullTimeout):
            e.process_raw(_sink_frames(Feed()), sink=prod)
        got = _ring_frames(cons)
        prod.close()
        cons.close()
    assert len(got) == 2 and all(s.hops == 2 for s in signals(got))


def _v2_v3_cycle(v2_price_pct):
    """An engine with a V2 pool at ``v2_price_pct`` % of a V3 pool's price (ticks initialised
    around it) and the cycle of its one signal: (engine, state, the signal, its path, pools
    and directions, the kernels' leading arguments)."""
    e, f = engine(), Feed()
    v3_frames, _ = _v3_setup(f)
    (s,) = signals(e.process([f.frame(f.v2_state(P1, WETH, USDC, 10**24, v2_price_pct * 10**22), *v3_frames)]))
    st = e.state
    path = [(bytes(s.pools[i]), bytes(s.tokens[i])) for i in range(2)]
    cp = np.array([e.registry.index(p) for p, _ in path] + [0], np.int64)
    cz = np.array([int(st["pools"][cp[i], A.C_TOKEN0]) == e.registry.token_index(path[i][1])
                   for i in range(2)] + [False])
    return e, st, s, path, cp, cz, (st["pools"], st["tticks"], st["tnets"], st["tn"], cp, cz, 2)


def test_exact_ascent_finds_the_optimum_from_a_wrong_start_in_few_simulations():
    """optimise_input's exact search (a V2-V3 cycle that crosses initialised ticks): started
    from the model's optimum it needs 3 simulations; started many bands away it still ends
    within the tolerance of that profit (search_band: 1 ppb here), in O(log) simulations
    (galloping then golden sections), not one step per band the start is off."""
    e, st, s, path, cp, cz, args = _v2_v3_cycle(103)
    cap = 1e40
    x0, est, curv, all_v2, est_max = A.model_optimum(*args, cap)
    assert not all_v2 and est_max and x0 > 0 and curv > 0 and est > 0
    ppb = e.config.search_tolerance_ppb
    wt = A.search_band(2, curv, est, ppb)
    tol = 2 * max(4.0, est * ppb * 1e-9)

    def run(start):
        counters = np.zeros_like(st["counters"])
        x, out, found = A.optimise_input(*args, e._params, counters, start, curv, all_v2, cap,  # noqa: SLF001
                                         est, est_max, np.zeros((A.SWC_N, A.SWCOL), np.uint64), 0)
        assert found
        xi, oi = from_limbs(x), from_limbs(out)
        assert oi == e.simulate(path, xi)          # the pair returned is one exact simulation
        return xi, oi - xi, int(counters[A.K_SIMULATIONS])

    x_best, p_best, sims = run(x0)
    assert sims <= 4 and (x_best, p_best) == (s.amount_in, s.amount_out - s.amount_in)
    # the best profit of a dense scan around it is not better by more than the tolerance
    dense = max(e.simulate(path, x) - x for x in np.linspace(x0 - 20 * wt, x0 + 20 * wt, 81).astype(int).tolist())
    assert p_best >= dense - tol
    for k in (0.9, 0.99, 1.01, 1.1):
        x, p, sims = run(x0 * k)
        off_bands = abs(x0 * k - x0) / wt
        assert off_bands > 20         # the start really was many bands away
        assert p >= p_best - tol, (k, p, p_best)
        assert sims <= 3 + 3 * (np.log2(off_bands) + 2), (k, sims, off_bands)
    # far off (the budget, search_iters_v3 simulations, may end the search first): still
    # bounded, and never worse than the start
    for k in (0.3, 1.5):
        x, p, sims = run(x0 * k)
        start = int(x0 * k)
        assert p >= e.simulate(path, start) - start and sims <= 3 + e.config.search_iters_v3


@pytest.mark.parametrize("v2_price_pct", [101, 102, 103, 105, 108, 112])
def test_a_certified_optimum_is_as_good_as_the_exact_ascents(v2_price_pct):
    _certificate_case(v2_price_pct)


def _certificate_case(v2_price_pct):
    """optimise_input's certificate (a V2-V3 cycle whose V3 leg crosses initialised ticks):
    when the exact profit at the model's optimum is within the tolerance of the model's
    maximum, it answers after that one simulation, and no input pays more than the tolerance
    above it: not the exact ascent's answer (run without the certificate), not a dense scan."""
    e, st, _, path, cp, cz, args = _v2_v3_cycle(v2_price_pct)
    x0, est, curv, all_v2, est_max = A.model_optimum(*args, 1e40)
    assert not all_v2 and est_max and est > 0
    ppb = e.config.search_tolerance_ppb
    tol = max(4.0, est * ppb * 1e-9)

    def run(bound):
        counters = np.zeros_like(st["counters"])
        x, out, found = A.optimise_input(*args, e._params, counters, x0, curv, all_v2, 1e40,  # noqa: SLF001
                                         est, bound, np.zeros((A.SWC_N, A.SWCOL), np.uint64), 0)
        assert found
        xi, oi = from_limbs(x), from_limbs(out)
        assert oi == e.simulate(path, xi)
        return xi, oi - xi, int(counters[A.K_SIMULATIONS])

    x_c, p_c, sims_c = run(True)
    x_a, p_a, sims_a = run(False)
    assert sims_a >= 3
    stair = A.rounding_staircase(st["pools"], cp, cz, 2)
    # under 2 units of the start token from the last hop, 2 of the middle token from the first
    assert stair == pytest.approx(2.0 + 2.0 * A._marginal_rate(st["pools"], cp[1], cz[1]))  # noqa: SLF001
    certified = A.certified(2, x0, est, float(p_c), ppb, stair)
    assert certified == (sims_c == 1)
    tol = max(tol, min(stair, A.STAIR_CAP_REL * est))
    if certified:
        assert x_c == from_limbs(A.u256_from_f64(x0))
        assert p_c >= p_a - tol and abs(est - p_c) <= tol
        wt = A.search_band(2, curv, est, ppb)
        dense = max(e.simulate(path, x) - x for x in (int(x0 + k * wt) for k in range(-50, 51)))
        assert p_c >= dense - tol
    else:
        assert (x_c, p_c) == (x_a, p_a)
    return certified        # for the test below: whether this cycle was certified


def test_the_certificate_holds_on_most_v2_v3_cycles_and_its_rule():
    """The certificate is not a dead path: it answers most of the cycles above; and its rule:
    within the tolerance of the model's maximum either way (rounding slack included) or not."""
    n = sum(_certificate_case(p) for p in (101, 102, 103, 105, 108, 112))
    assert n >= 2
    x0, est = 1e21, 1e19                      # tolerance: 1 ppb of est = 1e10
    slack = A.MODEL_FLOAT_REL * 2 * (x0 + est)
    assert A.certified(2, x0, est, est - 1e10 + slack * 1.01, 1, 0.0)
    assert not A.certified(2, x0, est, est - 1e10 + slack * 0.99, 1, 0.0)
    assert not A.certified(2, x0, est, est + 1e10, 1, 0.0)       # the exact profit beats the model: off
    assert A.certified(2, x0, est, est + 1e10 - slack * 1.01, 1, 0.0)
    assert not A.certified(2, 1e6, 3.0, 3.0 - 5.0, 1, 0.0)       # at least hops + 2 units: 4 here
    assert A.certified(2, 1e6, 3.0, 3.0 - 3.0, 1, 0.0)
    # the rounding staircase widens it below the model (up to 1 ppm of est), never above it
    assert A.certified(2, x0, est, est - 1e12 + slack * 1.01, 1, 1e12)
    assert not A.certified(2, x0, est, est - 1e12 + slack * 0.99, 1, 1e12)
    assert not A.certified(2, x0, est, est - 1e13 - slack, 1, 1e20)       # capped: 1e-6 * est = 1e13
    assert A.certified(2, x0, est, est - 1e13 + slack * 1.01, 1, 1e20)
    assert not A.certified(2, x0, est, est + 1e12, 1, 1e12)


def _golden_max(f, lo, hi, iters=200):
    """Maximiser of a unimodal f on [lo, hi] by golden sections (Python floats)."""
    k = (5 ** 0.5 - 1) / 2
    a, b = lo, hi
    c, d = b - k * (b - a), a + k * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - k * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + k * (b - a)
            fd = f(d)
    return 0.5 * (a + b)


@pytest.mark.parametrize("v2_price_pct", [101, 103, 106, 110, 118, 130, 160])
def test_model_optimum_is_the_float_model_s_maximum_across_tick_ranges(v2_price_pct):
    """model_optimum's piecewise closed form (one Moebius map per combination of ranges the
    V3 hop ends in) lands on the maximum of the float model (cycle_model), found here by
    golden sections over the whole input range, for price gaps from 1 % (no tick crossed)
    to 60 % (several initialised ticks crossed); the piece it reports is the model there."""
    e, f = engine(), Feed()
    v3_frames, _ = _v3_setup(f)
    # the V3 pool at ~1 USDC per WETH (price 1.0001**0): the V2 pool pays v2_price_pct % of that
    e.process([f.frame(f.v2_state(P1, WETH, USDC, 10**24, v2_price_pct * 10**22), *v3_frames)])
    st = e.state
    cp = np.array([e.registry.index(P3), e.registry.index(P1), 0], np.int64)
    args = (st["pools"], st["tticks"], st["tnets"], st["tn"])
    # buy WETH on the V3 pool with USDC (token1 in), sell it on V2 for USDC
    weth_is_0 = int(st["pools"][cp[0], A.C_TOKEN0]) == e.registry.token_index(WETH)
    cz = np.array([not weth_is_0, weth_is_0, False])
    x, est, curv, all_v2, converged = A.model_optimum(*args, cp, cz, 2, 1e40)
    assert not all_v2 and converged and x > 0 and est > 0 and curv > 0

    def profit(y):
        out, _, ok = A.cycle_model(*args, cp, cz, 2, y)
        return out - y if ok else -1e300

    best = _golden_max(profit, 0.0, 50 * x)
    assert abs(x - best) <= 1e-6 * best, (x, best)
    assert abs(est - profit(x)) <= 1e-9 * est
    a, b, c, d, ok = A.cycle_piece(*args, cp, cz, 2, x)
    out, _, _ = A.cycle_model(*args, cp, cz, 2, x)
    assert ok and abs((a * x + b) / (c * x + d) - out) <= 1e-12 * out


@contextlib.contextmanager
def _run_rings(tag, sig_capacity=1 << 16, md_timeout_s=30.0, publish_timeout=10.0):
    """A market ring (overwrite) with its producer and the strategy's spinning consumer, a
    signal ring (lossless) with its producer; all closed and unlinked at the end."""
    from alphapulse.ring import Ring
    md = Ring.create(f"t_run_{tag}_md", 1 << 16, "overwrite", consumer_timeout_s=md_timeout_s)
    sig = Ring.create(f"t_run_{tag}_sig", sig_capacity, "lossless")
    ends = []
    try:
        mp, sp = md.producer(), sig.producer(publish_timeout=publish_timeout)
        mc = md.consumer("strategy", wait="spin")
        ends += [mc, sp, mp]
        yield md, sig, mp, sp, mc
    finally:
        for x in ends:
            x.close()
        for r in (md, sig):
            r.close()
            r.unlink()


def test_run_spins_in_compiled_code_and_publishes_what_process_returns():
    """engine.run: the compiled loop polls the market ring, processes each batch and publishes
    the signals on the signal ring itself; the ring then holds exactly what ``process`` returns
    for the same frames (a corrupt frame among them counted and skipped), the market consumer
    is released up to the end, and each signal's trigger-to-publication time is reported."""
    ref, e = engine(max_hops=3), engine(max_hops=3)
    expected = []
    for fr in _sink_frames(Feed(), 3):
        expected += ref.process([fr])
    with _run_rings("ok") as (md, sig, mp, sp, mc):
        reader = sig.consumer("reader", wait="spin")     # polls, never sleeps: no wake needed
        frames = _sink_frames(Feed(), 3)
        garbage = bytearray(frames[1])
        garbage[L.HEADER_SIZE + 1] = 0xFF                 # a TLV longer than the payload: counted
        mp.publish(frames[0])
        lat: list = []
        n = e.run(mc, sp, 0.05, latency=lambda a: lat.extend(a.tolist()))
        mp.publish_batch(bytes(garbage))
        n += e.run(mc, sp, 0.05)
        for fr in frames[1:]:
            mp.publish(fr)
        n += e.run(mc, sp, 0.05)
        got = _ring_frames(reader)
        assert mc.lag() == (0, 0)
        hb = [c["heartbeat_age_s"] for c in md.stats()["consumers"] if c["name"] == "strategy"]
        assert len(hb) == 1 and 0 <= hb[0] < 5       # the kernel's polls beat on the rings' clock
        reader.close()
    assert len(expected) >= 4 and n == len(got) == len(expected)
    assert signals(got) == signals(expected)
    assert e.counters()["frames_rejected"] == 1
    assert len(lat) >= 2 and all(v > 0 for v in lat)


def test_run_hands_a_wake_to_python_then_carries_on():
    """A signal reader asleep on its futex: the kernel stops for the wake, Python wakes it and
    finishes the interrupted batch; every signal arrives, in order."""
    import threading
    import time
    ref, e = engine(max_hops=3), engine(max_hops=3)
    expected = ref.process(_sink_frames(Feed()))
    with _run_rings("wake") as (md, sig, mp, sp, mc):
        reader = sig.consumer("sleeper", wait="sleep")
        got: list = []

        def sleeper():
            deadline = time.monotonic() + 20
            while len(got) < len(expected) and time.monotonic() < deadline:
                got.extend(_ring_frames(reader, 5.0))

        t = threading.Thread(target=sleeper)
        t.start()
        deadline = time.monotonic() + 10
        while sig.stats()["sleeping_consumers"] == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        for fr in _sink_frames(Feed()):
            mp.publish(fr)
        n = e.run(mc, sp, 0.2)
        t.join(20)
        wakes = sig.stats()["producer"]["wakes"]
        reader.close()
    assert wakes >= 1 and n == len(expected)
    assert signals(got) == signals(expected)


def test_run_on_a_full_signal_ring_raises_and_an_evicted_consumer_is_reported():
    from alphapulse.ring.ring import ConsumerEvicted, RingFullTimeout
    e = engine(max_hops=3)
    import time
    with _run_rings("full", sig_capacity=(2 * A.SIG_FRAME + 64 + 7) // 8 * 8, md_timeout_s=0.3,
                    publish_timeout=0.2) as (md, sig, mp, sp, mc):
        stuck = sig.consumer("stuck", wait="sleep")
        for fr in _sink_frames(Feed()):
            mp.publish(fr)
        with pytest.raises(RingFullTimeout):
            e.run(mc, sp, 0.2)
        stuck.close()
        # the market consumer's heartbeat goes stale: the ring drops it, and run says so
        time.sleep(0.4)
        assert [c["name"] for c in md.evict_dead_consumers(stale=True)] == ["strategy"]
        with pytest.raises(ConsumerEvicted):
            e.run(mc, sp, 0.05)


def test_signals_are_stamped_by_the_tsc_clock_as_they_are_written():
    """The engine's signals carry the time the kernel wrote them, read from the process's TSC clock
    (copied into the engine's state), and the latency record is trigger to that stamp."""
    import time
    from alphapulse.jit import pool_state as S
    from alphapulse.jit.clock import CAL_REANCHORS, CAL_SIZE, CAL_TSC, invariant_tsc
    e, f = engine(), Feed()
    clk = e.state["meta"][S.M_CLOCK:S.M_CLOCK + CAL_SIZE]
    assert clk[CAL_TSC] == int(invariant_tsc())
    before = time.time_ns()
    n, _ = e.process_raw([f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                                  f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * E18, venue=302))])
    after = time.time_ns()
    assert n == 1
    o = int(e.out_offsets[0])
    stamp = int(e.out_buffer[o + 16:o + 24].view(np.uint64)[0])
    assert before <= stamp <= after
    if clk[CAL_TSC]:
        reanchors = int(clk[CAL_REANCHORS])
        time.sleep(0.06)                   # past the re-anchor period: the next stamp re-anchors
        f.block += 1
        e.process_raw([f.frame(f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_300_000 * E18, venue=302))])
        assert int(clk[CAL_REANCHORS]) == reanchors + 1
