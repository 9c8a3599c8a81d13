"""Algebra (QuickSwap V3 on Polygon) concentrated-liquidity swap math, exact, for Numba.

The pool this follows is Algebra v1.0, the version behind QuickSwap V3's Polygon factory
``0x411b0fAcC3489691f28ad58c47006AF5E3Ab3A28`` (pool deployer
``0x2D98E2FA9da15aa6dC9581AB097Ced7af697CB92``, pool init code hash ``0x6ec6c9c8...``). Its
sources ship in the npm package ``@cryptoalgebra/core@2.0.0`` (solc 0.7.6, the ``globalState``
layout ``(price, tick, fee, timepointIndex, communityFeeToken0, communityFeeToken1, unlocked)``
of the Polygon pools), whose artifacts ``tests/chain/test_algebra_chain.py`` deploys and swaps
against. Those artifacts are an unoptimised build (the pool's runtime code is 59,652 bytes, over
EIP-170), so their bytecode is not byte-identical to the Polygon deployment; the Solidity source,
hence every integer operation, is the same.

Differences from Uniswap V3 (``alphapulse.jit.amm_v3``), from the Algebra v1.0 sources:

* **Fee in force.** One ``uint16`` fee in pips (1e6 = 100%) in ``globalState.fee``, not an
  immutable tier. It is recomputed inside ``swap``, before the price moves, by the first swap
  whose ``block.timestamp`` differs from the last timepoint's: the pool writes a timepoint to its
  DataStorageOperator, and when a new one is written it calls ``getFee(time, tick, index,
  liquidity)``, emits ``Fee(uint16 fee)`` (even when the value is unchanged) and swaps at that
  fee. Later swaps with the same timestamp use the stored fee. The recomputation
  (``AdaptiveFee.getFee``: baseFee plus two sigmoids of the 24-hour average volatility, scaled
  by a sigmoid of volume per liquidity) reads the DataStorageOperator's timepoint ring (tick
  cumulatives, volatility cumulatives, volume per liquidity over up to 24 h), which the pool's
  own state (``globalState``, ticks, liquidity) does not expose. So AlphaPulse prices with the
  fee in force (``globalState.fee`` / the last ``Fee`` event, PoolFee on the wire): exact for
  every swap after the first one of a block, and for the first one whenever the volatility
  window has not moved the fee; the first swap of a new block may run at a recomputed fee, which
  the ExecutionReport check (an ``eth_call`` of the real pool) detects. The fee a kernel takes
  is therefore a parameter, never derived.
* **Fee units.** ``uint16``: at most 65,535 pips (6.5535%); Uniswap's ``uint24`` tiers go to
  1e6. The step math takes ``fee`` and ``1e6 - fee`` exactly as Uniswap's ``computeSwapStep``.
* **Step math.** ``PriceMovementMath.movePriceTowardsTarget`` is ``SwapMath.computeSwapStep``
  operation for operation: the input after the fee ``mulDiv(amount, 1e6 - fee, 1e6)``, the
  input to the target rounded up, ``getNewPrice`` (Uniswap's ``getNextSqrtPriceFrom*`` with the
  same overflow branches and roundings), the fee ``mulDivRoundingUp(input, fee, 1e6 - fee)``
  when the target is reached and ``amountAvailable - input`` when it is not, the output rounded
  down and capped at the amount asked for exact output. ``TokenDeltaMath`` is
  ``SqrtPriceMath.getAmount{0,1}Delta``, ``TickMath``, ``FullMath`` and ``LiquidityMath`` are the
  same libraries: this module reuses amm_v3's kernels for all of them.
* **Loop.** ``while (true)`` with the stop test after the step (``amountRequired == 0 ||
  price == limit``) and a ``break`` when a step moves the price without reaching its target
  (the tick is then ``getTickAtSqrtRatio(price)``). Uniswap tests the same two conditions before
  each step; every step that ends inside a range uses the whole remaining amount (exact input:
  the fee is what is left; exact output: the output after ``getNewPriceAfterOutput`` is at least
  the amount asked, then capped), so the two loops run the same steps. The community fee
  (``communityFeeToken0/1``, per mille of the step fee) is taken out of the fee after the step
  and changes no amount a trader pays or receives.
* **Tick spacing and tick table.** Fixed at 60 (``Constants.TICK_SPACING``), not a pool
  parameter. ``tickTable`` (``mapping(int16 => uint256)``) is Uniswap's ``tickBitmap`` for
  spacing 60: ticks compressed by 60 rounding towards -infinity, words of 256, and
  ``nextTickInTheSameRow`` stops at the word boundary exactly as
  ``nextInitializedTickWithinOneWord``, the boundary clamped to [MIN_TICK, MAX_TICK]. So a swap
  splits into the same steps at uninitialised word boundaries (which matters for rounding).
* **Price-limit rule.** ``require(limit < price && limit > MIN_SQRT_RATIO)`` (zero to one) or
  ``limit > price && limit < MAX_SQRT_RATIO`` ('SPL'), as Uniswap; a zero amount reverts 'AS'.
* **Names.** ``swap(recipient, zeroToOne, amountRequired, limitSqrtPrice, data)`` calls back
  ``algebraSwapCallback(int256 amount0Delta, int256 amount1Delta, bytes)``; ``mint(sender,
  recipient, bottomTick, topTick, liquidityDesired, data)`` calls ``algebraMintCallback``.
  ``ticks(t)`` returns ``liquidityDelta`` (Uniswap's ``liquidityNet``) second, after
  ``liquidityTotal``.
* **Events.** ``Swap(address indexed sender, address indexed recipient, int256 amount0, int256
  amount1, uint160 price, uint128 liquidity, int24 tick)``, ``Mint(address sender, address indexed
  owner, int24 indexed bottomTick, int24 indexed topTick, uint128 liquidityAmount, uint256
  amount0, uint256 amount1)`` and ``Burn(address indexed owner, int24 indexed bottomTick, int24
  indexed topTick, uint128 liquidityAmount, uint256 amount0, uint256 amount1)`` have Uniswap V3's
  types, hence its topics (only the emitting address, a pool of the Algebra factory, tells them
  apart); Algebra adds ``Fee(uint16 fee)``. The factory emits ``Pool(address indexed token0,
  address indexed token1, address pool)`` and looks pools up with ``poolByPair(token0, token1)``
  (one pool per pair, no fee tier).

Algebra Integral (QuickSwap's newer Polygon factory ``0x96117a894c2c99aafeeacb972c3310e6ac83e810``;
its pools are looked up per custom deployer, ``supportedDeployers`` in public integrations, a
feature of Integral 1.2; npm ``@cryptoalgebra/integral-core@1.2.10``) differs from v1.0 in what
the step sequence and the fee are, not in the step math (``movePriceTowardsTarget`` is the same
but for an ``assert`` that an exact-input step ending short of its target did not land on it,
a Panic where v1.0 and Uniswap charge the fee by formula): :func:`integral_swap`.

* **Ticks.** Initialised ticks form a linked list (``ticks(t).prevTick/nextTick``, with
  MIN_TICK and MAX_TICK as its ends) over a two-level tick tree, and the pool keeps
  ``prevTickGlobal``/``nextTickGlobal`` around the price: every step goes straight to the next
  initialised tick (or the limit), with no steps at empty word boundaries, so the rounding of a
  long swap differs from v1.0's. The tick spacing is per pool (``tickSpacing()``, factory default
  60) and only constrains positions.
* **Fee.** ``uint16 lastFee`` in ``globalState`` (set by the factory's default fee at
  initialisation, by the plugin or by the pool's administrator through ``setFee``); a plugin's
  ``beforeSwap`` may return an ``overrideFee`` and a ``pluginFee``: the swap's fee per step is
  ``(overrideFee or lastFee) + pluginFee`` (uint24, below 1e6), the plugin's part taken out of
  each step's fee afterwards (like the community fee, it changes no trader amount). Without a
  plugin, or with one that returns no override, the fee in force is ``lastFee`` (``Fee``
  event on changes); Algebra's dynamic-fee plugin updates it in its hooks, from its own
  timepoints, so the same rule as v1.0 applies: price at the fee in force, the ExecutionReport
  check catches a recomputation. ``SwapFee(sender, overrideFee, pluginFee)`` reports a swap's
  hook fees.
* **Events.** ``Swap`` and ``Fee`` keep v1.0's signatures; ``globalState`` is ``(price, tick,
  lastFee, pluginConfig, communityFee, unlocked)``; ``createPool(tokenA, tokenB, data)``;
  ``ticks(t)`` returns ``(liquidityTotal, liquidityDelta, prevTick, nextTick, outerFeeGrowth0,
  outerFeeGrowth1)``.

Units: prices are Q64.96 (uint160) u256 limb tuples, liquidity uint128, amounts native units.
Tick arrays as in amm_v3: ``ticks`` int32 sorted ascending (multiples of 60), ``nets``
uint64[:, 2] (``liquidityDelta`` as i128 two's complement, limb 0 low).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.amm_v3 import (MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK, NO_COVERAGE_HI,
                                   NO_COVERAGE_LO, SWAP_BAD_AMOUNT, search_ticks,
                                   SWAP_BAD_LIMIT, SWAP_LIQUIDITY_REVERT, SWAP_MATH_REVERT, SWAP_MISSING_TICK,
                                   SWAP_OK, add_delta, compute_swap_step_to, default_limit,
                                   get_sqrt_ratio_at_tick, get_tick_at_sqrt_ratio, i128_to_sign_mag,
                                   next_initialized_tick_within_one_word)
from alphapulse.jit.wideint import (U0, mul_div_small, u256_add, u256_bitlen, u256_cmp, u256_eq, u256_is_zero,
                                    u256_lt, u256_sub)

ALGEBRA_V1_TICK_SPACING = 60
ALGEBRA_MAX_FEE = 0xFFFF          # uint16 fee in pips
INTEGRAL_MAX_FEE = 999_999        # Integral: (overrideFee or lastFee) + pluginFee < 1e6
SWAP_BAD_FEE = 7                  # a fee that a uint16 cannot hold

__all__ = ["ALGEBRA_V1_TICK_SPACING", "ALGEBRA_MAX_FEE", "INTEGRAL_MAX_FEE", "SWAP_BAD_FEE",
           "move_price_towards_target", "algebra_swap", "algebra_exact_input", "integral_swap",
           "integral_exact_input"]


@njit(cache=True)
def move_price_towards_target(zero_to_one, price, target, liquidity, amount, exact_in, fee):
    """PriceMovementMath.movePriceTowardsTarget: (result_price, input, output, fee_amount, ok).

    ``amount`` is the magnitude of ``amountAvailable`` (exact_in: >= 0 on chain). The direction
    is given, as in the contract (Uniswap derives it from the two prices; they agree whenever
    the target lies on the swap's side, which the loop guarantees)."""
    z = (U0, U0, U0, U0)
    if zero_to_one != (not u256_lt(price, target)):
        return price, z, z, z, False
    res, a_in, a_out, fee_amount, ok, _ = compute_swap_step_to(price, target, liquidity, amount, exact_in,
                                                               fee, z, False)
    return res, a_in, a_out, fee_amount, ok


@njit(cache=True)
def algebra_swap(price, tick, liquidity, fee, ticks, nets, n_ticks, zero_to_one, exact_in, amount,
                 limit, known_range_only, cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """AlgebraPool.swap (v1.0) on a snapshot, at the fee in force ``fee`` (pips, uint16).

    Returns (status, amount_in, amount_out, price_after, liquidity_after, tick_after,
    ticks_crossed) with amounts as magnitudes; status 0 = ok (SWAP_* codes of amm_v3, and
    SWAP_BAD_FEE). A swap stopped by the price limit reports the partial amounts with SWAP_OK,
    as the pool executes it. ``known_range_only`` True fails a swap that would step past the
    outermost tick of the arrays (SWAP_MISSING_TICK): beyond them the liquidity is unknown;
    when a covered range [``cov_lo``, ``cov_hi``] is given (a TickCoverage record: the arrays
    hold every initialised tick in it) a step whose price ends past its edge fails instead,
    as in ``amm_v3.swap_steps``.
    """
    z = (U0, U0, U0, U0)
    if fee < 0 or fee > ALGEBRA_MAX_FEE:
        return SWAP_BAD_FEE, z, z, price, liquidity, tick, 0
    if u256_is_zero(amount) or u256_bitlen(amount) > 255:             # 'AS', int256
        return SWAP_BAD_AMOUNT, z, z, price, liquidity, tick, 0
    if zero_to_one:
        if not (u256_lt(limit, price) and u256_lt(MIN_SQRT_RATIO, limit)):
            return SWAP_BAD_LIMIT, z, z, price, liquidity, tick, 0
    elif not (u256_lt(price, limit) and u256_lt(limit, MAX_SQRT_RATIO)):
        return SWAP_BAD_LIMIT, z, z, price, liquidity, tick, 0
    remaining = amount
    calculated = z
    cur_tick = np.int64(tick)
    liq = liquidity
    crossed = 0
    by_ticks = known_range_only and cov_lo <= NO_COVERAGE_LO and cov_hi >= NO_COVERAGE_HI
    while True:
        step_price = price
        next_tick, initialized, idx = next_initialized_tick_within_one_word(
            ticks, n_ticks, cur_tick, ALGEBRA_V1_TICK_SPACING, zero_to_one)
        if by_ticks and not initialized:
            if zero_to_one:
                beyond = n_ticks == 0 or np.int64(ticks[0]) > next_tick
            else:
                beyond = n_ticks == 0 or np.int64(ticks[n_ticks - 1]) < next_tick
            if beyond:
                return SWAP_MISSING_TICK, z, z, price, liq, cur_tick, crossed
        if next_tick < MIN_TICK:                                     # TickTable.uncompressAndBoundTick
            next_tick = MIN_TICK
        elif next_tick > MAX_TICK:
            next_tick = MAX_TICK
        next_price, _ = get_sqrt_ratio_at_tick(next_tick)
        # (zeroToOne == (nextTickPrice < limit)) ? limit : nextTickPrice
        target = limit if zero_to_one == u256_lt(next_price, limit) else next_price
        price, a_in, a_out, fee_amount, ok = move_price_towards_target(zero_to_one, price, target, liq, remaining,
                                                                       exact_in, fee)
        if not ok:
            return SWAP_MATH_REVERT, z, z, step_price, liq, cur_tick, crossed
        if known_range_only and ((zero_to_one and next_tick < cov_lo) or (not zero_to_one and next_tick > cov_hi)):
            # the step aims past the covered range: it may end inside it, never beyond
            edge, _ = get_sqrt_ratio_at_tick(cov_lo if zero_to_one else cov_hi)
            if u256_lt(price, edge) if zero_to_one else u256_lt(edge, price):
                return SWAP_MISSING_TICK, z, z, step_price, liq, cur_tick, crossed
        used, c = u256_add(a_in, fee_amount)
        if exact_in:
            remaining, b = u256_sub(remaining, used)
            calculated, c2 = u256_add(calculated, a_out)
        else:
            remaining, b = u256_sub(remaining, a_out)
            calculated, c2 = u256_add(calculated, used)
        if c or b or c2 or u256_bitlen(calculated) > 255:             # toInt256 / checked arithmetic
            return SWAP_MATH_REVERT, z, z, step_price, liq, cur_tick, crossed
        if u256_eq(price, next_price):
            if initialized:
                neg, mag = i128_to_sign_mag(nets[idx, 0], nets[idx, 1])
                if zero_to_one:
                    neg = not neg
                if not u256_is_zero(mag):
                    liq, ok = add_delta(liq, neg, mag)
                    if not ok:
                        return SWAP_LIQUIDITY_REVERT, z, z, price, liq, cur_tick, crossed
                crossed += 1
            cur_tick = next_tick - 1 if zero_to_one else next_tick
        elif not u256_eq(price, step_price):
            cur_tick, _ = get_tick_at_sqrt_ratio(price)
            break
        if u256_is_zero(remaining) or u256_eq(price, limit):
            break
    done, _ = u256_sub(amount, remaining)
    if exact_in:
        return SWAP_OK, done, calculated, price, liq, cur_tick, crossed
    return SWAP_OK, calculated, done, price, liq, cur_tick, crossed


@njit(cache=True)
def algebra_exact_input(amount_in, zero_to_one, price, tick, liquidity, fee, ticks, nets, n_ticks,
                        cov_lo=NO_COVERAGE_LO, cov_hi=NO_COVERAGE_HI):
    """Output of an exact-input swap at the fee in force with the widest limit
    (MIN_SQRT_RATIO + 1 / MAX_SQRT_RATIO - 1, what QuickSwap's router passes for 0);
    (amount_out, ok). ok is False on any revert, on a partial fill and when the swap would
    leave the range of ticks the arrays know (the covered range when given)."""
    z = (U0, U0, U0, U0)
    st, a_in, a_out, _, _, _, _ = algebra_swap(price, tick, liquidity, fee, ticks, nets, n_ticks, zero_to_one,
                                               True, amount_in, default_limit(zero_to_one), True, cov_lo, cov_hi)
    if st != SWAP_OK or not u256_eq(a_in, amount_in):
        return z, False
    return a_out, not u256_is_zero(a_out)


@njit(cache=True)
def integral_swap(price, tick, liquidity, fee, ticks, nets, n_ticks, zero_to_one, exact_in, amount, limit,
                  known_range_only):
    """AlgebraPool.swap of Algebra Integral (1.2) on a snapshot, at the fee per step ``fee``
    (pips: ``(overrideFee or lastFee) + pluginFee``).

    ``ticks``/``nets`` as for :func:`algebra_swap`, any spacing; each step goes to the next
    initialised tick of the arrays (MIN_TICK / MAX_TICK past the last one, Integral's list ends)
    or to the limit. Returns and statuses as :func:`algebra_swap`; the ``assert`` of Integral's
    ``movePriceTowardsTarget`` (an exact-input step short of its target computing the target
    price) is SWAP_MATH_REVERT.
    """
    z = (U0, U0, U0, U0)
    if fee < 0 or fee > INTEGRAL_MAX_FEE:
        return SWAP_BAD_FEE, z, z, price, liquidity, tick, 0
    if u256_is_zero(amount) or u256_bitlen(amount) > 255:
        return SWAP_BAD_AMOUNT, z, z, price, liquidity, tick, 0
    if zero_to_one:
        if not (u256_lt(limit, price) and u256_lt(MIN_SQRT_RATIO, limit)):
            return SWAP_BAD_LIMIT, z, z, price, liquidity, tick, 0
    elif not (u256_lt(price, limit) and u256_lt(limit, MAX_SQRT_RATIO)):
        return SWAP_BAD_LIMIT, z, z, price, liquidity, tick, 0
    remaining = amount
    calculated = z
    cur_tick = np.int64(tick)
    liq = liquidity
    crossed = 0
    # prevTickGlobal: the greatest initialised tick <= tick; nextTickGlobal: the least one above
    i_next = search_ticks(ticks, n_ticks, cur_tick + 1)
    while True:
        step_price = price
        if zero_to_one:
            idx = i_next - 1
            if idx >= 0:
                next_tick = np.int64(ticks[idx])
            else:
                if known_range_only:
                    return SWAP_MISSING_TICK, z, z, price, liq, cur_tick, crossed
                next_tick = np.int64(MIN_TICK)
        else:
            idx = i_next
            if idx < n_ticks:
                next_tick = np.int64(ticks[idx])
            else:
                if known_range_only:
                    return SWAP_MISSING_TICK, z, z, price, liq, cur_tick, crossed
                next_tick = np.int64(MAX_TICK)
                idx = -1
        next_price, _ = get_sqrt_ratio_at_tick(next_tick)
        target = limit if zero_to_one == u256_lt(next_price, limit) else next_price
        price, a_in, a_out, fee_amount, ok = move_price_towards_target(zero_to_one, price, target, liq, remaining,
                                                                       exact_in, fee)
        if ok and exact_in and u256_eq(price, target):
            # reached by amounts (input after the fee >= input to the target), or Integral's assert
            less_fee, ok2 = mul_div_small(remaining, np.uint64(1_000_000 - fee), np.uint64(1_000_000), False)
            if not ok2 or u256_cmp(less_fee, a_in) < 0:
                ok = False
        if not ok:
            return SWAP_MATH_REVERT, z, z, step_price, liq, cur_tick, crossed
        used, c = u256_add(a_in, fee_amount)
        if exact_in:
            remaining, b = u256_sub(remaining, used)
            calculated, c2 = u256_add(calculated, a_out)
        else:
            remaining, b = u256_sub(remaining, a_out)
            calculated, c2 = u256_add(calculated, used)
        if c or b or c2 or u256_bitlen(calculated) > 255:
            return SWAP_MATH_REVERT, z, z, step_price, liq, cur_tick, crossed
        if u256_eq(price, next_price):
            if idx >= 0:
                neg, mag = i128_to_sign_mag(nets[idx, 0], nets[idx, 1])
                if zero_to_one:
                    neg = not neg
                if not u256_is_zero(mag):
                    liq, ok = add_delta(liq, neg, mag)
                    if not ok:
                        return SWAP_LIQUIDITY_REVERT, z, z, price, liq, cur_tick, crossed
            crossed += 1
            if zero_to_one:
                cur_tick = next_tick - 1
                i_next -= 1
            else:
                cur_tick = next_tick
                i_next += 1
        elif not u256_eq(price, step_price):
            cur_tick, _ = get_tick_at_sqrt_ratio(price)
            break
        if u256_is_zero(remaining) or u256_eq(price, limit):
            break
    done, _ = u256_sub(amount, remaining)
    if exact_in:
        return SWAP_OK, done, calculated, price, liq, cur_tick, crossed
    return SWAP_OK, calculated, done, price, liq, cur_tick, crossed


@njit(cache=True)
def integral_exact_input(amount_in, zero_to_one, price, tick, liquidity, fee, ticks, nets, n_ticks):
    """:func:`algebra_exact_input` for an Integral pool (:func:`integral_swap`)."""
    z = (U0, U0, U0, U0)
    st, a_in, a_out, _, _, _, _ = integral_swap(price, tick, liquidity, fee, ticks, nets, n_ticks, zero_to_one,
                                                True, amount_in, default_limit(zero_to_one), True)
    if st != SWAP_OK or not u256_eq(a_in, amount_in):
        return z, False
    return a_out, not u256_is_zero(a_out)
