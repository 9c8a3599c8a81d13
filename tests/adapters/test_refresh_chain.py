"""PoolRefresh on the system ring, answered by the adapter on a real anvil node with real
Uniswap V3 bytecode: a fresh PoolState + TickCoverage + PoolTicks equal to the chain's."""
import os
import threading
import time
from fractions import Fraction

import pytest

from alphapulse.adapters.evm.frames import build_frame
from alphapulse.apps.components import read_pool_refreshes
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.ring import Ring

from .chain_helpers import adapter_config, addr


@pytest.fixture
def system_ring(adapter_run):
    """A system ring, and a function that wires an adapter run to it (the source's reader thread)."""
    ring = Ring.create(f"t_sys_{os.getpid()}_{time.monotonic_ns() % 10**9}", 1 << 16, "overwrite")
    prod = ring.producer()
    stop = threading.Event()
    threads = []
    seq = [0]

    def attach(run):
        t = threading.Thread(target=read_pool_refreshes, args=(stop, ring.name, [run.client]), daemon=True)
        t.start()
        threads.append(t)
        run.wait_until(lambda: ring.stats()["consumers"], 10, "the source on the system ring")

    def ask(pool: bytes, reason=L.RefreshReason.UNKNOWN_TICK, block=0):
        seq[0] += 1
        prod.publish(build_frame(L.Domain.SYSTEM, L.Source.ARBITRAGE_STRATEGY, seq[0],
                                 [codec.PoolRefresh(pool=pool, reason=int(reason), block_number=block)]))

    yield attach, ask
    stop.set()
    for t in threads:
        t.join(5)
        assert not t.is_alive()
    prod.close()
    ring.close()


def _snapshots(run, pool):
    """[(PoolState, TickCoverage, {tick: PoolTick})] of ``pool``, one per snapshot frame."""
    out = []
    for f in list(run.frames):
        tlvs = codec.parse_frame(f).tlvs
        if tlvs and isinstance(tlvs[0], codec.PoolState) and tlvs[0].pool == pool:
            assert isinstance(tlvs[1], codec.TickCoverage) and tlvs[1].pool == pool
            out.append((tlvs[0], tlvs[1], {t.tick: t for t in tlvs[2:]}))
    return out


def _chain_ticks(c, sp, lo, hi, block):
    """Initialised ticks of the pool in [lo, hi] at ``block``, from its tick bitmap."""
    wl, wh = -(-lo // sp), hi // sp
    out = set()
    for w in range(wl >> 8, (wh >> 8) + 1):
        bits = c.functions.tickBitmap(w).call(block_identifier=block)
        for b in range(256):
            if bits >> b & 1 and wl <= (w << 8) + b <= wh:
                out.add(((w << 8) + b) * sp)
    return out


def test_refresh_after_positions_far_outside_the_snapshot_equals_the_chain(fresh_chain, adapter_run,
                                                                           system_ring):
    anvil, m = fresh_chain
    attach, ask = system_ring
    v3 = m.v3_pool("WMATIC", "USDC", 3000)
    pool, sp = addr(v3.address), v3.tick_spacing
    c = m.contract("UniswapV3Pool", v3.address)
    run = adapter_run(adapter_config(m, anvil.ws_url, tick_snapshot_range=1200, refresh_min_interval_s=1.0))
    run.wait_connected()
    attach(run)
    m.swap(v3, v3.token0, 10 ** m.decimals[v3.token0] // 10)      # the adapter snapshots the pool
    run.wait_head(anvil.block_number())
    [(st0, cov0, _)] = _snapshots(run, pool)
    a = st0.tick // sp * sp
    # two positions above the covered range; the price moves into them; one is burnt, half the other
    t1, liq1, _, _ = m.add_liquidity_v3(v3, a + 2400, a + 3600, 10**21, 10**9)
    t2, _, _, _ = m.add_liquidity_v3(v3, a + 1800, a + 3000, 10**21, 10**9)
    assert cov0.tick_upper < a + 1800
    m.move_price(v3, Fraction(13, 10))
    m.remove_liquidity_v3(t2)
    m.remove_liquidity_v3(t1, liq1 // 2)
    burnt = anvil.block_number()
    run.wait_head(burnt)
    t_ask = time.monotonic()
    ask(pool, L.RefreshReason.UNKNOWN_TICK, st0.block_number)
    run.wait_until(lambda: len(_snapshots(run, pool)) == 2, 15, "the refresh")
    print(f"PoolRefresh on the system ring -> fresh snapshot published: "
          f"{(time.monotonic() - t_ask) * 1e3:.1f} ms (polled every 20 ms)")
    st, cov, ticks = _snapshots(run, pool)[1]
    b = st.block_number
    assert b >= burnt and cov.block_number == b and all(t.block_number == b for t in ticks.values())
    assert (st.sqrt_price_x96, st.tick, st.liquidity) == m.slot0(v3, b)
    assert st.liquidity == c.functions.liquidity().call(block_identifier=b)
    assert cov.tick_lower <= st.tick - 1200 + sp and cov.tick_upper >= st.tick + 1200 - sp
    assert set(ticks) == _chain_ticks(c, sp, cov.tick_lower, cov.tick_upper, b)
    assert {a + 2400, a + 3600} <= set(ticks) and not {a + 1800, a + 3000} & set(ticks)
    for t, rec in ticks.items():
        assert rec.liquidity_net == c.functions.ticks(t).call(block_identifier=b)[1]
    # the answer sits in the stream after every event of the pool up to its block, before any later one
    seen_answer = False
    for f in list(run.frames):
        for r in codec.parse_frame(f).tlvs:
            if getattr(r, "pool", None) != pool or not isinstance(r, (codec.PoolSwap, codec.PoolSync,
                                                                       codec.PoolMint, codec.PoolBurn,
                                                                       codec.PoolState)):
                continue
            if isinstance(r, codec.PoolState):
                seen_answer = r.block_number == b
            else:
                assert (r.block_number > b) == seen_answer
    assert run.counters["refreshes"] == 1

    # requests for a pool being refreshed merge; the next read waits out refresh_min_interval_s
    t0 = time.monotonic()
    for _ in range(4):
        ask(pool, L.RefreshReason.NEGATIVE_LIQUIDITY, b)
    ask(b"\x99" * 20, L.RefreshReason.NO_TICK_DATA)                # no such pool: counted, no answer
    run.wait_until(lambda: len(_snapshots(run, pool)) == 3, 15, "the second refresh")
    time.sleep(0.3)
    assert len(_snapshots(run, pool)) == 3
    c_ = run.counters
    assert c_["refreshes"] == 2 and c_["refresh_merged"] == 3 and c_["refresh_delayed"] == 1
    assert c_["refresh_unknown_pool"] == 1 and c_["refresh_requests"] == 6
    assert time.monotonic() - t0 >= 0.5
    run.stop()


def test_a_failing_refresh_read_is_counted_and_retried(fresh_chain, adapter_run, system_ring, caplog):
    """The pool's code is swapped for one that fails every call (anvil_setCode): the read fails,
    is counted and logged, and succeeds once the code is back; the adapter keeps running."""
    anvil, m = fresh_chain
    attach, ask = system_ring
    v3 = m.v3_pool("WMATIC", "USDC", 500)
    pool = addr(v3.address)
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    attach(run)
    m.swap(v3, v3.token1, 10 ** m.decimals[v3.token1])
    run.wait_head(anvil.block_number())
    code = anvil.rpc("eth_getCode", [v3.address, "latest"])
    anvil.rpc("anvil_setCode", [v3.address, "0xfe"])
    ask(pool)
    run.wait_until(lambda: run.counters["refresh_errors"] >= 2, 15, "failed reads")
    assert len(_snapshots(run, pool)) == 1
    anvil.rpc("anvil_setCode", [v3.address, code])
    run.wait_until(lambda: len(_snapshots(run, pool)) == 2, 15, "the refresh after the failures")
    st, _, _ = _snapshots(run, pool)[1]
    assert (st.sqrt_price_x96, st.tick, st.liquidity) == m.slot0(v3, st.block_number)
    assert run.counters["refreshes"] == 1 and run.client.connected
    assert any("refresh read" in r.getMessage() for r in caplog.records)
    m.swap(v3, v3.token0, 10 ** m.decimals[v3.token0] // 10)        # and the stream goes on
    run.wait_head(anvil.block_number())
    run.stop()
