"""The live demo's market (``--source local-chain``) with its Algebra venue (QuickSwap V3, venue
406): pools with positions across many ticks at the fee configured, the simulated traders trade
them, and the pipeline describes the factory as kind "algebra"."""
from __future__ import annotations

from alphapulse.protocol.layout import PoolKind, Venue
from tests.conftest import own_node_fixtures

anvil, _deployed_market = own_node_fixtures(algebra=True)
ALG = PoolKind.CONCENTRATED_DYNAMIC_FEE


def test_demo_market_has_algebra_pools_the_simulator_trades(market):
    from alphapulse.chain.simulator import MarketSimulator, SimulatorConfig
    algs = [p for p in market.pools if p.kind == ALG]
    assert sorted(p.label for p in algs) == ["WETH/USDC@406", "WMATIC/USDC@406"]
    assert market.factory_venues[market.algebra_factory] == int(Venue.QUICKSWAP_V3)
    for p in algs:
        st = market.v3_state(p)
        assert st.fee_pips == 2500 and st.tick_spacing == 60 and len(st.ticks) >= 6 and st.liquidity > 0
        # same pair, same price on the Algebra pool and the pair's Uniswap V3 pool
        v3 = market.pools_for(market.token(p.token0).symbol, market.token(p.token1).symbol, PoolKind.CONCENTRATED)[0]
        assert abs(float(market.price(p) / market.price(v3)) - 1) < 1e-3
    before = {p.address: market.slot0(p)[0] for p in algs}
    sim = MarketSimulator(market, SimulatorConfig(seed=5, txs_per_block=8))
    traded = set()
    for _ in range(12):
        rep = sim.step()
        assert rep.reverted == 0
        traded |= {a.pool for a in rep.actions if a.pool.endswith("@406")}
    assert traded, "the simulated traders never traded an Algebra pool"
    assert any(market.slot0(p)[0] != before[p.address] for p in algs)


def test_pipeline_describes_the_algebra_factory(market):
    from alphapulse.apps.config import ChainConfig
    from alphapulse.apps.pipeline import market_chain_config
    ch = market_chain_config(ChainConfig(), market)
    kinds = {f.venue: f.kind for f in ch.factories}
    assert kinds[int(Venue.QUICKSWAP_V3)] == "algebra" and kinds[int(Venue.UNISWAP_V3_POLYGON)] == "v3"
    assert {kinds[400], kinds[401]} == {"v2"}
