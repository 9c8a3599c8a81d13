"""Layouts shared by the arbitrage kernels: int64 offsets and sizes, no code.

- ``PR_*``: the strategy's parameters (``params``, int64[NPARAMS]), set by
  ``alphapulse.strategy.config``; amounts in token base units, USD in x 1e8,
  spreads in parts per 1e9, shares in basis points.
- ``RS_*``: ``process_batch``'s resume state (int64[RSCOL]), ``STOP_*`` its
  stop codes, ``PHASE_*`` the search phases.
- ``TM_*``, ``SV_*``, ``RC_*``: columns of the per-token minimum profit, the
  signal table's values and the per-pool rate cache.
- ``S_*``, ``SIG_FRAME``: byte offsets in an ArbitrageSignal TLV and the size
  of its whole frame; ``EV_*``, ``BE_*``: the pool events that carry a block
  number (all from :mod:`alphapulse.protocol.layout`).
- ``Q96F``, ``_E8``, ``_Q96``, ``I64_MAX``: fixed-point constants (2**96 as a
  float, 1e8 and 2**96 as 256-bit limbs, the int64 maximum).
"""
from __future__ import annotations

import numpy as np

from alphapulse.jit.wideint import U0
from alphapulse.protocol import layout as L


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
