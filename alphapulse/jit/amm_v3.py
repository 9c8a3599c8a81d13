"""Concentrated-liquidity (Uniswap V3 family) swap math, exact, for Numba.

A port of v3-core 1.0.1 (TickMath, SqrtPriceMath, SwapMath, LiquidityMath and
the loop of UniswapV3Pool.swap) on u256 limb tuples (``alphapulse.jit.wideint``).
Every ``require`` of the contracts becomes ``ok=False`` / a non-zero status.

A pool's initialised ticks are held as arrays, not a bitmap, because the
engine receives PoolTick snapshots: ``ticks`` (int32, sorted ascending,
multiples of tick_spacing) and ``nets`` (uint64[:, 2], liquidityNet as i128
two's complement, limb 0 low). The bitmap's one-word search is reproduced
exactly from them (uninitialised word boundaries split the swap into steps
just as on chain, which matters for rounding).

Units: sqrt prices are Q64.96 (uint160), liquidity uint128, amounts in token
native units, fees in pips.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from alphapulse.jit.wideint import (U0, U1, div_rounding_up, mul64, mul_div, mul_div_rounding_up,
                                    mul_div_small, u512_divmod_u256,
                                    u256_add, u256_add_u64, u256_bitlen, u256_cmp, u256_div,
                                    u256_divmod, u256_eq, u256_is_zero, u256_lt, u256_max,
                                    u256_mul, u256_mul_full, u256_shl, u256_sub, u256_to_f64)

MIN_TICK = -887272
_S32 = np.uint64(32)
_M32 = np.uint64(0xFFFFFFFF)
_FEE_D = np.uint64(1_000_000)
MAX_TICK = 887272
FEE_DENOMINATOR = 1_000_000


def _limbs(x: int) -> tuple:
    m = (1 << 64) - 1
    return tuple(np.uint64((x >> (64 * i)) & m) for i in range(4))


MIN_SQRT_RATIO = _limbs(4295128739)
MAX_SQRT_RATIO = _limbs(1461446703485210103287273052203988822378723970342)
MIN_SQRT_RATIO_PLUS_1 = _limbs(4295128739 + 1)
MAX_SQRT_RATIO_MINUS_1 = _limbs(1461446703485210103287273052203988822378723970342 - 1)
Q96 = _limbs(1 << 96)
_MIN_SQRT_0 = MIN_SQRT_RATIO[0]
_MAX_SQRT = MAX_SQRT_RATIO
_MIN_SQRT_P1_0 = MIN_SQRT_RATIO_PLUS_1[0]
_MAX_SQRT_M1 = MAX_SQRT_RATIO_MINUS_1

# TickMath.getSqrtRatioAtTick multipliers (Q128), row i for bit 1 << i: (lo, hi)
_TICK_CONSTS = [
    0xfffcb933bd6fad37aa2d162d1a594001, 0xfff97272373d413259a46990580e213a,
    0xfff2e50f5f656932ef12357cf3c7fdcc, 0xffe5caca7e10e4e61c3624eaa0941cd0,
    0xffcb9843d60f6159c9db58835c926644, 0xff973b41fa98c081472e6896dfb254c0,
    0xff2ea16466c96a3843ec78b326b52861, 0xfe5dee046a99a2a811c461f1969c3053,
    0xfcbe86c7900a88aedcffc83b479aa3a4, 0xf987a7253ac413176f2b074cf7815e54,
    0xf3392b0822b70005940c7a398e4b70f3, 0xe7159475a2c29b7443b29c7fa6e889d9,
    0xd097f3bdfd2022b8845ad8f792aa5825, 0xa9f746462d870fdf8a65dc1f90e061e5,
    0x70d869a156d2a1b890bb3df62baf32f7, 0x31be135f97d08fd981231505542fcfa6,
    0x9aa508b5b7a84e1c677de54f3e99bc9, 0x5d6af8dedb81196699c329225ee604,
    0x2216e584f5fa1ea926041bedfe98, 0x48a170391f7dc42444e8fa2,
]
TICK_CONSTS = np.array([[c & ((1 << 64) - 1), c >> 64] for c in _TICK_CONSTS], dtype=np.uint64)
TICK_CONSTS.setflags(write=False)
_LOG_SQRT_1_0001 = math.log(1.0001) / 2.0
_LN_Q96 = 96.0 * math.log(2.0)

# swap status codes (0 = ok)
SWAP_OK = 0
SWAP_BAD_AMOUNT = 1        # zero or >= 2**255
SWAP_BAD_LIMIT = 2         # 'SPL'
SWAP_MATH_REVERT = 3       # a SqrtPriceMath / FullMath require
SWAP_LIQUIDITY_REVERT = 4  # LiquidityMath 'LS' / 'LA'
SWAP_PARTIAL_FILL = 5      # price limit reached before the whole amount was swapped
SWAP_MISSING_TICK = 6      # the swap would leave the range of ticks the arrays know (known_range_only)
# A covered tick range (TickCoverage) of (MIN_TICK, MAX_TICK) means none is known: the outermost
# initialised ticks of the arrays then bound what is known (see swap_steps).
NO_COVERAGE_LO = MIN_TICK
NO_COVERAGE_HI = MAX_TICK
SWAP_STEP_LIMIT = 7        # more steps than any valid state needs (MAX_SWAP_WORDS + initialised ticks)
SWAP_BAD_SPACING = 8       # tick spacing < 1 (the engine rejects such a pool state before it is applied)

# A step ends at the next initialised tick, at the end of a 256-spacing word of the tick bitmap or
# where the swap ends: with a spacing >= 1 no swap needs more than the words of the whole tick
# range plus the initialised ticks plus one steps. The loop stops there whatever its input.
MAX_SWAP_WORDS = (MAX_TICK - MIN_TICK) // 256 + 2


# ---------------------------------------------------------------- TickMath
@njit(cache=True)
def _mul128_hi(a_lo, a_hi, b_lo, b_hi):
    """floor(a * b / 2**128) for a, b < 2**128, as (lo, hi) limbs."""
    h00, l00 = mul64(a_lo, b_lo)
    h01, l01 = mul64(a_lo, b_hi)
    h10, l10 = mul64(a_hi, b_lo)
    h11, l11 = mul64(a_hi, b_hi)
    s1 = h00 + l01
    c = U1 if s1 < h00 else U0
    s1b = s1 + l10
    c += U1 if s1b < s1 else U0
    s2 = l11 + h01
    c2 = U1 if s2 < l11 else U0
    s2b = s2 + h10
    c2 += U1 if s2b < s2 else U0
    s2c = s2b + c
    c2 += U1 if s2c < s2b else U0
    return s2c, h11 + c2


@njit(cache=True)
def get_sqrt_ratio_at_tick(tick):
    """TickMath.getSqrtRatioAtTick: Q64.96 sqrt(1.0001**tick), rounded up; ok False if |tick| > MAX_TICK."""
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        return (U0, U0, U0, U0), False
    # ratio < 2**128 after the first factor; 2**128 itself only when no bit is set at all
    lo = U0
    hi = U0
    started = False
    if abs_tick & 1:
        lo = TICK_CONSTS[0, 0]
        hi = TICK_CONSTS[0, 1]
        started = True
    for i in range(1, 20):
        if abs_tick & (1 << i):
            if not started:
                lo = TICK_CONSTS[i, 0]   # (2**128 * c) >> 128 == c
                hi = TICK_CONSTS[i, 1]
                started = True
            else:
                lo, hi = _mul128_hi(lo, hi, TICK_CONSTS[i, 0], TICK_CONSTS[i, 1])
    if started:
        ratio = (lo, hi, U0, U0)
    else:
        ratio = (U0, U0, U1, U0)
    if tick > 0:
        ratio = u256_div(u256_max(), ratio)
    low32 = ratio[0] & np.uint64(0xFFFFFFFF)
    s = (ratio[0] >> np.uint64(32) | ratio[1] << np.uint64(32),
         ratio[1] >> np.uint64(32) | ratio[2] << np.uint64(32),
         ratio[2] >> np.uint64(32) | ratio[3] << np.uint64(32),
         ratio[3] >> np.uint64(32))
    if low32 != U0:
        s, _ = u256_add_u64(s, U1)
    return s, True


@njit(cache=True)
def get_tick_at_sqrt_ratio(sqrt_p):
    """TickMath.getTickAtSqrtRatio: the greatest tick whose sqrt ratio is <= sqrt_p.

    The contract's log2 approximation is proven to return exactly that tick,
    so a float estimate corrected against getSqrtRatioAtTick gives the same
    integer. Returns (tick, ok); ok False outside [MIN_SQRT_RATIO, MAX_SQRT_RATIO).
    """
    if u256_lt(sqrt_p, MIN_SQRT_RATIO) or not u256_lt(sqrt_p, _MAX_SQRT):
        return 0, False
    est = (math.log(u256_to_f64(sqrt_p)) - _LN_Q96) / _LOG_SQRT_1_0001
    fl = math.floor(est)
    t = int(fl)
    # The estimate is within ~1e-6 ticks of the real log (float rounding, the 1.0001 constant),
    # and getSqrtRatioAtTick is within a relative 2.4e-10 (its final rounding at the smallest
    # price, ~5e-6 ticks) of 2**96 * 1.0001**(t/2): away from integers by more than 1e-3,
    # floor(est) is the answer and the checks against getSqrtRatioAtTick are not needed.
    if MIN_TICK <= t < MAX_TICK and 1e-3 < est - fl < 1.0 - 1e-3:
        return t, True
    if t < MIN_TICK:
        t = MIN_TICK
    if t > MAX_TICK - 1:
        t = MAX_TICK - 1
    while t > MIN_TICK:
        r, _ = get_sqrt_ratio_at_tick(t)
        if u256_cmp(r, sqrt_p) > 0:
            t -= 1
        else:
            break
    while t < MAX_TICK - 1:
        r, _ = get_sqrt_ratio_at_tick(t + 1)
        if u256_cmp(r, sqrt_p) <= 0:
            t += 1
        else:
            break
    return t, True


# ---------------------------------------------------------------- SqrtPriceMath
@njit(cache=True)
def _fits160(x):
    return u256_bitlen(x) <= 160


@njit(cache=True, inline="always")
def _shl96_u128(x):
    """x << 96 for x below 2**128 (u256_shl without its general shift)."""
    return (U0, x[0] << _S32, (x[0] >> _S32) | (x[1] << _S32), x[1] >> _S32)


@njit(cache=True)
def get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount, add):
    if u256_is_zero(amount):
        return sqrt_p, True
    if add and (liquidity[2] | liquidity[3] | sqrt_p[2] | sqrt_p[3] | amount[2] | amount[3]) == U0:
        # all below 2**128: amount * sqrtP cannot overflow, and the result (<= sqrtP) needs
        # neither the mulDiv overflow check nor the uint160 truncation
        numerator1 = _shl96_u128(liquidity)
        pr = u256_mul_full(amount, sqrt_p)
        denominator, carry = u256_add(numerator1, (pr[0], pr[1], pr[2], pr[3]))
        if not carry and not u256_is_zero(denominator):
            q, r = u512_divmod_u256(u256_mul_full(sqrt_p, numerator1), denominator)
            res = (q[0], q[1], q[2], q[3])
            if not u256_is_zero(r):
                res, _ = u256_add_u64(res, U1)
            return res, True
    numerator1 = u256_shl(liquidity, 96)
    product, ovf = u256_mul(amount, sqrt_p)  # the contract's (product / amount == sqrtP) test is "no overflow"
    if add:
        if not ovf:
            denominator, carry = u256_add(numerator1, product)
            if not carry:
                r, ok = mul_div_rounding_up(numerator1, sqrt_p, denominator)
                return (r[0], r[1], r[2] & np.uint64(0xFFFFFFFF), U0), ok  # uint160(...) truncation
        q, _ = u256_divmod(numerator1, sqrt_p)
        s, c = u256_add(q, amount)
        if c:
            return s, False
        r = div_rounding_up(numerator1, s)
        return (r[0], r[1], r[2] & np.uint64(0xFFFFFFFF), U0), True
    if ovf or not u256_lt(product, numerator1):
        return sqrt_p, False
    denominator, _ = u256_sub(numerator1, product)
    r, ok = mul_div_rounding_up(numerator1, sqrt_p, denominator)
    return r, ok and _fits160(r)


@njit(cache=True)
def get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount, add):
    small = u256_bitlen(amount) <= 160
    if add:
        if small:
            quotient, _ = u256_divmod(u256_shl(amount, 96), liquidity)
            ok = True
        else:
            quotient, ok = mul_div(amount, Q96, liquidity)
        if not ok:
            return sqrt_p, False
        s, c = u256_add(sqrt_p, quotient)
        return s, (not c) and _fits160(s)
    if small:
        quotient = div_rounding_up(u256_shl(amount, 96), liquidity)
        ok = True
    else:
        quotient, ok = mul_div_rounding_up(amount, Q96, liquidity)
    if not ok or not u256_lt(quotient, sqrt_p):
        return sqrt_p, False
    r, _ = u256_sub(sqrt_p, quotient)
    return r, True


@njit(cache=True)
def get_next_sqrt_price_from_input(sqrt_p, liquidity, amount_in, zero_for_one):
    if u256_is_zero(sqrt_p) or u256_is_zero(liquidity):
        return sqrt_p, False
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_in, True)


@njit(cache=True)
def get_next_sqrt_price_from_output(sqrt_p, liquidity, amount_out, zero_for_one):
    if u256_is_zero(sqrt_p) or u256_is_zero(liquidity):
        return sqrt_p, False
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_out, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_out, False)


@njit(cache=True)
def get_amount0_delta(sqrt_a, sqrt_b, liquidity, round_up):
    """Token0 between two sqrt prices for a liquidity, rounded up or down; (amount, ok)."""
    if u256_cmp(sqrt_a, sqrt_b) > 0:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if u256_is_zero(sqrt_a):
        return sqrt_a, False
    if (liquidity[2] | liquidity[3] | sqrt_b[2] | sqrt_b[3]) == U0:
        # liquidity and both prices below 2**128 (every pool price below 2**64): one division.
        # ceil(ceil(x / b) / a) == ceil(x / (a * b)) and floor(floor(x / b) / a) == floor(x / (a * b))
        # for x >= 0, a, b > 0; mulDiv cannot overflow here (its result is <= numerator1 < 2**224
        # as numerator2 < sqrt_b), so no revert is lost.
        numerator1 = _shl96_u128(liquidity)
        numerator2, _ = u256_sub(sqrt_b, sqrt_a)
        den = u256_mul_full(sqrt_a, sqrt_b)
        q, r = u512_divmod_u256(u256_mul_full(numerator2, numerator1), (den[0], den[1], den[2], den[3]))
        res = (q[0], q[1], q[2], q[3])
        if round_up and not u256_is_zero(r):
            res, _ = u256_add_u64(res, U1)
        return res, True
    numerator1 = u256_shl(liquidity, 96)
    numerator2, _ = u256_sub(sqrt_b, sqrt_a)
    if round_up:
        r, ok = mul_div_rounding_up(numerator1, numerator2, sqrt_b)
        return div_rounding_up(r, sqrt_a), ok
    r, ok = mul_div(numerator1, numerator2, sqrt_b)
    q, _ = u256_divmod(r, sqrt_a)
    return q, ok


@njit(cache=True)
def get_amount1_delta(sqrt_a, sqrt_b, liquidity, round_up):
    """Token1 between two sqrt prices for a liquidity, rounded up or down; (amount, ok)."""
    if u256_cmp(sqrt_a, sqrt_b) > 0:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    d, _ = u256_sub(sqrt_b, sqrt_a)
    if (liquidity[2] | liquidity[3] | d[3]) == U0:
        # mulDiv by Q96 as a product and a shift: below 2**128 * 2**192 the result is < 2**224 (no revert)
        p = u256_mul_full(liquidity, d)
        q = ((p[1] >> _S32) | (p[2] << _S32), (p[2] >> _S32) | (p[3] << _S32),
             (p[3] >> _S32) | (p[4] << _S32), p[4] >> _S32)
        if round_up and (p[0] | (p[1] & _M32)) != U0:
            q, _ = u256_add_u64(q, U1)
        return q, True
    if round_up:
        return mul_div_rounding_up(liquidity, d, Q96)
    return mul_div(liquidity, d, Q96)


# ---------------------------------------------------------------- SwapMath
@njit(cache=True)
def compute_swap_step(sqrt_cur, sqrt_target, liquidity, amount_remaining, exact_in, fee_pips):
    """SwapMath.computeSwapStep. amount_remaining is the magnitude; exact_in its sign (True = >= 0).

    Returns (sqrt_next, amount_in, amount_out, fee_amount, ok).
    """
    z = (U0, U0, U0, U0)
    sqrt_next, a_in, a_out, fee, ok, _ = compute_swap_step_to(sqrt_cur, sqrt_target, liquidity, amount_remaining,
                                                              exact_in, fee_pips, z, False)
    return sqrt_next, a_in, a_out, fee, ok


@njit(cache=True)
def compute_swap_step_to(sqrt_cur, sqrt_target, liquidity, amount_remaining, exact_in, fee_pips, to_target,
                         known):
    """:func:`compute_swap_step`, also returning (last) the input that takes the price to the
    target before the fee: SwapMath's first ``amountIn`` of an exact-input step, which depends
    only on the prices and the liquidity. ``known`` True passes that amount in ``to_target``
    (from an earlier step over the same range), which this then does not compute again."""
    zero_for_one = u256_cmp(sqrt_cur, sqrt_target) >= 0
    z = (U0, U0, U0, U0)
    amount_in = z
    amount_out = z
    fee_c = (np.uint64(FEE_DENOMINATOR - fee_pips), U0, U0, U0)
    fee_d = (np.uint64(FEE_DENOMINATOR), U0, U0, U0)
    small_fee = 0 <= fee_pips < FEE_DENOMINATOR  # 1e6 - fee and 1e6 fit 32 bits, neither is 0
    if exact_in:
        if small_fee:
            less_fee, ok = mul_div_small(amount_remaining, fee_c[0], _FEE_D, False)
        else:
            less_fee, ok = mul_div(amount_remaining, fee_c, fee_d)
        if not ok:
            return sqrt_cur, z, z, z, False, z
        if known:
            amount_in = to_target
        elif zero_for_one:
            amount_in, ok = get_amount0_delta(sqrt_target, sqrt_cur, liquidity, True)
        else:
            amount_in, ok = get_amount1_delta(sqrt_cur, sqrt_target, liquidity, True)
        if not ok:
            return sqrt_cur, z, z, z, False, z
        to_target = amount_in
        if u256_cmp(less_fee, amount_in) >= 0:
            sqrt_next = sqrt_target
        else:
            sqrt_next, ok = get_next_sqrt_price_from_input(sqrt_cur, liquidity, less_fee, zero_for_one)
            if not ok:
                return sqrt_cur, z, z, z, False, z
    else:
        if zero_for_one:
            amount_out, ok = get_amount1_delta(sqrt_target, sqrt_cur, liquidity, False)
        else:
            amount_out, ok = get_amount0_delta(sqrt_cur, sqrt_target, liquidity, False)
        if not ok:
            return sqrt_cur, z, z, z, False, z
        if u256_cmp(amount_remaining, amount_out) >= 0:
            sqrt_next = sqrt_target
        else:
            sqrt_next, ok = get_next_sqrt_price_from_output(sqrt_cur, liquidity, amount_remaining,
                                                            zero_for_one)
            if not ok:
                return sqrt_cur, z, z, z, False, z
    is_max = u256_eq(sqrt_target, sqrt_next)
    ok1 = True
    ok2 = True
    if zero_for_one:
        if not (is_max and exact_in):
            amount_in, ok1 = get_amount0_delta(sqrt_next, sqrt_cur, liquidity, True)
        if not (is_max and not exact_in):
            amount_out, ok2 = get_amount1_delta(sqrt_next, sqrt_cur, liquidity, False)
    else:
        if not (is_max and exact_in):
            amount_in, ok1 = get_amount1_delta(sqrt_cur, sqrt_next, liquidity, True)
        if not (is_max and not exact_in):
            amount_out, ok2 = get_amount0_delta(sqrt_cur, sqrt_next, liquidity, False)
    if not (ok1 and ok2):
        return sqrt_cur, z, z, z, False, z
    if not exact_in and u256_cmp(amount_out, amount_remaining) > 0:
        amount_out = amount_remaining
    if exact_in and not is_max:
        fee_amount, _ = u256_sub(amount_remaining, amount_in)
    else:
        if small_fee:
            fee_amount, ok = mul_div_small(amount_in, np.uint64(fee_pips), fee_c[0], True)
        else:
            fee_amount, ok = mul_div_rounding_up(amount_in, (np.uint64(fee_pips), U0, U0, U0), fee_c)
        if not ok:
            return sqrt_cur, z, z, z, False, z
    return sqrt_next, amount_in, amount_out, fee_amount, True, to_target


# ---------------------------------------------------------------- ticks
@njit(cache=True)
def i128_to_sign_mag(lo, hi):
    """i128 two's complement limbs -> (negative, magnitude u256)."""
    if hi >> np.uint64(63):
        nlo = ~lo + U1
        nhi = ~hi + (U1 if lo == U0 else U0)
        return True, (nlo, nhi, U0, U0)
    return False, (lo, hi, U0, U0)


@njit(cache=True)
def add_delta(x, negative, magnitude):
    """LiquidityMath.addDelta: (x +/- magnitude, ok) with uint128 bounds ('LS'/'LA')."""
    if negative:
        z, borrow = u256_sub(x, magnitude)
        return z, not borrow
    z, _ = u256_add(x, magnitude)
    return z, u256_bitlen(z) <= 128


@njit(cache=True)
def floor_div(a, b):
    q = a // b  # Numba keeps Python's floor semantics for ints
    return q


@njit(cache=True)
def search_ticks(ticks, n, value):
    """Index of the first of ticks[:n] that is >= value (bisect_left)."""
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if ticks[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def next_initialized_tick_within_one_word(ticks, n, tick, tick_spacing, lte):
    """TickBitmap.nextInitializedTickWithinOneWord on a sorted tick array: (tick_next, initialized, index)."""
    compressed = tick // tick_spacing
    if lte:
        word_start = (compressed >> 8) << 8
        i = search_ticks(ticks, n, compressed * tick_spacing + 1) - 1
        if i >= 0 and ticks[i] // tick_spacing >= word_start:
            return np.int64(ticks[i]), True, i
        return word_start * tick_spacing, False, -1
    c1 = compressed + 1
    word_start = (c1 >> 8) << 8
    i = search_ticks(ticks, n, c1 * tick_spacing)
    if i < n and ticks[i] // tick_spacing <= word_start + 255:
        return np.int64(ticks[i]), True, i
    return (word_start + 255) * tick_spacing, False, -1


# ---------------------------------------------------------------- pool swap
@njit(cache=True)
def v3_swap(sqrt_p, tick, liquidity, fee_pips, tick_spacing, ticks, nets, n_ticks,
            zero_for_one, exact_in, amount, sqrt_limit):
    """UniswapV3Pool.swap on a snapshot; see :func:`v3_swap_core` (this one returns the final tick)."""
    return v3_swap_core(sqrt_p, tick, liquidity, fee_pips, tick_spacing, ticks, nets, n_ticks,
                        zero_for_one, exact_in, amount, sqrt_limit, True, False)


@njit(cache=True)
def v3_swap_core(sqrt_p, tick, liquidity, fee_pips, tick_spacing, ticks, nets, n_ticks,
                 zero_for_one, exact_in, amount, sqrt_limit, need_tick, known_range_only):
    """UniswapV3Pool.swap on a snapshot (amounts as magnitudes).

    sqrt_p, liquidity, amount, sqrt_limit: u256; tick int; fee_pips; ticks
    int32[:] sorted, nets uint64[:, 2] (liquidityNet i128), n_ticks valid rows.
    exact_in True: ``amount`` is the input, else the wanted output.
    Returns (status, amount_in, amount_out, sqrt_after, liquidity_after,
    tick_after, ticks_crossed). status 0 = ok; see SWAP_* codes. A swap that
    stops at the price limit with amount left over reports the partial
    amounts and status SWAP_OK: callers that need a full fill compare.
    ``need_tick`` False skips TickMath.getTickAtSqrtRatio after a step that
    ends between ticks: such a step is always the last one (the amount is
    used up or the limit reached), so only the returned tick is affected
    (it is then the tick before that step), never the amounts or price.
    ``known_range_only`` True fails (SWAP_MISSING_TICK) a swap that would step
    past the outermost initialised tick of the arrays: the engine's tick
    arrays may hold only a window around the price (PoolTick snapshots of a
    range), and beyond it the liquidity is unknown. A complete tick set ends
    at ticks beyond which the liquidity is zero, so nothing exact is lost.
    """
    z = (U0, U0, U0, U0)
    if u256_is_zero(amount) or u256_bitlen(amount) > 255:
        return SWAP_BAD_AMOUNT, z, z, sqrt_p, liquidity, tick, 0
    if zero_for_one:
        if not (u256_lt(sqrt_limit, sqrt_p) and u256_lt(MIN_SQRT_RATIO, sqrt_limit)):
            return SWAP_BAD_LIMIT, z, z, sqrt_p, liquidity, tick, 0
    else:
        if not (u256_lt(sqrt_p, sqrt_limit) and u256_lt(sqrt_limit, _MAX_SQRT)):
            return SWAP_BAD_LIMIT, z, z, sqrt_p, liquidity, tick, 0
    st, remaining, calculated, sqrt_p, liq, cur_tick, crossed, _ = swap_steps(
        sqrt_p, np.int64(tick), liquidity, amount, z, 0, fee_pips, tick_spacing, ticks, nets, n_ticks, zero_for_one,
        exact_in, sqrt_limit, need_tick, known_range_only, NO_HINT)
    if st != SWAP_OK:
        return st, z, z, sqrt_p, liq, cur_tick, crossed
    done, _ = u256_sub(amount, remaining)
    if exact_in:
        return SWAP_OK, done, calculated, sqrt_p, liq, cur_tick, crossed
    return SWAP_OK, calculated, done, sqrt_p, liq, cur_tick, crossed


# swap_steps' hint for its first step: none (the step's range is computed)
NO_HINT = (np.int64(0), False, np.int64(0), (U0, U0, U0, U0), (U0, U0, U0, U0), False)


@njit(cache=True)
def swap_steps(sqrt_p, cur_tick, liq, remaining, calculated, crossed, fee_pips, tick_spacing, ticks, nets,
               n_ticks, zero_for_one, exact_in, sqrt_limit, need_tick, known_range_only, hint,
               cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """The loop of UniswapV3Pool.swap from a state of it: price, tick, liquidity, the amount
    remaining, the amount calculated so far and the ticks crossed (see :func:`v3_swap_core`).

    Returns (status, remaining, calculated, sqrt_p, liquidity, tick, crossed, checkpoint); on a
    revert sqrt_p is the price at the start of the failing step. ``checkpoint`` is the loop's
    state (sqrt_p, tick, liquidity, remaining, calculated, crossed) at the start of its last
    step (the given state when no step ran). Every step before that one took its whole range
    and used an amount that does not depend on what was left (exact input: ``amountIn +
    feeAmount`` of ``SwapMath.computeSwapStep`` reaching its target), so a swap of another
    amount runs through the same steps to that state exactly when it has at least the same
    amount used up before it (:func:`v3_exact_input_from` resumes there).

    The checkpoint also holds that step's range: (next tick, whether it is initialised, its
    index in the arrays, its sqrt price, the input before the fee that reaches the step's
    target, whether that input is known), all functions of the state at the checkpoint.
    ``hint``, in the same form, gives them for the first step (a swap resumed at such a
    checkpoint with the same limit), which then skips the tick search, getSqrtRatioAtTick
    and that amount's computation; ``NO_HINT`` computes them.

    ``cov_lo``, ``cov_hi``: the tick range over which ``ticks`` holds every initialised tick
    (a TickCoverage record). With ``known_range_only`` a step whose price ends past the edge
    of that range fails (SWAP_MISSING_TICK): the ticks beyond are unknown. Without a coverage
    (the defaults, the full tick range) the outermost initialised ticks of the arrays are
    taken as the edge of what is known, as :func:`v3_swap_core` describes.
    """
    z = (U0, U0, U0, U0)
    ck = (sqrt_p, cur_tick, liq, remaining, calculated, crossed, hint)
    by_ticks = known_range_only and cov_lo <= NO_COVERAGE_LO and cov_hi >= NO_COVERAGE_HI
    if tick_spacing < 1:
        return SWAP_BAD_SPACING, z, z, sqrt_p, liq, cur_tick, crossed, ck
    first = hint[5]
    steps_left = MAX_SWAP_WORDS + n_ticks + 1
    while (not u256_is_zero(remaining)) and (not u256_eq(sqrt_p, sqrt_limit)):
        if steps_left == 0:
            return SWAP_STEP_LIMIT, z, z, sqrt_p, liq, cur_tick, crossed, ck
        steps_left -= 1
        start = sqrt_p
        if first:
            tick_next, initialized, idx, sqrt_next_tick, to_target, known = hint
            first = False
        else:
            tick_next, initialized, idx = next_initialized_tick_within_one_word(
                ticks, n_ticks, cur_tick, tick_spacing, zero_for_one)
            if by_ticks and not initialized:
                if zero_for_one:
                    beyond = n_ticks == 0 or np.int64(ticks[0]) > tick_next
                else:
                    beyond = n_ticks == 0 or np.int64(ticks[n_ticks - 1]) < tick_next
                if beyond:
                    ck = (sqrt_p, cur_tick, liq, remaining, calculated, crossed, NO_HINT)
                    return SWAP_MISSING_TICK, z, z, sqrt_p, liq, cur_tick, crossed, ck
            if tick_next < MIN_TICK:
                tick_next = MIN_TICK
            elif tick_next > MAX_TICK:
                tick_next = MAX_TICK
            sqrt_next_tick, _ = get_sqrt_ratio_at_tick(tick_next)
            to_target = z
            known = False
        if zero_for_one:
            target = sqrt_limit if u256_lt(sqrt_next_tick, sqrt_limit) else sqrt_next_tick
        else:
            target = sqrt_limit if u256_lt(sqrt_limit, sqrt_next_tick) else sqrt_next_tick
        sqrt_p, a_in, a_out, fee, ok, to_target = compute_swap_step_to(sqrt_p, target, liq, remaining, exact_in,
                                                                       fee_pips, to_target, known)
        ck = (start, cur_tick, liq, remaining, calculated, crossed,
              (tick_next, initialized, idx, sqrt_next_tick, to_target, ok and exact_in))
        if not ok:
            return SWAP_MATH_REVERT, z, z, start, liq, cur_tick, crossed, ck
        if known_range_only and ((zero_for_one and tick_next < cov_lo) or (not zero_for_one and tick_next > cov_hi)):
            # the step aims past the covered range: it may end inside it, never beyond
            edge, _ = get_sqrt_ratio_at_tick(cov_lo if zero_for_one else cov_hi)
            if u256_lt(sqrt_p, edge) if zero_for_one else u256_lt(edge, sqrt_p):
                return SWAP_MISSING_TICK, z, z, start, liq, cur_tick, crossed, ck
        if exact_in:
            used, c = u256_add(a_in, fee)
            remaining, b = u256_sub(remaining, used)
            calculated, c2 = u256_add(calculated, a_out)
        else:
            remaining, b = u256_sub(remaining, a_out)
            used, c = u256_add(a_in, fee)
            calculated, c2 = u256_add(calculated, used)
        if c or b or c2:
            return SWAP_MATH_REVERT, z, z, start, liq, cur_tick, crossed, ck
        if u256_eq(sqrt_p, sqrt_next_tick):
            if initialized:
                neg, mag = i128_to_sign_mag(nets[idx, 0], nets[idx, 1])
                if zero_for_one:
                    neg = not neg
                if not u256_is_zero(mag):
                    liq, ok = add_delta(liq, neg, mag)
                    if not ok:
                        return SWAP_LIQUIDITY_REVERT, z, z, sqrt_p, liq, cur_tick, crossed, ck
                crossed += 1
            cur_tick = tick_next - 1 if zero_for_one else tick_next
        elif need_tick and not u256_eq(sqrt_p, start):
            cur_tick, _ = get_tick_at_sqrt_ratio(sqrt_p)
    return SWAP_OK, remaining, calculated, sqrt_p, liq, cur_tick, crossed, ck


@njit(cache=True)
def default_limit(zero_for_one):
    """The limit SwapRouter and QuoterV2 use when given 0."""
    if zero_for_one:
        return MIN_SQRT_RATIO_PLUS_1
    return _MAX_SQRT_M1


@njit(cache=True)
def v3_exact_input(amount_in, zero_for_one, sqrt_p, tick, liquidity, fee_pips, tick_spacing,
                   ticks, nets, n_ticks, cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """Output of an exact-input swap with the router's default limit; (amount_out, ok).

    ok is False on any revert, on a partial fill (input not fully taken) and
    when the swap would leave the range of ticks the arrays know (the covered range
    [``cov_lo``, ``cov_hi``] when given: see :func:`swap_steps`).
    """
    z = (U0, U0, U0, U0)
    out, ok, _ = v3_exact_input_at(amount_in, zero_for_one, sqrt_p, tick, liquidity, z, z, fee_pips,
                                   tick_spacing, ticks, nets, n_ticks, NO_HINT, cov_lo, cov_hi)
    return out, ok


@njit(cache=True)
def v3_exact_input_from(amount_in, zero_for_one, sqrt_p, tick, liquidity, used, calculated, fee_pips,
                        tick_spacing, ticks, nets, n_ticks, cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """:func:`v3_exact_input` from a state of the swap loop: the pool's (``used`` and
    ``calculated`` 0), or a checkpoint of an earlier exact-input swap on the same pool state
    (see :func:`swap_steps`) whose ``used`` (the amount the swap had used up there) is at most
    ``amount_in``: the same result as from the pool's state, without the steps before it.

    Returns (amount_out, ok, checkpoint): the checkpoint of this swap as (sqrt_p, tick,
    liquidity, used, calculated, its step's range: see :func:`swap_steps`), valid when ok.
    """
    return v3_exact_input_at(amount_in, zero_for_one, sqrt_p, tick, liquidity, used, calculated, fee_pips,
                             tick_spacing, ticks, nets, n_ticks, NO_HINT, cov_lo, cov_hi)


@njit(cache=True)
def v3_exact_input_at(amount_in, zero_for_one, sqrt_p, tick, liquidity, used, calculated, fee_pips,
                      tick_spacing, ticks, nets, n_ticks, hint, cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """:func:`v3_exact_input_from` with the first step's range given (``hint``: the range part
    of the checkpoint resumed, or ``NO_HINT``)."""
    z = (U0, U0, U0, U0)
    limit = default_limit(zero_for_one)
    given = (sqrt_p, np.int64(tick), liquidity, used, calculated, hint)    # the checkpoint when nothing runs
    remaining, short = u256_sub(amount_in, used)
    if u256_is_zero(amount_in) or u256_bitlen(amount_in) > 255 or short:
        return z, False, given
    if zero_for_one:
        if not (u256_lt(limit, sqrt_p) and u256_lt(MIN_SQRT_RATIO, limit)):
            return z, False, given
    elif not (u256_lt(sqrt_p, limit) and u256_lt(limit, _MAX_SQRT)):
        return z, False, given
    st, remaining, out, _, _, _, _, ck = swap_steps(sqrt_p, np.int64(tick), liquidity, remaining, calculated, 0,
                                                    fee_pips, tick_spacing, ticks, nets, n_ticks, zero_for_one,
                                                    True, limit, False, True, hint, cov_lo, cov_hi)
    ck_used, _ = u256_sub(amount_in, ck[3])
    ckpt = (ck[0], ck[1], ck[2], ck_used, ck[4], ck[6])
    # a partial fill (the limit reached with input left) does not run on chain
    if st != SWAP_OK or not u256_is_zero(remaining):
        return out, False, ckpt
    return out, not u256_is_zero(out), ckpt


# ---------------------------------------------------------------- float model (sizing start, never money)
_HALF_LN_TICK_BASE = 0.5 * math.log(1.0001)
_TWO64 = 18446744073709551616.0


@njit(cache=True, inline="always")
def sqrt_ratio_at_tick_f64(tick):
    """sqrt(1.0001 ** tick) as a float ratio (sqrtPriceX96 / 2**96 up to float rounding)."""
    return math.exp(tick * _HALF_LN_TICK_BASE)


@njit(cache=True, inline="always")
def _i128_f64(lo, hi):
    return float(np.int64(hi)) * _TWO64 + float(lo)


@njit(cache=True)
def _v3_walk_f64(x, zero_for_one, s, tick, liquidity, fee_pips, ticks, nets, n_ticks, cov_lo, cov_hi):
    """The float model's walk over the initialised ticks for input ``x`` (see
    :func:`v3_exact_input_f64`), up to the range where the input ends.

    Returns (status, g, rem, need, out, liq, s): status 1 when the input ends inside a range
    of liquidity ``liq`` (float) that starts at sqrt price ``s``, where ``rem`` (after the fee)
    is left of the ``g x`` the swap takes in, ``need`` = g x - rem was used before it and
    ``out`` came out; 0 when the known ticks ran out with no input left (``out`` is the
    output), -1 when they ran out with input left or a liquidity net does not apply (the
    exact swap fails). With a coverage [``cov_lo``, ``cov_hi``] (see :func:`swap_steps`) the
    known ticks run out at its edge, not at the outermost initialised tick.
    """
    covered = cov_lo > NO_COVERAGE_LO or cov_hi < NO_COVERAGE_HI
    g = (FEE_DENOMINATOR - fee_pips) / FEE_DENOMINATOR
    rem = x * g
    need_sum = 0.0
    out = 0.0
    liq_x = liquidity
    # past the outermost initialised tick the exact swap fails (unknown range)
    if zero_for_one:
        j = search_ticks(ticks, n_ticks, tick + 1) - 1      # largest initialised tick <= tick
        while True:
            edge = j < 0 or ticks[j] < cov_lo
            if edge and not covered:
                return (0 if rem <= 0.0 else -1), g, rem, need_sum, out, 0.0, s
            st = sqrt_ratio_at_tick_f64(cov_lo if edge else ticks[j])
            if st > s:
                st = s
            liq = u256_to_f64(liq_x)
            if liq > 0.0:
                # differences of nearby prices written without cancellation
                d = liq * (s - st)
                need = d / (s * st)
                if rem <= need:
                    return 1, g, rem, need_sum, out, liq, s
                out += d
                rem -= need
                need_sum += need
            if edge:
                return (0 if rem <= 0.0 else -1), g, rem, need_sum, out, 0.0, st
            s = st
            neg, mag = i128_to_sign_mag(nets[j, 0], nets[j, 1])
            liq_x, ok = add_delta(liq_x, not neg, mag)
            if not ok:
                return -1, g, rem, need_sum, out, 0.0, s
            j -= 1
    j = search_ticks(ticks, n_ticks, tick + 1)                # smallest initialised tick > tick
    while True:
        edge = j >= n_ticks or ticks[j] > cov_hi
        if edge and not covered:
            return (0 if rem <= 0.0 else -1), g, rem, need_sum, out, 0.0, s
        st = sqrt_ratio_at_tick_f64(cov_hi if edge else ticks[j])
        if st < s:
            st = s
        liq = u256_to_f64(liq_x)
        if liq > 0.0:
            need = liq * (st - s)
            if rem <= need:
                return 1, g, rem, need_sum, out, liq, s
            out += need / (s * st)
            rem -= need
            need_sum += need
        if edge:
            return (0 if rem <= 0.0 else -1), g, rem, need_sum, out, 0.0, st
        s = st
        neg, mag = i128_to_sign_mag(nets[j, 0], nets[j, 1])
        liq_x, ok = add_delta(liq_x, neg, mag)
        if not ok:
            return -1, g, rem, need_sum, out, 0.0, s
        j += 1


@njit(cache=True)
def v3_exact_input_f64(x, zero_for_one, s, tick, liquidity, fee_pips, ticks, nets, n_ticks,
                       cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """Float model of :func:`v3_exact_input` and its derivative, for locating optimal sizes.

    The same walk over the initialised ticks as the swap loop (:func:`_v3_walk_f64`), each
    range a constant-product curve of its virtual reserves: ``x`` input (native units,
    float), ``s`` the sqrt price as a ratio (sqrtPriceX96 / 2**96), ``liquidity`` u256 (kept
    exact across crossings, so that nets that nearly cancel leave the right remainder).
    Returns (out, d out / d x at x, ok); ok is False where the exact swap fails for leaving
    the known tick range. Rounding and the fee per step are not modelled: callers confirm
    with the exact swap. ``cov_lo``, ``cov_hi``: the covered tick range (see :func:`swap_steps`).
    """
    status, g, rem, _, out, liq, s = _v3_walk_f64(x, zero_for_one, s, tick, liquidity, fee_pips, ticks, nets,
                                                  n_ticks, cov_lo, cov_hi)
    if status != 1:
        return out, 0.0, status == 0
    if zero_for_one:
        s2 = liq * s / (liq + rem * s)
        return out + rem * s * s2, g * s2 * s2, True
    s2 = s + rem / liq
    return out + rem / (s * s2), g / (s2 * s2), True


@njit(cache=True)
def v3_piece_f64(x, zero_for_one, s, tick, liquidity, fee_pips, ticks, nets, n_ticks,
                 cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """The float model of the swap (:func:`v3_exact_input_f64`) on the range where input
    ``x`` ends, as a Moebius map of the input: out(y) = (a y + b) / (c y + d) for every y
    that ends in the same range (the ranges before it taken whole, the fee on y).

    With u = g y - need the input left for the range and O the output before it, that
    range's constant-product curve gives out = O + L s^2 u / (L + s u) (token0 in) or
    O + L u / (s (L s + u)) (token1 in). Returns (a, b, c, d, ok); ok as for
    :func:`v3_exact_input_f64`, and False when the input ends exactly at the last known
    tick (no range to extend).
    """
    status, g, _, need, out, liq, s = _v3_walk_f64(x, zero_for_one, s, tick, liquidity, fee_pips, ticks, nets,
                                                   n_ticks, cov_lo, cov_hi)
    if status != 1:
        return 0.0, 0.0, 0.0, 1.0, False
    if zero_for_one:
        k = out * s + liq * s * s          # out = (k u + O L) / (s u + L)
        return k * g, out * liq - k * need, s * g, liq - s * need, True
    k = out * s + liq                      # out = (k u + O L s^2) / (s u + L s^2)
    ls2 = liq * s * s
    return k * g, out * ls2 - k * need, s * g, ls2 - s * need, True
