"""The reader side: splitting ring regions into frames, budgets, and a real ring end to end."""
from __future__ import annotations

import os
import threading
import time

import pytest

from alphapulse.dashboard.aggregate import Aggregator, TokenBook
from alphapulse.dashboard.feed import RingReader, StatsPoller, rest_after, split_frames
from alphapulse.metrics import MetricsBlock
from alphapulse.protocol.layout import Reject
from tests.dashboard.conftest import POOLS, TOKENS, signal_frame, sync_frame


def sig(i, ts=10):
    return signal_frame(i, signal_id=i, amount_in=10 ** 18, amount_out=10 ** 18 + i, net_e8=i,
                        gross_e8=i, gas_e8=0, gas_wei=1, block=i, spread_bps=1, ts_ns=ts)


def test_split_frames_resynchronises_after_garbage():
    a, b, c = sig(1), sig(2), sig(3)
    rejects = []
    frames = split_frames(a + b"\x00garbage\xef\xbe" + b + c[:40], rejects.append)
    assert [bytes(f) for f in frames] == [a, b]
    assert rejects == [Reject.BAD_MAGIC, Reject.TRUNCATED_PAYLOAD]
    rejects.clear()
    huge = bytearray(a)
    huge[24:28] = (70_000).to_bytes(4, "little")          # payload_size beyond any frame
    assert [bytes(f) for f in split_frames(bytes(huge) + b, rejects.append)] == [b]
    assert rejects == [Reject.PAYLOAD_TOO_LARGE]


def test_market_burst_keeps_the_newest_frames_and_counts_the_rest():
    agg = Aggregator(TokenBook(TOKENS))
    r = RingReader("unused", "market", agg, lambda: None, threading.Event(),
                   max_frames_per_batch=3)
    data = b"".join(sync_frame(i, POOLS[0], 400, (2_000_000 + i) * 10 ** 6, 1000 * 10 ** 18, i,
                               i * 10 ** 9) for i in range(1, 11))
    assert r.process(data) == 3
    assert r.skipped == 7 and agg.health.skipped["market"] == 7
    assert agg.prices.pools[POOLS[0]].last_block == 10          # the newest state won
    assert agg.health.frames_read["market"] == 3
    assert r.process(sig(1) + sig(2), drop_first=1) == 1        # overwritten while held


def test_reader_thread_on_a_real_ring_and_stats(rings):
    sig_ring, md_ring, sig_p, md_p = rings
    agg = Aggregator(TokenBook(TOKENS))
    stop = threading.Event()
    notes = []
    reader = RingReader(sig_ring.name, "signal", agg, lambda: notes.append(1), stop,
                        poll_timeout_s=0.01)
    stats = StatsPoller(agg, lambda: None, stop, [reader], None, interval_s=0.05)
    reader.start()
    stats.start()
    try:
        # a consumer starts at the position where its join completes (ring semantics):
        # publish until the reader has seen one frame, then the batch under test
        deadline = time.monotonic() + 30
        warm = 0
        while agg.opportunities.count == 0:
            assert time.monotonic() < deadline, "the reader never joined the ring"
            warm += 1
            sig_p.publish(sig(10_000 + warm))
            time.sleep(0.05)
        time.sleep(0.1)
        base = agg.opportunities.count
        for i in range(1, 201):
            sig_p.publish(sig(i))
        while agg.opportunities.count < base + 200:
            assert time.monotonic() < deadline, agg.opportunities.count
            time.sleep(0.01)
        while agg.health.rings.get("signal", {}).get("producer", {}).get("frames", 0) < base + 200:
            assert time.monotonic() < deadline, "stats never caught up"
            time.sleep(0.01)
        assert [r.signal_id for r in agg.opportunities.rows][-3:] == [198, 199, 200]
        assert notes and agg.health.rings["signal"]["producer"]["state"] == "alive"
        assert sig_ring.stats()["producer"]["waits"] == 0
    finally:
        stop.set()
        reader.join(5)
        stats.join(5)
    assert not reader.is_alive()
    # the consumer slot is released when the reader stops: it holds nothing back
    assert not any(c["name"] == "dashboard" for c in sig_ring.stats()["consumers"])


def test_missing_ring_is_reported_not_fatal():
    agg = Aggregator()
    stop = threading.Event()
    r = RingReader("no_such_ring_for_sure", "signal", agg, lambda: None, stop, attach_retry_s=0.05)
    r.start()
    deadline = time.monotonic() + 5
    while "signal" not in agg.health.errors:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert "does not exist" in agg.health.errors["signal"]
    stop.set()
    r.join(5)
    assert not r.is_alive()


def test_rest_after_bounds_the_cpu_share():
    assert rest_after(0.010, 1.0) == 0.0
    assert rest_after(0.010, 0.25) == pytest.approx(0.030)      # 10 ms work, 30 ms rest: 25 %
    with pytest.raises(ValueError, match="max_cpu_share"):
        rest_after(0.01, 0)
    with pytest.raises(ValueError, match="max_cpu_share"):
        RingReader("x", "market", None, lambda: None, threading.Event(), max_cpu_share=1.5)


def test_a_failing_batch_is_reported_and_the_reader_rejoins(rings):
    sig_ring, _, sig_p, _ = rings
    agg = Aggregator(TokenBook(TOKENS))
    stop = threading.Event()
    r = RingReader(sig_ring.name, "signal", agg, lambda: None, stop, poll_timeout_s=0.01,
                   attach_retry_s=0.05)
    real = r.process
    calls = []

    def flaky(data, drop_first=0):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(data, drop_first)

    r.process = flaky
    r.start()
    try:
        deadline = time.monotonic() + 30
        i = 0
        while agg.opportunities.count == 0:
            assert time.monotonic() < deadline, (r.failures, agg.health.errors)
            i += 1
            sig_p.publish(sig(i))
            time.sleep(0.05)
        assert r.failures == 1 and r.is_alive()
    finally:
        stop.set()
        r.join(5)


def test_stats_publish_the_dashboards_own_figures_into_the_metrics_block():
    agg = Aggregator(TokenBook(TOKENS))
    block = MetricsBlock.create(f"alphapulse_test_dash_{os.getpid()}_{time.monotonic_ns()}",
                                ["strategy", "dashboard"])
    try:
        bad = bytearray(sig(1))
        bad[-1] ^= 1
        r = RingReader("unused", "signal", agg, lambda: None, threading.Event())
        r.process(sig(2) + bytes(bad) + b"junk")
        stats = StatsPoller(agg, lambda: None, threading.Event(), [], block.name,
                            clock_ns=lambda: 123)
        stats.sample_once()
        d = block.snapshot()["components"]["dashboard"]
        assert d["counters"]["frames_in"] == 2
        assert d["counters"]["frames_rejected"] == 2          # the bad checksum, the junk tail
        assert d["counters"]["checksum_rejects"] == 1
        assert d["gauges"]["heartbeat_ns"] == 123 and d["gauges"]["pid"] == os.getpid()
        assert agg.health.metrics["components"]["dashboard"]["counters"]["frames_in"] == 0
        stats.metrics.close()
    finally:
        block.close()
