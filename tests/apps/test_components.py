"""The strategy component on real rings, with the scheduling a latency-minded deployment asks for."""
from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from alphapulse.apps.config import Config
from alphapulse.metrics import MetricsBlock, render_prometheus
from alphapulse.protocol import codec
from alphapulse.ring import Ring
from alphapulse.strategy.config import EngineConfig
from tests.dashboard.conftest import POOLS, sync_frame


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while not (v := pred()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return v


@pytest.mark.parametrize("wait,priority", [("spin", 1), ("sleep", 0)])
def test_strategy_component_waits_and_schedules_as_configured(wait, priority):
    from alphapulse.apps.components import strategy
    tag = uuid.uuid4().hex[:8]
    md = Ring.create(f"test_comp_{tag}_md", 1 << 20, "overwrite")
    sig = Ring.create(f"test_comp_{tag}_sig", 1 << 20, "lossless")
    stop = threading.Event()
    engine = EngineConfig.from_app_config(Config())
    metrics = MetricsBlock.create(f"alphapulse_test_comp_{tag}", components=["strategy"])
    t = threading.Thread(target=strategy, args=(stop,), daemon=True,
                         kwargs=dict(market_ring=md.name, signal_ring=sig.name, engine=engine,
                                     wait=wait, realtime_priority=priority, metrics=metrics.name))
    cons = sig.consumer("test", wait="sleep")
    try:
        t.start()
        st = _wait(lambda: [c for c in md.stats()["consumers"] if c["name"] == "strategy"], 30,
                   "the strategy consumer")
        assert st[0]["wait"] == wait
        # sched_setscheduler(0, ...) applies to the calling thread: the component's own
        policy = os.sched_getscheduler(t.native_id)
        if priority and os.geteuid() == 0:
            assert policy == os.SCHED_FIFO
            assert os.sched_getparam(t.native_id).sched_priority == priority
        elif not priority:
            assert policy == os.SCHED_OTHER
        # and it still does its job: two venues 1 % apart on one pair give a signal at the end
        # of their block, and the component reports that block as its last
        p = md.producer()
        now = time.time_ns()
        p.publish(sync_frame(1, POOLS[0], 400, 2_000_000 * 10 ** 6, 1000 * 10 ** 18, 100, now))
        p.publish(sync_frame(2, POOLS[1], 401, 2_020_000 * 10 ** 6, 1000 * 10 ** 18, 100, now))
        time.sleep(0.2)
        assert cons.poll(timeout=0.0) == []          # the block is not over
        p.publish(codec.build_frame(1, 4, 3, [codec.BlockEnd(block_number=100, block_ts_ns=now, event_count=2,
                                                              chain_id=137, block_hash=bytes(32))]))
        views = _wait(lambda: cons.poll(timeout=0.05), 30, "a signal frame")
        recs = [r for v in views for f in codec.iter_frames(bytes(v)) for r in f.tlvs]
        cons.release()
        assert any(isinstance(r, codec.ArbitrageSignal) for r in recs)
        _wait(lambda: metrics.gauge("strategy", "last_block").value == 100, 30, "last_block = 100")
        assert 'alphapulse_last_block{component="strategy"} 100' in render_prometheus(metrics.snapshot())
    finally:
        stop.set()
        t.join(10)
        cons.close()
        md.close()
        sig.close()
        md.unlink()
        sig.unlink()
        metrics.close()
    assert not t.is_alive()


def test_strategy_component_asks_the_system_ring_for_a_pool_without_tick_data():
    from alphapulse.apps.components import strategy
    from alphapulse.protocol import layout as L
    tag = uuid.uuid4().hex[:8]
    md = Ring.create(f"test_comp_{tag}_md", 1 << 20, "overwrite")
    sig = Ring.create(f"test_comp_{tag}_sig", 1 << 20, "lossless")
    sysr = Ring.create(f"test_comp_{tag}_sys", 1 << 16, "lossless")
    stop = threading.Event()
    engine = EngineConfig.from_app_config(Config())
    t = threading.Thread(target=strategy, args=(stop,), daemon=True,
                         kwargs=dict(market_ring=md.name, signal_ring=sig.name, engine=engine,
                                     system_ring=sysr.name))
    cons = sysr.consumer("test", wait="sleep")
    pool = bytes([7]) * 20
    try:
        t.start()
        _wait(lambda: [c for c in md.stats()["consumers"] if c["name"] == "strategy"], 30, "the strategy consumer")
        state = codec.PoolState(sqrt_price_x96=1 << 96, liquidity=10**20, block_number=100, tick=0, fee_pips=3000,
                                venue=405, pool_kind=2, token0_decimals=18, token1_decimals=18, tick_spacing=60,
                                pool=pool, token0=bytes([1]) * 20, token1=bytes([2]) * 20)
        md.producer().publish(codec.build_frame(int(L.Domain.MARKET_DATA), 4, 1, [state]))
        views = _wait(lambda: cons.poll(timeout=0.05), 30, "a PoolRefresh frame")
        recs = [r for v in views for f in codec.iter_frames(bytes(v)) for r in f.tlvs]
        cons.release()
        reqs = [r for r in recs if isinstance(r, codec.PoolRefresh)]
        assert reqs and bytes(reqs[0].pool) == pool and reqs[0].reason == L.RefreshReason.NO_TICK_DATA
        assert reqs[0].block_number == 100
    finally:
        stop.set()
        t.join(10)
        cons.close()
        for r in (md, sig, sysr):
            r.close()
            r.unlink()
    assert not t.is_alive()
