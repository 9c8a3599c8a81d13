"""An outbound bridge the ring dropped (frozen past the consumer timeout while a lossless
producer waited) registers again, counts what it skipped, and bridges on."""
import os
import signal
import time

from alphapulse.bridge import METRIC_COUNTERS, METRIC_GAUGES, run_inbound, run_outbound
from alphapulse.bridge.natsserver import NatsServer
from alphapulse.metrics import DEFAULT_COUNTERS, DEFAULT_GAUGES, MetricsBlock
from alphapulse.protocol import codec
from alphapulse.ring import Ring
from tests.bridge import harness

OUT, IN = "bridge_out_market_data", "bridge_in_market_data"


def test_evicted_outbound_reregisters_and_reports_the_skip(tmp_path):
    srv = NatsServer(store_dir=tmp_path / "nats").start()
    tag = f"{os.getpid()}_{time.monotonic_ns() % 100000}"
    src = Ring.create(f"be_src_{tag}", capacity=1 << 16, consumer_timeout_s=0.5)
    dst = Ring.create(f"be_dst_{tag}", capacity=1 << 22)
    m = MetricsBlock.create(f"alphapulse_be_{tag}", [OUT, IN], counters=DEFAULT_COUNTERS + METRIC_COUNTERS,
                            gauges=DEFAULT_GAUGES + METRIC_GAUGES)
    common = dict(domain="market_data", servers=[srv.url], host="hosta", metrics_block=m.name)
    procs = []
    try:
        reader = dst.consumer("reader")
        for fn, cfg in ((run_inbound, dict(common, ring=dst.name, host="hostb", source_host="hosta",
                                           state_dir=str(tmp_path / "st"))),
                        (run_outbound, dict(common, ring=src.name))):
            stop = harness.SPAWN.Event()
            procs.append((stop, harness.start(fn, stop, **cfg)))
        outbound = procs[1][1]
        harness.wait_for_consumer(src, OUT)
        harness.produce(src.name, 1, 1000)
        counters = lambda c: m.snapshot()["components"][c]["counters"]   # noqa: E731
        deadline = time.monotonic() + 60
        while counters(IN)["frames_out"] < 1000:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(outbound.pid, signal.SIGSTOP)      # frozen: no poll, no heartbeat
        try:
            # a lossless producer on a 64 KiB ring waits, finds the stale consumer, drops it
            harness.produce(src.name, 1001, 2000)
        finally:
            os.kill(outbound.pid, signal.SIGCONT)
        deadline = time.monotonic() + 60
        while counters(OUT)["frames_lost"] == 0:
            assert time.monotonic() < deadline, "the outbound bridge did not notice its eviction"
            time.sleep(0.05)
        skipped = counters(OUT)["frames_lost"]
        harness.produce(src.name, 3001, 500)       # after re-registering, frames flow again
        deadline = time.monotonic() + 60
        while counters(IN)["frames_out"] < 3500 - skipped:
            assert time.monotonic() < deadline, f"stuck at {counters(IN)['frames_out']} ({skipped} skipped)"
            time.sleep(0.05)
        seqs = []
        while True:
            views = reader.poll(0.5)
            if not views:
                break
            seqs += [f.header.sequence for v in views for f in codec.iter_frames(v.tobytes())]
            reader.release()
        assert len(seqs) == 3500 - skipped == len(set(seqs))    # in order, once, and the count is exact
        assert seqs == sorted(seqs) and seqs[:1000] == list(range(1, 1001)) and seqs[-500:] == list(range(3001, 3501))
        reader.close()
    finally:
        for stop, _ in procs:
            stop.set()
        harness.reap(*[p for _, p in procs])
        m.close()
        src.close()
        dst.close()
        srv.stop()
