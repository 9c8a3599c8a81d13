"""Builds market-data frames for the strategy tests (one source, consecutive sequences)."""
from __future__ import annotations

import itertools

import numpy as np

from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L


def addr(n: int) -> bytes:
    return n.to_bytes(20, "big")


class Feed:
    def __init__(self, source: int = int(L.Source.POLYGON_COLLECTOR)):
        self.source = source
        self.seq = itertools.count(1)
        self.log = itertools.count(1)
        self.block = 100

    def frame(self, *records, seq: int | None = None, ts: int | None = None) -> np.ndarray:
        s = next(self.seq) if seq is None else seq
        b = C.build_frame(int(L.Domain.MARKET_DATA), self.source, s, list(records), timestamp_ns=ts)
        return np.frombuffer(b, np.uint8)

    def v2_state(self, pool, t0, t1, r0, r1, *, venue=int(L.Venue.UNISWAP_V2), fee=3000, d0=18, d1=18, block=None):
        return C.PoolState(reserve0=r0, reserve1=r1, block_number=self.block if block is None else block,
                           fee_pips=fee, venue=venue, pool_kind=1, token0_decimals=d0, token1_decimals=d1,
                           pool=pool, token0=t0, token1=t1)

    def v2_sync(self, pool, t0, t1, r0, r1, *, venue=int(L.Venue.UNISWAP_V2), d0=18, d1=18, flags=0,
                block=None, log=None):
        return C.PoolSync(reserve0=r0, reserve1=r1, block_number=self.block if block is None else block,
                          log_index=next(self.log) if log is None else log, venue=venue,
                          token0_decimals=d0, token1_decimals=d1, flags=flags, pool=pool, token0=t0, token1=t1)

    def v3_state(self, pool, t0, t1, sqrt_price, liquidity, tick, *, fee=3000, spacing=60,
                 venue=int(L.Venue.UNISWAP_V3), d0=18, d1=18, block=None):
        return C.PoolState(sqrt_price_x96=sqrt_price, liquidity=liquidity, tick=tick,
                           block_number=self.block if block is None else block, fee_pips=fee, venue=venue,
                           pool_kind=2, token0_decimals=d0, token1_decimals=d1, tick_spacing=spacing,
                           pool=pool, token0=t0, token1=t1)

    def algebra_state(self, pool, t0, t1, sqrt_price, liquidity, tick, *, fee=500, venue=int(L.Venue.QUICKSWAP_V3),
                      d0=18, d1=18, block=None):
        """PoolState of an Algebra pool (pool_kind 3, QuickSwap V3): its fee in force, spacing 60."""
        return C.PoolState(sqrt_price_x96=sqrt_price, liquidity=liquidity, tick=tick,
                           block_number=self.block if block is None else block, fee_pips=fee, venue=venue,
                           pool_kind=int(L.PoolKind.CONCENTRATED_DYNAMIC_FEE), token0_decimals=d0,
                           token1_decimals=d1, tick_spacing=60, pool=pool, token0=t0, token1=t1)

    def pool_fee(self, pool, fee, *, flags=0, block=None, log=None, venue=int(L.Venue.QUICKSWAP_V3)):
        """PoolFee (an Algebra ``Fee`` event; ``log`` L.LOG_INDEX_FROM_STATE for a fee read from state)."""
        return C.PoolFee(block_number=self.block if block is None else block,
                         log_index=next(self.log) if log is None else log, fee_pips=fee, venue=venue,
                         flags=flags, pool=pool)

    def v3_ticks(self, pool, ticks, nets, *, block=None, venue=int(L.Venue.UNISWAP_V3)):
        return [C.PoolTick(liquidity_net=n, block_number=self.block if block is None else block,
                           tick=t, venue=venue, pool=pool) for t, n in zip(ticks, nets)]

    def v3_swap(self, pool, token_in, token_out, sqrt_price, liquidity, tick, *, flags=0, block=None, log=None,
                venue=int(L.Venue.UNISWAP_V3)):
        return C.PoolSwap(amount_in=1, amount_out=1, sqrt_price_x96_after=sqrt_price, liquidity_after=liquidity,
                          block_number=self.block if block is None else block,
                          log_index=next(self.log) if log is None else log, tick_after=tick, venue=venue,
                          amount_in_decimals=18, amount_out_decimals=18, flags=flags, pool=pool,
                          token_in=token_in, token_out=token_out)

    def v3_mint(self, pool, t0, t1, lower, upper, liquidity, *, burn=False, flags=0, block=None, log=None,
                venue=int(L.Venue.UNISWAP_V3)):
        cls = C.PoolBurn if burn else C.PoolMint
        return cls(liquidity_delta=liquidity, block_number=self.block if block is None else block,
                   log_index=next(self.log) if log is None else log, tick_lower=lower, tick_upper=upper,
                   venue=venue, token0_decimals=18, token1_decimals=18, flags=flags, pool=pool, owner=addr(999),
                   token0=t0, token1=t1)

    def gas(self, base=30_000_000_000, prio=1_000_000_000, chain_id=137):
        return C.GasPrice(base_fee_wei=base, priority_fee_wei=prio, block_number=self.block, chain_id=chain_id)


def signals(frames: list[bytes]):
    """Decoded ArbitrageSignal records of a list of signal frames (checks each frame)."""
    out = []
    for f in frames:
        fr = C.parse_frame(f)
        assert fr.header.relay_domain == int(L.Domain.SIGNAL) and fr.header.source == int(L.Source.ARBITRAGE_STRATEGY)
        assert len(fr.tlvs) == 1
        out.append(fr.tlvs[0])
    return out
