"""Arbitrage kernels: cycle search, optimal sizing, USD valuation, signal frames.

Everything here is an ``@njit(cache=True)`` function over the state arrays of
:mod:`alphapulse.jit.pool_state`. ``process_batch`` is the one entry point the
strategy calls per batch of market-data frames: validate the frames, apply
their TLVs to the pool state, then for every pool whose state changed
evaluate each cycle through it and write ArbitrageSignal frames.

Money path: floats only *screen* (marginal rates, the closed-form or
virtual-reserve starting point of the search); every published amount is the
exact integer simulation of the pools (``amm_v2`` / ``amm_v3``) and USD figures
are integer fixed point (x 1e8) from on-chain prices.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from alphapulse.jit.amm_v2 import v2_get_amount_out
from alphapulse.jit.amm_v3 import NO_HINT, v3_exact_input, v3_exact_input_at, v3_exact_input_f64, v3_piece_f64
from alphapulse.jit.arena import view1, view2, view3
from alphapulse.jit.clock import mono_ns, wall_ns
from alphapulse.jit.crc import CLMUL, frame_crc_with
from alphapulse.jit.encode import seal_frame_with, write_header, write_tlv_header
from alphapulse.jit.frames import check_header, check_tlvs, tlv_header
from alphapulse.jit.memory import ld_u32, ld_u64, prefetch, st_u16, st_u32, st_u64
from alphapulse.jit.pool_state import (
    GP_CHAIN, K_CHAIN_MISMATCH, T_GAS,
    C_COV_HI, C_COV_LO, C_FEE, C_KIND, C_LIQ, C_PAIR, C_R0, C_R1, C_SPACING, C_SQRT, C_STATE_BLOCK,
    C_TICK, C_TOKEN0, C_TOKEN1, C_V3ROW, C_VENUE, C_ADDR, C_NEXT_PAIR, K_CANDIDATES, K_CYCLES,
    K_FRAMES, K_FRAMES_DUPLICATE, K_FRAMES_REJECTED, K_OUT_FULL, K_SEQ_GAPS, K_SIGNALS,
    K_SIGNALS_SUPPRESSED, K_SCREENED, K_SIGNAL_TABLE_FULL, K_SIM_FAILS, K_SIMULATIONS, K_STALE_SKIPS, K_TLVS, KIND_V2,
    M_CHAIN_ID, M_GAS_BASE, M_GAS_POOL, M_GAS_POOL_EPOCH, M_GAS_PRIO, M_GAS_TOKEN, M_GAS_USD, M_JSEQ, M_LAST_SEQ,
    M_NPOOLS, M_GAS_VIA, M_PRICE_EPOCH, M_SIGNAL_ID, M_STATE_VER, P_COUNT, P_HEAD, P_MEMBERS, P_NMEMBERS, T_ADDR, T_DEC, T_HEAD,
    T_NPOOLS, T_PRICE_EPOCH, T_PRICE_POOL,
    apply_tlv, find_pair, find_token, mark_all_stale, next_pool_of_token, pool_tradable,
)
from alphapulse.jit.wideint import (U0, mul_div, u256_add, u256_cmp, u256_from_f64, u256_is_zero,
                                    u256_mul, u256_sub, u256_to_f64)
from alphapulse.protocol import layout as L
from alphapulse.ring.sequencer import PS_CAP, PS_POS, WAKE, publish_span

# ---------------------------------------------------------------- params layout (int64[NPARAMS])
PR_MIN_NET_USD_E8 = 0
PR_MAX_HOPS = 1
PR_MAX_TRIANGLES = 2       # triangles evaluated per updated pool
PR_MAX_INPUT_BPS = 3       # max input as a share of the first pool's input-side reserve
PR_GAS_BASE_UNITS = 4
PR_GAS_V2_UNITS = 5
PR_GAS_V3_UNITS = 6
PR_STABLE = 7              # 3 address words (int64 bits)
PR_HAS_STABLE = 10
PR_NATIVE = 11             # 3 address words
PR_HAS_NATIVE = 14
PR_CHAIN_ID = 15
PR_STRATEGY_ID = 16
PR_REPUBLISH_BPS = 17
PR_CRC_EVERY = 18
PR_ITERS_V2 = 19
PR_ITERS_V3 = 20
PR_NEIGHBOR_SCAN = 21
PR_MIN_SPREAD_E9 = 22
PR_SIGNAL_CRC = 23
PR_SOURCE = 24
PR_SCREEN_PCT = 25          # float screen: skip when the modelled profit is below this % of the bar
PR_EVALUATE = 26            # EVAL_BLOCK: search the touched pools once per block, on its end state;
                            # EVAL_FRAME: after every frame (research: intra-block signals are flagged)
PR_REPUBLISH_BLOCKS = 27    # a live cycle is re-published at most once per this many blocks (0: no limit)
PR_SEARCH_TOL_PPB = 28      # the exact search stops within this many parts per billion of the best profit
PR_MIN_PRICE_DEPTH_USD = 29  # a price route whose pools hold less than this (USD, stable-coin side) prices nothing
PR_SEARCH_FLAGS = 30        # set by process_batch: flags of every signal of the search in progress
NPARAMS = 32
EVAL_BLOCK = 0
EVAL_FRAME = 1

# search phases; process_batch resume state (int64[RSCOL]) and its stop code
PHASE_PAIRS = 1
PHASE_TRIANGLES = 2
RS_PENDING = 0
RS_POS = 1
RS_EPOCH = 2
RS_NTOUCHED = 3
RS_OVERFLOW = 4
RS_FINAL = 5
RS_STOP = 6
RS_I = 7            # cursor of an interrupted 2-pool phase: changed-pool index (pool row when overflowed),
RS_Q = 8            # the pair-list pool to go on with (-1: the start of the list), its direction
RS_D = 9
RS_PUB = 10         # bytes of ``out`` (from its start) the kernel published on the sink ring itself
RS_SINK = 11        # 0, or the sink publication the caller must finish: + WAKE, partial (full ring), error
# the block in progress (EVAL_BLOCK), kept across calls until its end: its changed pools (the
# epoch's list, or every pool marked with the epoch after an overflow), its block number
RS_BLK_N = 12
RS_BLK_OVERFLOW = 13
RS_BLK_NUMBER = 14
RS_LAST_BLOCK = 15  # the last block completed (a BlockEnd, a change of block number, or the end of input)
RS_CLOSE = 16       # set by the caller: the input ends here, search the block in progress
RSCOL = 17
STOP_FLUSH = -1
TL_MAX = 4096           # changed pools listed per search (more: every pool is scanned for the epoch mark)

# token_min rows: 3 address words, minimum gross profit (2 limbs) for unpriced signals
TM_ADDR = 0
TM_MIN = 3
TMCOL = 5

# signal table values
SV_LIVE = 0
SV_GROSS = 1
SV_AMOUNT_IN = 2
SV_LAST_BLOCK = 3  # block of the last publication
SVCOL = 4

# per-pool scratch (float64[P, RCCOL], zeroed by the owner): the pool's two marginal rates, whether
# they are valid for its current state, and how many live signals hold the pool
RC_RATE0 = 0
RC_RATE1 = 1
RC_VALID = 2
RC_LIVE = 3
RCCOL = 4

MARKET = int(L.Domain.MARKET_DATA)
SIGNAL_DOMAIN = int(L.Domain.SIGNAL)
HEADER_SIZE = L.HEADER_SIZE
OFF_DOMAIN, OFF_SOURCE, OFF_SEQUENCE, OFF_TIMESTAMP = 4, 6, 8, 16
EXT_MARKER = L.TLV_EXTENDED_MARKER
FIXED_SIZE = L.FIXED_SIZE
SIG = L.ARBITRAGE_SIGNAL
SIG_TYPE = SIG.type_id
SIG_SIZE = SIG.size
SIG_FRAME = HEADER_SIZE + L.TLV_STD_HEADER + SIG_SIZE
assert SIG_SIZE <= L.TLV_STD_MAX
S_AMOUNT_IN = SIG.offset("amount_in")
S_AMOUNT_OUT = SIG.offset("amount_out")
S_GAS_WEI = SIG.offset("gas_cost_wei")
S_NET = SIG.offset("net_profit_usd_e8")
S_GROSS = SIG.offset("gross_profit_usd_e8")
S_GAS_USD = SIG.offset("gas_cost_usd_e8")
S_BLOCK = SIG.offset("block_number")
S_TRIGGER = SIG.offset("trigger_ts_ns")
S_ID = SIG.offset("signal_id")
S_CHAIN = SIG.offset("chain_id")
S_STRATEGY = SIG.offset("strategy_id")
S_HOPS = SIG.offset("hops")
S_FLAGS = SIG.offset("flags")
S_VENUES = SIG.offset("venues")
S_FEES = SIG.offset("fees_pips")
S_SPREAD = SIG.offset("spread_bps")
S_POOLS = SIG.offset("pools")
S_TOKENS = SIG.offset("tokens")
UNPRICED = L.SIGNAL_UNPRICED
INTRA_BLOCK = L.SIGNAL_INTRA_BLOCK
BLOCK_END_TYPE = L.BLOCK_END.type_id
BE_BLOCK = L.BLOCK_END.offset("block_number")
# the pool events whose block_number starts a new block (snapshots and gas prices do not)
EV_SWAP, EV_MINT, EV_BURN = L.POOL_SWAP.type_id, L.POOL_MINT.type_id, L.POOL_BURN.type_id
EV_SYNC, EV_FEE = L.POOL_SYNC.type_id, L.POOL_FEE.type_id
EV_SWAP_BLOCK = L.POOL_SWAP.offset("block_number")
EV_MINT_BLOCK = L.POOL_MINT.offset("block_number")
EV_BURN_BLOCK = L.POOL_BURN.offset("block_number")
EV_SYNC_BLOCK = L.POOL_SYNC.offset("block_number")
EV_FEE_BLOCK = L.POOL_FEE.offset("block_number")

Q96F = 79228162514264337593543950336.0
_E8 = (np.uint64(100_000_000), U0, U0, U0)
_Q96 = (U0, np.uint64(1 << 32), U0, U0)
I64_MAX = 9223372036854775807


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
def _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters):
    """(profit as float for the search, out u256, ok) at float input x."""
    counters[K_SIMULATIONS] += 1
    amt = u256_from_f64(x)
    if u256_is_zero(amt):
        return -1.0, amt, False
    out, ok = simulate_cycle(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, amt)
    if not ok:
        return -1e300, out, False
    return u256_to_f64(out) - u256_to_f64(amt), out, True


@njit(cache=True)
def mobius_optimum(pools, cyc_p, cyc_z, hops):
    """Closed-form optimal input of the cycle modelled as constant-product pools.

    Composes out(x) = a x / (b + c x) along the path; the profit a x/(b+cx) - x
    is maximal at x* = (sqrt(a b) - b) / c. Exact for V2 pools (up to float
    rounding), a starting point for V3 pools (virtual reserves at the current
    price). Returns (x*, a/b = marginal rate product, first-hop input reserve,
    curvature |profit''(x*)|, modelled profit at x* in start-token units).
    """
    a = 1.0
    b = 1.0
    c = 0.0
    r_first = 0.0
    for i in range(hops):
        p = cyc_p[i]
        r_in, r_out = virtual_reserves(pools, p, cyc_z[i])
        if i == 0:
            r_first = r_in
        g = (1_000_000 - np.int64(pools[p, C_FEE])) / 1_000_000.0
        # compose (a, b, c) with (g*r_out, r_in, g), normalised by the new b
        a2 = a * g * r_out
        b2 = b * r_in
        c2 = r_in * c + g * a
        if b2 <= 0.0 or not (a2 > 0.0):
            return 0.0, 0.0, r_first, 0.0, 0.0
        a = a2 / b2
        c = c2 / b2
        b = 1.0
    if a <= 1.0 or c <= 0.0:
        return 0.0, a, r_first, 0.0, 0.0
    x = (math.sqrt(a) - 1.0) / c
    return x, a, r_first, 2.0 * a * c / (1.0 + c * x) ** 3, a * x / (1.0 + c * x) - x


@njit(cache=True)
def _golden(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, lo, hi, iters, counters):
    """Golden-section search of the exact profit on [lo, hi] (floats, evaluated exactly).

    Returns (best_x u256, best_out u256, best profit float, found, at_edge) where at_edge
    says the search converged onto one end of the bracket.
    """
    z = (U0, U0, U0, U0)
    best_x = z
    best_out = z
    best_f = 0.0
    found = False
    invphi = 0.6180339887498949
    a = lo
    b = hi
    c = b - invphi * (b - a)
    d = a + invphi * (b - a)
    fc, oc, okc = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, c, counters)
    fd, od, okd = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, d, counters)
    moved_a = False
    moved_b = False
    for _ in range(iters):
        if okc and fc > best_f:
            best_f, best_x, best_out, found = fc, u256_from_f64(c), oc, True
        if okd and fd > best_f:
            best_f, best_x, best_out, found = fd, u256_from_f64(d), od, True
        if b - a < 1.0:
            break
        if fc >= fd:
            b = d
            moved_b = True
            d = c
            fd, od, okd = fc, oc, okc
            c = b - invphi * (b - a)
            fc, oc, okc = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, c, counters)
        else:
            a = c
            moved_a = True
            c = d
            fc, oc, okc = fd, od, okd
            d = a + invphi * (b - a)
            fd, od, okd = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, d, counters)
    if okc and fc > best_f:
        best_f, best_x, best_out, found = fc, u256_from_f64(c), oc, True
    if okd and fd > best_f:
        best_f, best_x, best_out, found = fd, u256_from_f64(d), od, True
    return best_x, best_out, best_f, found, (not moved_a) or (not moved_b)


@njit(cache=True)
def hop_model(pools, tticks, tnets, tn, p, zero_for_one, x):
    """Float model of :func:`hop_out` at input ``x``: (out, d out / d in, ok)."""
    fee = np.int64(pools[p, C_FEE])
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r_in, r_out = virtual_reserves(pools, p, zero_for_one)
        g = (1_000_000 - fee) / 1_000_000.0
        a = g * x
        den = r_in + a
        return a * r_out / den, g * r_out * r_in / (den * den), True
    row = np.int64(pools[p, C_V3ROW])
    return v3_exact_input_f64(x, zero_for_one, u256_to_f64(_sqrt(pools, p)) / Q96F, np.int64(pools[p, C_TICK]),
                              _u128(pools, p, C_LIQ), fee, tticks[row], tnets[row], tn[row],
                              np.int64(pools[p, C_COV_LO]), np.int64(pools[p, C_COV_HI]))


@njit(cache=True)
def cycle_model(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x):
    """(modelled output, d output / d input, ok) of the cycle at float input ``x``."""
    amt = x
    slope = 1.0
    for i in range(hops):
        amt, d, ok = hop_model(pools, tticks, tnets, tn, cyc_p[i], cyc_z[i], amt)
        if not ok:
            return amt, 0.0, False
        slope *= d
    return amt, slope, True


@njit(cache=True)
def hop_piece(pools, tticks, tnets, tn, p, zero_for_one, x):
    """The float model of the hop at input ``x`` (:func:`hop_model`) as a Moebius map
    (a y + b) / (c y + d), exact for the model on the range where ``x`` ends; (a, b, c, d, ok)."""
    fee = np.int64(pools[p, C_FEE])
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r_in, r_out = virtual_reserves(pools, p, zero_for_one)
        g = (1_000_000 - fee) / 1_000_000.0
        return g * r_out, 0.0, g, r_in, True
    row = np.int64(pools[p, C_V3ROW])
    return v3_piece_f64(x, zero_for_one, u256_to_f64(_sqrt(pools, p)) / Q96F, np.int64(pools[p, C_TICK]),
                        _u128(pools, p, C_LIQ), fee, tticks[row], tnets[row], tn[row],
                        np.int64(pools[p, C_COV_LO]), np.int64(pools[p, C_COV_HI]))


@njit(cache=True)
def cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x):
    """The cycle's float model around input ``x``: the composition of its hops' Moebius maps
    (:func:`hop_piece`, each on the range its input at ``x`` ends in), itself a Moebius map
    out(y) = (a y + b) / (c y + d), exact for the model while no hop changes range.
    Returns (a, b, c, d, ok), scaled so that max |a|, |c| is 1."""
    a, b, c, d = 1.0, 0.0, 0.0, 1.0
    y = x
    for i in range(hops):
        ha, hb, hc, hd, ok = hop_piece(pools, tticks, tnets, tn, cyc_p[i], cyc_z[i], y)
        if not ok:
            return a, b, c, d, False
        a, b, c, d = ha * a + hb * c, ha * b + hb * d, hc * a + hd * c, hc * b + hd * d
        m = abs(a) if abs(a) > abs(c) else abs(c)
        if not (m > 0.0) or m == math.inf:
            return a, b, c, d, False
        a, b, c, d = a / m, b / m, c / m, d / m
        if i + 1 < hops:
            y = (a * x + b) / (c * x + d)
    return a, b, c, d, True


MODEL_ITERS = 40
SLOPE_TOL = 1e-13      # |d profit / d input| below this is the optimum to float precision
# The model's optimum needs to be no closer than the exact search's band: at the default
# 1 ppb of the profit that band is ~3e-5 of the input (search_band), at the rounding band
# (tolerance 0) the exact ascent gallops the rest in O(log) simulations.
MODEL_REL_TOL = 1e-9


@njit(cache=True)
def model_optimum(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, cap):
    """Input that maximises the modelled profit of the cycle, at most ``cap``.

    All-V2 cycles: the closed form (:func:`mobius_optimum`), exact for the model. With V3
    pools on the path the model (V3 hops cross initialised ticks like the swap) is a chain
    of Moebius maps, one per combination of ranges the hops end in (:func:`cycle_piece`),
    and still concave in the input. From the closed form on the current ranges, each step
    takes the optimum of the piece at the current input, (sqrt(ad - bc) - d) / c, which is
    the model's optimum as soon as it lies in that same piece (then no step moves it): one
    step when no tick is crossed, a few more per range crossed. The steps stay inside a
    bracket of the optimum kept from the slope's sign (halving it when a step would leave
    it; an input where the exact swaps would fail, past the known ticks, counts as past
    the optimum), at most MODEL_ITERS of them, to MODEL_REL_TOL.
    Returns (x*, modelled profit at x*, |profit''| at x*, all_v2, converged); x* = 0 when
    nothing pays; converged: x* is the model's optimum on [0, cap] (its profit there the
    model's largest), not merely the last input known to be below it.
    """
    x0, _, _, curv, est = mobius_optimum(pools, cyc_p, cyc_z, hops)
    all_v2 = True
    for i in range(hops):
        if pools[cyc_p[i], C_KIND] != np.uint64(KIND_V2):
            all_v2 = False
    if not (x0 > 0.0) or not (cap > 0.0):
        return 0.0, 0.0, 0.0, all_v2, False
    if all_v2:
        if x0 > cap:
            x0 = cap
            out, _, _ = cycle_model(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x0)
            est = out - x0
        return x0, est, curv, True, True
    lo = 0.0                  # the slope is positive there (the rates' product beats 1) ...
    hi = math.inf             # ... and negative (or the swaps fail) there
    x = x0 if x0 < cap else cap
    good = False              # x holds a piece and its optimum
    a = b = c = d = 0.0
    for _ in range(MODEL_ITERS):
        a, b, c, d, ok = cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x)
        det = a * d - b * c
        q = c * x + d
        if not ok or not (det > 0.0) or not (q > 0.0):
            hi = x            # past the known ticks (or a degenerate piece): the optimum is below
            x = 0.5 * (lo + hi)
            continue
        slope = det / (q * q) - 1.0
        if slope > SLOPE_TOL:
            if x >= cap:
                good = True   # still rising at the cap
                break
            lo = x
        elif slope < -SLOPE_TOL:
            hi = x
        else:
            good = True       # flat to float precision: the optimum
            break
        xn = (math.sqrt(det) - d) / c if c > 0.0 else math.inf
        if xn > cap:
            xn = cap
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi) if hi < math.inf else 2.0 * lo
        if abs(xn - x) <= MODEL_REL_TOL * x + 0.5:
            good = True       # the piece's optimum is where we are
            break
        x = xn
    if not good:
        x = lo                # not converged: the last input known to be below the optimum
        if not (x > 0.0):
            x = 0.5 * hi
        if not (0.0 < x < math.inf):
            return 0.0, 0.0, 0.0, False, False
        a, b, c, d, ok = cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x)
        if not ok:
            return 0.0, 0.0, 0.0, False, False
    q = c * x + d
    det = a * d - b * c
    curv = 2.0 * c * det / (q * q * q)
    return x, (a * x + b) / q - x, curv if curv > 0.0 else 0.0, False, good


@njit(cache=True)
def _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters, ck, ver):
    """(profit u256, out u256, ok): ok False when the cycle reverts or does not pay at input x
    (simulated with the checkpoints ``ck``: :func:`simulate_cycle_ck`)."""
    counters[K_SIMULATIONS] += 1
    out, ok = simulate_cycle_ck(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, ck, ver)
    if not ok or u256_cmp(out, x) <= 0:
        return x, out, False
    pr, _ = u256_sub(out, x)
    return pr, out, True


GOLDEN_STEP = 0.3819660112501051    # 2 - golden ratio: where a bracket's next probe goes


@njit(cache=True)
def _exact_ascent(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, counters, ck, ver, x0, center, bp, out0, w, cap,
                  iters):
    """Maximise the exact profit from the model's optimum ``x0`` (exact input ``center``,
    profit ``bp`` > 0, output ``out0``), to within ``w``; returns (amount_in, amount_out).

    The exact profit is concave in the input (up to the rounding staircase, about ``hops``
    units wide, which ``w`` spans), so: probe x0 - w, then x0 + w; when neither pays more,
    x0 is the answer (3 simulations: the model was right). Otherwise gallop that way with
    doubling steps while the profit rises, which brackets the optimum after O(log(error / w))
    simulations, then narrow the bracket around the best point by golden sections until it
    is 2 w wide. At most ``iters`` simulations after the first three. Inputs are probed at
    floats (w >= 1e-14 x0: distinct doubles), each simulated exactly as an integer; the
    returned pair is one exact simulation. A probe that reverts counts as lower.
    """
    fb = bp
    ub = center
    ob = out0
    xb = x0
    d = 0.0
    for k in range(2):
        sgn = -1.0 if k == 0 else 1.0
        x = x0 + sgn * w
        if x < 1.0 or x > cap:
            continue
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        if ok and u256_cmp(pr, fb) > 0:
            fb, ub, ob, xb, d = pr, u, out, x, sgn
            break
    if d == 0.0:
        return ub, ob
    lo = x0                          # behind the best point
    hi = xb
    s = w
    n = 0
    while True:
        if n >= iters:
            return ub, ob
        s *= 2.0
        x = xb + d * s
        edge = False
        if x > cap:
            x = cap
            edge = True
        elif x < 1.0:
            x = 1.0
            edge = True
        if (x - xb) * d <= 0.0:      # no room left that way
            return ub, ob
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        n += 1
        if ok and u256_cmp(pr, fb) > 0:
            lo = xb
            fb, ub, ob, xb = pr, u, out, x
            if edge:
                return ub, ob        # still rising at the cap (or at 1)
            continue
        hi = x
        break
    a = lo if lo < hi else hi
    b = hi if lo < hi else lo
    while b - a > 2.0 * w and n < iters:
        if xb - a > b - xb:
            x = xb - GOLDEN_STEP * (xb - a)
        else:
            x = xb + GOLDEN_STEP * (b - xb)
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        n += 1
        if ok and u256_cmp(pr, fb) > 0:
            if x < xb:
                b = xb
            else:
                a = xb
            fb, ub, ob, xb = pr, u, out, x
        elif x < xb:
            a = x
        else:
            b = x
    return ub, ob


@njit(cache=True)
def search_band(hops, curv, est, tol_ppb):
    """Half-width of the inputs around the optimum whose exact profit is within the search's
    tolerance of the best: ``hops + 2`` units (the rounding staircase) or ``tol_ppb`` parts per
    billion of the modelled profit ``est``, whichever is larger; from profit(x*) - profit(x) =
    |profit''| (x - x*)^2 / 2."""
    tol = est * tol_ppb * 1e-9
    if tol < hops + 2.0:
        tol = hops + 2.0
    return math.sqrt(2.0 * tol / curv) + 2.0 if curv > 0.0 else 2.0


# A bound of the model's float rounding per hop, relative to the amounts it moves (input plus
# profit): a double's 1e-16 of the pool's (virtual) reserves, which the ranges a concentrated
# swap crosses bring in and which are some 100-1,000 times the input at an optimum. The
# default tolerance, 1 ppb of a profit of 0.5 % of the input, is 5e-12 of the input.
MODEL_FLOAT_REL = 1e-13


# The staircase counts towards the certificate up to this share of the modelled profit (1 ppm:
# a signal of 10 USD may leave up to 0.00001 USD on the table by not chasing the sawtooth).
STAIR_CAP_REL = 1e-6


@njit(cache=True)
def rounding_staircase(pools, cyc_p, cyc_z, hops):
    """How far below the real-valued swaps the exact cycle can land by rounding alone, in
    units of its start token: each hop rounds its output down (and a V3 step its price and
    input up: counted as a second unit) by less than 2 units of its output token, which the
    hops after it turn into at most their marginal rates at zero size (the rates only fall
    with size) units of the start token."""
    s = 0.0
    down = 1.0                      # start-token units one unit of this hop's output becomes
    for i in range(hops - 1, -1, -1):
        s += 2.0 * down
        down *= _marginal_rate(pools, cyc_p[i], cyc_z[i])
    return s


@njit(cache=True)
def certified(hops, x0, est, exact_profit, tol_ppb, stair):
    """Whether the exact profit ``exact_profit`` at the model's optimum ``x0`` is, without
    probing other inputs, as good as the search would make it: within its tolerance
    (:func:`search_band`'s: ``tol_ppb`` of the modelled profit ``est`` or hops + 2 units), or
    within the cycle's rounding staircase ``stair`` (:func:`rounding_staircase`) but at most
    STAIR_CAP_REL of ``est``, of the best exact profit, the model's own rounding
    (MODEL_FLOAT_REL) included. The argument: each pool rounds against the trader
    (UniswapV2Library floors the output; a V3 swap step rounds the price and the amount in
    up and the amount out down), so a cycle's exact output never exceeds the real-valued
    swaps the model computes; at most the model's maximum ``est``
    (plus its rounding) is to be had anywhere, and ``exact_profit`` is that close to it.
    Below the staircase the exact profit is a sawtooth of the intermediate tokens' units,
    which a search only samples (chasing it buys nothing but simulations). An exact profit
    above the model by more than the tolerance means the model is off here: not certified."""
    tol = est * tol_ppb * 1e-9
    if tol < hops + 2.0:
        tol = hops + 2.0
    slack = MODEL_FLOAT_REL * hops * (x0 + est)
    gap = est - exact_profit
    if gap < 0.0:
        return slack - gap <= tol
    lim = stair if stair < STAIR_CAP_REL * est else STAIR_CAP_REL * est
    return gap + slack <= (tol if tol > lim else lim)


@njit(cache=True)
def optimise_input(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, params, counters, x0, curv, all_v2, cap, est,
                   est_max, ck, ver):
    """Optimal input of the cycle on the exact simulation, from the model's optimum ``x0``.

    Every amount is an exact integer simulation; the model only says where to look. Around
    its optimum the exact profit floor(f(x)) - x is a staircase: every x whose smooth profit
    is within ~hops units of the maximum may hold the best integer, a band |x - x0| <= w,
    w = sqrt(2 (hops+2) / |profit''|). The staircase is coarser than that: each hop's output
    is floored in its own token, so one unit of an intermediate token (worth up to ~1e5
    units of an 18-decimal start token) is a sawtooth step of the profit; chasing the
    optimum below that scale buys nothing and costs simulations. So:
    * All-V2 cycles whose band w is at most PR_NEIGHBOR_SCAN each side: every integer of it
      is simulated (the result is the exact integer optimum).
    * Otherwise, when ``est_max`` (``est`` is the model's largest profit on [0, cap]) and
      the exact profit at x0 is within the search's tolerance or the rounding staircase of
      ``est``, x0 is the answer in one simulation (:func:`certified`: the model's maximum
      bounds the exact profit from above, so no other input can pay more than that above it).
    * Otherwise an exact ascent from x0 (:func:`_exact_ascent`: 3 simulations when the
      model is right, O(log) more when it is off), never above ``cap``, to within
      :func:`search_band`: PR_SEARCH_TOL_PPB of the modelled profit ``est``.
    * When the exact simulation reverts at x0 (the model ignores uint112 balances and
      rounding at the edge of the known ticks) a golden-section search of the exact
      profit below x0 (PR_ITERS_V2 steps) takes over.
    The exact simulations keep and resume swap checkpoints in ``ck``, the search's cache, at
    state version ``ver`` (:func:`simulate_cycle_ck`).
    Returns (amount_in u256, amount_out u256, found).
    """
    z = (U0, U0, U0, U0)
    if not (x0 >= 1.0):
        return z, z, False
    w = math.sqrt(2.0 * (hops + 2) / curv) + 2.0 if curv > 0.0 else 2.0
    center = u256_from_f64(x0)
    if all_v2 and w <= params[PR_NEIGHBOR_SCAN]:
        wi = np.int64(w)
        best_x = z
        best_out = z
        bp = z
        found = False
        for sgn in range(2):
            for j in range(sgn, wi + 1):
                if sgn == 0:
                    x, borrow = u256_sub(center, (np.uint64(j), U0, U0, U0))
                    if borrow or u256_is_zero(x):
                        break
                else:
                    x, _ = u256_add(center, (np.uint64(j), U0, U0, U0))
                pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters, ck, ver)
                if not ok:
                    continue
                if not found or u256_cmp(pr, bp) > 0 or (u256_cmp(pr, bp) == 0 and u256_cmp(x, best_x) < 0):
                    bp = pr
                    best_x = x
                    best_out = out
                    found = True
        return best_x, best_out, found
    bp, best_out, found = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, center, counters, ck, ver)
    if found:
        if est_max and certified(hops, x0, est, u256_to_f64(bp), params[PR_SEARCH_TOL_PPB],
                                 rounding_staircase(pools, cyc_p, cyc_z, hops)):
            return center, best_out, True
        wt = search_band(hops, curv, est, params[PR_SEARCH_TOL_PPB])
        best_x, best_out = _exact_ascent(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, counters, ck, ver, x0, center,
                                         bp, best_out, wt if wt > x0 * 1e-14 else x0 * 1e-14, cap,
                                         params[PR_ITERS_V3])
        return best_x, best_out, True
    # the exact swaps revert at the model's optimum: search the exact profit below it
    counters[K_SIMULATIONS] += 1
    _, ok0 = simulate_cycle(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, center)
    if ok0:
        return z, z, False               # it runs but does not pay: nothing to find
    lo = x0 * 0.05
    if lo < 1.0:
        lo = 1.0
    if x0 < lo:
        return z, z, False
    bx, bo, _, bfound, _ = _golden(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, lo, x0, params[PR_ITERS_V2],
                                   counters)
    if bfound and u256_cmp(bo, bx) > 0:
        return bx, bo, True
    return z, z, False


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


# ---------------------------------------------------------------- signal table (no flooding)
@njit(cache=True, inline="always")
def _sig_hash(sig_keys, k0, k1, k2):
    """The key's home slot in the signal table."""
    return np.int64((np.uint64(k0) * np.uint64(0x9E3779B97F4A7C15) ^ np.uint64(k1) * np.uint64(0xC2B2AE3D27D4EB4F)
                     ^ np.uint64(k2) * np.uint64(0x165667B19E3779F9)) >> np.uint64(17)) & (sig_keys.shape[0] - 1)


@njit(cache=True)
def _sig_slot(sig_keys, k0, k1, k2):
    """Slot of the key, or of the empty slot where it would go; -1 when the table is full."""
    mask = sig_keys.shape[0] - 1
    h = _sig_hash(sig_keys, k0, k1, k2)
    for _ in range(sig_keys.shape[0]):
        if sig_keys[h, 0] == 0:
            return h
        if sig_keys[h, 0] == k0 and sig_keys[h, 1] == k1 and sig_keys[h, 2] == k2:
            return h
        h = (h + 1) & mask
    return -1


@njit(cache=True)
def cycle_key(cyc_p, cyc_z, hops):
    """Canonical key of a directed cycle: rotation starting at its smallest pool row."""
    m = 0
    for i in range(1, hops):
        if cyc_p[i] < cyc_p[m]:
            m = i
    k0 = np.int64(cyc_p[m] + 1) | (np.int64(hops) << 40) | (np.int64(1 if cyc_z[m] else 0) << 48)
    k1 = np.int64(cyc_p[(m + 1) % hops])
    k2 = np.int64(cyc_p[(m + 2) % hops]) if hops == 3 else np.int64(-1)
    return k0, k1, k2


# ---------------------------------------------------------------- cycle evaluation
@njit(cache=True)
def _marginal_rate(pools, p, zero_for_one):
    g = (1_000_000 - np.int64(pools[p, C_FEE])) / 1_000_000.0
    r_in, r_out = virtual_reserves(pools, p, zero_for_one)
    if r_in <= 0.0:
        return 0.0
    return g * r_out / r_in


@njit(cache=True, inline="always")
def _cached_rate(pools, rate_cache, epoch, p, zero_for_one):
    """_marginal_rate, computed once per state of the pool (``process_batch`` invalidates the
    pool's entry whenever a TLV changes its state)."""
    if rate_cache[p, RC_VALID] == 0.0:
        rate_cache[p, RC_RATE0] = _marginal_rate(pools, p, True)
        rate_cache[p, RC_RATE1] = _marginal_rate(pools, p, False)
        rate_cache[p, RC_VALID] = 1.0
    return rate_cache[p, RC_RATE0] if zero_for_one else rate_cache[p, RC_RATE1]


@njit(cache=True, inline="always")
def _set_dead(sig_vals, rate_cache, slot, cp, hops):
    """Forget the live signal in ``slot`` (its return is published again): per-pool live counts follow."""
    if sig_vals[slot, SV_LIVE] != 0.0:
        sig_vals[slot, SV_LIVE] = 0.0
        for i in range(hops):
            rate_cache[cp[i], RC_LIVE] -= 1.0


@njit(cache=True, inline="always")
def _set_live(sig_vals, rate_cache, slot, cp, hops):
    if sig_vals[slot, SV_LIVE] == 0.0:
        sig_vals[slot, SV_LIVE] = 1.0
        for i in range(hops):
            rate_cache[cp[i], RC_LIVE] += 1.0


@njit(cache=True, inline="always")
def _may_be_live(rate_cache, cp, hops):
    """False when some pool of the cycle is on no live signal (then the cycle's is not live either)."""
    for i in range(hops):
        if rate_cache[cp[i], RC_LIVE] <= 0.0:
            return False
    return True


@njit(cache=True)
def _token_in(pools, p, zero_for_one):
    return np.int64(pools[p, C_TOKEN0]) if zero_for_one else np.int64(pools[p, C_TOKEN1])


@njit(cache=True)
def _choose_start(pools, tokens, pairs, pair_ht, tn, cyc_p, cyc_z, hops, stable, price_epoch, min_depth_usd):
    """Rotation that starts the cycle at the stable coin, else at a priced token, else at hop 0;
    (hop index, the start token's price pool: -1 when it is the stable coin or unpriced)."""
    for i in range(hops):
        if _token_in(pools, cyc_p[i], cyc_z[i]) == stable:
            return i, -1
    if stable >= 0:
        for i in range(hops):
            pp = cached_price_pool(pools, tokens, pairs, pair_ht, tn, _token_in(pools, cyc_p[i], cyc_z[i]),
                                   stable, price_epoch, min_depth_usd)
            if pp >= 0:
                return i, pp
    return 0, -1


@njit(cache=True)
def _st_addr(buf, pos, w0, w1, w2):
    st_u64(buf, pos, w0)
    st_u64(buf, pos + 8, w1)
    st_u32(buf, pos + 16, w2)


@njit(cache=True)
def _st_u128(buf, pos, x):
    st_u64(buf, pos, x[0])
    st_u64(buf, pos + 8, x[1])


@njit(cache=True, inline="always")
def _is_candidate(pools, sig_keys, sig_vals, counters, rate_cache, epoch, cp, cz, hops, params):
    """Cheap screen run for every enumerated cycle (few arguments: called in the inner loops).

    True when the product of the marginal rates beats 1 + PR_MIN_SPREAD_E9; otherwise the
    cycle's live signal, if any, is forgotten so that its return is published again (the
    signal table is only probed when every pool of the cycle is on some live signal).
    """
    counters[K_CYCLES] += 1
    rate = 1.0
    for i in range(hops):
        rate *= _cached_rate(pools, rate_cache, epoch, cp[i], cz[i])
    if rate > 1.0 + params[PR_MIN_SPREAD_E9] * 1e-9:
        return True
    if _may_be_live(rate_cache, cp, hops):
        k0, k1, k2 = cycle_key(cp, cz, hops)
        slot = _sig_slot(sig_keys, k0, k1, k2)
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
    return False


@njit(cache=True)
def evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                   sig_keys, sig_vals, counters, cp, cz, hops, stable, native, trigger_ts,
                   out, pos, seq, rate_cache, epoch):
    """Evaluate one directed cycle; write a signal frame at ``out[pos:]`` when it is due.

    Returns the new write position (``pos`` unchanged when nothing was written).
    Callers screen with :func:`_is_candidate` first (which counts the cycle): the product of
    its marginal rates beats 1.
    """
    k0, k1, k2 = cycle_key(cp, cz, hops)
    counters[K_CANDIDATES] += 1
    # what the end of the evaluation reads, fetched while the sizing runs: the signal table's
    # slot and the tokens' rows (their addresses go into the frame)
    h = _sig_hash(sig_keys, k0, k1, k2)
    prefetch(sig_keys, h * sig_keys.shape[1] * 8)
    prefetch(sig_vals, h * sig_vals.shape[1] * 8)
    if pos + SIG_FRAME <= out.shape[0]:
        _prefetch_span(out, pos, SIG_FRAME)     # where the frame goes
    for i in range(hops):
        prefetch(tokens, _token_in(pools, cp[i], cz[i]) * tokens.shape[1] * 8)
    # rotate so that the start token is the priced one
    # canonical rotation first (smallest pool row first), so that the same cycle found
    # from any of its pools gets the same start token and the same figures
    m = 0
    for i in range(1, hops):
        if cp[i] < cp[m]:
            m = i
    rp = np.empty(3, np.int64)
    rz = np.empty(3, np.bool_)
    for i in range(hops):
        rp[i] = cp[(i + m) % hops]
        rz[i] = cz[(i + m) % hops]
    price_epoch = meta[M_PRICE_EPOCH] + 1
    min_depth = params[PR_MIN_PRICE_DEPTH_USD]
    s, start_pp = _choose_start(pools, tokens, pairs, pair_ht, tn, rp, rz, hops, stable, price_epoch, min_depth)
    if s != 0:
        for i in range(hops):
            cp[i] = rp[(i + s) % hops]
            cz[i] = rz[(i + s) % hops]
        for i in range(hops):
            rp[i] = cp[i]
            rz[i] = cz[i]
    start_token = _token_in(pools, rp[0], rz[0])
    slot = _sig_slot(sig_keys, k0, k1, k2)
    # gas of the path
    n_v2 = 0
    for i in range(hops):
        if pools[rp[i], C_KIND] == np.uint64(KIND_V2):
            n_v2 += 1
    units = params[PR_GAS_BASE_UNITS] + n_v2 * params[PR_GAS_V2_UNITS] + (hops - n_v2) * params[PR_GAS_V3_UNITS]
    gas_price = meta[M_GAS_BASE] + meta[M_GAS_PRIO]
    gas_wei, _ = u256_mul((np.uint64(units), U0, U0, U0), (np.uint64(gas_price), U0, U0, U0))
    # its USD value, once per price epoch, gas price and path shape; the native token's price
    # pool once per price epoch
    gslot = M_GAS_USD + 3 * ((hops - 2) * 4 + n_v2)
    gp = meta[M_GAS_POOL]
    if (meta[M_GAS_POOL_EPOCH] != price_epoch or meta[M_GAS_TOKEN] != native
            or (gp >= 0 and not pool_tradable(pools, tn, gp))):
        # as cached_price_pool: look it up again, and every gas value made with it
        gp = -1
        if native >= 0 and stable >= 0 and native != stable:
            gp = price_pool(pools, tokens, pairs, pair_ht, tn, native, stable, min_depth)
        meta[M_GAS_POOL] = gp
        # no pool to the stable coin: through the deepest pool to a token that has one
        meta[M_GAS_VIA] = (gas_via_pool(pools, tokens, pairs, pair_ht, tn, native, stable, price_epoch, min_depth)
                           if gp < 0 and native >= 0 and stable >= 0 and native != stable else -1)
        meta[M_GAS_POOL_EPOCH] = price_epoch
        meta[M_GAS_TOKEN] = native
        for k in range(8):
            meta[M_GAS_USD + 3 * k] = 0
    if meta[gslot] != price_epoch or meta[gslot + 1] != gas_price:
        v, ok = gas_usd_e8(pools, tokens, meta, gas_wei, native, stable)
        meta[gslot + 2] = v if ok else -1
        meta[gslot + 1] = gas_price
        meta[gslot] = price_epoch
    gas_usd = meta[gslot + 2]
    gas_priced = gas_usd >= 0 or gas_price == 0    # no gas price yet: the gas costs nothing known
    if gas_usd < 0:
        gas_usd = 0
    min_profit = (U0, U0, U0, U0)
    for r in range(token_min.shape[0]):
        if (token_min[r, TM_ADDR] == tokens[start_token, T_ADDR]
                and token_min[r, TM_ADDR + 1] == tokens[start_token, T_ADDR + 1]
                and token_min[r, TM_ADDR + 2] == tokens[start_token, T_ADDR + 2]):
            min_profit = (token_min[r, TM_MIN], token_min[r, TM_MIN + 1], U0, U0)
    # Float screen before the exact search: the closed-form profit of the modelled cycle
    # against what the signal must clear (gas + minimum net in USD, or the per-token
    # minimum when unpriced), with a margin: PR_SCREEN_PCT % of the bar.
    # the model's optimum (floats: where to look; the exact search below makes the figures)
    r_first, _ = virtual_reserves(pools, rp[0], rz[0])
    cap = r_first * params[PR_MAX_INPUT_BPS] / 10_000.0
    x0, est, curv, all_v2, est_max = model_optimum(pools, tticks, tnets, tn, rp, rz, hops, cap)
    pct = params[PR_SCREEN_PCT]
    if pct > 0:
        est_usd, est_priced = usd_e8_f(pools, tokens, start_pp, est, start_token, stable)
        if est_priced and gas_priced:
            bar = gas_usd + params[PR_MIN_NET_USD_E8]
            skip = bar > 0 and est_usd * 100.0 < bar * float(pct)
        else:
            skip = est * 100.0 < u256_to_f64(min_profit) * float(pct)
        if skip:
            counters[K_SCREENED] += 1
            if slot >= 0:
                _set_dead(sig_vals, rate_cache, slot, cp, hops)
            return pos
    if params[PR_SIGNAL_CRC] != 0 and not CLMUL:
        # the checksum's tables (16 KiB, evicted by the market's state between signals) come in
        # while the exact sizing runs (folded by carry-less multiplication, it reads a few lines)
        _prefetch_span(crc_t, 0, crc_t.shape[0] * 4)
    amount_in, amount_out, found = optimise_input(pools, tticks, tnets, tn, rp, rz, hops, params, counters, x0,
                                                  curv, all_v2, cap, est, est_max, swap_ck, meta[M_STATE_VER])
    if not found:
        counters[K_SIM_FAILS] += 1
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
        return pos
    gross, _ = u256_sub(amount_out, amount_in)
    gross_usd, priced = usd_e8_at(pools, tokens, start_pp, gross, start_token, stable)
    flags = params[PR_SEARCH_FLAGS]
    if priced and gas_priced:
        net_usd = gross_usd - gas_usd
        due = net_usd >= params[PR_MIN_NET_USD_E8]
    else:
        gross_usd = 0
        gas_usd = 0
        net_usd = 0
        flags |= UNPRICED
        due = u256_cmp(gross, min_profit) > 0
    if not due:
        if slot >= 0:
            _set_dead(sig_vals, rate_cache, slot, cp, hops)
        return pos
    # material change? (the signal's block: the newest state of its pools)
    block = U0
    for i in range(hops):
        if pools[rp[i], C_STATE_BLOCK] > block:
            block = pools[rp[i], C_STATE_BLOCK]
    g_f = u256_to_f64(gross)
    x_f = u256_to_f64(amount_in)
    if slot < 0:
        counters[K_SIGNAL_TABLE_FULL] += 1
    elif sig_keys[slot, 0] != 0 and sig_vals[slot, SV_LIVE] != 0.0:
        # live already: re-publish only a material change, and not more often than the interval
        tol = params[PR_REPUBLISH_BPS] / 10_000.0
        lg = sig_vals[slot, SV_GROSS]
        lx = sig_vals[slot, SV_AMOUNT_IN]
        if abs(g_f - lg) <= tol * lg and abs(x_f - lx) <= tol * lx:
            counters[K_SIGNALS_SUPPRESSED] += 1
            return pos
        gap = params[PR_REPUBLISH_BLOCKS]
        if gap > 0 and float(block) < sig_vals[slot, SV_LAST_BLOCK] + float(gap):
            counters[K_SIGNALS_SUPPRESSED] += 1
            return pos
    if pos + SIG_FRAME > out.shape[0]:
        counters[K_OUT_FULL] += 1
        return pos
    if slot >= 0:
        sig_keys[slot, 0] = k0
        sig_keys[slot, 1] = k1
        sig_keys[slot, 2] = k2
        _set_live(sig_vals, rate_cache, slot, rp, hops)
        sig_vals[slot, SV_GROSS] = g_f
        sig_vals[slot, SV_AMOUNT_IN] = x_f
        sig_vals[slot, SV_LAST_BLOCK] = float(block)
    # write the frame
    rate_r = 1.0
    for i in range(hops):
        rate_r *= _cached_rate(pools, rate_cache, epoch, rp[i], rz[i])
    spread = (rate_r - 1.0) * 10_000.0
    spread_i = np.int64(spread) if abs(spread) < 2e9 else (np.int64(2147483647) if spread > 0 else np.int64(-2147483647))
    write_header(out, pos, SIGNAL_DOMAIN, params[PR_SOURCE], 0, seq, wall_ns(), L.TLV_STD_HEADER + SIG_SIZE)
    v = write_tlv_header(out, pos + HEADER_SIZE, SIG_TYPE, SIG_SIZE)
    for k in range(SIG_SIZE):
        out[v + k] = 0
    _st_u128(out, v + S_AMOUNT_IN, amount_in)
    _st_u128(out, v + S_AMOUNT_OUT, amount_out)
    _st_u128(out, v + S_GAS_WEI, gas_wei)
    st_u64(out, v + S_NET, net_usd)
    st_u64(out, v + S_GROSS, gross_usd)
    st_u64(out, v + S_GAS_USD, gas_usd)
    st_u64(out, v + S_BLOCK, block)
    st_u64(out, v + S_TRIGGER, trigger_ts)
    meta[M_SIGNAL_ID] += 1
    st_u64(out, v + S_ID, meta[M_SIGNAL_ID])
    chain = meta[M_CHAIN_ID] if meta[M_CHAIN_ID] != 0 else params[PR_CHAIN_ID]
    st_u32(out, v + S_CHAIN, chain)
    st_u16(out, v + S_STRATEGY, params[PR_STRATEGY_ID])
    out[v + S_HOPS] = np.uint8(hops)
    out[v + S_FLAGS] = np.uint8(flags)
    for i in range(hops):
        p = rp[i]
        st_u16(out, v + S_VENUES + 2 * i, pools[p, C_VENUE])
        st_u32(out, v + S_FEES + 4 * i, pools[p, C_FEE])
        _st_addr(out, v + S_POOLS + 20 * i, pools[p, C_ADDR], pools[p, C_ADDR + 1], pools[p, C_ADDR + 2])
        t = _token_in(pools, p, rz[i])
        _st_addr(out, v + S_TOKENS + 20 * i, tokens[t, T_ADDR], tokens[t, T_ADDR + 1], tokens[t, T_ADDR + 2])
    st_u32(out, v + S_SPREAD, np.uint64(np.int64(spread_i) & np.int64(0xFFFFFFFF)))
    seal_frame_with(out, pos, params[PR_SIGNAL_CRC] != 0, crc_t)
    counters[K_SIGNALS] += 1
    return pos + SIG_FRAME


@njit(cache=True)
def search_pool(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                sig_keys, sig_vals, counters, p, stable, native, trigger_ts, out, pos, out_offsets,
                n_sig, seq0, rate_cache, epoch, phase, q0, d0, stop_each):
    """The 2-pool (phase & PHASE_PAIRS) and bounded 3-pool (phase & PHASE_TRIANGLES) cycles
    through pool p; returns (pos, n_sig, stopped, q, d).

    The 2-pool scan starts at pool ``q0`` of p's pair list, direction ``d0`` (``q0 < 0``: the
    head). With ``stop_each`` it stops after each signal it writes (stopped True) and returns
    where to go on: (q, d), q = -1 when p's pair list is done."""
    cp = np.empty(3, np.int64)
    cz = np.empty(3, np.bool_)
    a = np.int64(pools[p, C_TOKEN0])
    b = np.int64(pools[p, C_TOKEN1])
    cap = out_offsets.shape[0]
    # same pair, other venues
    q = -1
    if phase & PHASE_PAIRS:
        if q0 < 0:
            prefetch_pair_pools(pools, tokens, pairs, tticks, tnets, tn, rate_cache, p)
        q = q0 if q0 >= 0 else pairs[np.int64(pools[p, C_PAIR]), P_HEAD]
    d_first = d0
    while q >= 0:
        if q != p and pool_tradable(pools, tn, q):
            for d in range(d_first, 2):
                if n_sig >= cap:
                    return pos, n_sig, False, -1, 0
                cp[0] = p
                cz[0] = d == 0            # p: a -> b when zero_for_one
                cp[1] = q
                # q takes what p gives: token b (=p.token1) when p is zero_for_one
                q_in = b if d == 0 else a
                cz[1] = np.int64(pools[q, C_TOKEN0]) == q_in
                if not _is_candidate(pools, sig_keys, sig_vals, counters, rate_cache, epoch, cp, cz, 2, params):
                    continue
                np_ = evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta, params,
                                     token_min, crc_t, swap_ck, sig_keys, sig_vals, counters, cp, cz, 2, stable, native,
                                     trigger_ts, out, pos, seq0 + n_sig, rate_cache, epoch)
                if np_ != pos:
                    out_offsets[n_sig] = pos
                    n_sig += 1
                    pos = np_
                    if stop_each:
                        if d == 0:
                            return pos, n_sig, True, q, 1
                        return pos, n_sig, True, np.int64(pools[q, C_NEXT_PAIR]), 0
        d_first = 0
        q = np.int64(pools[q, C_NEXT_PAIR])
    if params[PR_MAX_HOPS] < 3 or not phase & PHASE_TRIANGLES:
        return pos, n_sig, False, -1, 0
    # Triangles through p: its tokens' common neighbours z. Walk the pool list of whichever of
    # p's tokens has fewer pools (s; the other is o): every pool q of (s, z) with the pools r
    # of (z, o) closes a triangle, run both ways round (o->s->z->o and s->o->z->s).
    budget = params[PR_MAX_TRIANGLES]
    if tokens[a, T_NPOOLS] <= tokens[b, T_NPOOLS]:
        s_tok = a
        o_tok = b
    else:
        s_tok = b
        o_tok = a
    p_s0 = np.int64(pools[p, C_TOKEN0]) == s_tok     # p is zero_for_one when it takes s
    # the screen of _is_candidate written out: each pool's rates are read once, and the signal
    # table is probed only when every pool of the cycle is on some live signal
    bar = 1.0 + params[PR_MIN_SPREAD_E9] * 1e-9
    rate_p_os = _cached_rate(pools, rate_cache, epoch, p, not p_s0)
    rate_p_so = _cached_rate(pools, rate_cache, epoch, p, p_s0)
    live_p = rate_cache[p, RC_LIVE] > 0.0
    q = np.int64(tokens[s_tok, T_HEAD])
    while q >= 0 and budget > 0:
        if q != p and pool_tradable(pools, tn, q):
            q_s0 = np.int64(pools[q, C_TOKEN0]) == s_tok
            zt = np.int64(pools[q, C_TOKEN1]) if q_s0 else np.int64(pools[q, C_TOKEN0])
            if zt != o_tok:
                pr = find_pair(pair_ht, zt, o_tok)
                if pr >= 0:
                    rate_q_sz = _cached_rate(pools, rate_cache, epoch, q, q_s0)
                    rate_q_zs = _cached_rate(pools, rate_cache, epoch, q, not q_s0)
                    live_pq = live_p and rate_cache[q, RC_LIVE] > 0.0
                    r = pairs[pr, P_HEAD]
                    while r >= 0 and budget > 0:
                        if pool_tradable(pools, tn, r):
                            r_z0 = np.int64(pools[r, C_TOKEN0]) == zt
                            rate_r_zo = _cached_rate(pools, rate_cache, epoch, r, r_z0)
                            rate_r_oz = _cached_rate(pools, rate_cache, epoch, r, not r_z0)
                            for d in range(2):
                                if budget <= 0:
                                    break
                                budget -= 1
                                if n_sig >= cap:
                                    return pos, n_sig, False, -1, 0
                                counters[K_CYCLES] += 1
                                if d == 0:      # p: o -> s, q: s -> z, r: z -> o
                                    rate = rate_p_os * rate_q_sz * rate_r_zo
                                else:           # p: s -> o, r: o -> z, q: z -> s
                                    rate = rate_p_so * rate_r_oz * rate_q_zs
                                live = live_pq and rate_cache[r, RC_LIVE] > 0.0
                                if rate <= bar and not live:
                                    continue
                                cp[0] = p
                                if d == 0:
                                    cz[0] = not p_s0
                                    cp[1] = q
                                    cz[1] = q_s0
                                    cp[2] = r
                                    cz[2] = r_z0
                                else:
                                    cz[0] = p_s0
                                    cp[1] = r
                                    cz[1] = not r_z0
                                    cp[2] = q
                                    cz[2] = not q_s0
                                if rate <= bar:         # forget its live signal: its return is published
                                    k0, k1, k2 = cycle_key(cp, cz, 3)
                                    slot = _sig_slot(sig_keys, k0, k1, k2)
                                    if slot >= 0:
                                        _set_dead(sig_vals, rate_cache, slot, cp, 3)
                                    continue
                                np_ = evaluate_cycle(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta,
                                                     params, token_min, crc_t, swap_ck, sig_keys, sig_vals,
                                                     counters, cp, cz, 3, stable, native, trigger_ts, out, pos,
                                                     seq0 + n_sig, rate_cache, epoch)
                                if np_ != pos:
                                    out_offsets[n_sig] = pos
                                    n_sig += 1
                                    pos = np_
                        r = np.int64(pools[r, C_NEXT_PAIR])
        q = next_pool_of_token(pools, q, s_tok)
    return pos, n_sig, False, -1, 0


# ---------------------------------------------------------------- prefetching
# The pools a frame's search reads are far apart in memory and rarely in cache (a market of
# thousands of pools, one update touching a few): each row, rate-cache entry and tick row is
# a cache miss (~100-150 ns on the hosts measured), and touched one after the other they
# stall one after the other. Prefetching them all up front lets the misses overlap.
@njit(cache=True, inline="always")
def _prefetch_span(a, start, nbytes):
    for k in range(0, nbytes, 64):
        prefetch(a, start + k)
    if nbytes > 0:
        prefetch(a, start + nbytes - 1)


@njit(cache=True)
def prefetch_pair_pools(pools, tokens, pairs, tticks, tnets, tn, rate_cache, p):
    """Prefetch what the 2-pool cycles through pool ``p`` read: the rows and rate-cache entries
    of the pools of its pair, then the tick rows of its concentrated-liquidity pools; the rows
    of its two tokens, then (by the time the pair's list has been walked) those of their
    cached price pools."""
    row_b = pools.shape[1] * 8
    t_row = tokens.shape[1] * 8
    t0 = np.int64(pools[p, C_TOKEN0])
    t1 = np.int64(pools[p, C_TOKEN1])
    prefetch(tokens, t0 * t_row)
    prefetch(tokens, t1 * t_row)
    pr = np.int64(pools[p, C_PAIR])
    # the first pools of the pair all at once (the list below then walks rows in cache)
    for k in range(min(pairs[pr, P_COUNT], P_NMEMBERS)):
        q = pairs[pr, P_MEMBERS + k]
        _prefetch_span(pools, q * row_b, row_b)
        prefetch(rate_cache, q * rate_cache.shape[1] * 8)
    head = pairs[pr, P_HEAD]
    q = head
    while q >= 0:
        _prefetch_span(pools, q * row_b, row_b)
        prefetch(rate_cache, q * rate_cache.shape[1] * 8)
        q = np.int64(pools[q, C_NEXT_PAIR])
    q = head
    while q >= 0:
        if pools[q, C_KIND] != np.uint64(KIND_V2):
            r = np.int64(pools[q, C_V3ROW])
            if 0 <= r < tn.shape[0]:
                n = tn[r]
                _prefetch_span(tticks, r * tticks.shape[1] * 4, n * 4)
                _prefetch_span(tnets, r * tnets.shape[1] * 16, n * 16)
        q = np.int64(pools[q, C_NEXT_PAIR])
    for t in (t0, t1):
        pp = np.int64(tokens[t, T_PRICE_POOL])
        if 0 <= pp < pools.shape[0]:
            _prefetch_span(pools, pp * row_b, row_b)


# ---------------------------------------------------------------- batch entry point
@njit(cache=True)
def _search_touched(pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                    sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos,
                    out_offsets, n_sig, seq0, rate_cache, phase, i0, q0, d0, stop_each):
    """Search the cycles through every pool changed in ``epoch``, from cursor (i0, q0, d0)
    (see search_pool; (0, -1, 0) from the start); returns (bytes written, signals, stopped,
    cursor i, q, d): with ``stop_each`` it stops after each 2-pool signal, the cursor says
    where to go on."""
    # search
    stable = -1
    if params[PR_HAS_STABLE] != 0:
        stable = find_token(tokens, token_ht, np.uint64(params[PR_STABLE]), np.uint64(params[PR_STABLE + 1]),
                            np.uint64(params[PR_STABLE + 2]))
    native = -1
    if params[PR_HAS_NATIVE] != 0:
        native = find_token(tokens, token_ht, np.uint64(params[PR_NATIVE]), np.uint64(params[PR_NATIVE + 1]),
                            np.uint64(params[PR_NATIVE + 2]))
    # overflow: more pools changed than the list holds: walk every pool marked in this epoch
    n = meta[M_NPOOLS] if overflow else n_touched
    q_start = q0
    d_start = d0
    for i in range(i0, n):
        p = i if overflow else tl[i]
        if overflow and touched[p, 0] != epoch:
            continue
        if pool_tradable(pools, tn, p):
            wpos, n_sig, stopped, rq, rd = search_pool(pools, tokens, pairs, pair_ht, tticks, tnets, tn, meta,
                                                       params, token_min, crc_t, swap_ck, sig_keys, sig_vals,
                                                       counters, p, stable, native, np.uint64(touched[p, 1]), out,
                                                       wpos, out_offsets, n_sig, seq0, rate_cache,
                                                       float(epoch), phase, q_start, d_start, stop_each)
            if stopped:
                if rq < 0:
                    return wpos, n_sig, True, i + 1, -1, 0
                return wpos, n_sig, True, i, rq, rd
        elif phase & PHASE_PAIRS:
            counters[K_STALE_SKIPS] += 1
        q_start = -1
        d_start = 0
    return wpos, n_sig, False, n, -1, 0


@njit(cache=True)
def _sink_publish(out, wpos, resume, sink_h, sink_ps, sink_sizes, sink_data):
    """Publish ``out[resume[RS_PUB]:wpos]`` on the sink ring (the caller's ring producer state).

    True when all of it is on the ring and no consumer needs waking; otherwise the
    publication the kernel cannot finish (a futex wake, a full lossless ring, an error)
    is left in resume[RS_SINK] for the caller, and what did go out in resume[RS_PUB].
    """
    pub = resume[RS_PUB]
    if sink_ps.shape[0] == 0 or wpos <= pub:
        return True
    r = publish_span(sink_h, sink_ps, sink_sizes, sink_data, out, pub, wpos - pub, mono_ns())
    if r < 0:
        resume[RS_SINK] = r
        return False
    done = r - WAKE if r >= WAKE else r
    resume[RS_PUB] = pub + done
    if r >= WAKE or pub + done < wpos:
        resume[RS_SINK] = r if r > 0 else WAKE - 1    # WAKE - 1: nothing went out (ring full)
        return False
    return True


@njit(cache=True)
def _search_epoch(pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                  sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos,
                  out_offsets, n_sig, seq0, rate_cache, i0, q0, d0, flush_pairs, split,
                  resume, sink_h, sink_ps, sink_sizes, sink_data):
    """One search: the 2-pool cycles from cursor (i0, q0, d0), then, unless that stopped on a
    flush, the triangles (when ``split``). Returns what _search_touched returns for the pairs.

    With a sink ring (``sink_ps`` not empty) a flush publishes the new signal on it right here
    and the search goes on; it stops (for the caller to finish the publication) only when
    the ring needs a futex wake, is full, or refuses. The triangle signals go out after
    their search.
    """
    if sink_ps.shape[0] != 0:
        # where the sink ring's next frames go (their lines last written a lap ago: cold); the
        # position moves only with a publication, so a frame without signals finds them cached
        off = sink_ps[PS_POS] % sink_ps[PS_CAP]
        if off + 2 * SIG_FRAME <= sink_data.shape[0]:
            _prefetch_span(sink_data, off, 2 * SIG_FRAME)
    while True:
        wpos, n_sig, stopped, ci, cq, cd = _search_touched(
            pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
            sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig,
            seq0, rate_cache, PHASE_PAIRS, i0, q0, d0, flush_pairs)
        if not stopped or sink_ps.shape[0] == 0:
            break
        if not _sink_publish(out, wpos, resume, sink_h, sink_ps, sink_sizes, sink_data):
            return wpos, n_sig, True, ci, cq, cd
        i0 = ci
        q0 = cq
        d0 = cd
    if split and not stopped:
        wpos, n_sig, _, _, _, _ = _search_touched(
            pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
            sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig,
            seq0, rate_cache, PHASE_TRIANGLES, 0, -1, 0, False)
    if not stopped and sink_ps.shape[0] != 0 and resume[RS_SINK] == 0:
        _sink_publish(out, wpos, resume, sink_h, sink_ps, sink_sizes, sink_data)
    return wpos, n_sig, stopped, ci, cq, cd


@njit(cache=True)
def process_batch(buf, n_bytes, pools, tokens, pairs, pool_ht, token_ht, pair_ht, tticks, tnets, tgross,
                  tn, journal, meta, counters, venue_fee, params, token_min, sig_keys, sig_vals,
                  touched, crc_state, out, out_offsets, seq0, rate_cache, tl, resume, crc_t, swap_ck,
                  sink_h, sink_ps, sink_sizes, sink_data, flush_pairs):
    """Apply the market-data frames in ``buf[:n_bytes]``, then search cycles through changed pools.

    ``touched`` int64[P, 2] scratch (epoch mark, trigger timestamp); ``tl`` int64[T] scratch
    (the changed pools of the search in progress);
    ``rate_cache`` float64[P, RCCOL] per-pool scratch, zeroed once by the owner and kept
    across batches (marginal rates of the pool's current state, live signal count);
    ``crc_state`` int64[>= 3]: [sampling phase, verified count, batch epoch];
    ``crc_t`` the checksum's tables (``alphapulse.jit.crc.TABLE``) that signal frames are sealed
    and sampled market frames checked with, an array of the caller's so that the kernel can prefetch them.
    ``swap_ck`` uint64[SWC_N, SWCOL] the search's cache of V3 swap checkpoints (zeroed by the owner).
    Each search runs the 2-pool cycles of every changed pool first, then the triangles.
    With ``flush_pairs`` true the call returns after each 2-pool signal it writes (stop
    reason STOP_FLUSH), so that the caller publishes every one as soon as it is sized, before
    the other cycles of the search and its triangles; calling again with the same ``buf`` and
    ``resume`` (int64[RSCOL], zeroed by the owner) carries on where it stopped.
    ``sink_h, sink_ps, sink_sizes, sink_data``: a ring producer's header, private state,
    size index and data area (:meth:`alphapulse.ring.Producer.kernel_state`; empty arrays:
    none). With a sink the kernel publishes the signals on that ring itself, each 2-pool
    signal as soon as it is sized, and returns early only for what it cannot finish there
    (resume[RS_SINK]: a futex wake, a full lossless ring); ``out[:resume[RS_PUB]]`` is then
    on the ring and the caller publishes the rest (both words are zeroed on entry).
    Signal frames are written back to back into ``out``; ``out_offsets``
    receives each frame's offset. ``seq0`` is the sequence of the first
    signal frame. Returns (n_signals, bytes written, frames consumed, stop
    reason: 0 all consumed, STOP_FLUSH, else the Reject code of a corrupt header).
    """
    resume[RS_PUB] = 0
    resume[RS_SINK] = 0
    each_frame = params[PR_EVALUATE] == EVAL_FRAME
    split = params[PR_MAX_HOPS] >= 3
    wpos = 0
    n_sig = 0
    n_frames = 0
    stop = 0
    end = min(n_bytes, buf.shape[0])
    if resume[RS_PENDING] != 0:
        # the rest of the search a flush interrupted: its 2-pool cycles from the cursor, its triangles
        resume[RS_PENDING] = 0
        epoch = resume[RS_EPOCH]
        n_touched = resume[RS_NTOUCHED]
        overflow = resume[RS_OVERFLOW] != 0
        pos = resume[RS_POS]
        final = resume[RS_FINAL] != 0
        wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
            pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
            sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig,
            seq0, rate_cache, resume[RS_I], resume[RS_Q], resume[RS_D], flush_pairs, split,
            resume, sink_h, sink_ps, sink_sizes, sink_data)
        if stopped:
            _save_resume(resume, pos, epoch, n_touched, overflow, final, resume[RS_STOP], ci, cq, cd)
            return n_sig, wpos, 0, STOP_FLUSH
        if final:
            return n_sig, wpos, 0, resume[RS_STOP]
    else:
        pos = 0
    if resume[RS_BLK_N] > 0 or resume[RS_BLK_OVERFLOW] != 0:
        # the block in progress goes on: its changed pools are those of its epoch
        epoch = crc_state[2]
        n_touched = resume[RS_BLK_N]
        overflow = resume[RS_BLK_OVERFLOW] != 0
    else:
        crc_state[2] += 1
        epoch = crc_state[2]
        n_touched = 0
        overflow = False
    crc_every = params[PR_CRC_EVERY]
    stable = -1                     # the stable coin's token row, looked up when a pool changes
    jrow_b = journal.shape[1] * 8
    while pos < end:
        if not each_frame and (n_touched > 0 or overflow):
            # a pool event of another block ends the block in progress (input without BlockEnd):
            # search it before this frame changes anything
            bn = _frame_block(buf, pos, end)
            if bn != 0 and bn != resume[RS_BLK_NUMBER]:
                resume[RS_BLK_N] = 0
                resume[RS_BLK_OVERFLOW] = 0
                resume[RS_LAST_BLOCK] = resume[RS_BLK_NUMBER]
                params[PR_SEARCH_FLAGS] = 0
                wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
                    pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t,
                    swap_ck, sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos,
                    out_offsets, n_sig, seq0, rate_cache, 0, -1, 0, flush_pairs, split,
                    resume, sink_h, sink_ps, sink_sizes, sink_data)
                crc_state[2] += 1
                if stopped:
                    # the frame at ``pos`` is not applied yet: the call that finishes the search
                    # goes on with it
                    _save_resume(resume, pos, epoch, n_touched, overflow, False, 0, ci, cq, cd)
                    return n_sig, wpos, n_frames, STOP_FLUSH
                epoch = crc_state[2]
                n_touched = 0
                overflow = False
        # the journal entry the next event fills (a ring far larger than the caches: always cold)
        _prefetch_span(journal, (meta[M_JSEQ] % journal.shape[0]) * jrow_b, jrow_b)
        reason, psize = check_header(buf, pos, end - pos)
        if reason != 0:
            counters[K_FRAMES_REJECTED] += 1
            stop = reason
            break
        pend = pos + HEADER_SIZE + psize
        fpos = pos
        pos = pend
        n_frames += 1
        counters[K_FRAMES] += 1
        if check_tlvs(buf, fpos + HEADER_SIZE, pend) != 0:
            counters[K_FRAMES_REJECTED] += 1
            continue
        ck = ld_u32(buf, fpos + 28)
        verified = False
        if crc_every > 0 and ck != np.uint64(0):
            if crc_state[0] % crc_every == 0:
                crc_state[1] += 1
                if frame_crc_with(buf, fpos, psize, crc_t) != ck:
                    crc_state[0] += 1
                    counters[K_FRAMES_REJECTED] += 1
                    continue
                verified = True
            crc_state[0] += 1
        if buf[fpos + OFF_DOMAIN] != MARKET:
            continue
        src = np.int64(buf[fpos + OFF_SOURCE])
        seq = np.int64(ld_u64(buf, fpos + OFF_SEQUENCE))
        last = meta[M_LAST_SEQ + src]
        if last != 0 and seq != last + 1:
            # a gap or duplicate is decided on a frame whose checksum holds: a flipped bit in the
            # sequence of a frame outside the sample must not drop the stream behind it
            if not verified and ck != np.uint64(0) and frame_crc_with(buf, fpos, psize, crc_t) != ck:
                counters[K_FRAMES_REJECTED] += 1
                continue
            if seq <= last:
                if seq == 1:
                    # the producer restarted: whatever it sent before may be incomplete
                    mark_all_stale(pools, meta)
                    counters[K_SEQ_GAPS] += 1
                else:
                    counters[K_FRAMES_DUPLICATE] += 1
                    continue
            else:
                mark_all_stale(pools, meta)
                counters[K_SEQ_GAPS] += 1
        meta[M_LAST_SEQ + src] = seq
        ts = ld_u64(buf, fpos + OFF_TIMESTAMP)
        block_end = False
        p = fpos + HEADER_SIZE
        while p < pend:
            t, length, v, _ = tlv_header(buf, p, pend)    # the structure was checked above
            p = v + length
            counters[K_TLVS] += 1
            if t == BLOCK_END_TYPE:
                # every event of this block has been sent: its end state is the one to search
                block_end = True
                resume[RS_LAST_BLOCK] = np.int64(ld_u64(buf, v + BE_BLOCK))
                continue
            if t == T_GAS and params[PR_CHAIN_ID] != 0 and np.int64(ld_u32(buf, v + GP_CHAIN)) != params[PR_CHAIN_ID]:
                counters[K_CHAIN_MISMATCH] += 1     # the signals carry the frames' chain id
            bn = _event_block(buf, t, v)
            if bn != 0:
                resume[RS_BLK_NUMBER] = bn
            meta[M_STATE_VER] += 1      # whatever it changes, caches of the old state are void
            if FIXED_SIZE[t] != 0:
                changed = apply_tlv(buf, t, v, pools, tokens, pairs, pool_ht, token_ht, pair_ht, tticks,
                                    tnets, tgross, tn, journal, meta, counters, venue_fee)
                if changed >= 0:
                    rate_cache[changed, RC_VALID] = 0.0     # its marginal rates are recomputed on use
                    if stable < 0 and params[PR_HAS_STABLE] != 0:
                        stable = find_token(tokens, token_ht, np.uint64(params[PR_STABLE]),
                                            np.uint64(params[PR_STABLE + 1]), np.uint64(params[PR_STABLE + 2]))
                    if stable >= 0:
                        _price_moved(pools, tokens, meta, changed, stable)
                    if touched[changed, 0] != epoch:
                        touched[changed, 0] = epoch
                        if n_touched < tl.shape[0]:
                            tl[n_touched] = changed
                            n_touched += 1
                        else:
                            overflow = True
                    touched[changed, 1] = np.int64(ts)
        if (each_frame or block_end) and (n_touched > 0 or overflow):
            # frame mode prices every state; one that a later event of its block may still
            # change (no BlockEnd yet) is flagged intra-block
            params[PR_SEARCH_FLAGS] = 0 if block_end else INTRA_BLOCK
            resume[RS_BLK_N] = 0
            resume[RS_BLK_OVERFLOW] = 0
            wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
                pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
                sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig,
                seq0, rate_cache, 0, -1, 0, flush_pairs, split,
                resume, sink_h, sink_ps, sink_sizes, sink_data)
            crc_state[2] += 1           # a new epoch: the next frame's changes start a fresh list
            if stopped:
                _save_resume(resume, pos, epoch, n_touched, overflow, False, 0, ci, cq, cd)
                return n_sig, wpos, n_frames, STOP_FLUSH
            epoch = crc_state[2]
            n_touched = 0
            overflow = False
    if (n_touched > 0 or overflow) and resume[RS_CLOSE] != 0:
        # the end of the input ends its last block
        resume[RS_CLOSE] = 0
        resume[RS_BLK_N] = 0
        resume[RS_BLK_OVERFLOW] = 0
        resume[RS_LAST_BLOCK] = resume[RS_BLK_NUMBER]
        params[PR_SEARCH_FLAGS] = 0
        wpos, n_sig, stopped, ci, cq, cd = _search_epoch(
            pools, tokens, pairs, pair_ht, token_ht, tticks, tnets, tn, meta, params, token_min, crc_t, swap_ck,
            sig_keys, sig_vals, counters, touched, tl, n_touched, overflow, epoch, out, wpos, out_offsets, n_sig,
            seq0, rate_cache, 0, -1, 0, flush_pairs, split, resume, sink_h, sink_ps, sink_sizes, sink_data)
        crc_state[2] += 1
        if stopped:
            _save_resume(resume, pos, epoch, n_touched, overflow, True, stop, ci, cq, cd)
            return n_sig, wpos, n_frames, STOP_FLUSH
        return n_sig, wpos, n_frames, stop
    resume[RS_CLOSE] = 0
    # the block goes on in the next call
    resume[RS_BLK_N] = n_touched
    resume[RS_BLK_OVERFLOW] = 1 if overflow else 0
    return n_sig, wpos, n_frames, stop


@njit(cache=True, inline="always")
def _event_block(buf, t, v):
    """block_number of a pool event TLV (type ``t``, value at ``buf[v]``); 0 for other types."""
    if t == EV_SWAP:
        return np.int64(ld_u64(buf, v + EV_SWAP_BLOCK))
    if t == EV_SYNC:
        return np.int64(ld_u64(buf, v + EV_SYNC_BLOCK))
    if t == EV_MINT:
        return np.int64(ld_u64(buf, v + EV_MINT_BLOCK))
    if t == EV_BURN:
        return np.int64(ld_u64(buf, v + EV_BURN_BLOCK))
    if t == EV_FEE:
        return np.int64(ld_u64(buf, v + EV_FEE_BLOCK))
    return np.int64(0)


@njit(cache=True)
def _frame_block(buf, pos, end):
    """block_number of the first pool event in the market-data frame at ``buf[pos]``; 0 when it
    has none or is not a well-formed market-data frame (the caller rejects that one itself)."""
    reason, psize = check_header(buf, pos, end - pos)
    if reason != 0 or buf[pos + OFF_DOMAIN] != MARKET:
        return np.int64(0)
    pend = pos + HEADER_SIZE + psize
    if check_tlvs(buf, pos + HEADER_SIZE, pend) != 0:
        return np.int64(0)
    p = pos + HEADER_SIZE
    while p < pend:
        t, length, v, _ = tlv_header(buf, p, pend)
        p = v + length
        bn = _event_block(buf, t, v)
        if bn != 0:
            return bn
    return np.int64(0)


# process_batch's arrays after (buf, n_bytes), in its order: (name, dtype, ndim). The engine
# packs them into one arena (alphapulse.jit.arena) in this order; process_packed unpacks them.
BATCH_ARRAYS = (
    ("pools", np.uint64, 2), ("tokens", np.uint64, 2), ("pairs", np.int64, 2), ("pool_ht", np.int64, 1),
    ("token_ht", np.int64, 1), ("pair_ht", np.int64, 2), ("tticks", np.int32, 2), ("tnets", np.uint64, 3),
    ("tgross", np.uint64, 3), ("tn", np.int64, 1), ("journal", np.uint64, 2), ("meta", np.int64, 1),
    ("counters", np.int64, 1), ("venue_fee", np.int64, 1), ("params", np.int64, 1), ("token_min", np.uint64, 2),
    ("sig_keys", np.int64, 2), ("sig_vals", np.float64, 2), ("touched", np.int64, 2), ("crc_state", np.int64, 1),
    ("out", np.uint8, 1), ("out_offsets", np.int64, 1), ("rate_cache", np.float64, 2), ("tl", np.int64, 1),
    ("resume", np.int64, 1), ("crc_t", np.uint32, 1), ("swap_ck", np.uint64, 2),
)


@njit(cache=True)
def process_packed(buf, n_bytes, arena, lay, seq0, sink_h, sink_ps, sink_sizes, sink_data, flush_pairs):
    """:func:`process_batch` with its arrays (BATCH_ARRAYS, before ``seq0`` and after it) packed in
    one ``arena`` (:func:`alphapulse.jit.arena.pack`): the per-frame call from Python unboxes 7
    arrays instead of 32, and the kernel's arrays carry no reference count (see that module)."""
    u64, i64 = np.uint64, np.int64
    return process_batch(
        buf, n_bytes,
        view2(arena, lay, 0, u64), view2(arena, lay, 1, u64), view2(arena, lay, 2, i64),      # pools tokens pairs
        view1(arena, lay, 3, i64), view1(arena, lay, 4, i64), view2(arena, lay, 5, i64),      # the hash tables
        view2(arena, lay, 6, np.int32), view3(arena, lay, 7, u64), view3(arena, lay, 8, u64),  # ticks
        view1(arena, lay, 9, i64), view2(arena, lay, 10, u64), view1(arena, lay, 11, i64),    # tn journal meta
        view1(arena, lay, 12, i64), view1(arena, lay, 13, i64), view1(arena, lay, 14, i64),   # counters .. params
        view2(arena, lay, 15, u64), view2(arena, lay, 16, i64), view2(arena, lay, 17, np.float64),
        view2(arena, lay, 18, i64), view1(arena, lay, 19, i64), view1(arena, lay, 20, np.uint8),
        view1(arena, lay, 21, i64), seq0, view2(arena, lay, 22, np.float64), view1(arena, lay, 23, i64),
        view1(arena, lay, 24, i64), view1(arena, lay, 25, np.uint32), view2(arena, lay, 26, u64),
        sink_h, sink_ps, sink_sizes, sink_data, flush_pairs)


@njit(cache=True)
def _save_resume(resume, pos, epoch, n_touched, overflow, final, stop, ci, cq, cd):
    """Where the interrupted 2-pool phase goes on (cursor ci, cq, cd), then its triangles."""
    resume[RS_PENDING] = 1
    resume[RS_I] = ci
    resume[RS_Q] = cq
    resume[RS_D] = cd
    resume[RS_POS] = pos
    resume[RS_EPOCH] = epoch
    resume[RS_NTOUCHED] = n_touched
    resume[RS_OVERFLOW] = 1 if overflow else 0
    resume[RS_FINAL] = 1 if final else 0
    resume[RS_STOP] = stop
