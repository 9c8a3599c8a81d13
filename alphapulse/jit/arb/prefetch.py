"""Software prefetching of what a search is about to read.

``_prefetch_span`` touches every 64-byte line of a byte range of an array;
``prefetch_pair_pools`` issues the rows, rate-cache entries and tick rows of
the pools a 2-pool search through one pool reads, so their cache misses
overlap instead of stalling one after the other. No state is written.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.memory import prefetch
from alphapulse.jit.pool_state import (
    C_KIND, C_NEXT_PAIR, C_PAIR, C_TOKEN0, C_TOKEN1, C_V3ROW, KIND_V2, P_COUNT, P_HEAD, P_MEMBERS, P_NMEMBERS,
    T_PRICE_POOL,
)


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
