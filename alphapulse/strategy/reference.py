"""Pure-Python reference of the Uniswap V2/V3 swap math, in Python ints.

A line-by-line port of UniswapV2Library.getAmountOut and of v3-core 1.0.1
(TickMath, SqrtPriceMath, SwapMath, TickBitmap.nextInitializedTickWithinOneWord,
LiquidityMath.addDelta and the loop of UniswapV3Pool.swap). Solidity 0.7
arithmetic wraps unless the contract checks, so wrapping is reproduced where
the contract relies on it, and every ``require`` raises :class:`Revert`.

It is the oracle for the Numba kernels (``alphapulse.jit.amm_v2`` /
``amm_v3``) and the baseline of ``perf/bench_strategy.py``; it is too slow
for the hot path.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from typing import Sequence

M256 = (1 << 256) - 1
M160 = (1 << 160) - 1
M128 = (1 << 128) - 1
MAX_U112 = (1 << 112) - 1
Q96 = 1 << 96
FEE_DENOMINATOR = 1_000_000  # pips

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342


class Revert(ArithmeticError):
    """A condition under which the contract would revert."""


# ---------------------------------------------------------------- V2
def v2_get_amount_out(amount_in: int, reserve_in: int, reserve_out: int, fee_pips: int = 3000) -> int:
    """UniswapV2Library.getAmountOut with the fee in pips (3000 = the 997/1000 of UniswapV2).

    ``a*(1e6-fee)*R / (r*1e6 + a*(1e6-fee))`` is the same rational as the
    contract's ``a*997*R / (r*1000 + a*997)``, so the floor is identical.
    Raises Revert where the library or the pair would (zero input or
    reserves, 256-bit overflow of SafeMath, balance above uint112, zero out).
    """
    if amount_in <= 0:
        raise Revert("UniswapV2Library: INSUFFICIENT_INPUT_AMOUNT")
    if reserve_in <= 0 or reserve_out <= 0:
        raise Revert("UniswapV2Library: INSUFFICIENT_LIQUIDITY")
    with_fee = amount_in * (FEE_DENOMINATOR - fee_pips)
    numerator = with_fee * reserve_out
    denominator = reserve_in * FEE_DENOMINATOR + with_fee
    if numerator > M256 or denominator > M256:
        raise Revert("ds-math-mul-overflow")
    out = numerator // denominator
    if out == 0:
        raise Revert("UniswapV2: INSUFFICIENT_OUTPUT_AMOUNT")
    if reserve_in + amount_in > MAX_U112:
        raise Revert("UniswapV2: OVERFLOW")
    return out


# ---------------------------------------------------------------- FullMath / UnsafeMath
def mul_div(a: int, b: int, d: int) -> int:
    if d == 0:
        raise Revert("mulDiv: denominator 0")
    r = a * b // d
    if r > M256:
        raise Revert("mulDiv: overflow")
    return r


def mul_div_rounding_up(a: int, b: int, d: int) -> int:
    r = mul_div(a, b, d)
    if (a * b) % d:
        if r >= M256:
            raise Revert("mulDivRoundingUp: overflow")
        r += 1
    return r


def div_rounding_up(x: int, y: int) -> int:
    if y == 0:
        return 0  # EVM div by zero
    return x // y + (1 if x % y else 0)


def _to_u160(x: int) -> int:
    if x > M160:
        raise Revert("SafeCast: uint160")
    return x


# ---------------------------------------------------------------- TickMath
_TICK_MULS = (
    (0x2, 0xfff97272373d413259a46990580e213a), (0x4, 0xfff2e50f5f656932ef12357cf3c7fdcc),
    (0x8, 0xffe5caca7e10e4e61c3624eaa0941cd0), (0x10, 0xffcb9843d60f6159c9db58835c926644),
    (0x20, 0xff973b41fa98c081472e6896dfb254c0), (0x40, 0xff2ea16466c96a3843ec78b326b52861),
    (0x80, 0xfe5dee046a99a2a811c461f1969c3053), (0x100, 0xfcbe86c7900a88aedcffc83b479aa3a4),
    (0x200, 0xf987a7253ac413176f2b074cf7815e54), (0x400, 0xf3392b0822b70005940c7a398e4b70f3),
    (0x800, 0xe7159475a2c29b7443b29c7fa6e889d9), (0x1000, 0xd097f3bdfd2022b8845ad8f792aa5825),
    (0x2000, 0xa9f746462d870fdf8a65dc1f90e061e5), (0x4000, 0x70d869a156d2a1b890bb3df62baf32f7),
    (0x8000, 0x31be135f97d08fd981231505542fcfa6), (0x10000, 0x9aa508b5b7a84e1c677de54f3e99bc9),
    (0x20000, 0x5d6af8dedb81196699c329225ee604), (0x40000, 0x2216e584f5fa1ea926041bedfe98),
    (0x80000, 0x48a170391f7dc42444e8fa2),
)


def get_sqrt_ratio_at_tick(tick: int) -> int:
    abs_tick = -tick if tick < 0 else tick
    if abs_tick > MAX_TICK:
        raise Revert("T")
    ratio = 0xfffcb933bd6fad37aa2d162d1a594001 if abs_tick & 1 else 0x100000000000000000000000000000000
    for bit, mul in _TICK_MULS:
        if abs_tick & bit:
            ratio = (ratio * mul) >> 128
    if tick > 0:
        ratio = M256 // ratio
    return (ratio >> 32) + (0 if ratio % (1 << 32) == 0 else 1)


def get_tick_at_sqrt_ratio(sqrt_price_x96: int) -> int:
    """Literal port of the assembly (msb, 14 squaring steps of log2, tickLow/tickHi)."""
    if not (MIN_SQRT_RATIO <= sqrt_price_x96 < MAX_SQRT_RATIO):
        raise Revert("R")
    ratio = sqrt_price_x96 << 32
    msb = ratio.bit_length() - 1
    r = ratio >> (msb - 127) if msb >= 128 else ratio << (127 - msb)
    log_2 = (msb - 128) << 64
    for shift in range(63, 49, -1):
        r = ((r * r) & M256) >> 127
        f = r >> 128
        log_2 |= f << shift
        r >>= f
    log_sqrt10001 = log_2 * 255738958999603826347141
    tick_low = (log_sqrt10001 - 3402992956809132418596140100660247210) >> 128
    tick_hi = (log_sqrt10001 + 291339464771989622907027621153398088495) >> 128
    if tick_low == tick_hi:
        return tick_low
    return tick_hi if get_sqrt_ratio_at_tick(tick_hi) <= sqrt_price_x96 else tick_low


# ---------------------------------------------------------------- SqrtPriceMath
def get_next_sqrt_price_from_amount0_rounding_up(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if amount == 0:
        return sqrt_p
    numerator1 = liquidity << 96
    product = (amount * sqrt_p) & M256
    no_overflow = product // amount == sqrt_p
    if add:
        if no_overflow:
            denominator = (numerator1 + product) & M256
            if denominator >= numerator1:
                return mul_div_rounding_up(numerator1, sqrt_p, denominator)
        s = numerator1 // sqrt_p + amount
        if s > M256:
            raise Revert("LowGasSafeMath.add")
        return div_rounding_up(numerator1, s) & M160
    if not (no_overflow and numerator1 > product):
        raise Revert("getNextSqrtPriceFromAmount0RoundingUp")
    return _to_u160(mul_div_rounding_up(numerator1, sqrt_p, numerator1 - product))


def get_next_sqrt_price_from_amount1_rounding_down(sqrt_p: int, liquidity: int, amount: int, add: bool) -> int:
    if add:
        quotient = (amount << 96) // liquidity if amount <= M160 else mul_div(amount, Q96, liquidity)
        s = sqrt_p + quotient
        if s > M256:
            raise Revert("LowGasSafeMath.add")
        return _to_u160(s)
    quotient = (div_rounding_up(amount << 96, liquidity) if amount <= M160
                else mul_div_rounding_up(amount, Q96, liquidity))
    if not sqrt_p > quotient:
        raise Revert("getNextSqrtPriceFromAmount1RoundingDown")
    return sqrt_p - quotient


def get_next_sqrt_price_from_input(sqrt_p: int, liquidity: int, amount_in: int, zero_for_one: bool) -> int:
    if sqrt_p <= 0 or liquidity <= 0:
        raise Revert("getNextSqrtPriceFromInput")
    if zero_for_one:
        return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_in, True)
    return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_in, True)


def get_next_sqrt_price_from_output(sqrt_p: int, liquidity: int, amount_out: int, zero_for_one: bool) -> int:
    if sqrt_p <= 0 or liquidity <= 0:
        raise Revert("getNextSqrtPriceFromOutput")
    if zero_for_one:
        return get_next_sqrt_price_from_amount1_rounding_down(sqrt_p, liquidity, amount_out, False)
    return get_next_sqrt_price_from_amount0_rounding_up(sqrt_p, liquidity, amount_out, False)


def get_amount0_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    numerator1 = liquidity << 96
    numerator2 = sqrt_b - sqrt_a
    if sqrt_a <= 0:
        raise Revert("getAmount0Delta")
    if round_up:
        return div_rounding_up(mul_div_rounding_up(numerator1, numerator2, sqrt_b), sqrt_a)
    return mul_div(numerator1, numerator2, sqrt_b) // sqrt_a


def get_amount1_delta(sqrt_a: int, sqrt_b: int, liquidity: int, round_up: bool) -> int:
    if sqrt_a > sqrt_b:
        sqrt_a, sqrt_b = sqrt_b, sqrt_a
    if round_up:
        return mul_div_rounding_up(liquidity, sqrt_b - sqrt_a, Q96)
    return mul_div(liquidity, sqrt_b - sqrt_a, Q96)


# ---------------------------------------------------------------- SwapMath
def compute_swap_step(sqrt_cur: int, sqrt_target: int, liquidity: int, amount_remaining: int,
                      fee_pips: int) -> tuple[int, int, int, int]:
    """(sqrtRatioNextX96, amountIn, amountOut, feeAmount); amount_remaining > 0 exact in, < 0 exact out."""
    zero_for_one = sqrt_cur >= sqrt_target
    exact_in = amount_remaining >= 0
    amount_in = amount_out = 0
    if exact_in:
        less_fee = mul_div(amount_remaining, FEE_DENOMINATOR - fee_pips, FEE_DENOMINATOR)
        amount_in = (get_amount0_delta(sqrt_target, sqrt_cur, liquidity, True) if zero_for_one
                     else get_amount1_delta(sqrt_cur, sqrt_target, liquidity, True))
        if less_fee >= amount_in:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_input(sqrt_cur, liquidity, less_fee, zero_for_one)
    else:
        amount_out = (get_amount1_delta(sqrt_target, sqrt_cur, liquidity, False) if zero_for_one
                      else get_amount0_delta(sqrt_cur, sqrt_target, liquidity, False))
        if -amount_remaining >= amount_out:
            sqrt_next = sqrt_target
        else:
            sqrt_next = get_next_sqrt_price_from_output(sqrt_cur, liquidity, -amount_remaining, zero_for_one)
    is_max = sqrt_target == sqrt_next
    if zero_for_one:
        if not (is_max and exact_in):
            amount_in = get_amount0_delta(sqrt_next, sqrt_cur, liquidity, True)
        if not (is_max and not exact_in):
            amount_out = get_amount1_delta(sqrt_next, sqrt_cur, liquidity, False)
    else:
        if not (is_max and exact_in):
            amount_in = get_amount1_delta(sqrt_cur, sqrt_next, liquidity, True)
        if not (is_max and not exact_in):
            amount_out = get_amount0_delta(sqrt_cur, sqrt_next, liquidity, False)
    if not exact_in and amount_out > -amount_remaining:
        amount_out = -amount_remaining
    if exact_in and sqrt_next != sqrt_target:
        fee_amount = amount_remaining - amount_in
    else:
        fee_amount = mul_div_rounding_up(amount_in, fee_pips, FEE_DENOMINATOR - fee_pips)
    return sqrt_next, amount_in, amount_out, fee_amount


# ---------------------------------------------------------------- pool
def next_initialized_tick_within_one_word(ticks: Sequence[int], tick: int, tick_spacing: int,
                                          lte: bool) -> tuple[int, bool]:
    """TickBitmap.nextInitializedTickWithinOneWord over a sorted list of initialised ticks."""
    compressed = tick // tick_spacing  # floor, as the contract's "round towards negative infinity"
    if lte:
        word_start = (compressed >> 8) << 8
        i = bisect_right(ticks, compressed * tick_spacing) - 1
        if i >= 0 and ticks[i] // tick_spacing >= word_start:
            return ticks[i], True
        return word_start * tick_spacing, False
    c1 = compressed + 1
    word_start = (c1 >> 8) << 8
    i = bisect_left(ticks, c1 * tick_spacing)
    if i < len(ticks) and ticks[i] // tick_spacing <= word_start + 255:
        return ticks[i], True
    return (word_start + 255) * tick_spacing, False


def add_delta(x: int, y: int) -> int:
    """LiquidityMath.addDelta."""
    if y < 0:
        z = x - (-y)
        if z < 0:
            raise Revert("LS")
    else:
        z = x + y
        if z > M128:
            raise Revert("LA")
    return z


@dataclass
class V3SwapResult:
    amount0: int       # signed, pool's view: > 0 the pool received
    amount1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int
    ticks_crossed: int


def v3_swap(sqrt_price_x96: int, tick: int, liquidity: int, fee_pips: int, tick_spacing: int,
            ticks: Sequence[int], liquidity_net: Sequence[int], zero_for_one: bool,
            amount_specified: int, sqrt_price_limit_x96: int | None = None) -> V3SwapResult:
    """UniswapV3Pool.swap on a snapshot: ``ticks`` sorted initialised ticks, ``liquidity_net`` beside them.

    ``amount_specified`` > 0 exact input, < 0 exact output. A limit of None is
    what SwapRouter/QuoterV2 use for 0: MIN_SQRT_RATIO+1 or MAX_SQRT_RATIO-1.
    """
    if amount_specified == 0:
        raise Revert("AS")
    if sqrt_price_limit_x96 is None:
        sqrt_price_limit_x96 = MIN_SQRT_RATIO + 1 if zero_for_one else MAX_SQRT_RATIO - 1
    if zero_for_one:
        if not (sqrt_price_limit_x96 < sqrt_price_x96 and sqrt_price_limit_x96 > MIN_SQRT_RATIO):
            raise Revert("SPL")
    elif not (sqrt_price_limit_x96 > sqrt_price_x96 and sqrt_price_limit_x96 < MAX_SQRT_RATIO):
        raise Revert("SPL")
    exact_input = amount_specified > 0
    remaining = amount_specified
    calculated = 0
    sqrt_p, cur_tick, liq = sqrt_price_x96, tick, liquidity
    crossed = 0
    net_by_tick = dict(zip(ticks, liquidity_net))
    while remaining != 0 and sqrt_p != sqrt_price_limit_x96:
        start = sqrt_p
        tick_next, initialized = next_initialized_tick_within_one_word(ticks, cur_tick, tick_spacing, zero_for_one)
        tick_next = max(MIN_TICK, min(MAX_TICK, tick_next))
        sqrt_next_tick = get_sqrt_ratio_at_tick(tick_next)
        if zero_for_one:
            target = sqrt_price_limit_x96 if sqrt_next_tick < sqrt_price_limit_x96 else sqrt_next_tick
        else:
            target = sqrt_price_limit_x96 if sqrt_next_tick > sqrt_price_limit_x96 else sqrt_next_tick
        sqrt_p, a_in, a_out, fee = compute_swap_step(sqrt_p, target, liq, remaining, fee_pips)
        if exact_input:
            remaining -= a_in + fee
            calculated -= a_out
        else:
            remaining += a_out
            calculated += a_in + fee
        if sqrt_p == sqrt_next_tick:
            if initialized:
                net = net_by_tick[tick_next]
                liq = add_delta(liq, -net if zero_for_one else net)
                crossed += 1
            cur_tick = tick_next - 1 if zero_for_one else tick_next
        elif sqrt_p != start:
            cur_tick = get_tick_at_sqrt_ratio(sqrt_p)
    if zero_for_one == exact_input:
        amount0, amount1 = amount_specified - remaining, calculated
    else:
        amount0, amount1 = calculated, amount_specified - remaining
    return V3SwapResult(amount0, amount1, sqrt_p, liq, cur_tick, crossed)


def v3_exact_input(amount_in: int, zero_for_one: bool, sqrt_price_x96: int, tick: int, liquidity: int,
                   fee_pips: int, tick_spacing: int, ticks: Sequence[int],
                   liquidity_net: Sequence[int]) -> int:
    """Output of an exact-input swap with the router's default price limit.

    Raises Revert when the pool cannot take the whole input (the price limit
    is reached first): an arbitrage must not rely on a partial fill.
    """
    r = v3_swap(sqrt_price_x96, tick, liquidity, fee_pips, tick_spacing, ticks, liquidity_net,
                zero_for_one, amount_in)
    taken = r.amount0 if zero_for_one else r.amount1
    if taken != amount_in:
        raise Revert("partial fill at the price limit")
    return -(r.amount1 if zero_for_one else r.amount0)


def pool_from_positions(positions, sqrt_price: int) -> tuple[int, int, list[int], list[int]]:
    """(tick, active liquidity, initialised ticks ascending, their liquidityNet) of a pool that
    holds ``positions`` [(lower, upper, liquidity)] at ``sqrt_price`` (as the contract's ticks
    would: a tick whose net sums to 0 is still initialised, its liquidityGross > 0)."""
    tick = get_tick_at_sqrt_ratio(sqrt_price)
    net: dict[int, int] = {}
    liquidity = 0
    for lo, hi, liq in positions:
        net[lo] = net.get(lo, 0) + liq
        net[hi] = net.get(hi, 0) - liq
        if lo <= tick < hi:
            liquidity += liq
    ticks = sorted(net)
    return tick, liquidity, ticks, [net[t] for t in ticks]
