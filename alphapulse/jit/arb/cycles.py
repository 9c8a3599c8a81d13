"""Pool access and exact cycle simulation.

``hop_out`` swaps an integer amount through one pool (``amm_v2`` constant
product or ``amm_v3`` concentrated liquidity, in the pool's token base units,
up to 2**256 - 1 as four uint64 limbs); ``simulate_cycle`` chains it over the
2 or 3 pools of a cycle and returns the exact output. ``simulate_cycle_ck``
does the same with a cache of concentrated-liquidity swap checkpoints
(``CK_*``, ``SW*``: uint64[SWC_N, SWCOL]) so the pools shared by many cycles
are swapped through their crossed ticks once per search.
``virtual_reserves`` and ``_marginal_rate`` are the floats of the current
state (reserves in base units, rate = output per unit input after the fee)
that screen and seed the exact search; no published amount comes from them.
Imports only the layouts (:mod:`.params`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.amm_v2 import v2_get_amount_out
from alphapulse.jit.amm_v3 import NO_HINT, v3_exact_input, v3_exact_input_at
from alphapulse.jit.pool_state import (
    C_COV_HI, C_COV_LO, C_FEE, C_KIND, C_LIQ, C_R0, C_R1, C_SPACING, C_SQRT, C_TICK, C_V3ROW, KIND_V2,
)
from alphapulse.jit.wideint import U0, u256_cmp, u256_to_f64

from alphapulse.jit.arb.params import Q96F


# ---------------------------------------------------------------- pool access
@njit(cache=True, inline="always")
def _u128(pools, p, col):
    return (pools[p, col], pools[p, col + 1], U0, U0)


@njit(cache=True, inline="always")
def _sqrt(pools, p):
    return (pools[p, C_SQRT], pools[p, C_SQRT + 1], pools[p, C_SQRT + 2], pools[p, C_SQRT + 3])


@njit(cache=True)
def hop_out(pools, tticks, tnets, tn, p, zero_for_one, amount_in):
    """Exact output of pool p for ``amount_in`` (token0 in when zero_for_one); (out u256, ok)."""
    fee = np.int64(pools[p, C_FEE])
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        if zero_for_one:
            return v2_get_amount_out(amount_in, _u128(pools, p, C_R0), _u128(pools, p, C_R1), fee)
        return v2_get_amount_out(amount_in, _u128(pools, p, C_R1), _u128(pools, p, C_R0), fee)
    row = np.int64(pools[p, C_V3ROW])
    return v3_exact_input(amount_in, zero_for_one, _sqrt(pools, p), np.int64(pools[p, C_TICK]),
                          _u128(pools, p, C_LIQ), fee, np.int64(pools[p, C_SPACING]),
                          tticks[row], tnets[row], tn[row], np.int64(pools[p, C_COV_LO]), np.int64(pools[p, C_COV_HI]))


@njit(cache=True)
def virtual_reserves(pools, p, zero_for_one):
    """(reserve_in, reserve_out) as floats: V2 reserves, V3 virtual reserves L/sqrtP and L*sqrtP."""
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r0 = u256_to_f64(_u128(pools, p, C_R0))
        r1 = u256_to_f64(_u128(pools, p, C_R1))
    else:
        s = u256_to_f64(_sqrt(pools, p)) / Q96F
        liq = u256_to_f64(_u128(pools, p, C_LIQ))
        r0 = liq / s
        r1 = liq * s
    if zero_for_one:
        return r0, r1
    return r1, r0


@njit(cache=True)
def simulate_cycle(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, amount_in):
    """Exact output of the cycle for ``amount_in``; (out u256, ok)."""
    amt = amount_in
    for i in range(hops):
        amt, ok = hop_out(pools, tticks, tnets, tn, cyc_p[i], cyc_z[i], amt)
        if not ok:
            return amt, False
    return amt, True


# Checkpoints of concentrated-liquidity swaps (the first CKCOL columns of a row of the cache
# below): the state of the swap loop at the start of its last step (amm_v3.swap_steps) in a
# simulation from the pool's state, from which a swap of the same pool and direction with at
# least ``used`` input resumes.
CK_SQRT = 0         # 4 limbs
CK_LIQ = 4          # 4 limbs
CK_USED = 8         # 4 limbs: input used up before that step
CK_CALC = 12        # 4 limbs: output so far
CK_TICK = 16
CK_SET = 17         # 1: the row holds a checkpoint
CK_TNEXT = 18       # that step's range (amm_v3.swap_steps' hint): next tick, initialised, its index,
CK_INIT = 19
CK_IDX = 20
CK_SNT = 21         # 4 limbs: its sqrt price
CK_TOT = 25         # 4 limbs: the input before the fee that reaches the step's target
CK_KNOWN = 29       # 1: CK_TOT is known
CKCOL = 30
# The search's cache of these checkpoints (uint64[SWC_N, SWCOL], in the engine's arena), shared by
# every cycle it sizes: the pool of a cycle that opens with its neighbours (they all trade it the
# same way, by similar amounts) is swapped through its crossed ticks once per search, not once per
# cycle. Direct-mapped by (pool, direction); an entry holds for the pool state it was made on,
# keyed by meta[M_STATE_VER], which every applied TLV advances.
SW_POOL = CKCOL     # pool row + 1 (0: empty)
SW_DIR = CKCOL + 1  # 1: token0 in
SW_VER = CKCOL + 2  # meta[M_STATE_VER] when it was made
SWCOL = CKCOL + 3
SWC_N = 64          # a power of two


@njit(cache=True, inline="always")
def _ck_u256(ck, i, col):
    return (ck[i, col], ck[i, col + 1], ck[i, col + 2], ck[i, col + 3])


@njit(cache=True, inline="always")
def _ck_put(ck, i, col, x):
    for k in range(4):
        ck[i, col + k] = x[k]


@njit(cache=True)
def simulate_cycle_ck(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, amount_in, ck, ver):
    """:func:`simulate_cycle` (the same result), each concentrated-liquidity hop resumed from its
    pool's checkpoint in the cache ``ck`` (SWCOL columns, entries made at state version ``ver``
    = meta[M_STATE_VER]) when its input is at least the checkpoint's ``used`` (then the swap
    runs through the same steps to it; see amm_v3.swap_steps), else run from the pool's state
    and its checkpoint kept there. The simulations of an exact search probe inputs close
    together, which cross the same ticks: each then costs about one swap step per hop."""
    amt = amount_in
    for k in range(hops):
        p = cyc_p[k]
        if pools[p, C_KIND] == np.uint64(KIND_V2):
            amt, ok = hop_out(pools, tticks, tnets, tn, p, cyc_z[k], amt)
        else:
            row = np.int64(pools[p, C_V3ROW])
            fee = np.int64(pools[p, C_FEE])
            spacing = np.int64(pools[p, C_SPACING])
            cov_lo = np.int64(pools[p, C_COV_LO])
            cov_hi = np.int64(pools[p, C_COV_HI])
            d = np.uint64(1) if cyc_z[k] else np.uint64(0)
            i = (p * 2 + np.int64(d)) & (ck.shape[0] - 1)
            mine = (ck[i, SW_POOL] == np.uint64(p + 1) and ck[i, SW_DIR] == d
                    and ck[i, SW_VER] == np.uint64(ver) and ck[i, CK_SET] != 0)
            if mine and u256_cmp(amt, _ck_u256(ck, i, CK_USED)) >= 0:
                hint = (np.int64(ck[i, CK_TNEXT]), ck[i, CK_INIT] != 0, np.int64(ck[i, CK_IDX]),
                        _ck_u256(ck, i, CK_SNT), _ck_u256(ck, i, CK_TOT), ck[i, CK_KNOWN] != 0)
                amt, ok, _ = v3_exact_input_at(amt, cyc_z[k], _ck_u256(ck, i, CK_SQRT), np.int64(ck[i, CK_TICK]),
                                               _ck_u256(ck, i, CK_LIQ), _ck_u256(ck, i, CK_USED),
                                               _ck_u256(ck, i, CK_CALC), fee, spacing, tticks[row], tnets[row],
                                               tn[row], hint, cov_lo, cov_hi)
            else:
                z = (U0, U0, U0, U0)
                amt, ok, c = v3_exact_input_at(amt, cyc_z[k], _sqrt(pools, p), np.int64(pools[p, C_TICK]),
                                               _u128(pools, p, C_LIQ), z, z, fee, spacing, tticks[row],
                                               tnets[row], tn[row], NO_HINT, cov_lo, cov_hi)
                if ok:
                    _ck_put(ck, i, CK_SQRT, c[0])
                    ck[i, CK_TICK] = np.uint64(c[1])
                    _ck_put(ck, i, CK_LIQ, c[2])
                    _ck_put(ck, i, CK_USED, c[3])
                    _ck_put(ck, i, CK_CALC, c[4])
                    h = c[5]
                    ck[i, CK_TNEXT] = np.uint64(h[0])
                    ck[i, CK_INIT] = 1 if h[1] else 0
                    ck[i, CK_IDX] = np.uint64(h[2])
                    _ck_put(ck, i, CK_SNT, h[3])
                    _ck_put(ck, i, CK_TOT, h[4])
                    ck[i, CK_KNOWN] = 1 if h[5] else 0
                    ck[i, CK_SET] = 1
                    ck[i, SW_POOL] = np.uint64(p + 1)
                    ck[i, SW_DIR] = d
                    ck[i, SW_VER] = np.uint64(ver)
        if not ok:
            return amt, False
    return amt, True


@njit(cache=True)
def _marginal_rate(pools, p, zero_for_one):
    g = (1_000_000 - np.int64(pools[p, C_FEE])) / 1_000_000.0
    r_in, r_out = virtual_reserves(pools, p, zero_for_one)
    if r_in <= 0.0:
        return 0.0
    return g * r_out / r_in
