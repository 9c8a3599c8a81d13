"""The adapter on an Algebra v1.0 venue (QuickSwap V3) with real bytecode: discovery through the
Algebra factory (``poolByPair``), snapshots from ``globalState()``/``tickTable``/``ticks``, the
pool's Swap, Mint, Burn and Fee events as records, and a PoolRefresh answer; the strategy fed
with those records holds exactly the pool's state on chain (price, tick, liquidity, fee, ticks)."""
from __future__ import annotations

import pytest

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.config import EvmDataClientConfig, FactoryConfig
from alphapulse.adapters.evm.decode import AlgebraFee, decode_log, to_record
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from tests.adapters.chain_helpers import addr, kinds

MIN_P1 = 4295128739 + 1
MAX_P1 = 1461446703485210103287273052203988822378723970342 - 1
Q96 = 1 << 96


@pytest.fixture(scope="module")
def algebra_node(request):
    from alphapulse.chain.algebra import ALGEBRA_GAS_LIMIT, ANVIL_ARGS
    from alphapulse.chain.anvil import Anvil, AnvilNotFound
    try:
        node = Anvil(extra_args=ANVIL_ARGS, gas_limit=ALGEBRA_GAS_LIMIT).start()
    except AnvilNotFound as exc:
        pytest.fail(str(exc))
    request.addfinalizer(node.stop)
    return node


@pytest.fixture(scope="module")
def alg(algebra_node):
    from alphapulse.chain.algebra import deploy_algebra
    return deploy_algebra(algebra_node.http_url)


def _config(alg, node, **kw):
    fac = FactoryConfig(address=alg.factory.lower(), venue=int(L.Venue.QUICKSWAP_V3), kind="algebra")
    return EvmDataClientConfig(endpoints=(node.ws_url,), factories=(fac,), chain_id=alg.w3.eth.chain_id,
                               watchdog_s=5.0, backoff_initial_s=0.05, backoff_max_s=0.5, request_timeout_s=5.0,
                               **kw)


def _swap(alg, pool, zero_to_one, amount):
    # a new block timestamp (anvil may give consecutive blocks the same second): the swap
    # recomputes the pool's fee (a Fee event) from its adaptive-fee configuration
    now = alg.w3.eth.get_block("latest")["timestamp"]
    alg.w3.provider.make_request("evm_setNextBlockTimestamp", [now + 2])
    rc = alg.tx.transact(alg.swap_tx(pool, zero_to_one, amount, MIN_P1 if zero_to_one else MAX_P1), "swap")
    return rc


def test_fee_event_decodes_to_a_pool_fee_record():
    fee_log = {"topics": [abi.ALGEBRA_FEE.topic0_hex], "data": "0x" + (1234).to_bytes(32, "big").hex(),
               "address": "0x" + "11" * 20, "blockNumber": "0x10", "logIndex": "0x3", "blockHash": "0x" + "22" * 32}
    ev = decode_log(fee_log)
    assert isinstance(ev, AlgebraFee) and ev.fee == 1234

    class P:
        address, kind, venue = bytes.fromhex("11" * 20), 3, int(L.Venue.QUICKSWAP_V3)
        token0 = token1 = bytes(20)
        decimals0 = decimals1 = 18
    rec = to_record(ev, P, 7)
    assert isinstance(rec, codec.PoolFee) and rec.fee_pips == 1234 and rec.log_index == 3 and rec.block_number == 16
    assert rec.block_ts_ns == 7 * 10**9 and rec.venue == 406
    # a fee that a uint16 cannot hold is a counted decode error, never truncated
    bad = dict(fee_log, data="0x" + (1 << 16).to_bytes(32, "big").hex())
    with pytest.raises(Exception) as e:
        decode_log(bad)
    assert getattr(e.value, "reason", "") == "bad_data"


def test_adapter_follows_an_algebra_pool_and_the_strategy_holds_its_exact_state(algebra_node, alg, adapter_run):
    from alphapulse.strategy.config import EngineConfig
    from alphapulse.strategy.engine import StrategyEngine
    pool = alg.create_pool("TKA", "TKB", Q96)
    for lo, hi, liq in ((-887220, 887220, 10**21), (-600, 600, 5 * 10**21), (-1800, -120, 3 * 10**21),
                        (180, 2400, 2 * 10**21)):
        alg.mint(pool, lo, hi, liq)
    # a new adaptive-fee configuration (alphas 0: the recomputed fee is the base fee)
    alg.set_fee_configuration(pool, 0, 0, 1, 1, 1, 1, 0, 1, 700)
    b0 = algebra_node.block_number()
    run = adapter_run(_config(alg, algebra_node))
    run.wait_connected()
    algebra_node.mine(1)
    rc1 = _swap(alg, pool, True, 3 * 10**20)         # the pool's first event: discovery, snapshot
    alg.mint(pool, -240, 300, 10**21)
    rc2 = _swap(alg, pool, False, 9 * 10**20)        # crosses ticks upward
    alg.set_fee_configuration(pool, 0, 0, 1, 1, 1, 1, 0, 1, 2500)
    rc3 = _swap(alg, pool, True, 10**20)             # a new block: the fee recomputed (Fee event)
    b1 = algebra_node.block_number()
    run.wait_head(b1)
    run.wait_block_end(b1)
    recs = run.records()
    k = kinds(recs)
    p = addr(pool)
    states = [r for r in recs if isinstance(r, codec.PoolState) and r.pool == p]
    assert len(states) == 1 and states[0].pool_kind == int(L.PoolKind.CONCENTRATED_DYNAMIC_FEE)
    assert states[0].venue == 406 and states[0].tick_spacing == 60
    fees = [r for r in recs if isinstance(r, codec.PoolFee)]
    chain_fees = [alg.swap_result(pool, rc).fee_event for rc in (rc1, rc2, rc3)]
    assert chain_fees == [700, 700, 2500]
    assert [f.fee_pips for f in fees] == chain_fees
    assert k["PoolSwap"] >= 2 and k["PoolMint"] >= 1
    assert run.counters["skipped_kind_mismatch"] == 0 and not any(
        c.startswith("decode_error") for c in run.counters)

    # a PoolRefresh answer: a fresh snapshot at the head, its fee from globalState
    assert run.client.refresh_threadsafe(p, int(L.RefreshReason.STALE), b1)
    run.wait_until(lambda: run.counters["refreshes"] >= 1, 20, "refresh")
    recs = run.records()
    run.stop()
    snap = [r for r in recs if isinstance(r, codec.PoolState) and r.pool == p][-1]
    assert snap.block_number == b1 and snap.fee_pips == 2500

    # the strategy fed with the stream holds the pool exactly as the chain has it
    e = StrategyEngine(EngineConfig(evaluate="frame", max_pools=16, max_tokens=16, max_v3_pools=8,
                                    max_ticks_per_pool=64, journal_size=64, signal_table_size=16,
                                    max_signals_per_batch=16))
    import numpy as np
    for f in run.frames:
        e.process([np.frombuffer(f, np.uint8)])
    assert e.counters()["bad_event"] == 0
    info = e.registry.pool(p)
    truth = alg.pool_state(pool, b1)
    assert info.kind == 3 and info.fee_pips == truth.fee == 2500
    assert (info.sqrt_price_x96, info.tick, info.liquidity) == (truth.price, truth.tick, truth.liquidity)
    lo, hi = info.coverage       # the snapshot's covered range (tick_snapshot_range about the price)
    assert lo <= -1800 and hi >= 2400
    assert info.ticks == tuple((t, n) for t, n in zip(truth.ticks, truth.nets) if lo <= t <= hi)
    assert b0 < b1
