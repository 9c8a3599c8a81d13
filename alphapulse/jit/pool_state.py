"""Pool state of the arbitrage engine as arrays, and the kernels that update it.

Everything the engine knows lives in a handful of preallocated arrays (few,
so that a Numba call from Python costs little to dispatch):

``pools`` uint64[P, NCOL]
    one row per pool; column constants ``C_*`` below. Signed values (ticks,
    links) are stored as their two's-complement bits (``np.int64(x)`` reads
    them back). Reserves and liquidity are u128 limbs, sqrt price u256 limbs.
``tokens`` uint64[TK, TCOL]
    address words, decimals, head of the token's pool list, per-token minimum
    profit for unpriced signals.
``pairs`` int64[NP, PCOL]
    one row per unordered token pair: the two tokens and a linked list of the
    pools trading it (for same-pair cycles and price look-ups).
``pool_ht`` / ``token_ht`` / ``pair_ht``
    open-addressing hash tables (row + 1, 0 = empty) from address / pair key.
``tticks`` int32[V, T], ``tnets`` / ``tgross`` uint64[V, T, 2], ``tn`` int64[V]
    the initialised ticks of each concentrated-liquidity pool (sorted),
    liquidityNet (i128) and liquidityGross (u128, ``GROSS_UNKNOWN`` for ticks
    known only from a PoolTick snapshot).
``journal`` uint64[J, JCOL]
    ring of the state before every applied pool event, linked per pool, so a
    reorg-removed event (flag 0x01) is undone exactly.
``meta`` int64[M]
    counts and scalar state (``M_*``), ``counters`` int64[K] skip counters
    (``K_*``).

A pool is created by a PoolState snapshot (any kind) or a PoolSync
(constant product; its fee comes from the venue table of the config).
Concentrated-liquidity pools are of two kinds that share every column and the
tick arrays: Uniswap V3 (``KIND_V3``, a fixed fee tier) and Algebra
(``KIND_ALGEBRA``, QuickSwap V3: a dynamic fee). An Algebra pool's fee in force
is ``C_FEE``, set by its PoolState and by every PoolFee (the pool's ``Fee``
event, journaled like any event so a reorg restores the fee before it; a
PoolFee read from state, ``log_index`` 0xFFFFFFFF, replaces the fee without
advancing the pool's event position). A
sequence gap in one source's stream marks stale the pools that source's records
changed (``C_SOURCES``; the lost frames could have touched no other); a
PoolState clears it, and so does a PoolSync (both reserves: a constant-product
pool's whole state). Records whose
fields the contracts cannot produce (``valid_*``) are counted bad events.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.amm_v3 import (FEE_DENOMINATOR, MAX_SQRT_RATIO, MAX_TICK, MIN_SQRT_RATIO, MIN_TICK,
                                   NO_COVERAGE_HI, NO_COVERAGE_LO)
from alphapulse.jit.clock import CAL_SIZE
from alphapulse.jit.memory import ld_u32, ld_u64
from alphapulse.jit.wideint import U0, U1, u256_add, u256_lt, u256_sub
from alphapulse.protocol import layout as L

# ---------------------------------------------------------------- pools columns
C_KIND = 0
C_TOKEN0 = 1
C_TOKEN1 = 2
C_FEE = 3
C_VENUE = 4
C_SPACING = 5
C_DEC0 = 6
C_DEC1 = 7
C_R0 = 8          # 2 limbs
C_R1 = 10         # 2 limbs
C_SQRT = 12       # 4 limbs
C_LIQ = 16        # 2 limbs
C_TICK = 18       # int64 bits
C_STALE = 19
C_HAS_STATE = 20
C_LAST_BLOCK = 21  # (block, log) of the newest applied event: older ones are duplicates
C_LAST_LOG = 22
C_STATE_BLOCK = 23
C_V3ROW = 24      # int64 bits, -1 = none
C_JR_LAST = 25    # int64 bits: journal sequence of the newest entry of this pool, -1 none
C_ADDR = 26       # 3 words: bytes 0-7, 8-15, 16-19
C_PAIR = 29
C_NEXT_PAIR = 30  # int64 bits: next pool of the same pair, -1 end
C_NEXT_T0 = 31    # next pool in token0's list
C_NEXT_T1 = 32    # next pool in token1's list
C_TICK_BLOCK = 33  # block of the PoolTick snapshot the tick arrays hold
C_SNAP_BLOCK = 34  # block of the last PoolState snapshot (events up to it are inside it)
C_COV_LO = 35     # int64 bits: the tick range whose initialised ticks the arrays all hold (TickCoverage);
C_COV_HI = 36     # (amm_v3.NO_COVERAGE_LO, NO_COVERAGE_HI) when none was sent
C_WANT = 37       # RefreshReason the pool waits on a fresh snapshot for (0: none); it is stale meanwhile
C_SOURCES = 38    # bit (source & 63) of every market-data source whose records changed this pool
NCOL = 39

LOG_SNAPSHOT = np.uint64(0xFFFFFFFFFFFFFFFF)  # a snapshot covers every log of its block

# tokens columns
T_ADDR = 0
T_DEC = 3
T_HEAD = 4        # int64 bits: first pool in this token's list, -1 none
T_PRICE_EPOCH = 5  # price epoch + 1 of the cached price pool (the strategy's scratch; see arb.cached_price_pool)
T_PRICE_POOL = 6   # int64 bits: that price pool, -1 none
T_NPOOLS = 7
TCOL = 8

# pairs columns
P_TOKEN_A = 0
P_TOKEN_B = 1
P_HEAD = 2
P_COUNT = 3
P_MEMBERS = 4       # the pair's first P_NMEMBERS pools, in one line with the head: prefetched
P_NMEMBERS = 4      # all at once instead of one list hop after the other
PCOL = 8

# journal columns
J_SEQ = 0
J_POOL = 1
J_BLOCK = 2
J_LOG = 3
J_TYPE = 4
J_PREV = 5        # int64 bits: previous entry (sequence) of the same pool
J_STATE = 6       # R0(2) R1(2) SQRT(4) LIQ(2) TICK LAST_BLOCK LAST_LOG STATE_BLOCK = 14 words
J_NSTATE = 14
J_LOWER = 20
J_UPPER = 21
J_DELTA = 22      # 2 limbs
J_FEE = 24        # the fee in force before the event (a PoolFee changes it)
JCOL = 25

# meta
M_NPOOLS = 0
M_NTOKENS = 1
M_NPAIRS = 2
M_NV3 = 3
M_JSEQ = 4        # next journal sequence
M_GAS_BASE = 5
M_GAS_PRIO = 6
M_GAS_BLOCK = 7
M_CHAIN_ID = 8
M_SIGNAL_ID = 9
M_LAST_SEQ = 10   # 256 slots from here: last sequence per source on the market-data domain
M_GAS_POOL_EPOCH = M_LAST_SEQ + 256   # search epoch of the cached price pool of the native token
M_GAS_POOL = M_GAS_POOL_EPOCH + 1
M_GAS_TOKEN = M_GAS_POOL + 1     # the native token's row when M_GAS_POOL was looked up
M_GAS_USD = M_GAS_TOKEN + 1      # 8 x (price epoch + 1, gas price, gas USD e8 or -1) by (hops - 2) * 4 + V2 hops
# Advanced when a sequence gap turns pools stale: the strategy's cached price pools and gas values
# (see arb.cached_price_pool) are then all looked up again.
M_PRICE_EPOCH = M_GAS_USD + 24
M_STATE_VER = M_PRICE_EPOCH + 1  # +1 per applied TLV: keys caches derived from pool state (arb.SWC_N)
M_WANTS = M_STATE_VER + 1        # +1 each time a pool starts waiting on a refresh (C_WANT set)
M_GAS_VIA = M_WANTS + 1          # the pool gas is valued through when the native token has no price pool, -1 none
# The writer's TSC clock (alphapulse.jit.clock: CAL_SIZE slots, a TscClock's cal copied in by the
# engine; all 0 = clock_gettime): signals are stamped with fast_ns(meta[M_CLOCK:M_CLOCK + CAL_SIZE])
# as they are written. Re-anchored in place.
M_CLOCK = M_GAS_VIA + 1
NMETA = M_CLOCK + CAL_SIZE

# counters
K_FRAMES = 0
K_FRAMES_REJECTED = 1
K_FRAMES_DUPLICATE = 2
K_SEQ_GAPS = 3
K_TLVS = 4
K_APPLIED = 5
K_DUPLICATE_EVENTS = 6
K_UNKNOWN_POOL = 7
K_TABLE_FULL = 8
K_TICK_SET_INCOMPLETE = 9   # events that showed a pool's tick set incomplete (its pool then waits on a refresh)
K_JOURNAL_MISS = 10
K_UNDONE = 11
K_BAD_EVENT = 12
K_IGNORED_TLVS = 13
K_STALE_SKIPS = 14
K_CYCLES = 15
K_SIGNALS = 16
K_SIGNALS_SUPPRESSED = 17
K_SIGNAL_TABLE_FULL = 18
K_OUT_FULL = 19
K_CANDIDATES = 20
K_SIM_FAILS = 21
K_SCREENED = 22
K_SIMULATIONS = 23   # exact cycle simulations run by the sizing search
K_TICK_TABLE_FULL = 24      # ticks that did not fit in a pool's tick arrays (max_ticks_per_pool)
K_REFRESH_WANTED = 25       # times a pool left trading to wait on a fresh snapshot
K_CHAIN_MISMATCH = 26       # GasPrice records whose chain id differs from the configured one
K_GAP_STALE_POOLS = 27      # pools a sequence gap of a source they are fed by turned stale
NCOUNTERS = 28
COUNTER_NAMES = {v: k[2:].lower() for k, v in globals().items()
                 if k.startswith("K_") and isinstance(v, int)}

GROSS_UNKNOWN = np.uint64(0xFFFFFFFFFFFFFFFF)
EV_SYNC = 1
EV_SWAP = 2
EV_MINT = 3
EV_BURN = 4
EV_FEE = 5

KIND_V2 = int(L.PoolKind.CONSTANT_PRODUCT)
KIND_V3 = int(L.PoolKind.CONCENTRATED)
KIND_ALGEBRA = int(L.PoolKind.CONCENTRATED_DYNAMIC_FEE)
EVENT_REMOVED = L.EVENT_REMOVED

# ---------------------------------------------------------------- TLV offsets (from layout.py)
T_SWAP = L.POOL_SWAP.type_id
T_MINT = L.POOL_MINT.type_id
T_BURN = L.POOL_BURN.type_id
T_TICK = L.POOL_TICK.type_id
T_STATE = L.POOL_STATE.type_id
T_SYNC = L.POOL_SYNC.type_id
T_GAS = L.GAS_PRICE.type_id
T_COVERAGE = L.TICK_COVERAGE.type_id
T_FEE = L.POOL_FEE.type_id

SW_SQRT = L.POOL_SWAP.offset("sqrt_price_x96_after")
SW_LIQ = L.POOL_SWAP.offset("liquidity_after")
SW_BLOCK = L.POOL_SWAP.offset("block_number")
SW_LOG = L.POOL_SWAP.offset("log_index")
SW_TICK = L.POOL_SWAP.offset("tick_after")
SW_FLAGS = L.POOL_SWAP.offset("flags")
SW_POOL = L.POOL_SWAP.offset("pool")

MB_DELTA = L.POOL_MINT.offset("liquidity_delta")
MB_BLOCK = L.POOL_MINT.offset("block_number")
MB_LOG = L.POOL_MINT.offset("log_index")
MB_LOWER = L.POOL_MINT.offset("tick_lower")
MB_UPPER = L.POOL_MINT.offset("tick_upper")
MB_FLAGS = L.POOL_MINT.offset("flags")
MB_POOL = L.POOL_MINT.offset("pool")
assert all(L.POOL_BURN.offset(n) == L.POOL_MINT.offset(n)
           for n in ("liquidity_delta", "block_number", "log_index", "tick_lower", "tick_upper",
                     "flags", "pool"))

TK_NET = L.POOL_TICK.offset("liquidity_net")
TK_BLOCK = L.POOL_TICK.offset("block_number")
TK_TICK = L.POOL_TICK.offset("tick")
TK_FLAGS = L.POOL_TICK.offset("flags")
TK_POOL = L.POOL_TICK.offset("pool")

ST_R0 = L.POOL_STATE.offset("reserve0")
ST_R1 = L.POOL_STATE.offset("reserve1")
ST_SQRT = L.POOL_STATE.offset("sqrt_price_x96")
ST_LIQ = L.POOL_STATE.offset("liquidity")
ST_BLOCK = L.POOL_STATE.offset("block_number")
ST_TICK = L.POOL_STATE.offset("tick")
ST_FEE = L.POOL_STATE.offset("fee_pips")
ST_VENUE = L.POOL_STATE.offset("venue")
ST_KIND = L.POOL_STATE.offset("pool_kind")
ST_DEC0 = L.POOL_STATE.offset("token0_decimals")
ST_DEC1 = L.POOL_STATE.offset("token1_decimals")
ST_SPACING = L.POOL_STATE.offset("tick_spacing")
ST_POOL = L.POOL_STATE.offset("pool")
ST_TOKEN0 = L.POOL_STATE.offset("token0")
ST_TOKEN1 = L.POOL_STATE.offset("token1")

SY_R0 = L.POOL_SYNC.offset("reserve0")
SY_R1 = L.POOL_SYNC.offset("reserve1")
SY_BLOCK = L.POOL_SYNC.offset("block_number")
SY_LOG = L.POOL_SYNC.offset("log_index")
SY_VENUE = L.POOL_SYNC.offset("venue")
SY_DEC0 = L.POOL_SYNC.offset("token0_decimals")
SY_DEC1 = L.POOL_SYNC.offset("token1_decimals")
SY_FLAGS = L.POOL_SYNC.offset("flags")
SY_POOL = L.POOL_SYNC.offset("pool")
SY_TOKEN0 = L.POOL_SYNC.offset("token0")
SY_TOKEN1 = L.POOL_SYNC.offset("token1")

TC_BLOCK = L.TICK_COVERAGE.offset("block_number")
TC_LOWER = L.TICK_COVERAGE.offset("tick_lower")
TC_UPPER = L.TICK_COVERAGE.offset("tick_upper")
TC_POOL = L.TICK_COVERAGE.offset("pool")

REFRESH_UNKNOWN_TICK = int(L.RefreshReason.UNKNOWN_TICK)
REFRESH_NEGATIVE_LIQUIDITY = int(L.RefreshReason.NEGATIVE_LIQUIDITY)
REFRESH_NO_TICKS = int(L.RefreshReason.NO_TICK_DATA)
NO_COV_LO = np.uint64(np.int64(NO_COVERAGE_LO))
NO_COV_HI = np.uint64(np.int64(NO_COVERAGE_HI))

PF_BLOCK = L.POOL_FEE.offset("block_number")
PF_LOG = L.POOL_FEE.offset("log_index")
PF_FEE = L.POOL_FEE.offset("fee_pips")
PF_FLAGS = L.POOL_FEE.offset("flags")
PF_POOL = L.POOL_FEE.offset("pool")
LOG_FROM_STATE = np.uint64(L.LOG_INDEX_FROM_STATE)

GP_BASE = L.GAS_PRICE.offset("base_fee_wei")
GP_PRIO = L.GAS_PRICE.offset("priority_fee_wei")
GP_BLOCK = L.GAS_PRICE.offset("block_number")
GP_CHAIN = L.GAS_PRICE.offset("chain_id")

# Field limits of the records applied here: what the contracts can produce. A record outside
# them is a counted bad event (K_BAD_EVENT), never applied: the kernels' loops and float models
# assume them (a non-positive spacing never leaves the tick search, a tick beyond the bounds
# overflows the float price).
MAX_DECIMALS = 77          # 10**77 < 2**256 <= 10**78
MAX_TICK_SPACING = 16383   # UniswapV3Factory.enableFeeAmount: 0 < tickSpacing < 16384
MAX_ALGEBRA_FEE = 0xFFFF   # Algebra v1.0: globalState.fee and the Fee event are uint16

_HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_U32 = np.uint64(32)


# ---------------------------------------------------------------- allocation
def alloc_state(max_pools: int, max_tokens: int, max_v3_pools: int, max_ticks_per_pool: int,
                journal_size: int) -> dict:
    """Zeroed engine state arrays (see the module doc) as a dict of name -> array."""
    def pow2(n: int) -> int:
        c = 16
        while c < 2 * n:
            c <<= 1
        return c
    max_pairs = max_pools
    st = {
        "pools": np.zeros((max_pools, NCOL), np.uint64),
        "tokens": np.zeros((max_tokens, TCOL), np.uint64),
        "pairs": np.full((max_pairs, PCOL), -1, np.int64),
        "pool_ht": np.zeros(pow2(max_pools), np.int64),
        "token_ht": np.zeros(pow2(max_tokens), np.int64),
        "pair_ht": np.zeros((pow2(max_pairs), 2), np.int64),
        "tticks": np.zeros((max(1, max_v3_pools), max_ticks_per_pool), np.int32),
        "tnets": np.zeros((max(1, max_v3_pools), max_ticks_per_pool, 2), np.uint64),
        "tgross": np.zeros((max(1, max_v3_pools), max_ticks_per_pool, 2), np.uint64),
        "tn": np.zeros(max(1, max_v3_pools), np.int64),
        "journal": np.zeros((journal_size, JCOL), np.uint64),
        "meta": np.zeros(NMETA, np.int64),
        "counters": np.zeros(NCOUNTERS, np.int64),
    }
    st["journal"][:, J_SEQ] = np.uint64(0xFFFFFFFFFFFFFFFF)
    st["meta"][M_GAS_VIA] = -1
    return st


# ---------------------------------------------------------------- small helpers
@njit(cache=True, inline="always")
def i64(x):
    return np.int64(x)


@njit(cache=True, inline="always")
def u64(x):
    return np.uint64(x)


@njit(cache=True, inline="always")
def ld_i32(buf, p):
    v = np.int64(ld_u32(buf, p))
    if v >= 2147483648:
        v -= 4294967296
    return v


@njit(cache=True, inline="always")
def ld_i16(buf, p):
    v = np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8)
    if v >= 32768:
        v -= 65536
    return v


@njit(cache=True, inline="always")
def ld_addr(buf, p):
    return ld_u64(buf, p), ld_u64(buf, p + 8), ld_u32(buf, p + 16)


@njit(cache=True, inline="always")
def _hash3(a, b, c):
    h = (a * _HASH_MUL) ^ (b * np.uint64(0xC2B2AE3D27D4EB4F)) ^ (c * np.uint64(0x165667B19E3779F9))
    return h ^ (h >> _U32)


@njit(cache=True)
def pool_rows(pools):
    return pools.shape[0]


# ---------------------------------------------------------------- hash tables
@njit(cache=True)
def _ht_find(rows, ht, col, a, b, c):
    """Row of ``rows`` whose address words at ``col..col+2`` are (a, b, c), via open-addressing
    table ``ht`` (entries are row + 1, 0 = empty); -1 if absent."""
    mask = ht.shape[0] - 1
    h = np.int64(_hash3(a, b, c) & np.uint64(mask))
    for _ in range(ht.shape[0]):
        v = ht[h]
        if v == 0:
            return -1
        r = v - 1
        if rows[r, col] == a and rows[r, col + 1] == b and rows[r, col + 2] == c:
            return r
        h = (h + 1) & mask
    return -1


@njit(cache=True)
def find_pool(pools, pool_ht, a, b, c):
    """Row of the pool with address words (a, b, c), -1 if unknown."""
    return _ht_find(pools, pool_ht, C_ADDR, a, b, c)


@njit(cache=True)
def _ht_insert(ht, a, b, c, row):
    mask = ht.shape[0] - 1
    h = np.int64(_hash3(a, b, c) & np.uint64(mask))
    for _ in range(ht.shape[0]):
        if ht[h] == 0:
            ht[h] = row + 1
            return True
        h = (h + 1) & mask
    return False


@njit(cache=True)
def find_token(tokens, token_ht, a, b, c):
    """Row of the token with address words (a, b, c), -1 if unknown."""
    return _ht_find(tokens, token_ht, T_ADDR, a, b, c)


@njit(cache=True)
def get_or_add_token(tokens, token_ht, meta, a, b, c, decimals):
    r = find_token(tokens, token_ht, a, b, c)
    if r >= 0:
        return r
    n = meta[M_NTOKENS]
    if n >= tokens.shape[0] or 2 * (n + 1) > token_ht.shape[0]:
        return -1
    tokens[n, T_ADDR] = a
    tokens[n, T_ADDR + 1] = b
    tokens[n, T_ADDR + 2] = c
    tokens[n, T_DEC] = np.uint64(decimals)
    tokens[n, T_HEAD] = np.uint64(np.int64(-1))
    _ht_insert(token_ht, a, b, c, n)
    meta[M_NTOKENS] = n + 1
    return n


@njit(cache=True)
def _pair_key(ta, tb):
    lo = min(ta, tb)
    hi = max(ta, tb)
    return (np.int64(lo) << 32) | np.int64(hi)


@njit(cache=True)
def find_pair(pair_ht, ta, tb):
    """Row of the pair {ta, tb} in ``pairs``, -1 if no pool trades it."""
    key = _pair_key(ta, tb)
    mask = pair_ht.shape[0] - 1
    h = np.int64((np.uint64(key) * _HASH_MUL) >> np.uint64(20)) & mask
    for _ in range(pair_ht.shape[0]):
        if pair_ht[h, 1] == 0:
            return -1
        if pair_ht[h, 0] == key:
            return pair_ht[h, 1] - 1
        h = (h + 1) & mask
    return -1


@njit(cache=True)
def _get_or_add_pair(pairs, pair_ht, meta, ta, tb):
    r = find_pair(pair_ht, ta, tb)
    if r >= 0:
        return r
    n = meta[M_NPAIRS]
    if n >= pairs.shape[0] or 2 * (n + 1) > pair_ht.shape[0]:
        return -1
    key = _pair_key(ta, tb)
    mask = pair_ht.shape[0] - 1
    h = np.int64((np.uint64(key) * _HASH_MUL) >> np.uint64(20)) & mask
    while pair_ht[h, 1] != 0:
        h = (h + 1) & mask
    pair_ht[h, 0] = key
    pair_ht[h, 1] = n + 1
    pairs[n, P_TOKEN_A] = min(ta, tb)
    pairs[n, P_TOKEN_B] = max(ta, tb)
    pairs[n, P_HEAD] = -1
    pairs[n, P_COUNT] = 0
    pairs[n, P_MEMBERS:P_MEMBERS + P_NMEMBERS] = -1
    meta[M_NPAIRS] = n + 1
    return n


@njit(cache=True)
def add_pool(pools, tokens, pairs, pool_ht, token_ht, pair_ht, meta, tn, a, b, c,
             kind, t0a, t0b, t0c, t1a, t1b, t1c, dec0, dec1, fee, venue, spacing):
    """Register a pool (and its tokens/pair); returns its row, -1 when a table is full."""
    n = meta[M_NPOOLS]
    if n >= pools.shape[0] or 2 * (n + 1) > pool_ht.shape[0]:
        return -1
    v3row = -1
    if kind != KIND_V2:
        if meta[M_NV3] >= tn.shape[0]:
            return -1
    t0 = get_or_add_token(tokens, token_ht, meta, t0a, t0b, t0c, dec0)
    t1 = get_or_add_token(tokens, token_ht, meta, t1a, t1b, t1c, dec1)
    if t0 < 0 or t1 < 0 or t0 == t1:
        return -1
    pr = _get_or_add_pair(pairs, pair_ht, meta, t0, t1)
    if pr < 0:
        return -1
    if kind != KIND_V2:
        v3row = meta[M_NV3]
        meta[M_NV3] = v3row + 1
        tn[v3row] = 0
    row = pools[n]
    row[:] = U0
    row[C_KIND] = np.uint64(kind)
    row[C_TOKEN0] = np.uint64(t0)
    row[C_TOKEN1] = np.uint64(t1)
    row[C_FEE] = np.uint64(fee)
    row[C_VENUE] = np.uint64(venue)
    row[C_SPACING] = np.uint64(np.int64(spacing))
    row[C_DEC0] = np.uint64(dec0)
    row[C_DEC1] = np.uint64(dec1)
    row[C_V3ROW] = np.uint64(np.int64(v3row))
    row[C_JR_LAST] = np.uint64(np.int64(-1))
    row[C_COV_LO] = NO_COV_LO
    row[C_COV_HI] = NO_COV_HI
    row[C_ADDR] = a
    row[C_ADDR + 1] = b
    row[C_ADDR + 2] = c
    row[C_PAIR] = np.uint64(pr)
    row[C_NEXT_PAIR] = np.uint64(pairs[pr, P_HEAD])
    pairs[pr, P_HEAD] = n
    if pairs[pr, P_COUNT] < P_NMEMBERS:
        pairs[pr, P_MEMBERS + pairs[pr, P_COUNT]] = n
    pairs[pr, P_COUNT] += 1
    row[C_NEXT_T0] = tokens[t0, T_HEAD]
    tokens[t0, T_HEAD] = np.uint64(n)
    tokens[t0, T_NPOOLS] += U1
    row[C_NEXT_T1] = tokens[t1, T_HEAD]
    tokens[t1, T_HEAD] = np.uint64(n)
    tokens[t1, T_NPOOLS] += U1
    _ht_insert(pool_ht, a, b, c, n)
    meta[M_NPOOLS] = n + 1
    return n


@njit(cache=True)
def next_pool_of_token(pools, p, token):
    """Next pool after ``p`` in ``token``'s list (-1 at the end)."""
    if np.int64(pools[p, C_TOKEN0]) == token:
        return np.int64(pools[p, C_NEXT_T0])
    return np.int64(pools[p, C_NEXT_T1])


# ---------------------------------------------------------------- journal
@njit(cache=True)
def _journal_push(pools, journal, meta, p, block, log, ev_type, lower, upper, d_lo, d_hi):
    seq = meta[M_JSEQ]
    meta[M_JSEQ] = seq + 1
    j = seq % journal.shape[0]
    e = journal[j]
    e[J_SEQ] = np.uint64(seq)
    e[J_POOL] = np.uint64(p)
    e[J_BLOCK] = np.uint64(block)
    e[J_LOG] = np.uint64(log)
    e[J_TYPE] = np.uint64(ev_type)
    e[J_PREV] = pools[p, C_JR_LAST]
    for k in range(10):
        e[J_STATE + k] = pools[p, C_R0 + k]       # R0, R1, SQRT, LIQ are contiguous
    e[J_STATE + 10] = pools[p, C_TICK]
    e[J_STATE + 11] = pools[p, C_LAST_BLOCK]
    e[J_STATE + 12] = pools[p, C_LAST_LOG]
    e[J_STATE + 13] = pools[p, C_STATE_BLOCK]
    e[J_LOWER] = np.uint64(np.int64(lower))
    e[J_UPPER] = np.uint64(np.int64(upper))
    e[J_DELTA] = d_lo
    e[J_DELTA + 1] = d_hi
    e[J_FEE] = pools[p, C_FEE]
    pools[p, C_JR_LAST] = np.uint64(seq)


@njit(cache=True)
def _journal_entry(journal, seq):
    """Row of journal sequence ``seq`` if it is still in the ring, else -1."""
    if seq < 0:
        return -1
    j = seq % journal.shape[0]
    if journal[j, J_SEQ] != np.uint64(seq):
        return -1
    return j


# ---------------------------------------------------------------- ticks
@njit(cache=True)
def _tick_index(tticks, row, n, tick):
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if tticks[row, mid] < tick:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True)
def _clear_ticks(tticks, tnets, tgross, tn, row):
    """Empty the tick set of V3 row ``row`` (rows past the count stay zeroed: equal states are
    equal arrays)."""
    for k in range(tn[row]):
        tticks[row, k] = 0
        tnets[row, k, 0] = U0
        tnets[row, k, 1] = U0
        tgross[row, k, 0] = U0
        tgross[row, k, 1] = U0
    tn[row] = 0


@njit(cache=True)
def _tick_add(tticks, tnets, tgross, tn, row, tick, neg, d_lo, d_hi):
    """Add (neg=False) or remove liquidity ``d`` at ``tick``: net += +/-d, gross += +/-d.

    ``neg`` here means the liquidityNet moves by -d (upper tick of a mint).
    Returns False when the tick table is full.
    """
    n = tn[row]
    i = _tick_index(tticks, row, n, tick)
    if i >= n or tticks[row, i] != tick:
        if n >= tticks.shape[1]:
            return False
        for k in range(n, i, -1):
            tticks[row, k] = tticks[row, k - 1]
            tnets[row, k, 0] = tnets[row, k - 1, 0]
            tnets[row, k, 1] = tnets[row, k - 1, 1]
            tgross[row, k, 0] = tgross[row, k - 1, 0]
            tgross[row, k, 1] = tgross[row, k - 1, 1]
        tticks[row, i] = tick
        tnets[row, i, 0] = U0
        tnets[row, i, 1] = U0
        tgross[row, i, 0] = U0
        tgross[row, i, 1] = U0
        tn[row] = n + 1
    net = (tnets[row, i, 0], tnets[row, i, 1], U0, U0)
    d = (d_lo, d_hi, U0, U0)
    if neg:
        net, _ = u256_sub(net, d)
    else:
        net, _ = u256_add(net, d)
    tnets[row, i, 0] = net[0]
    tnets[row, i, 1] = net[1]
    if tgross[row, i, 0] != GROSS_UNKNOWN or tgross[row, i, 1] != GROSS_UNKNOWN:
        g, _ = u256_add((tgross[row, i, 0], tgross[row, i, 1], U0, U0), d)
        tgross[row, i, 0] = g[0]
        tgross[row, i, 1] = g[1]
    return True


@njit(cache=True)
def _tick_sub(tticks, tnets, tgross, tn, row, tick, neg, d_lo, d_hi):
    """Inverse of _tick_add: gross -= d, net -= +/-d; the tick leaves when gross reaches 0.

    Returns 0, REFRESH_UNKNOWN_TICK when the tick is not in the arrays, or
    REFRESH_NEGATIVE_LIQUIDITY when its known gross liquidity is less than d (nothing changed
    in either case).
    """
    n = tn[row]
    i = _tick_index(tticks, row, n, tick)
    if i >= n or tticks[row, i] != tick:
        return REFRESH_UNKNOWN_TICK
    g, borrow = u256_sub((tgross[row, i, 0], tgross[row, i, 1], U0, U0), (d_lo, d_hi, U0, U0))
    known = tgross[row, i, 0] != GROSS_UNKNOWN or tgross[row, i, 1] != GROSS_UNKNOWN
    if known and borrow:
        return REFRESH_NEGATIVE_LIQUIDITY
    d = (d_lo, d_hi, U0, U0)
    net = (tnets[row, i, 0], tnets[row, i, 1], U0, U0)
    if neg:
        net, _ = u256_add(net, d)
    else:
        net, _ = u256_sub(net, d)
    tnets[row, i, 0] = net[0]
    tnets[row, i, 1] = net[1]
    if not known:
        return 0  # snapshot tick: keep it initialised until the next snapshot says otherwise
    if g[0] == U0 and g[1] == U0:
        for k in range(i, n - 1):
            tticks[row, k] = tticks[row, k + 1]
            tnets[row, k, 0] = tnets[row, k + 1, 0]
            tnets[row, k, 1] = tnets[row, k + 1, 1]
            tgross[row, k, 0] = tgross[row, k + 1, 0]
            tgross[row, k, 1] = tgross[row, k + 1, 1]
        # keep rows past the count zeroed: equal states are equal arrays
        tticks[row, n - 1] = 0
        tnets[row, n - 1, 0] = U0
        tnets[row, n - 1, 1] = U0
        tgross[row, n - 1, 0] = U0
        tgross[row, n - 1, 1] = U0
        tn[row] = n - 1
    else:
        tgross[row, i, 0] = g[0]
        tgross[row, i, 1] = g[1]
    return 0


@njit(cache=True)
def _apply_position(pools, tticks, tnets, tgross, tn, p, lower, upper, d_lo, d_hi, add):
    """Mint (add=True) or burn liquidity d on [lower, upper) of V3 pool p.

    A tick outside the pool's covered range (C_COV_LO..C_COV_HI) is not tracked: the tick
    set there is unknown anyway and never priced. Returns 0, or why the tick set is now
    incomplete: REFRESH_UNKNOWN_TICK (a burn at a tick the arrays do not hold, or a tick that
    did not fit: K_TICK_TABLE_FULL is then counted by the caller via -1) or
    REFRESH_NEGATIVE_LIQUIDITY (a burn of more than a tick or the active range holds).
    """
    row = np.int64(pools[p, C_V3ROW])
    cov_lo = np.int64(pools[p, C_COV_LO])
    cov_hi = np.int64(pools[p, C_COV_HI])
    res = 0
    for k in range(2):
        t = lower if k == 0 else upper
        if t < cov_lo or t > cov_hi:
            continue
        if add:
            if not _tick_add(tticks, tnets, tgross, tn, row, t, k == 1, d_lo, d_hi):
                res = -1
        else:
            r = _tick_sub(tticks, tnets, tgross, tn, row, t, k == 1, d_lo, d_hi)
            if r != 0:
                res = r
    tick = np.int64(pools[p, C_TICK])
    if lower <= tick < upper:
        liq = (pools[p, C_LIQ], pools[p, C_LIQ + 1], U0, U0)
        d = (d_lo, d_hi, U0, U0)
        if add:
            liq, _ = u256_add(liq, d)
        else:
            liq, borrow = u256_sub(liq, d)
            if borrow:
                return REFRESH_NEGATIVE_LIQUIDITY
        pools[p, C_LIQ] = liq[0]
        pools[p, C_LIQ + 1] = liq[1]
    return res


@njit(cache=True)
def _want_refresh(pools, meta, counters, p, reason):
    """Take pool p out of trading until a fresh snapshot (PoolState) replaces its state, and
    say why (C_WANT: the RefreshReason the strategy sends in its PoolRefresh request)."""
    pools[p, C_STALE] = U1
    if pools[p, C_WANT] == U0:
        pools[p, C_WANT] = np.uint64(reason)
        meta[M_WANTS] += 1
        counters[K_REFRESH_WANTED] += 1


# ---------------------------------------------------------------- undo
@njit(cache=True)
def undo_event(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log):
    """Undo event (block, log) of pool p and every later event of that pool.

    Restores the exact state before it from the journal. Returns True when
    found; False (and the pool is marked stale) when the journal no longer
    holds it, unless the event was never applied (nothing to undo).
    """
    seq = np.int64(pools[p, C_JR_LAST])
    b = np.uint64(block)
    lg = np.uint64(log)
    s = seq
    found = False
    while s >= 0:
        j = _journal_entry(journal, s)
        if j < 0:
            # the ring overwrote it: the exact prior state is gone
            pools[p, C_STALE] = U1
            counters[K_JOURNAL_MISS] += 1
            return False
        eb = journal[j, J_BLOCK]
        el = journal[j, J_LOG]
        if eb == b and el == lg:
            found = True
            break
        if eb < b or (eb == b and el < lg):
            return False  # newer than what was applied before it, yet not applied: a skipped duplicate
        s = np.int64(journal[j, J_PREV])
    if not found:
        if pools[p, C_SNAP_BLOCK] != U0 and b <= pools[p, C_SNAP_BLOCK]:
            # the removed event is inside the last snapshot: only a new snapshot can fix the state
            pools[p, C_STALE] = U1
            counters[K_JOURNAL_MISS] += 1
        return False
    target = s
    s = seq
    while True:
        j = _journal_entry(journal, s)
        e = journal[j]
        if e[J_TYPE] == np.uint64(EV_MINT) or e[J_TYPE] == np.uint64(EV_BURN):
            # inverse of the position change, before restoring the scalars
            _apply_position(pools, tticks, tnets, tgross, tn, p, np.int64(e[J_LOWER]),
                            np.int64(e[J_UPPER]), e[J_DELTA], e[J_DELTA + 1],
                            e[J_TYPE] == np.uint64(EV_BURN))
        for k in range(10):
            pools[p, C_R0 + k] = e[J_STATE + k]
        pools[p, C_TICK] = e[J_STATE + 10]
        pools[p, C_LAST_BLOCK] = e[J_STATE + 11]
        pools[p, C_LAST_LOG] = e[J_STATE + 12]
        pools[p, C_STATE_BLOCK] = e[J_STATE + 13]
        pools[p, C_FEE] = e[J_FEE]
        pools[p, C_JR_LAST] = e[J_PREV]
        e[J_SEQ] = np.uint64(0xFFFFFFFFFFFFFFFF)  # consumed
        counters[K_UNDONE] += 1
        if s == target:
            break
        s = np.int64(pools[p, C_JR_LAST])
    return True


@njit(cache=True)
def _is_duplicate(pools, p, block, log):
    lb = pools[p, C_LAST_BLOCK]
    return np.uint64(block) < lb or (np.uint64(block) == lb and np.uint64(log) <= pools[p, C_LAST_LOG])


@njit(cache=True, inline="always")
def _removed_or_duplicate(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log, removed):
    """The common head of the event TLVs: (handled, result).

    A reorg-removed event is undone (result p when the state changed, else -1); an event
    at or before the pool's newest applied one is a counted duplicate (result -1).
    Otherwise handled is False and the caller applies the event.
    """
    if removed:
        return True, (p if undo_event(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log) else -1)
    if _is_duplicate(pools, p, block, log):
        counters[K_DUPLICATE_EVENTS] += 1
        return True, -1
    return False, -1


@njit(cache=True, inline="always")
def _stamp_applied(pools, counters, p, block, log):
    """The common tail of an applied event: the pool's newest (block, log) and state block."""
    pools[p, C_LAST_BLOCK] = block
    pools[p, C_LAST_LOG] = log
    pools[p, C_STATE_BLOCK] = block
    counters[K_APPLIED] += 1


# ---------------------------------------------------------------- field validation
@njit(cache=True, inline="always")
def _tick_in_bounds(tick):
    return MIN_TICK <= tick <= MAX_TICK


@njit(cache=True, inline="always")
def _on_spacing(tick, spacing):
    return tick % spacing == 0


@njit(cache=True)
def _sqrt_in_bounds(buf, p):
    """The u256 at ``buf[p:]`` is a price TickMath accepts: MIN_SQRT_RATIO <= s < MAX_SQRT_RATIO."""
    s = (ld_u64(buf, p), ld_u64(buf, p + 8), ld_u64(buf, p + 16), ld_u64(buf, p + 24))
    return not u256_lt(s, MIN_SQRT_RATIO) and u256_lt(s, MAX_SQRT_RATIO)


@njit(cache=True)
def valid_pool_state(buf, v, kind):
    """Whether a PoolState of ``kind`` (1, 2 or 3) at ``buf[v:]`` holds fields the kernels can use:
    decimals <= 77, fee < 100 % (pips; an Algebra pool's a uint16), and for concentrated liquidity a tick spacing in
    [1, 16383], a tick within [-887272, 887272] and a sqrt price within TickMath's range."""
    if buf[v + ST_DEC0] > MAX_DECIMALS or buf[v + ST_DEC1] > MAX_DECIMALS:
        return False
    if ld_u32(buf, v + ST_FEE) >= np.uint64(FEE_DENOMINATOR):
        return False
    if kind == KIND_ALGEBRA and ld_u32(buf, v + ST_FEE) > np.uint64(MAX_ALGEBRA_FEE):
        return False
    if kind == KIND_V2:
        return True
    spacing = ld_i16(buf, v + ST_SPACING)
    if spacing < 1 or spacing > MAX_TICK_SPACING:
        return False
    return _tick_in_bounds(ld_i32(buf, v + ST_TICK)) and _sqrt_in_bounds(buf, v + ST_SQRT)


@njit(cache=True)
def valid_pool_sync(buf, v):
    """Whether a PoolSync at ``buf[v:]`` has decimals <= 77 (reserves are any u128)."""
    return buf[v + SY_DEC0] <= MAX_DECIMALS and buf[v + SY_DEC1] <= MAX_DECIMALS


@njit(cache=True)
def valid_pool_swap(buf, v):
    """Whether a PoolSwap of a concentrated-liquidity pool at ``buf[v:]`` ends at a tick within
    the bounds and a sqrt price within TickMath's range."""
    return _tick_in_bounds(ld_i32(buf, v + SW_TICK)) and _sqrt_in_bounds(buf, v + SW_SQRT)


@njit(cache=True)
def valid_position(buf, v, spacing):
    """Whether a PoolMint/PoolBurn at ``buf[v:]`` names a range lower < upper of ticks within the
    bounds, both multiples of the pool's ``spacing`` (>= 1)."""
    lower = ld_i32(buf, v + MB_LOWER)
    upper = ld_i32(buf, v + MB_UPPER)
    return (lower < upper and _tick_in_bounds(lower) and _tick_in_bounds(upper)
            and _on_spacing(lower, spacing) and _on_spacing(upper, spacing))


@njit(cache=True)
def valid_pool_tick(buf, v, spacing):
    """Whether a PoolTick at ``buf[v:]`` names a tick within the bounds, a multiple of the pool's
    ``spacing`` (>= 1)."""
    tick = ld_i32(buf, v + TK_TICK)
    return _tick_in_bounds(tick) and _on_spacing(tick, spacing)


@njit(cache=True)
def valid_tick_coverage(buf, v):
    """Whether a TickCoverage at ``buf[v:]`` names a range lower <= upper of ticks within
    [-887272, 887272]."""
    lower = ld_i32(buf, v + TC_LOWER)
    upper = ld_i32(buf, v + TC_UPPER)
    return lower <= upper and _tick_in_bounds(lower) and _tick_in_bounds(upper)


@njit(cache=True)
def valid_pool_fee(buf, v):
    """Whether a PoolFee at ``buf[v:]`` holds a fee below 100 % (1,000,000 pips)."""
    return ld_u32(buf, v + PF_FEE) < np.uint64(FEE_DENOMINATOR)


# ---------------------------------------------------------------- apply one TLV
@njit(cache=True)
def apply_tlv(buf, t, v, pools, tokens, pairs, pool_ht, token_ht, pair_ht, tticks, tnets, tgross, tn,
              journal, meta, counters, venue_fee):
    """Apply one market-data TLV (value at ``buf[v:]``, fixed size already checked).

    Returns the row of the pool whose tradable state changed, -1 otherwise
    (GasPrice, duplicates, unknown pools, counted skips).
    ``venue_fee`` int64[65536]: constant-product fee in pips per venue (-1 = not configured).
    """
    if t == T_SYNC:
        if not valid_pool_sync(buf, v):
            counters[K_BAD_EVENT] += 1
            return -1
        a, b, c = ld_addr(buf, v + SY_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        block = ld_u64(buf, v + SY_BLOCK)
        log = ld_u32(buf, v + SY_LOG)
        flags = buf[v + SY_FLAGS]
        if p < 0:
            if flags & EVENT_REMOVED:
                return -1
            venue = np.int64(ld_u32(buf, v + SY_VENUE) & np.uint64(0xFFFF))
            fee = venue_fee[venue]
            if fee < 0:
                counters[K_UNKNOWN_POOL] += 1
                return -1
            t0a, t0b, t0c = ld_addr(buf, v + SY_TOKEN0)
            t1a, t1b, t1c = ld_addr(buf, v + SY_TOKEN1)
            p = add_pool(pools, tokens, pairs, pool_ht, token_ht, pair_ht, meta, tn, a, b, c, KIND_V2,
                         t0a, t0b, t0c, t1a, t1b, t1c, buf[v + SY_DEC0], buf[v + SY_DEC1], fee, venue, 0)
            if p < 0:
                counters[K_TABLE_FULL] += 1
                return -1
        if pools[p, C_KIND] != np.uint64(KIND_V2):
            counters[K_BAD_EVENT] += 1
            return -1
        handled, res = _removed_or_duplicate(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log,
                                             flags & EVENT_REMOVED)
        if handled:
            return res
        _journal_push(pools, journal, meta, p, block, log, EV_SYNC, 0, 0, U0, U0)
        pools[p, C_R0] = ld_u64(buf, v + SY_R0)
        pools[p, C_R0 + 1] = ld_u64(buf, v + SY_R0 + 8)
        pools[p, C_R1] = ld_u64(buf, v + SY_R1)
        pools[p, C_R1 + 1] = ld_u64(buf, v + SY_R1 + 8)
        pools[p, C_HAS_STATE] = U1
        pools[p, C_STALE] = U0      # a PoolSync holds both reserves: the whole tradable state
        _stamp_applied(pools, counters, p, block, log)
        return p

    if t == T_SWAP:
        a, b, c = ld_addr(buf, v + SW_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        if p < 0:
            counters[K_UNKNOWN_POOL] += 1
            return -1
        if pools[p, C_KIND] == np.uint64(KIND_V2):
            counters[K_IGNORED_TLVS] += 1  # constant-product state comes from PoolSync
            return -1
        if not valid_pool_swap(buf, v):
            counters[K_BAD_EVENT] += 1
            return -1
        block = ld_u64(buf, v + SW_BLOCK)
        log = ld_u32(buf, v + SW_LOG)
        handled, res = _removed_or_duplicate(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log,
                                             buf[v + SW_FLAGS] & EVENT_REMOVED)
        if handled:
            return res
        _journal_push(pools, journal, meta, p, block, log, EV_SWAP, 0, 0, U0, U0)
        for k in range(4):
            pools[p, C_SQRT + k] = ld_u64(buf, v + SW_SQRT + 8 * k)
        pools[p, C_LIQ] = ld_u64(buf, v + SW_LIQ)
        pools[p, C_LIQ + 1] = ld_u64(buf, v + SW_LIQ + 8)
        tick = ld_i32(buf, v + SW_TICK)
        pools[p, C_TICK] = np.uint64(tick)
        if tick < np.int64(pools[p, C_COV_LO]) - 1 or tick > np.int64(pools[p, C_COV_HI]):
            # the price left the covered tick range (a tick exactly at its lower edge reads
            # as edge - 1 after a downward swap): the ticks around it are unknown
            counters[K_TICK_SET_INCOMPLETE] += 1
            _want_refresh(pools, meta, counters, p, REFRESH_UNKNOWN_TICK)
        _stamp_applied(pools, counters, p, block, log)
        return p

    if t == T_MINT or t == T_BURN:
        a, b, c = ld_addr(buf, v + MB_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        if p < 0:
            counters[K_UNKNOWN_POOL] += 1
            return -1
        if pools[p, C_KIND] == np.uint64(KIND_V2):
            counters[K_IGNORED_TLVS] += 1  # constant-product reserves come from PoolSync
            return -1
        if not valid_position(buf, v, np.int64(pools[p, C_SPACING])):
            counters[K_BAD_EVENT] += 1
            return -1
        block = ld_u64(buf, v + MB_BLOCK)
        log = ld_u32(buf, v + MB_LOG)
        handled, res = _removed_or_duplicate(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log,
                                             buf[v + MB_FLAGS] & EVENT_REMOVED)
        if handled:
            return res
        lower = ld_i32(buf, v + MB_LOWER)
        upper = ld_i32(buf, v + MB_UPPER)
        d_lo = ld_u64(buf, v + MB_DELTA)
        d_hi = ld_u64(buf, v + MB_DELTA + 8)
        if d_lo == U0 and d_hi == U0:
            # a zero-liquidity burn (fee collection poke) changes nothing tradable
            pools[p, C_LAST_BLOCK] = block
            pools[p, C_LAST_LOG] = log
            return -1
        ev = EV_MINT if t == T_MINT else EV_BURN
        _journal_push(pools, journal, meta, p, block, log, ev, lower, upper, d_lo, d_hi)
        res = _apply_position(pools, tticks, tnets, tgross, tn, p, lower, upper, d_lo, d_hi, t == T_MINT)
        if res != 0:
            # the tick set is no longer the pool's: trade it again on a fresh snapshot
            counters[K_TICK_SET_INCOMPLETE] += 1
            if res < 0:
                counters[K_TICK_TABLE_FULL] += 1
            _want_refresh(pools, meta, counters, p, REFRESH_UNKNOWN_TICK if res < 0 else res)
        _stamp_applied(pools, counters, p, block, log)
        return p

    if t == T_STATE:
        a, b, c = ld_addr(buf, v + ST_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        kind = np.int64(buf[v + ST_KIND])
        if (kind != KIND_V2 and kind != KIND_V3 and kind != KIND_ALGEBRA) or not valid_pool_state(buf, v, kind):
            counters[K_BAD_EVENT] += 1
            return -1
        if p < 0:
            t0a, t0b, t0c = ld_addr(buf, v + ST_TOKEN0)
            t1a, t1b, t1c = ld_addr(buf, v + ST_TOKEN1)
            venue = np.int64(ld_u32(buf, v + ST_VENUE) & np.uint64(0xFFFF))
            p = add_pool(pools, tokens, pairs, pool_ht, token_ht, pair_ht, meta, tn, a, b, c, kind,
                         t0a, t0b, t0c, t1a, t1b, t1c, buf[v + ST_DEC0], buf[v + ST_DEC1],
                         ld_u32(buf, v + ST_FEE), venue, ld_i16(buf, v + ST_SPACING))
            if p < 0:
                counters[K_TABLE_FULL] += 1
                return -1
        if pools[p, C_KIND] != np.uint64(kind):
            counters[K_BAD_EVENT] += 1
            return -1
        block = ld_u64(buf, v + ST_BLOCK)
        if pools[p, C_HAS_STATE] != U0 and pools[p, C_STALE] == U0 and block < pools[p, C_STATE_BLOCK]:
            counters[K_DUPLICATE_EVENTS] += 1  # an older snapshot than the events already applied
            return -1
        for k in range(2):
            pools[p, C_R0 + k] = ld_u64(buf, v + ST_R0 + 8 * k)
            pools[p, C_R1 + k] = ld_u64(buf, v + ST_R1 + 8 * k)
            pools[p, C_LIQ + k] = ld_u64(buf, v + ST_LIQ + 8 * k)
        for k in range(4):
            pools[p, C_SQRT + k] = ld_u64(buf, v + ST_SQRT + 8 * k)
        pools[p, C_TICK] = np.uint64(ld_i32(buf, v + ST_TICK))
        pools[p, C_FEE] = ld_u32(buf, v + ST_FEE)
        if kind != KIND_V2:
            pools[p, C_SPACING] = np.uint64(ld_i16(buf, v + ST_SPACING))
            # the snapshot replaces the tick set too: its PoolTicks (and TickCoverage) follow
            _clear_ticks(tticks, tnets, tgross, tn, np.int64(pools[p, C_V3ROW]))
            pools[p, C_TICK_BLOCK] = block
            pools[p, C_COV_LO] = NO_COV_LO
            pools[p, C_COV_HI] = NO_COV_HI
        pools[p, C_WANT] = U0
        pools[p, C_LAST_BLOCK] = block
        pools[p, C_LAST_LOG] = LOG_SNAPSHOT
        pools[p, C_STATE_BLOCK] = block
        pools[p, C_HAS_STATE] = U1
        pools[p, C_STALE] = U0
        pools[p, C_SNAP_BLOCK] = block
        pools[p, C_JR_LAST] = np.uint64(np.int64(-1))  # history before a snapshot cannot be undone exactly
        counters[K_APPLIED] += 1
        return p

    if t == T_TICK:
        a, b, c = ld_addr(buf, v + TK_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        if p < 0:
            counters[K_UNKNOWN_POOL] += 1
            return -1
        if pools[p, C_KIND] == np.uint64(KIND_V2) or not valid_pool_tick(buf, v, np.int64(pools[p, C_SPACING])):
            counters[K_BAD_EVENT] += 1
            return -1
        row = np.int64(pools[p, C_V3ROW])
        block = ld_u64(buf, v + TK_BLOCK)
        if block < pools[p, C_TICK_BLOCK]:
            counters[K_DUPLICATE_EVENTS] += 1
            return -1
        if block > pools[p, C_TICK_BLOCK] or tn[row] == 0:
            _clear_ticks(tticks, tnets, tgross, tn, row)  # a newer snapshot replaces the whole tick set
            pools[p, C_TICK_BLOCK] = block
        tick = ld_i32(buf, v + TK_TICK)
        n = tn[row]
        i = _tick_index(tticks, row, n, tick)
        if i >= n or tticks[row, i] != tick:
            if n >= tticks.shape[1]:
                counters[K_TICK_TABLE_FULL] += 1
                pools[p, C_STALE] = U1
                return -1
            for k in range(n, i, -1):
                tticks[row, k] = tticks[row, k - 1]
                tnets[row, k, 0] = tnets[row, k - 1, 0]
                tnets[row, k, 1] = tnets[row, k - 1, 1]
                tgross[row, k, 0] = tgross[row, k - 1, 0]
                tgross[row, k, 1] = tgross[row, k - 1, 1]
            tn[row] = n + 1
            tticks[row, i] = tick
        tnets[row, i, 0] = ld_u64(buf, v + TK_NET)
        tnets[row, i, 1] = ld_u64(buf, v + TK_NET + 8)
        tgross[row, i, 0] = GROSS_UNKNOWN
        tgross[row, i, 1] = GROSS_UNKNOWN
        counters[K_APPLIED] += 1
        return p

    if t == T_COVERAGE:
        a, b, c = ld_addr(buf, v + TC_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        if p < 0:
            counters[K_UNKNOWN_POOL] += 1
            return -1
        if pools[p, C_KIND] == np.uint64(KIND_V2) or not valid_tick_coverage(buf, v):
            counters[K_BAD_EVENT] += 1
            return -1
        lower = ld_i32(buf, v + TC_LOWER)
        upper = ld_i32(buf, v + TC_UPPER)
        if ld_u64(buf, v + TC_BLOCK) != pools[p, C_SNAP_BLOCK]:
            counters[K_IGNORED_TLVS] += 1    # not the range of the snapshot the arrays hold
            return -1
        pools[p, C_COV_LO] = np.uint64(lower)
        pools[p, C_COV_HI] = np.uint64(upper)
        tick = np.int64(pools[p, C_TICK])
        if tick < lower - 1 or tick > upper:
            counters[K_TICK_SET_INCOMPLETE] += 1
            _want_refresh(pools, meta, counters, p, REFRESH_UNKNOWN_TICK)
        counters[K_APPLIED] += 1
        return p

    if t == T_FEE:
        if not valid_pool_fee(buf, v):         # no contract holds a fee of 100 % or more
            counters[K_BAD_EVENT] += 1
            return -1
        a, b, c = ld_addr(buf, v + PF_POOL)
        p = find_pool(pools, pool_ht, a, b, c)
        if p < 0:
            counters[K_UNKNOWN_POOL] += 1
            return -1
        fee = ld_u32(buf, v + PF_FEE)
        if pools[p, C_KIND] != np.uint64(KIND_ALGEBRA) or fee > np.uint64(MAX_ALGEBRA_FEE):
            counters[K_BAD_EVENT] += 1     # only a dynamic-fee pool has a fee that changes, a uint16
            return -1
        block = ld_u64(buf, v + PF_BLOCK)
        log = ld_u32(buf, v + PF_LOG)
        if log == LOG_FROM_STATE:
            # read from globalState at ``block``: the fee in force after every event up to it
            if pools[p, C_HAS_STATE] != U0 and block < pools[p, C_STATE_BLOCK]:
                counters[K_DUPLICATE_EVENTS] += 1
                return -1
            pools[p, C_FEE] = fee
            counters[K_APPLIED] += 1
            return p
        handled, res = _removed_or_duplicate(pools, journal, tticks, tnets, tgross, tn, counters, p, block, log,
                                             buf[v + PF_FLAGS] & EVENT_REMOVED)
        if handled:
            return res
        _journal_push(pools, journal, meta, p, block, log, EV_FEE, 0, 0, U0, U0)
        pools[p, C_FEE] = fee
        _stamp_applied(pools, counters, p, block, log)
        return p

    if t == T_GAS:
        meta[M_GAS_BASE] = np.int64(ld_u64(buf, v + GP_BASE))
        meta[M_GAS_PRIO] = np.int64(ld_u64(buf, v + GP_PRIO))
        meta[M_GAS_BLOCK] = np.int64(ld_u64(buf, v + GP_BLOCK))
        meta[M_CHAIN_ID] = np.int64(ld_u32(buf, v + GP_CHAIN))
        return -1

    counters[K_IGNORED_TLVS] += 1
    return -1


@njit(cache=True, inline="always")
def source_bit(src):
    """The bit of market-data source ``src`` (0..255) in ``C_SOURCES`` (sources 64 apart share one:
    a gap of either then marks both's pools, never fewer)."""
    return np.uint64(1) << np.uint64(src & 63)


@njit(cache=True)
def mark_source_stale(pools, meta, src):
    """A gap in source ``src``'s stream: its lost frames could have changed only pools that source
    feeds, and those turn stale (each heals at its next PoolState, a constant-product one at its
    next PoolSync). Returns how many pools it marked."""
    bit = source_bit(src)
    n = 0
    for p in range(meta[M_NPOOLS]):
        if pools[p, C_SOURCES] & bit:
            if pools[p, C_STALE] == U0:
                n += 1
            pools[p, C_STALE] = U1
    meta[M_PRICE_EPOCH] += 1
    return n


@njit(cache=True)
def pool_tradable(pools, tn, p):
    """A pool takes part in cycles only with a fresh, complete state."""
    if pools[p, C_STALE] != U0 or pools[p, C_HAS_STATE] == U0:
        return False
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        return (pools[p, C_R0] | pools[p, C_R0 + 1]) != U0 and (pools[p, C_R1] | pools[p, C_R1 + 1]) != U0
    if (pools[p, C_LIQ] | pools[p, C_LIQ + 1]) == U0:
        return False
    if (pools[p, C_SQRT] | pools[p, C_SQRT + 1] | pools[p, C_SQRT + 2]) == U0:
        return False
    # active liquidity needs its ticks, or a covered range that holds none
    return tn[np.int64(pools[p, C_V3ROW])] > 0 or pools[p, C_COV_LO] != NO_COV_LO


@njit(cache=True)
def scan_waiting(pools, tn, meta, counters, out):
    """Rows of the pools that wait on a fresh snapshot (C_WANT set) into ``out`` (int64, at
    least M_NPOOLS long); returns how many.

    A concentrated-liquidity pool with a state but neither ticks nor a covered range starts
    waiting here (REFRESH_NO_TICKS: the kernels never trade it, see pool_tradable); one that
    got either since stops waiting.
    """
    k = 0
    for p in range(meta[M_NPOOLS]):
        w = pools[p, C_WANT]
        if pools[p, C_KIND] != np.uint64(KIND_V2) and pools[p, C_HAS_STATE] != U0:
            empty = tn[np.int64(pools[p, C_V3ROW])] == 0 and pools[p, C_COV_LO] == NO_COV_LO
            if w == U0 and empty and pools[p, C_STALE] == U0:
                w = np.uint64(REFRESH_NO_TICKS)
                pools[p, C_WANT] = w
                meta[M_WANTS] += 1
                counters[K_REFRESH_WANTED] += 1
            elif w == np.uint64(REFRESH_NO_TICKS) and not empty:
                w = U0
                pools[p, C_WANT] = w
        if w != U0:
            out[k] = p
            k += 1
    return k
