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

The modules, each importing only those above it:

- :mod:`.params`     layouts: parameters, resume state, table columns, frame offsets
- :mod:`.cycles`     pool access and the exact simulation of a cycle
- :mod:`.sizing`     the float model, the exact search for the best input, its certificate
- :mod:`.valuation`  USD and gas prices, integer x 1e8
- :mod:`.prefetch`   software prefetching of a search's rows
- :mod:`.signals`    the signal table, cycle evaluation, the ArbitrageSignal writer
- :mod:`.search`     the cycle search and the batch entry point (``process_batch``)

This package re-exports the names the strategy, the spinning loop and the tests use.
"""
from __future__ import annotations

from alphapulse.jit.arb.params import (  # noqa: F401
    EVAL_BLOCK, EVAL_FRAME, NPARAMS, PR_CHAIN_ID, PR_CRC_EVERY, PR_EVALUATE, PR_GAS_BASE_UNITS,
    PR_GAS_V2_UNITS, PR_GAS_V3_UNITS, PR_HAS_NATIVE, PR_HAS_STABLE, PR_ITERS_V2, PR_ITERS_V3, PR_MAX_HOPS,
    PR_MAX_INPUT_BPS, PR_MAX_TRIANGLES, PR_MIN_NET_USD_E8, PR_MIN_PRICE_DEPTH_USD, PR_MIN_SPREAD_E9, PR_NATIVE,
    PR_NEIGHBOR_SCAN, PR_REPUBLISH_BLOCKS, PR_REPUBLISH_BPS, PR_SCREEN_PCT, PR_SEARCH_FLAGS, PR_SEARCH_TOL_PPB,
    PR_SIGNAL_CRC, PR_SOURCE, PR_STABLE, PR_STRATEGY_ID, RCCOL, RSCOL, RS_BLK_N, RS_BLK_NUMBER,
    RS_BLK_OVERFLOW, RS_CLOSE, RS_D, RS_EPOCH, RS_FINAL, RS_I, RS_LAST_BLOCK, RS_NTOUCHED, RS_OVERFLOW,
    RS_PENDING, RS_POS, RS_PUB, RS_Q, RS_SINK, RS_STOP, SIG_FRAME, STOP_FLUSH, SVCOL, TL_MAX, TMCOL,
)
from alphapulse.jit.arb.cycles import (  # noqa: F401
    SWCOL, SWC_N, SW_POOL, SW_VER, _marginal_rate, hop_out, simulate_cycle, simulate_cycle_ck,
    virtual_reserves,
)
from alphapulse.jit.arb.sizing import (  # noqa: F401
    MODEL_FLOAT_REL, STAIR_CAP_REL, certified, cycle_model, cycle_piece, hop_model, hop_piece, mobius_optimum,
    model_optimum, optimise_input, rounding_staircase, search_band,
)
from alphapulse.jit.arb.valuation import (  # noqa: F401
    cached_price_pool, gas_usd_e8, gas_via_pool, mid_convert, price_pool, usd_e8, usd_e8_at, usd_e8_f,
)
from alphapulse.jit.arb.prefetch import (  # noqa: F401
    prefetch_pair_pools,
)
from alphapulse.jit.arb.signals import (  # noqa: F401
    cycle_key, evaluate_cycle,
)
from alphapulse.jit.arb.search import (  # noqa: F401
    BATCH_ARRAYS, process_batch, process_packed, search_pool,
)
# pool-state and wide-integer names the tests read through this package
from alphapulse.jit.pool_state import C_TOKEN0, K_SIMULATIONS, M_STATE_VER  # noqa: F401
from alphapulse.jit.wideint import u256_from_f64  # noqa: F401
