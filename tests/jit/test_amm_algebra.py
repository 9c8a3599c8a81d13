"""The Algebra v1.0 kernel against the pure-Python Uniswap V3 reference at spacing 60 (the two
pools' step math and stepping are the same: see amm_algebra's docstring), on random pools and
swaps in both directions, plus the checks only Algebra has (uint16 fee). The pool itself is the
oracle of tests/chain/test_algebra_chain.py."""
from __future__ import annotations

import random

import numpy as np

from alphapulse.jit import amm_algebra as A
from alphapulse.jit.amm_v3 import (MAX_SQRT_RATIO, MIN_SQRT_RATIO, SWAP_BAD_AMOUNT, SWAP_BAD_LIMIT,
                                   SWAP_MISSING_TICK, SWAP_OK)
from alphapulse.jit.wideint import from_limbs, i128_rows, to_u256
from alphapulse.strategy import reference as R

MIN_P = from_limbs(MIN_SQRT_RATIO)
MAX_P = from_limbs(MAX_SQRT_RATIO)


def _pool(rng: random.Random):
    positions = [(-887220, 887220, 10 ** rng.randint(15, 19))]
    for _ in range(rng.randint(1, 12)):
        lo = rng.randrange(-300, 300) * 60
        positions.append((lo, lo + rng.randrange(1, 50) * 60, int(10 ** rng.uniform(15, 22))))
    sp = R.get_sqrt_ratio_at_tick(rng.randrange(-20000, 20000)) + rng.getrandbits(60)
    tick, liq, ticks, nets = R.pool_from_positions(positions, sp)
    return sp, tick, liq, ticks, nets


def _kernel(sp, tick, liq, fee, ticks, nets, zto, amount, limit, known_range_only=False):
    t = np.array(ticks, dtype=np.int32)
    return A.algebra_swap(to_u256(sp), tick, to_u256(liq), fee, t, i128_rows(nets), len(ticks), zto, amount > 0,
                          to_u256(abs(amount)), to_u256(limit), known_range_only)


def test_random_swaps_equal_the_reference_loop_at_spacing_60():
    rng = random.Random(17)
    checked = crossed_max = 0
    for _ in range(150):
        sp, tick, liq, ticks, nets = _pool(rng)
        fee = rng.choice([0, 1, 100, 500, 3000, 10000, 65535])
        for _ in range(6):
            zto = rng.random() < 0.5
            amount = int(10 ** rng.uniform(0, 24)) * rng.choice([1, -1])
            if rng.random() < 0.5:
                limit = MIN_P + 1 if zto else MAX_P - 1
            else:
                limit = int(sp * (1 - rng.uniform(1e-4, 0.3))) if zto else int(sp * (1 + rng.uniform(1e-4, 0.3)))
            try:
                ref = R.v3_swap(sp, tick, liq, fee, 60, ticks, nets, zto, amount, limit)
            except (R.Revert, ValueError, ArithmeticError):
                ref = None
            st, a_in, a_out, p, l, t, crossed = _kernel(sp, tick, liq, fee, ticks, nets, zto, amount, limit)
            if ref is None:
                assert st != SWAP_OK
                continue
            assert st == SWAP_OK
            want_in, want_out = (ref.amount0, -ref.amount1) if zto else (ref.amount1, -ref.amount0)
            assert (from_limbs(a_in), from_limbs(a_out)) == (want_in, want_out)
            assert (from_limbs(p), from_limbs(l), t, crossed) == (ref.sqrt_price_x96, ref.liquidity, ref.tick,
                                                                   ref.ticks_crossed)
            checked += 1
            crossed_max = max(crossed_max, crossed)
    assert checked > 600 and crossed_max >= 5


def test_a_fee_beyond_uint16_a_zero_amount_and_a_wrong_limit_are_refused():
    sp, tick, liq, ticks, nets = _pool(random.Random(3))
    assert _kernel(sp, tick, liq, 65536, ticks, nets, True, 10**18, MIN_P + 1)[0] == A.SWAP_BAD_FEE
    assert _kernel(sp, tick, liq, -1, ticks, nets, True, 10**18, MIN_P + 1)[0] == A.SWAP_BAD_FEE
    assert _kernel(sp, tick, liq, 3000, ticks, nets, True, 0, MIN_P + 1)[0] == SWAP_BAD_AMOUNT
    assert _kernel(sp, tick, liq, 3000, ticks, nets, True, 10**18, sp)[0] == SWAP_BAD_LIMIT        # 'SPL'
    assert _kernel(sp, tick, liq, 3000, ticks, nets, False, 10**18, sp)[0] == SWAP_BAD_LIMIT
    assert _kernel(sp, tick, liq, 3000, ticks, nets, True, 10**18, MIN_P)[0] == SWAP_BAD_LIMIT


def test_exact_input_and_the_known_tick_range():
    ticks, nets = [-600, 600], [10**20, -10**20]
    sp = 1 << 96
    out, ok = A.algebra_exact_input(to_u256(10**16), True, to_u256(sp), 0, to_u256(10**20), 3000,
                                    np.array(ticks, dtype=np.int32), i128_rows(nets), 2)
    ref = R.v3_swap(sp, 0, 10**20, 3000, 60, ticks, nets, True, 10**16)
    assert ok and from_limbs(out) == -ref.amount1
    # past tick -600 the liquidity is unknown: refused rather than priced on nothing
    out, ok = A.algebra_exact_input(to_u256(10**19), True, to_u256(sp), 0, to_u256(10**20), 3000,
                                    np.array(ticks, dtype=np.int32), i128_rows(nets), 2)
    assert not ok
    st = _kernel(sp, 0, 10**20, 3000, ticks, nets, True, 10**19, MIN_P + 1, True)[0]
    assert st == SWAP_MISSING_TICK


def test_integral_steps_from_tick_to_tick_and_refuses_what_the_pool_refuses():
    ticks, nets = [-600, 600], [10**20, -10**20]
    t = np.array(ticks, dtype=np.int32)

    def both(sp, tick, zto, amount):
        limit = MIN_P + 1 if zto else MAX_P - 1
        args = (to_u256(sp), tick, to_u256(10**20), 3000, t, i128_rows(nets), 2, zto, amount > 0,
                to_u256(abs(amount)), to_u256(limit), False)
        return A.algebra_swap(*args), A.integral_swap(*args)

    # inside one tick-table word (ticks -15360..-60 at spacing 60) both make the same single step
    sp = R.get_sqrt_ratio_at_tick(-300) + 12345
    for zto, amount in ((True, 10**16), (False, -10**15), (True, -3 * 10**15), (False, 10**15)):
        a, b = both(sp, -300, zto, amount)
        assert a[0] == SWAP_OK and a == b
    # across tick 0, an empty word boundary: v1.0 (like Uniswap) makes a step there, Integral
    # goes on to tick -600 in one step, and the rounding differs
    sp = (1 << 96) + 12345
    a, b = both(sp, 0, True, 10**16)
    assert a[0] == b[0] == SWAP_OK and a[1] == b[1] and from_limbs(a[2]) != from_limbs(b[2])
    # Integral crosses every initialised tick it reaches; past the last one the list ends at
    # MIN_TICK / MAX_TICK (no liquidity), where the limit stops the swap: a partial fill
    st, a_in, a_out, p, liq, tick, crossed = A.integral_swap(
        to_u256(sp), 0, to_u256(10**20), 3000, t, i128_rows(nets), 2, True, True, to_u256(10**21),
        to_u256(MIN_P + 1), False)
    assert st == SWAP_OK and crossed == 1 and from_limbs(liq) == 0 and from_limbs(p) == MIN_P + 1
    assert from_limbs(a_in) < 10**21
    assert A.integral_exact_input(to_u256(10**21), True, to_u256(sp), 0, to_u256(10**20), 3000, t,
                                  i128_rows(nets), 2)[1] is False
    # uint24 total fee below 1e6 (a uint16 lastFee plus a plugin fee can pass 65535)
    ok_fee = A.integral_swap(to_u256(sp), 0, to_u256(10**20), 100_000, t, i128_rows(nets), 2, True, True,
                             to_u256(10**15), to_u256(MIN_P + 1), True)
    assert ok_fee[0] == SWAP_OK
    assert A.integral_swap(to_u256(sp), 0, to_u256(10**20), 1_000_000, t, i128_rows(nets), 2, True, True,
                           to_u256(10**15), to_u256(MIN_P + 1), True)[0] == A.SWAP_BAD_FEE
    assert A.integral_swap(to_u256(sp), 0, to_u256(10**20), 3000, t, i128_rows(nets), 2, True, True,
                           to_u256(10**21), to_u256(MIN_P + 1), True)[0] == SWAP_MISSING_TICK
