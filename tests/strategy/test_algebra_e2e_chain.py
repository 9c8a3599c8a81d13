"""End to end on a local chain with an Algebra venue: QuickSwap V3 (Algebra v1.0, real npm
bytecode), Uniswap V3 and Uniswap V2 pools on the same pair. A real swap moves the Algebra pool's
price; the pools' state read from the contracts (the Algebra pool's globalState with its fee in
force, tickTable and ticks) is fed to the engine; the engine finds cycles through the Algebra pool
with a V2 pool and with a V3 pool, and executing exactly that path through the ArbExecutor
contract (a flash swap paid in ``algebraSwapCallback``) returns the signal's amount_out to the wei.

The execution runs in the next block, whose first swap of the Algebra pool recomputes its fee
(a Fee event): the pool's adaptive fee is configured so that the recomputed fee is the one in
force, the case the engine prices exactly (alphapulse.jit.amm_algebra, "Fee in force").
"""
from __future__ import annotations

from fractions import Fraction

from web3 import Web3
from web3.logs import DISCARD

from alphapulse.chain.artifacts import function_codec, load_artifact
from alphapulse.chain.txs import encode_deploy
from alphapulse.execution.cycle import signal_hops, venue_kinds
from alphapulse.protocol import codec as C
from alphapulse.protocol.layout import PoolKind
from tests.conftest import own_node_fixtures
from tests.strategy.feed import Feed, signals
from tests.strategy.test_chain_e2e import b20, make_engine

anvil, _deployed_market = own_node_fixtures(algebra=True)
ALG = PoolKind.CONCENTRATED_DYNAMIC_FEE


def chain_frames(market, feed: Feed) -> list:
    block = market.w3.eth.block_number
    dec = market.decimals
    frames = []
    for p in market.pools:
        common = dict(block_number=block, venue=p.venue, token0_decimals=dec[p.token0],
                      token1_decimals=dec[p.token1], pool=b20(p.address), token0=b20(p.token0), token1=b20(p.token1))
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            r0, r1 = market.reserves(p, block)
            frames.append(feed.frame(C.PoolState(reserve0=r0, reserve1=r1, pool_kind=1, fee_pips=p.fee_pips, **common)))
            continue
        st = market.v3_state(p, block)
        recs = [C.PoolState(sqrt_price_x96=st.sqrt_price_x96, liquidity=st.liquidity, tick=st.tick,
                            pool_kind=int(p.kind), fee_pips=st.fee_pips, tick_spacing=st.tick_spacing, **common)]
        recs += [C.PoolTick(liquidity_net=net, block_number=block, tick=t, venue=p.venue, pool=b20(p.address))
                 for t, net in st.ticks]
        frames.append(feed.frame(*recs))
    return frames


def _new_timestamp(market) -> None:
    """The next block gets a new timestamp (anvil may give consecutive blocks the same second):
    its first swap of an Algebra pool recomputes the pool's fee."""
    now = market.w3.eth.get_block("latest")["timestamp"]
    market.w3.provider.make_request("evm_setNextBlockTimestamp", [now + 2])


def _kinds_of(market, sig):
    return [market.pool(Web3.to_checksum_address("0x" + bytes(sig.pools[i]).hex())).kind for i in range(sig.hops)]


def test_algebra_v3_v2_cycles_found_and_executed_to_the_wei(market, anvil):
    alg = market.pools_for("WETH", "USDC", ALG)
    assert len(alg) == 1 and market.pools_for("WETH", "USDC", PoolKind.CONCENTRATED)
    pool = alg[0]
    engine = make_engine(market)
    assert signals(engine.process(chain_frames(market, Feed())) + engine.end_input_frames()) == []
    _new_timestamp(market)
    market.move_price(pool, Fraction(97, 100))
    fee = market.algebra_fee(pool)
    assert fee == 2500
    engine = make_engine(market)
    sigs = signals(engine.process(chain_frames(market, Feed())) + engine.end_input_frames())
    through = [s for s in sigs if ALG in _kinds_of(market, s)]
    shapes = {}
    for s in through:
        others = tuple(sorted(int(k) for k in _kinds_of(market, s) if k != ALG))
        shapes.setdefault(others, []).append(s)
    assert (1,) in shapes and (2,) in shapes, f"Algebra cycles found: {sorted(shapes)}"

    # ArbExecutor deployed by the deployer; each signal executed on a snapshot of the chain
    art = load_artifact("ArbExecutor")
    rc = market.sender.transact(market.sender.tx(market.deployer, None,
                                                 encode_deploy(market.w3, art.abi, art.bytecode, ()), 3_000_000),
                                "ArbExecutor")
    executor = rc["contractAddress"]
    contract = market.w3.eth.contract(address=executor, abi=art.abi)
    kinds = venue_kinds([{"venue": v, "kind": k} for a, k in market.factory_kinds.items()
                         for v in [market.factory_venues[a]]])
    executed = 0
    for key in ((1,), (2,)):
        for sig in shapes[key][:2]:
            assert sig.amount_out > sig.amount_in
            hops = signal_hops(sig, kinds)
            data = function_codec("ArbExecutor", "execute").encode([[h.as_tuple() for h in hops], sig.amount_in, 0])
            snap = anvil.snapshot()
            try:
                _new_timestamp(market)
                rc = market.sender.transact(market.sender.tx(market.deployer, executor, data, 8_000_000),
                                            "ArbExecutor.execute")
                ev = contract.events.CycleExecuted().process_receipt(rc, errors=DISCARD)
                fee_events = [lg for lg in rc["logs"] if lg["address"] == pool.address
                              and bytes(lg["topics"][0]) == Web3.keccak(text="Fee(uint16)")]
            finally:
                anvil.revert(snap)
            assert ev[0]["args"]["amountIn"] == sig.amount_in
            assert ev[0]["args"]["amountOut"] == sig.amount_out, (key, sig.amount_out, ev[0]["args"]["amountOut"])
            # the block's first swap recomputed the fee (Fee event) to the fee in force the signal priced
            k = [bytes(sig.pools[i]) for i in range(sig.hops)].index(b20(pool.address))
            assert sig.fees_pips[k] == fee and len(fee_events) == 1
            executed += 1
    assert executed >= 2
