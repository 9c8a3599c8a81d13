"""End to end on a local chain: the engine finds the cycle from the pools' real state, and
executing exactly that path from a funded account returns the signal's amount_out to the wei.

For each case a price difference is created with a real swap, the pools' state is read from
the contracts (reserves, slot0, liquidity, every initialised tick) and fed to the engine as
PoolState/PoolTick frames, and every signal of the wanted shape is executed through the
CycleExecutor (one transaction, the price-limit rule of SwapRouter) on a snapshot of the chain.
"""
from __future__ import annotations

from fractions import Fraction

import pytest
from web3 import Web3

from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import PoolKind
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

from tests.strategy.feed import Feed, signals


def b20(addr: str) -> bytes:
    return bytes.fromhex(addr[2:])


def chain_frames(market, feed: Feed) -> list:
    """One frame per pool with its exact on-chain state (V3: PoolState + every PoolTick)."""
    block = market.w3.eth.block_number
    dec = market.decimals
    frames = []
    for p in market.pools:
        common = dict(block_number=block, fee_pips=p.fee_pips, venue=p.venue, token0_decimals=dec[p.token0],
                      token1_decimals=dec[p.token1], pool=b20(p.address), token0=b20(p.token0),
                      token1=b20(p.token1))
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            r0, r1 = market.reserves(p, block)
            frames.append(feed.frame(C.PoolState(reserve0=r0, reserve1=r1, pool_kind=1, **common)))
        else:
            st = market.v3_state(p, block)
            recs = [C.PoolState(sqrt_price_x96=st.sqrt_price_x96, liquidity=st.liquidity, tick=st.tick,
                                pool_kind=2, tick_spacing=st.tick_spacing, **common)]
            recs += [C.PoolTick(liquidity_net=net, block_number=block, tick=t, venue=p.venue, pool=b20(p.address))
                     for t, net in st.ticks]
            frames.append(feed.frame(*recs))
    return frames


def make_engine(market) -> StrategyEngine:
    fees = {v: 3000 for v in market.v2_factories}
    return StrategyEngine(EngineConfig(
        stable_token=market.tokens["USDC"].address, native_token=market.tokens["WMATIC"].address,
        v2_venue_fees=fees, max_pools=256, max_tokens=64, max_v3_pools=64, max_ticks_per_pool=256,
        journal_size=1024, signal_table_size=1024, max_signals_per_batch=512))


def shape(market, sig) -> str:
    kinds = [market.pool(Web3.to_checksum_address("0x" + bytes(sig.pools[i]).hex())).kind
             for i in range(sig.hops)]
    if sig.hops == 3:
        return "triangle"
    n3 = sum(k == PoolKind.CONCENTRATED for k in kinds)
    return ("V2-V2", "V2-V3", "V3-V3")[n3]


def execute_signal(market, sig):
    path = []
    for i in range(sig.hops):
        pool = Web3.to_checksum_address("0x" + bytes(sig.pools[i]).hex())
        t_in = Web3.to_checksum_address("0x" + bytes(sig.tokens[i]).hex())
        t_out = Web3.to_checksum_address("0x" + bytes(sig.tokens[(i + 1) % sig.hops]).hex())
        path.append((pool, t_in, t_out))
    return market.execute_cycle(path, sig.amount_in, mode="atomic")


CASES = {
    # case: (pool to move, price factor, shapes that must be found and executed)
    "V2-V2": (("WETH", "USDC", "v2", 400), Fraction(103, 100), ("V2-V2",)),
    "V2-V3": (("WMATIC", "USDC", "v2", 401), Fraction(97, 100), ("V2-V3",)),
    "V3-V3": (("WETH", "USDC", "v3", 500), Fraction(104, 100), ("V3-V3",)),
    "triangle": (("WBTC", "WETH", "v2", 400), Fraction(105, 100), ("triangle",)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_engine_signal_executes_to_the_wei(market, anvil, case):
    (a, b, kind, x), factor, wanted = CASES[case]
    pool = market.v2_pool(a, b, x) if kind == "v2" else market.v3_pool(a, b, x)
    feed = Feed()
    engine = make_engine(market)
    # before the move the market is at equal prices: nothing worth publishing
    quiet = signals(engine.process(chain_frames(market, feed)) + engine.end_input_frames())
    assert quiet == [], [shape(market, s) for s in quiet]
    market.move_price(pool, factor)
    engine = make_engine(market)
    sigs = signals(engine.process(chain_frames(market, feed)) + engine.end_input_frames())
    found = {}
    for s in sigs:
        found.setdefault(shape(market, s), []).append(s)
    for w in wanted:
        assert found.get(w), f"no {w} signal after moving {pool.label}: {sorted(found)}"
    executed = 0
    for w in wanted:
        for sig in found[w][:3]:
            assert sig.amount_out > sig.amount_in and not sig.flags & L.SIGNAL_UNPRICED
            assert sig.net_profit_usd_e8 == sig.gross_profit_usd_e8 - sig.gas_cost_usd_e8
            snap = anvil.snapshot()
            try:
                res = execute_signal(market, sig)
            finally:
                anvil.revert(snap)
            assert res.amount_in == sig.amount_in
            assert res.amount_out == sig.amount_out, (w, [bytes(p).hex() for p in sig.pools[:sig.hops]])
            executed += 1
    assert executed >= 1
