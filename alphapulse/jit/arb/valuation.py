"""USD and gas valuation, integer fixed point (USD x 1e8, int64, clamped to
``I64_MAX``).

A token is priced through its deepest pool with the stable coin
(``price_pool``, cached per price epoch by ``cached_price_pool``; a pool
holding less than ``PR_MIN_PRICE_DEPTH_USD`` on its stable side prices
nothing); ``usd_e8`` / ``usd_e8_at`` convert an amount in base units at that
pool's exact price, ``usd_e8_f`` in floats for screening only. Gas: the
native token's price (``gas_via_pool``) times the gas in wei
(``gas_usd_e8``). Imports :mod:`.params` and the pool access of
:mod:`.cycles`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.pool_state import (
    C_KIND, C_NEXT_PAIR, C_R0, C_R1, C_TOKEN0, C_TOKEN1, KIND_V2, M_GAS_POOL, M_GAS_POOL_EPOCH, M_GAS_TOKEN,
    M_GAS_VIA, P_HEAD, T_DEC, T_HEAD, T_PRICE_EPOCH, T_PRICE_POOL, find_pair, next_pool_of_token,
    pool_tradable,
)
from alphapulse.jit.wideint import U0, mul_div, u256_mul, u256_to_f64

from alphapulse.jit.arb.params import I64_MAX, Q96F, _E8, _Q96
from alphapulse.jit.arb.cycles import _sqrt, _u128, virtual_reserves


# ---------------------------------------------------------------- USD valuation
_POW10_U64 = np.array([10**k for k in range(20)], np.uint64)


@njit(cache=True)
def _pow10(n):
    if 0 <= n < 20:
        return (_POW10_U64[n], U0, U0, U0)
    r = (np.uint64(1), U0, U0, U0)
    ten = (np.uint64(10), U0, U0, U0)
    for _ in range(n):
        r, _ = u256_mul(r, ten)
    return r


@njit(cache=True)
def _clamp_i64(x):
    if x[1] != U0 or x[2] != U0 or x[3] != U0 or x[0] > np.uint64(I64_MAX):
        return I64_MAX
    return np.int64(x[0])


@njit(cache=True)
def price_pool(pools, tokens, pairs, pair_ht, tn, token, stable, min_depth_usd):
    """The deepest tradable pool between ``token`` and ``stable`` (by its stable-coin reserve,
    virtual for concentrated liquidity), -1 if none holds at least ``min_depth_usd`` USD there."""
    pr = find_pair(pair_ht, token, stable)
    if pr < 0:
        return -1
    best = -1
    best_depth = 0.0
    floor = min_depth_usd * 10.0 ** np.int64(tokens[stable, T_DEC])
    p = pairs[pr, P_HEAD]
    while p >= 0:
        if pool_tradable(pools, tn, p):
            stable_is_0 = np.int64(pools[p, C_TOKEN0]) == stable
            r_in, r_out = virtual_reserves(pools, p, stable_is_0)
            if r_in > best_depth and r_in >= floor:
                best_depth = r_in
                best = p
        p = np.int64(pools[p, C_NEXT_PAIR])
    return best


@njit(cache=True, inline="always")
def cached_price_pool(pools, tokens, pairs, pair_ht, tn, token, stable, price_epoch, min_depth_usd):
    """:func:`price_pool`, kept in the token's T_PRICE_EPOCH / T_PRICE_POOL columns: looked up
    again after a pool of the token and the stable coin changed (``process_batch`` zeroes the
    token's T_PRICE_EPOCH), after every pool turned stale (``price_epoch`` = meta[M_PRICE_EPOCH]
    + 1 advanced) or when the cached pool is no longer tradable."""
    e = np.uint64(price_epoch)
    pp = np.int64(tokens[token, T_PRICE_POOL])
    # (a pool turns stale in a few ways that change no state, e.g. a reorg past the journal)
    if tokens[token, T_PRICE_EPOCH] != e or (pp >= 0 and not pool_tradable(pools, tn, pp)):
        tokens[token, T_PRICE_POOL] = np.uint64(price_pool(pools, tokens, pairs, pair_ht, tn, token, stable,
                                                           min_depth_usd))
        tokens[token, T_PRICE_EPOCH] = e
    return np.int64(tokens[token, T_PRICE_POOL])


@njit(cache=True, inline="always")
def _price_moved(pools, tokens, meta, changed, stable):
    """Pool ``changed`` changed: when it trades the stable coin, forget the cached price pool
    of its other token (and the gas values, when that is the native token's or the token its
    gas route goes through); when the gas is valued through another token (no pool of the
    native token to the stable coin), a change of a pool of the native token forgets them too."""
    t0 = np.int64(pools[changed, C_TOKEN0])
    t1 = np.int64(pools[changed, C_TOKEN1])
    if t0 == stable or t1 == stable:
        other = t1 if t0 == stable else t0
        tokens[other, T_PRICE_EPOCH] = U0
        if other == meta[M_GAS_TOKEN]:
            meta[M_GAS_POOL_EPOCH] = 0
        via = meta[M_GAS_VIA]
        if via >= 0 and (np.int64(pools[via, C_TOKEN0]) == other or np.int64(pools[via, C_TOKEN1]) == other):
            meta[M_GAS_POOL_EPOCH] = 0
    elif meta[M_GAS_VIA] >= 0 and (t0 == meta[M_GAS_TOKEN] or t1 == meta[M_GAS_TOKEN]):
        meta[M_GAS_POOL_EPOCH] = 0


@njit(cache=True)
def gas_via_pool(pools, tokens, pairs, pair_ht, tn, native, stable, price_epoch, min_depth_usd):
    """The pool that values gas when the native token has no pool to the stable coin: of the
    native token's tradable pools whose other token has a price pool (:func:`cached_price_pool`),
    the deepest by the value of that token's reserve in it (virtual for concentrated
    liquidity), in USD at that token's price; -1 if none holds ``min_depth_usd``."""
    best = -1
    best_depth = 0.0
    floor = float(min_depth_usd) * 1e8
    q = np.int64(tokens[native, T_HEAD])
    while q >= 0:
        if pool_tradable(pools, tn, q):
            x_is_0 = np.int64(pools[q, C_TOKEN1]) == native
            x = np.int64(pools[q, C_TOKEN0]) if x_is_0 else np.int64(pools[q, C_TOKEN1])
            px = cached_price_pool(pools, tokens, pairs, pair_ht, tn, x, stable, price_epoch, min_depth_usd)
            if px >= 0:
                r_x, _ = virtual_reserves(pools, q, x_is_0)
                depth, ok = usd_e8_f(pools, tokens, px, r_x, x, stable)
                if ok and depth > best_depth and depth >= floor:
                    best_depth = depth
                    best = q
        q = next_pool_of_token(pools, q, native)
    return best


@njit(cache=True)
def gas_usd_e8(pools, tokens, meta, gas_wei, native, stable):
    """USD value x 1e8 of ``gas_wei`` of the native token: at its price pool (meta[M_GAS_POOL]),
    else through meta[M_GAS_VIA] (:func:`gas_via_pool`) to its other token, then that token's
    price pool; integer fixed point, mid prices. (value, priced)."""
    if native < 0 or stable < 0:
        return 0, False
    if native == stable or meta[M_GAS_POOL] >= 0:
        return usd_e8_at(pools, tokens, meta[M_GAS_POOL], gas_wei, native, stable)
    q = meta[M_GAS_VIA]
    if q < 0:
        return 0, False
    x = np.int64(pools[q, C_TOKEN1]) if np.int64(pools[q, C_TOKEN0]) == native else np.int64(pools[q, C_TOKEN0])
    amt, ok = mid_convert(pools, q, gas_wei, native)
    if not ok:
        return 0, False
    return usd_e8_at(pools, tokens, np.int64(tokens[x, T_PRICE_POOL]), amt, x, stable)


@njit(cache=True)
def usd_e8(pools, tokens, pairs, pair_ht, tn, amount, token, stable, min_depth_usd=0):
    """USD value x 1e8 of ``amount`` of ``token`` at the mid price of its deepest pool to the stable coin.

    Integer fixed point throughout (the stable coin counts as 1 USD). Returns
    (value int64 clamped, priced bool).
    """
    if stable < 0 or token < 0:
        return 0, False
    p = price_pool(pools, tokens, pairs, pair_ht, tn, token, stable, min_depth_usd) if token != stable else -1
    return usd_e8_at(pools, tokens, p, amount, token, stable)


@njit(cache=True)
def usd_e8_at(pools, tokens, p, amount, token, stable):
    """:func:`usd_e8` with the token's price pool ``p`` already looked up (-1: none; any for the
    stable coin itself)."""
    if stable < 0 or token < 0:
        return 0, False
    sdec = np.int64(tokens[stable, T_DEC])
    if token == stable:
        v, ok = mul_div(amount, _E8, _pow10(sdec))
        return _clamp_i64(v), ok
    if p < 0:
        return 0, False
    v, ok = mid_convert(pools, p, amount, token)       # stable units
    if not ok:
        return 0, False
    v, ok = mul_div(v, _E8, _pow10(sdec))
    return _clamp_i64(v), ok


@njit(cache=True, inline="always")
def mid_convert(pools, p, amount, token):
    """``amount`` (u256) of ``token`` in units of pool p's other token at p's mid price, floored
    (integer throughout); (value u256, ok)."""
    token_is_0 = np.int64(pools[p, C_TOKEN0]) == token
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r_tok = _u128(pools, p, C_R0 if token_is_0 else C_R1)
        r_other = _u128(pools, p, C_R1 if token_is_0 else C_R0)
        return mul_div(amount, r_other, r_tok)
    s = _sqrt(pools, p)
    if token_is_0:   # other = token1: price = sqrtP^2 / 2^192
        v, ok = mul_div(amount, s, _Q96)
        if ok:
            v, ok = mul_div(v, s, _Q96)
    else:            # other = token0: price = 2^192 / sqrtP^2
        v, ok = mul_div(amount, _Q96, s)
        if ok:
            v, ok = mul_div(v, _Q96, s)
    return v, ok


@njit(cache=True)
def usd_e8_f(pools, tokens, p, amount, token, stable):
    """:func:`usd_e8_at` in floats for a float ``amount``: for the screen only, never a
    published figure. (value, priced)."""
    if stable < 0 or token < 0:
        return 0.0, False
    scale = 1e8 / 10.0 ** np.int64(tokens[stable, T_DEC])
    if token == stable:
        return amount * scale, True
    if p < 0:
        return 0.0, False
    token_is_0 = np.int64(pools[p, C_TOKEN0]) == token
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r0 = u256_to_f64(_u128(pools, p, C_R0))
        r1 = u256_to_f64(_u128(pools, p, C_R1))
        if r0 <= 0.0 or r1 <= 0.0:
            return 0.0, False
        price = r1 / r0 if token_is_0 else r0 / r1      # stable units per token unit
    else:
        sq = u256_to_f64(_sqrt(pools, p)) / Q96F
        price = sq * sq if token_is_0 else 1.0 / (sq * sq)
    return amount * price * scale, True
