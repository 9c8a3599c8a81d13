"""Differential: the Numba AMM kernels pay exactly what the deployed Uniswap contracts pay.

Random pool states (new pools with random reserves/prices, tokens with 6, 8 and 18 decimals,
then moved by real swaps and liquidity changes) and random amounts from 1 wei to beyond what
the pools hold, both directions. Oracles: Router02.getAmountsOut and QuoterV2 (batched
eth_call), plus executed swaps whose Swap events must equal the simulation.
Scale with AP_DIFF_AMOUNTS (amounts per pool, direction and state; default 60).
"""
from __future__ import annotations

import os
import random

from alphapulse.jit import amm_v2, amm_v3
from alphapulse.jit.wideint import from_limbs, to_u256
from alphapulse.protocol.layout import PoolKind
from alphapulse.strategy import reference as R

from tests.jit.amm_cases import nets_array, ticks_array

N_AMOUNTS = int(os.environ.get("AP_DIFF_AMOUNTS", "60"))


def _amounts(rng: random.Random, scale: int, n: int) -> list[int]:
    """Log-uniform from 1 to ~50x ``scale`` plus the edges."""
    out = [1, 2, 3, 999, scale // 1000 + 1, scale // 3 + 1]
    top = max(10, (scale * 50).bit_length())
    while len(out) < n:
        out.append(rng.getrandbits(rng.randint(1, top)) or 1)
    return out


def _add_tokens(market, rng):
    syms = []
    for i, dec in enumerate((6, 8, 18, 18)):
        sym = f"DX{i}"
        market.add_token(sym, decimals=dec, usd_price=rng.choice([1, 3, 250, 40000]))
        syms.append(sym)
    return syms


def _v2_check_pool(market, pool, rng, n):
    r0, r1 = market.reserves(pool)
    checked = 0
    for t_in, (r_in, r_out) in ((pool.token0, (r0, r1)), (pool.token1, (r1, r0))):
        amounts = _amounts(rng, r_in, n)
        chain = market.v2_get_amount_out_many(pool, t_in, amounts)
        for a, c in zip(amounts, chain):
            out, ok = amm_v2.v2_get_amount_out(to_u256(a), to_u256(r_in), to_u256(r_out), pool.fee_pips)
            if c is None:  # the library reverts: SafeMath overflow of a*997*r_out
                assert not ok and a * (10**6 - pool.fee_pips) * r_out >= 2**256, (pool.label, a)
                continue
            assert from_limbs(out) == c, (pool.label, a, r_in, r_out)
            if ok:
                assert R.v2_get_amount_out(a, r_in, r_out, pool.fee_pips) == c
            checked += 1
    return checked


def test_v2_get_amount_out_equals_router_on_random_states(market):
    rng = random.Random(11)
    syms = _add_tokens(market, rng)
    venues = sorted(market.v2_factories)
    pools = []
    for i, a in enumerate(syms):
        for b in syms[i + 1:] + ["USDC", "WETH", "WBTC"]:
            for venue in venues[: rng.randint(1, len(venues))]:
                da, db = market.tokens[a].decimals, market.tokens[b].decimals
                amt_a = rng.randint(10**3, 10**(da + rng.randint(0, 12)) + 10**3)
                amt_b = rng.randint(10**3, 10**(db + rng.randint(0, 12)) + 10**3)
                pools.append(market.create_v2_pool(a, b, venue, amt_a, amt_b))
    pools += [p for p in market.pools if p.kind == PoolKind.CONSTANT_PRODUCT and p not in pools][:6]
    checked = 0
    executed = 0
    for round_ in range(2):
        for pool in pools:
            checked += _v2_check_pool(market, pool, rng, N_AMOUNTS)
        # move the states with real swaps, and check each swap's output against the formula
        for pool in rng.sample(pools, 8):
            r0, r1 = market.reserves(pool)
            zfo = rng.random() < 0.5
            r_in, r_out = (r0, r1) if zfo else (r1, r0)
            amount = max(1, r_in * rng.randint(1, 40) // 100)
            market.fund(market.traders[0], {pool.token0 if zfo else pool.token1: amount})
            res = market.v2_swap(pool, pool.token0 if zfo else pool.token1, amount)
            out, ok = amm_v2.v2_get_amount_out(to_u256(amount), to_u256(r_in), to_u256(r_out), pool.fee_pips)
            assert ok and res.amount_out == from_limbs(out), pool.label
            executed += 1
    assert checked >= 2 * len(pools) * N_AMOUNTS * 2 * 0.9
    assert executed == 16


def _v3_check_pool(market, pool, rng, n):
    st = market.v3_state(pool)
    ticks = [t for t, _ in st.ticks]
    nets = [v for _, v in st.ticks]
    ta, na = ticks_array(ticks), nets_array(nets)
    checked = crossed_max = 0
    # scale of the pool: active liquidity in token units at this price, both sides
    sp = st.sqrt_price_x96
    scale0 = st.liquidity * 2**96 // sp + 1
    scale1 = st.liquidity * sp // 2**96 + 1
    for zfo, scale in ((True, scale0), (False, scale1)):
        t_in = pool.token0 if zfo else pool.token1
        amounts = _amounts(rng, scale, n)
        quotes = market.quote_v3_many(pool, t_in, amounts)
        for a, q in zip(amounts, quotes):
            status, a_in, a_out, sp_after, _liq, _tick, crossed = amm_v3.v3_swap(
                to_u256(sp), st.tick, to_u256(st.liquidity), st.fee_pips, st.tick_spacing, ta, na, len(ticks),
                zfo, True, to_u256(a), to_u256(from_limbs(amm_v3.default_limit(zfo))))
            if q is None:
                assert status != amm_v3.SWAP_OK or a >= 2**255, (pool.label, a)
                continue
            assert status == amm_v3.SWAP_OK, (pool.label, a, status)
            assert from_limbs(a_out) == q.amount_out, (pool.label, zfo, a)
            assert from_limbs(sp_after) == q.sqrt_price_x96_after, (pool.label, zfo, a)
            ref = R.v3_swap(sp, st.tick, st.liquidity, st.fee_pips, st.tick_spacing, ticks, nets, zfo, a)
            assert -(ref.amount1 if zfo else ref.amount0) == q.amount_out
            # QuoterV2 counts initialised ticks between the start and end tick with its own edge
            # rules (PoolTicksCounter), so it is a bound here, not the pool's crossing count
            assert crossed == ref.ticks_crossed and abs(crossed - q.initialized_ticks_crossed) <= 1
            crossed_max = max(crossed_max, crossed)
            checked += 1
    return checked, crossed_max, st


def test_v3_swap_equals_quoter_and_executed_swaps(market):
    rng = random.Random(23)
    syms = _add_tokens(market, rng)
    pools = []
    for a, b, fee in ((syms[0], syms[1], 500), (syms[1], syms[2], 3000), (syms[2], syms[3], 10000),
                      (syms[0], "WETH", 3000), (syms[3], "USDC", 500), (syms[1], "WBTC", 10000)):
        da, db = market.tokens[a].decimals, market.tokens[b].decimals
        amt_a = rng.randint(10**(da + 2), 10**(da + 9))
        amt_b = rng.randint(10**(db + 2), 10**(db + 9))
        pools.append(market.create_v3_pool(a, b, fee, amt_a, amt_b))
    pools += [p for p in market.pools if p.kind == PoolKind.CONCENTRATED][:3]
    checked = 0
    crossed_max = 0
    executed = 0
    for round_ in range(3):
        for pool in pools:
            c, x, st = _v3_check_pool(market, pool, rng, N_AMOUNTS)
            checked += c
            crossed_max = max(crossed_max, x)
        # change the states: extra positions (new initialised ticks) and real swaps checked exactly
        for pool in rng.sample(pools, 4):
            st = market.v3_state(pool)
            s = st.tick_spacing
            cur = st.tick // s * s
            lo, hi = cur - s * rng.randint(1, 30), cur + s * rng.randint(1, 30)
            bal0 = st.liquidity * 2**96 // st.sqrt_price_x96 // 10 + 10
            bal1 = st.liquidity * st.sqrt_price_x96 // 2**96 // 10 + 10
            market.fund(market.traders[0], {pool.token0: bal0, pool.token1: bal1})
            market.add_liquidity_v3(pool, lo, hi, bal0, bal1)
        for pool in rng.sample(pools, 5):
            st = market.v3_state(pool)
            zfo = rng.random() < 0.5
            sp = st.sqrt_price_x96
            scale = st.liquidity * 2**96 // sp if zfo else st.liquidity * sp // 2**96
            amount = max(1, scale * rng.randint(1, 60) // 100)
            ticks = [t for t, _ in st.ticks]
            nets = [v for _, v in st.ticks]
            status, a_in, a_out, sp_after, liq_after, tick_after, _ = amm_v3.v3_swap(
                to_u256(sp), st.tick, to_u256(st.liquidity), st.fee_pips, st.tick_spacing, ticks_array(ticks),
                nets_array(nets), len(ticks), zfo, True, to_u256(amount), to_u256(from_limbs(amm_v3.default_limit(zfo))))
            market.fund(market.traders[0], {pool.token0 if zfo else pool.token1: amount})
            res = market.v3_swap(pool, pool.token0 if zfo else pool.token1, amount)
            assert status == amm_v3.SWAP_OK
            assert (res.amount_in, res.amount_out) == (from_limbs(a_in), from_limbs(a_out)), pool.label
            assert (res.sqrt_price_x96, res.liquidity, res.tick) == (from_limbs(sp_after), from_limbs(liq_after),
                                                                    tick_after), pool.label
            executed += 1
    assert checked >= 3 * len(pools) * N_AMOUNTS * 2 * 0.9
    assert crossed_max >= 3, "amounts must cross several initialised ticks"
    assert executed == 15
