"""The execution loop between real rings: newest signal first, an overflowing backlog skips the
oldest (counted), a dead node's checks time out, are counted and the loop runs on, and the
reports published on the execution ring decode as ExecutionReport frames."""
from __future__ import annotations

import socket
import uuid

import pytest

from alphapulse.execution.checker import Checker, EthCallMethod
from alphapulse.execution.component import ExecutionLoop
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.ring import Ring

from tests.execution.chain_signals import kinds, moved_market_signals


@pytest.fixture
def rings():
    tag = uuid.uuid4().hex[:8]
    sig_ring = Ring.create(f"tx{tag}_signal", 1 << 16, "lossless")
    ex_ring = Ring.create(f"tx{tag}_execution", 1 << 16, "lossless")
    yield sig_ring, ex_ring
    for r in (sig_ring, ex_ring):
        r.close()
        r.unlink()


def _publish(prod, sigs, seq0=1):
    for i, s in enumerate(sigs):
        prod.publish(C.build_frame(int(L.Domain.SIGNAL), int(L.Source.ARBITRAGE_STRATEGY), seq0 + i, [s]))


def _reports(cons):
    return [C.parse_frame(f).tlvs[0] for f in cons.frames(timeout=0.0)]


def test_newest_first_skips_counted_and_reports_on_the_ring(market, anvil, rings):
    sig_ring, ex_ring = rings
    sigs = moved_market_signals(market)[:6]
    reader = ex_ring.consumer("test")
    loop = ExecutionLoop(sig_ring.consumer("execution"), ex_ring.producer(),
                         Checker(EthCallMethod(anvil.http_url), kinds(market)), max_backlog=4)
    _publish(sig_ring.producer(), sigs)
    order = []
    while loop.step(0.01):
        order.append(_reports(reader)[-1].signal_id)
    assert order == [s.signal_id for s in sigs[2:]][::-1]          # newest first; the 2 oldest skipped
    assert loop.counts["signals_skipped"] == 2 and loop.counts["checks"] == 4
    assert loop.counts["confirmed"] == 4
    reader.close()
    loop.checker.close()


def test_a_dead_node_is_counted_and_the_loop_runs_on(rings):
    sig_ring, ex_ring = rings
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sig = C.ArbitrageSignal(amount_in=10, amount_out=11, hops=2, venues=(400, 400, 0), signal_id=5,
                            pools=(b"\x01" * 20, b"\x02" * 20, bytes(20)), tokens=(b"\x0a" * 20, b"\x0b" * 20, bytes(20)))
    reader = ex_ring.consumer("test")
    loop = ExecutionLoop(sig_ring.consumer("execution"), ex_ring.producer(),
                         Checker(EthCallMethod(f"http://127.0.0.1:{port}", 0.2), {400: 1}))
    prod = sig_ring.producer()
    _publish(prod, [sig, sig, sig])
    while loop.step(0.01):
        pass
    assert loop.counts["check_timeouts"] == 3 and _reports(reader) == []
    # a signal of an unconfigured venue is a counted skip, not a crash
    _publish(prod, [C.ArbitrageSignal(hops=2, venues=(999, 999, 0))], seq0=4)
    while loop.step(0.01):
        pass
    assert loop.counts["checks_failed"] == 1
    reader.close()


def test_metrics_export_the_checks_by_outcome_and_the_check_latency_histogram():
    from prometheus_client.parser import text_string_to_metric_families

    from alphapulse.execution.component import COUNTERS, render_prometheus as execution_prometheus
    from alphapulse.metrics import DEFAULT_COUNTERS, MetricsBlock, render_prometheus
    m = MetricsBlock.create(f"alphapulse_test_{uuid.uuid4().hex[:8]}", ("strategy", "execution"),
                            counters=DEFAULT_COUNTERS + COUNTERS)
    try:
        assert execution_prometheus({"components": {}, "bounds_ns": []}) == ""
        for key, n in (("checks", 9), ("confirmed", 5), ("changed", 1), ("unprofitable", 1), ("reverted", 1),
                       ("check_timeouts", 1), ("tx_sent", 2), ("tx_included", 1), ("tx_failed", 1)):
            m.counter("execution", key).add(n)
        for ns in (700_000, 1_200_000, 1_900_000, 30_000_000):
            m.observe_latency_ns("execution", ns)
        snap = m.snapshot()
    finally:
        m.close()
    # the whole /metrics text parses (no family declared twice) and carries the new families
    fams = {f.name: f for f in text_string_to_metric_families(render_prometheus(snap) + execution_prometheus(snap))}
    outcomes = {s.labels["outcome"]: s.value for s in fams["alphapulse_check_results"].samples}
    assert outcomes == {"confirmed": 5, "changed": 1, "unprofitable": 1, "reverted": 1, "timeout": 1, "error": 0}
    states = {s.labels["state"]: s.value for s in fams["alphapulse_execution_transactions"].samples}
    assert states == {"sent": 2, "included": 1, "failed": 1}
    h = fams["alphapulse_check_latency_seconds"]
    assert h.type == "histogram"
    buckets = {s.labels["le"]: s.value for s in h.samples if s.name.endswith("_bucket")}
    assert buckets["0.001"] == 1 and buckets["0.002"] == 3 and buckets["0.05"] == 4 and buckets["+Inf"] == 4
    (count,) = [s.value for s in h.samples if s.name.endswith("_count")]
    (total,) = [s.value for s in h.samples if s.name.endswith("_sum")]
    assert count == 4 and abs(total - 0.0338) < 1e-9


def test_hot_reload_applies_the_execution_limits(rings):
    from alphapulse.execution.component import apply_limits
    from alphapulse.execution.sender import GWEI, Sender
    sig_ring, ex_ring = rings
    loop = ExecutionLoop(sig_ring.consumer("execution"), ex_ring.producer(),
                         Checker(EthCallMethod("http://127.0.0.1:9"), {}), max_backlog=4)
    loop.sender = Sender.__new__(Sender)         # the limits only: no node, key or executor here
    apply_limits(loop, {"max_backlog": 9, "min_profit_usd": 1.25, "max_gas_price_gwei": 300.0})
    assert loop.max_backlog == 9
    assert loop.sender.min_profit_usd_e8 == 125_000_000 and loop.sender.max_fee_wei == 300 * GWEI
    loop.checker.close()


def test_an_idle_loop_prepares_the_new_block_for_the_in_process_evm(market, anvil, rings):
    from alphapulse.execution.checker import RevmMethod
    sig_ring, ex_ring = rings
    sigs = moved_market_signals(market)[:2]
    method = RevmMethod(anvil.http_url)
    loop = ExecutionLoop(sig_ring.consumer("execution"), ex_ring.producer(), Checker(method, kinds(market)))
    reader = ex_ring.consumer("test")
    prod = sig_ring.producer()
    try:
        _publish(prod, sigs[:1])
        assert loop.step(0.01) and method.forks_on_check == 1          # the first check forks
        assert not loop.step(0.01) and loop.counts["state_updates"] == 0   # same block: nothing to do
        pool = market.pools[0]
        market.swap(pool, pool.token0, 10 ** market.decimals[pool.token0])  # a new block
        assert not loop.step(0.01)                                      # idle: the block is prepared
        assert loop.counts["state_updates"] == 1 and method.block == anvil.block_number()
        _publish(prod, sigs[1:], seq0=2)
        assert loop.step(0.01) and method.forks_on_check == 1           # the check forked nothing
        (rep,) = _reports(reader)[-1:]
        assert rep.checked_block == anvil.block_number() and loop.counts["checks"] == 2
    finally:
        reader.close()
        loop.checker.close()


def test_a_dead_node_fails_the_preparation_counted_and_not_retried_at_once(rings):
    from alphapulse.execution import component
    from alphapulse.execution.checker import RevmMethod
    sig_ring, ex_ring = rings
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = ExecutionLoop(sig_ring.consumer("execution"), ex_ring.producer(),
                         Checker(RevmMethod(f"http://127.0.0.1:{port}", 0.2), {400: 1}))
    try:
        assert not loop.step(0.01) and not loop.step(0.01)
        assert loop.counts["state_update_failures"] == 1        # the second idle step did not ask
        loop._update_after -= component.UPDATE_RETRY_S
        assert not loop.step(0.01) and loop.counts["state_update_failures"] == 2
    finally:
        loop.checker.close()
