"""Bridge throughput and added latency: ring -> out-bridge -> NATS JetStream -> in-bridge -> ring,
beside the raw shared-memory ring on the same machine.

Every stage is its own process: the producer (this script) writes 128-byte Protocol V2
frames into ring ``src``; for the bridge path the outbound bridge publishes them to a
local ``nats-server -js`` (started here on 127.0.0.1, temporary file store), the inbound
bridge writes them into ring ``dst`` and a consumer process reads ``dst``; for the raw
ring path the consumer reads ``src`` directly.

1. throughput: N frames published in batches of 1024 (``publish_batch``), frames/s from
   the first publish to the last frame read by the consumer.
2. latency: single-frame publishes at a steady rate; each frame carries its publish time
   (``timestamp_ns``), the consumer computes ``now - timestamp`` per frame; p50/p99 for
   both paths; "added" is bridge minus raw ring.

Consumers use the ring's default ``sleep`` wait (a 2-core machine is shared with NATS and
both bridges). Usage: python perf/bench_bridge.py [--quick] [--json]
The last line with --json is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alphapulse.bridge import run_inbound, run_outbound  # noqa: E402
from alphapulse.bridge.natsserver import NatsServer  # noqa: E402
from alphapulse.jit import frames as F  # noqa: E402
from alphapulse.protocol import codec  # noqa: E402
from alphapulse.protocol import layout as L  # noqa: E402
from alphapulse.ring import Ring  # noqa: E402

FRAME = 128
SPAWN = mp.get_context("spawn")


def template(n: int) -> np.ndarray:
    """n copies of one 128-byte market-data frame (vendor TLV), as an (n, 128) array."""
    value = bytes(FRAME - L.HEADER_SIZE - L.TLV_STD_HEADER)
    f = codec.build_frame(L.Domain.MARKET_DATA, L.Source.RELAY_MARKET, 1, [codec.RawTlv(200, value)],
                          timestamp_ns=0, checksum=False)
    assert len(f) == FRAME
    return np.tile(np.frombuffer(f, np.uint8), (n, 1))


def stamp(block: np.ndarray, first_seq: int) -> None:
    """Sequence numbers first_seq.. and the current time into the frames of ``block``."""
    n = block.shape[0]
    hdr = block[:, :24].copy().view("<u8")          # words: [magic..flags], sequence, timestamp
    hdr[:, 1] = np.arange(first_seq, first_seq + n, dtype=np.uint64)
    hdr[:, 2] = time.time_ns()
    block[:, :24] = hdr.view(np.uint8)


def consumer_main(ring_name: str, total: int, ready, out) -> None:
    """Read ``total`` frames; report (frames, t_first_ns, t_last_ns, latencies_ns)."""
    ring = Ring.attach(ring_name)
    c = ring.consumer("bench_reader", wait="sleep")
    idx = F.alloc_frame_index(1 << 17)
    crc = F.new_crc_state()
    ready.set()
    got, t_first, lat = 0, 0, []
    deadline = time.monotonic() + 600
    while got < total and time.monotonic() < deadline:
        views = c.poll(0.1)
        now = time.time_ns()
        if views and not t_first:
            t_first = now
        for v in views:
            pos = 0
            while pos < v.shape[0]:
                n, pos, stop, _ = F.validate_frames(v, pos, v.shape[0], 0, crc, idx)
                got += n
                lat.append(now - idx.timestamp_ns[:n].astype(np.int64))
                if stop in (F.STOP_CORRUPT, F.STOP_PARTIAL):
                    raise RuntimeError("corrupt frames in the ring")
        c.release()
    out.put((got, t_first, time.time_ns(), np.concatenate(lat) if lat else np.zeros(0, np.int64)))
    c.close()
    ring.close()


def _wait_consumer(ring, name: str) -> None:
    deadline = time.monotonic() + 60
    while not any(c["name"] == name and c["state"] == "active" for c in ring.stats()["consumers"]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not attach to {ring.name}")
        time.sleep(0.02)
    time.sleep(0.5)                     # let the join handshake finish (see tests/bridge/harness.py)


def _run(path: str, total: int, mode: str, rate_hz: float, nats_url: str, state_dir: str) -> dict:
    tag = f"{os.getpid()}_{path}_{mode}"
    src = Ring.create(f"bb_src_{tag}", capacity=1 << 24, policy="lossless", consumer_timeout_s=60.0)
    dst = Ring.create(f"bb_dst_{tag}", capacity=1 << 24, policy="lossless", consumer_timeout_s=60.0)
    procs, stops = [], []
    try:
        ready, out = SPAWN.Event(), SPAWN.Queue()
        reader = SPAWN.Process(target=consumer_main, args=(dst.name if path == "bridge" else src.name,
                                                             total, ready, out), daemon=True)
        reader.start()
        procs.append(reader)
        if not ready.wait(60):
            raise TimeoutError("consumer did not start")
        if path == "bridge":
            common = dict(domain="market_data", servers=[nats_url], host="benchA", max_age_s=600.0,
                          storage="file", state_dir=state_dir, durable=f"bench_{mode}",
                          stream=f"BENCH_{mode.upper()}", subject_prefix=f"bench{mode}")
            for fn, cfg in ((run_inbound, dict(common, ring=dst.name, host="benchB", source_host="benchA")),
                            (run_outbound, dict(common, ring=src.name))):
                stop = SPAWN.Event()
                p = SPAWN.Process(target=fn, args=(stop,), kwargs=cfg, daemon=True)
                p.start()
                procs.append(p)
                stops.append(stop)
            _wait_consumer(src, "bridge_out_market_data")
            time.sleep(1.0)             # the inbound bridge binds its consumer
        else:
            _wait_consumer(src, "bench_reader")
        prod = src.producer(publish_timeout=120.0)
        t0 = time.time_ns()
        if mode == "throughput":
            block = template(1024)
            seq = 1
            while seq <= total:
                k = min(1024, total - seq + 1)
                stamp(block[:k], seq)
                prod.publish_batch(block[:k].reshape(-1), k * FRAME)
                seq += k
        else:
            one = template(1)
            period = 1.0 / rate_hz
            nxt = time.perf_counter()
            for seq in range(1, total + 1):
                stamp(one, seq)
                prod.publish(one.reshape(-1))
                nxt += period
                delay = nxt - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
        got, t_first, t_last, lat = out.get(timeout=600)
        prod.close()
        if got != total:
            raise RuntimeError(f"{path}/{mode}: {got} of {total} frames arrived")
        res = {"frames": got, "seconds": (t_last - t0) / 1e9}
        if mode == "throughput":
            res["fps"] = got / res["seconds"]
        else:
            res["p50_us"] = float(np.percentile(lat, 50)) / 1e3
            res["p99_us"] = float(np.percentile(lat, 99)) / 1e3
        return res
    finally:
        for s in stops:
            s.set()
        for p in procs:
            p.join(15)
            if p.is_alive():
                p.kill()
                p.join(5)
        src.close()
        dst.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller runs (well under two minutes)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--frames", type=int, default=0, help="throughput frames (default 2M, quick 300k)")
    ap.add_argument("--rate", type=float, default=2000.0, help="latency run: frames/s (single publishes)")
    ap.add_argument("--latency-frames", type=int, default=0, help="default 10k, quick 3k")
    a = ap.parse_args()
    total = a.frames or (300_000 if a.quick else 2_000_000)
    lat_n = a.latency_frames or (3_000 if a.quick else 10_000)
    res: dict = {"frame_bytes": FRAME, "throughput_frames": total, "latency_frames": lat_n,
                 "latency_rate_hz": a.rate, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp, \
            NatsServer(store_dir=Path(tmp) / "nats") as srv:
        for path in ("ring", "bridge"):
            t = _run(path, total, "throughput", a.rate, srv.url, str(Path(tmp) / "state"))
            res[f"{path}_fps_128"] = round(t["fps"])
            print(f"{path:>6} throughput: {t['fps']:>12,.0f} frames/s ({t['frames']} x {FRAME} B "
                  f"in {t['seconds']:.2f} s)", flush=True)
        for path in ("ring", "bridge"):
            t = _run(path, lat_n, "latency", a.rate, srv.url, str(Path(tmp) / "state"))
            res[f"{path}_latency_p50_us"] = round(t["p50_us"], 1)
            res[f"{path}_latency_p99_us"] = round(t["p99_us"], 1)
            print(f"{path:>6} latency at {a.rate:,.0f} frames/s: p50 {t['p50_us']:,.1f} us, "
                  f"p99 {t['p99_us']:,.1f} us", flush=True)
    res["bridge_vs_ring_throughput"] = round(res["bridge_fps_128"] / res["ring_fps_128"], 4)
    res["added_latency_p50_us"] = round(res["bridge_latency_p50_us"] - res["ring_latency_p50_us"], 1)
    res["added_latency_p99_us"] = round(res["bridge_latency_p99_us"] - res["ring_latency_p99_us"], 1)
    print(f"bridge added latency: p50 {res['added_latency_p50_us']:,.1f} us, "
          f"p99 {res['added_latency_p99_us']:,.1f} us; throughput {res['bridge_vs_ring_throughput']:.1%} of the ring")
    if a.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
