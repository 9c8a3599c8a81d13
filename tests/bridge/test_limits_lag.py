"""Stream limits come from the configuration; a bridge that falls behind shows its lag;
frames the stream discarded by its limits are reported as a gap, and the rest arrives in order."""
import asyncio
import os
import time

import nats
import pytest

from alphapulse.bridge import METRIC_COUNTERS, METRIC_GAUGES, jetstream_lag, run_inbound, run_outbound
from alphapulse.bridge.natsserver import NatsServer
from alphapulse.metrics import DEFAULT_COUNTERS, DEFAULT_GAUGES, MetricsBlock
from alphapulse.protocol import codec
from alphapulse.ring import Ring
from alphapulse.bridge.batch import pack_batch
from tests.bridge import framegen, harness

OUT, IN = "bridge_out_market_data", "bridge_in_market_data"


@pytest.fixture
def env(tmp_path):
    srv = NatsServer(store_dir=tmp_path / "nats").start()
    tag = f"{os.getpid()}_{time.monotonic_ns() % 100000}"
    src = Ring.create(f"bl_src_{tag}", capacity=1 << 22)
    dst = Ring.create(f"bl_dst_{tag}", capacity=1 << 24)
    metrics = MetricsBlock.create(f"alphapulse_bl_{tag}", [OUT, IN], counters=DEFAULT_COUNTERS + METRIC_COUNTERS,
                                  gauges=DEFAULT_GAUGES + METRIC_GAUGES)
    common = dict(domain="market_data", servers=[srv.url], host="hosta", metrics_block=metrics.name,
                  batch_max_bytes=64 * 1024, lag_interval_s=0.1)
    out_cfg = dict(common, ring=src.name, max_age_s=300.0, max_bytes=1 << 20, duplicate_window_s=60.0)
    in_cfg = dict(common, ring=dst.name, host="hostb", source_host="hosta", state_dir=str(tmp_path / "st"))
    procs = []
    yield srv, src, dst, metrics, out_cfg, in_cfg, procs
    for stop, p in procs:
        stop.set()
    harness.reap(*[p for _, p in procs])
    metrics.close()
    src.close()
    dst.close()
    srv.stop()


def _start(procs, fn, cfg):
    stop = harness.SPAWN.Event()
    procs.append((stop, harness.start(fn, stop, **cfg)))
    return procs[-1]


def _until(cond, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stream_config(url, name):
    async def q():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info(name)).config
        finally:
            await nc.close()
    return asyncio.run(q())


def _publish_raw(url, subject, payloads):
    async def q():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            for p in payloads:
                await js.publish(subject, p)
        finally:
            await nc.close()
    asyncio.run(q())


def _bad_batch() -> bytes:
    fr = framegen.frames(1, 3).copy()
    fr[5] = 7                                        # frame 1: bad version
    return pack_batch("hosta", 1, 1, 0, 1, 3, fr)    # header and CRC fine, frames not


def test_limits_lag_and_gap_after_discard(env):
    srv, src, dst, metrics, out_cfg, in_cfg, procs = env
    _start(procs, run_outbound, out_cfg)
    harness.wait_for_consumer(src, "bridge_out_market_data")
    sc = _stream_config(srv.url, "ALPHAPULSE_MARKET_DATA")
    assert (sc.max_age, sc.max_bytes, sc.duplicate_window) == (300.0, 1 << 20, 60.0)
    assert sc.subjects == ["alphapulse.market_data.*"]

    # ~3.5 MB of frames with no inbound bridge: the 1 MiB stream keeps only the newest.
    n = 20_000
    harness.produce(src.name, 1, n)
    out = lambda: metrics.snapshot()["components"][OUT]["counters"]   # noqa: E731
    _until(lambda: out()["frames_out"] == n, what="outbound to publish everything")
    lag = jetstream_lag(**in_cfg)
    assert lag["pending_msgs"] == -1                     # no consumer yet
    assert 0 < lag["stream_bytes"] <= 1 << 20 and lag["stream_msgs"] < out()["bridge_batches"]

    reader = dst.consumer("reader")
    in_stop, inbound = _start(procs, run_inbound, in_cfg)
    inc = lambda: metrics.snapshot()["components"][IN]    # noqa: E731
    _until(lambda: inc()["counters"]["frames_out"] + inc()["counters"]["bridge_gap_frames"] == n,
           what="inbound to drain the stream")
    seqs = [f.header.sequence for v in reader.poll(1.0) for f in codec.iter_frames(v.tobytes())]
    reader.release()
    gap = inc()["counters"]["bridge_gap_frames"]
    assert gap > 0 and seqs == list(range(gap + 1, n + 1))    # the discarded prefix, then all, in order
    _until(lambda: inc()["gauges"]["bridge_pending_msgs"] == 0, what="pending gauge")
    assert jetstream_lag(**in_cfg)["pending_msgs"] == 0

    # Garbage on the subject (not a batch, and a batch with a broken frame) is counted and
    # skipped; the frames after it still arrive, in order.
    _publish_raw(srv.url, "alphapulse.market_data.hosta", [b"not a batch", _bad_batch()])
    _until(lambda: inc()["counters"]["bridge_bad_batches"] == 2, what="bad batches counted")
    harness.produce(src.name, n + 1, 100)
    _until(lambda: inc()["counters"]["frames_out"] == n - gap + 100, what="frames after garbage")
    seqs = [f.header.sequence for v in reader.poll(1.0) for f in codec.iter_frames(v.tobytes())]
    reader.release()
    assert seqs == list(range(n + 1, n + 101))
    n += 100

    # The inbound bridge stops; what is published meanwhile is its lag.
    in_stop.set()
    inbound.join(30)
    assert inbound.exitcode == 0
    harness.produce(src.name, n + 1, 2_000)
    _until(lambda: out()["frames_out"] == n + 2_000, what="outbound")
    lag = jetstream_lag(**in_cfg)
    assert lag["pending_msgs"] > 0 and lag["ack_pending_msgs"] == 0
    assert lag["ack_floor_stream_seq"] < lag["stream_last_seq"]
    reader.close()
