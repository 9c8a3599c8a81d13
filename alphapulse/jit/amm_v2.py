"""Constant-product (Uniswap V2 family) swap math, exact, for Numba.

Amounts and reserves are u256 limb tuples (``alphapulse.jit.wideint``) in the
token's native units (wei-style); fees in pips (millionths, UniswapV2 = 3000).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.wideint import (u256_add, u256_bitlen, u256_divmod, u256_is_zero, u256_mul,
                                    u256_mul_u64)

FEE_DENOMINATOR = 1_000_000
MAX_RESERVE_BITS = 112  # UniswapV2Pair keeps reserves and balances in uint112


@njit(cache=True)
def v2_get_amount_out(amount_in, reserve_in, reserve_out, fee_pips):
    """UniswapV2Library.getAmountOut with the fee in pips, rounding as the contract.

    amount_in, reserve_in, reserve_out: u256 (wei-style units); fee_pips in
    [0, 1e6). ``a*(1e6-fee)*R // (r*1e6 + a*(1e6-fee))`` is the same rational
    as ``a*997*R // (r*1000 + a*997)`` for 3000 pips, so the floor is equal.
    Returns (amount_out u256, ok). ok is False where the library or the pair
    reverts: zero input or reserve, 256-bit overflow (SafeMath), post-swap
    balance above uint112, or a zero output.
    """
    if u256_is_zero(amount_in) or u256_is_zero(reserve_in) or u256_is_zero(reserve_out):
        return amount_in, False
    with_fee, o1 = u256_mul_u64(amount_in, np.uint64(FEE_DENOMINATOR - fee_pips))
    numerator, o2 = u256_mul(with_fee, reserve_out)
    scaled_in, o3 = u256_mul_u64(reserve_in, np.uint64(FEE_DENOMINATOR))
    denominator, o4 = u256_add(scaled_in, with_fee)
    if o1 or o2 or o3 or o4:
        return amount_in, False
    out, _ = u256_divmod(numerator, denominator)
    if u256_is_zero(out):
        return out, False
    bal, o5 = u256_add(reserve_in, amount_in)
    if o5 or u256_bitlen(bal) > MAX_RESERVE_BITS:
        return out, False
    return out, True


@njit(cache=True)
def v2_amount_out_f64(amount_in, reserve_in, reserve_out, fee_pips):
    """Float screen of getAmountOut (never for published figures)."""
    g = (FEE_DENOMINATOR - fee_pips) / FEE_DENOMINATOR
    a = amount_in * g
    return a * reserve_out / (reserve_in + a)


@njit(cache=True)
def v2_marginal_rate(reserve_in, reserve_out, fee_pips):
    """d(out)/d(in) at zero size, after the fee (float)."""
    return (FEE_DENOMINATOR - fee_pips) / FEE_DENOMINATOR * reserve_out / reserve_in
