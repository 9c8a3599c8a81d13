"""The pipeline end to end: a recording replayed through the real processes, block by block.

The synthetic market of ``perf.bench_strategy`` (10,000 pools over 1,000 tokens, 60 %
constant product, 40 % concentrated liquidity) is written to a recording: its PoolState /
PoolTick snapshot, then Polygon-like blocks, each a burst of 50-500 swaps (PoolSync for V2,
PoolSwap for V3; 5 % of them 1-4 % jumps that open real opportunities, closed a few events
later, in the same block or the next) at the block's timestamp, then a BlockEnd. Three processes
run on it, connected by shared-memory rings as in the pipeline:

* the source: ``alphapulse.adapters.replayer.Replayer`` publishing the recording on the
  market-data ring (overwrite), each frame stamped by the TSC clock as it is copied into the
  batch it is published in;
* the strategy: ``alphapulse.apps.components.strategy`` (the pipeline's component: ring
  consumer with the default sleeping wait, ``StrategyEngine``, signal ring, lossless);
* a reader of the signal ring, and of the market ring (a second consumer), in this process.

Figures, for ``evaluate = "block"`` (the default) and ``evaluate = "frame"`` side by side:

* ``block_latency_p50_us``, ``block_latency_p99_us``: from the publication of a block's last
  event on the market ring (its stamp) to the publication of the block's last signal
  (the signal header's stamp, written by the strategy's kernel just before it publishes it;
  a signal's block is the newest state block of its pools), over the blocks that produced a
  signal, replayed at the recorded pace (a block every ``BLOCK_INTERVAL_S`` of replay time).
  ``block100_latency_p99_us``: the same over blocks of 80-120 swaps.
* ``frames_per_s``: the recording at ``--speed max``, frames the strategy consumed per second
  from the source's first publication to the strategy's last frame (metrics block counter).
  ``strategy_cpu_share_max``: the share of one core the strategy process got meanwhile (its
  user + system time over the wall time; a loaded machine gives it less than 1), and
  ``frames_per_strategy_cpu_s`` the frames it consumed per second of its own CPU time: the
  throughput it reaches with a core of its own. Where its wall time went meanwhile, from the
  scheduler's accounting: ``strategy_runqueue_share_max`` runnable but waiting for a CPU,
  ``strategy_sleeps_max`` / ``strategy_preempted_max`` its voluntary (futex sleeps) and
  involuntary context switches, ``market_ring_wakes_max`` the source's futex wakes of a sleeping
  consumer, ``source_publishes_max`` its ring publications, ``source_cpu_s_max`` /
  ``source_runqueue_s_max`` its CPU and run-queue time, ``reader_cpu_share_max`` this process's.
* ``--realtime PRIO``: the full-speed block run once more with the strategy under SCHED_FIFO
  (``[strategy] realtime_priority``): ``frames_per_s_rt``, ``strategy_cpu_share_max_rt``,
  ``strategy_runqueue_share_max_rt``, ``strategy_sched_fifo_rt`` (False: the scheduler refused it,
  the run was at normal priority).
* ``ring_wake_p50_us``, ``ring_wake_p99_us``: the floor under the block latency on this machine,
  measured in the same run: one frame's hop on a ring to a consumer in another process with the
  same sleeping wait as the strategy's (asleep on its futex when the frame arrives), from the
  frame's stamp to its poll's return. ``load_avg_1m``: the machine's load at the end.

Usage: python perf/bench_pipeline.py [--quick] [--json] [--realtime PRIO]. Each figure is printed as one JSON
line; the last line is one JSON object with all of them (``--quick``: fewer blocks).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from alphapulse.protocol import codec as C  # noqa: E402
from alphapulse.protocol import layout as L  # noqa: E402

BLOCK_INTERVAL_S = 0.02       # replay time between blocks at the recorded pace
TARGET_BLOCK_P99_US = 500.0
TARGET_FRAMES_PER_S = 200_000


def figure(key, value, unit):
    print(json.dumps({"figure": key, "value": value, "unit": unit}), flush=True)


def write_recording(path: Path, n_blocks: int, seed: int = 1) -> dict:
    """The market's snapshot (a block of its own, in ``path`` with the suffix ``.state``: loaded
    before the measurement), then in ``path`` ``n_blocks`` blocks of 50-500 swaps and a BlockEnd each."""
    from alphapulse.journal import JournalWriter
    from perf.bench_strategy import SyntheticMarket
    market = SyntheticMarket(seed)
    rng = np.random.default_rng(seed + 1)
    sizes = rng.integers(50, 501, n_blocks)
    state = market.state_frames()
    ts0 = 1_700_000_000 * 10**9
    swaps = market.updates(int(sizes.sum()), seq0=1, jump_share=0.05, close_after=8)
    seq = 1
    n = 0
    with JournalWriter(path.with_suffix(".state")) as w:
        for f in state + [C.build_frame(1, 4, 0, [C.GasPrice(base_fee_wei=30 * 10**9, priority_fee_wei=10**9,
                                                               block_number=1, chain_id=137)]),
                          C.build_frame(1, 4, 0, [C.BlockEnd(block_number=1, block_ts_ns=ts0, event_count=0,
                                                             chain_id=137, block_hash=bytes(32))])]:
            w.append(C.build_frame(1, 4, seq, list(C.parse_frame(f).tlvs), timestamp_ns=ts0))
            seq += 1
    with JournalWriter(path) as w:
        for b, k in enumerate(sizes.tolist()):
            block, ts = 10 + b, ts0 + (b + 1) * 2 * 10**9       # 2 s blocks (replayed faster)
            for raw in swaps[n:n + k]:
                rec = dataclasses.replace(C.parse_frame(raw).tlvs[0], block_number=block)
                w.append(C.build_frame(1, 4, seq, [rec], timestamp_ns=ts))
                seq += 1
            n += k
            w.append(C.build_frame(1, 4, seq, [C.BlockEnd(block_number=block, block_ts_ns=ts, event_count=k,
                                                          chain_id=137, block_hash=bytes(32))], timestamp_ns=ts))
            seq += 1
    return {"blocks": n_blocks, "swaps": int(sizes.sum()), "sizes": sizes, "state_frames": len(state) + 2,
            "stable": "0x" + market.tokens[0].hex(), "native": "0x" + market.tokens[1].hex()}


def source_proc(ring: str, path: str, speed, start, loaded, go, res) -> None:
    """The source process: the replayer on the market ring (each frame stamped as written): the
    market's snapshot, then, once the strategy has searched it (``go``), the blocks."""
    from alphapulse.adapters.replayer import Replayer
    from alphapulse.ring import Ring
    r = Ring.attach(ring, timeout=10.0)
    prod = r.producer()
    start.wait(300)
    Replayer(str(Path(path).with_suffix(".state")), producer=prod, speed="max", restamp=True, crc_every=1).run()
    loaded.set()
    rp = Replayer(path, producer=prod, speed=speed, restamp=True, crc_every=1)
    go.wait(300)
    s0 = sched(os.getpid())
    t0 = time.time_ns()
    rp.run()
    t1 = time.time_ns()
    s1 = sched(os.getpid())
    res.put(("source", t0, dict(rp.counters), t1, {k: s1[k] - s0[k] for k in s0}))
    prod.close()
    r.close()


def strategy_proc(stop, market_ring: str, signal_ring: str, engine, metrics: str, rt: int = 0) -> None:
    from alphapulse.apps.components import strategy
    strategy(stop, market_ring=market_ring, signal_ring=signal_ring, engine=engine, metrics=metrics,
             wait="sleep", realtime_priority=rt)


def wake_consumer_proc(ring: str, n: int, ready, res) -> None:
    """The floor of the block latency: a consumer of ``ring`` with the default sleeping wait (as the
    strategy's), timing each frame from its header stamp (written just before it was published)
    to the moment its poll returned it."""
    from alphapulse.ring import Ring
    r = Ring.attach(ring, timeout=10.0)
    cons = r.consumer("wake", wait="sleep")
    cons.poll(timeout=0.001)            # compiled / loaded before the first frame
    ready.set()
    lat = []
    while len(lat) < n:
        views = cons.poll(timeout=0.05)
        now = time.time_ns()
        for v in views:                 # a view holds every frame published since the last poll
            pos = 0
            while pos < v.shape[0]:
                lat.append((now - int(v[pos + 16:pos + 24].view(np.uint64)[0])) / 1e3)
                pos += L.HEADER_SIZE + int(v[pos + 24:pos + 28].view(np.uint32)[0])
        if views:
            cons.release()
    res.put(lat)
    cons.close()
    r.close()


def ring_wake_latency(n: int, gap_s: float = 0.005) -> np.ndarray:
    """One-way latency (us) of single frames on a ring to a sleeping consumer in another process,
    one frame every ``gap_s`` (the consumer is asleep on its futex when each arrives)."""
    from alphapulse.ring import Ring
    ctx = mp.get_context("spawn")
    ring = Ring.create(f"bw{os.getpid()}", capacity=1 << 20, policy="lossless")
    ready, res = ctx.Event(), ctx.Queue()
    p = ctx.Process(target=wake_consumer_proc, daemon=True, args=(ring.name, n, ready, res))
    prod = ring.producer()
    try:
        p.start()
        if not ready.wait(480):
            raise RuntimeError("wake-up consumer did not start")
        time.sleep(0.1)
        gas = C.GasPrice(base_fee_wei=30 * 10**9, priority_fee_wei=10**9, block_number=1, chain_id=137)
        for i in range(n):
            time.sleep(gap_s)
            prod.publish(C.build_frame(1, 4, i + 1, [gas], timestamp_ns=time.time_ns()))
        lat = res.get(timeout=120)
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
        prod.close()
        ring.close()
        ring.unlink()
    return np.asarray(lat)


def cpu_s(pid: int) -> float:
    """CPU time (s) process ``pid``'s threads have run so far: /proc/<pid>/schedstat (ns; the
    clock-tick counts of /proc/<pid>/stat are too coarse for a run of a fraction of a second)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            total += int(f.read().split()[0])
    return total / 1e9


def sched(pid: int) -> dict:
    """Scheduler accounting of process ``pid``'s main thread: ``cpu_ns`` run, ``wait_ns`` runnable
    but waiting for a CPU (/proc/<pid>/schedstat), ``sleeps`` (voluntary context switches: a
    futex sleep, a blocking read) and ``preempted`` (involuntary ones) from /proc/<pid>/status."""
    with open(f"/proc/{pid}/schedstat") as f:
        run_ns, wait_ns, _ = (int(x) for x in f.read().split())
    out = {"cpu_ns": run_ns, "wait_ns": wait_ns}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches"):
                out["sleeps"] = int(line.split()[1])
            elif line.startswith("nonvoluntary_ctxt_switches"):
                out["preempted"] = int(line.split()[1])
    return out


def run_once(rec: Path, info: dict, evaluate: str, speed, tag: str, rt: int = 0) -> dict:
    """One run of the three processes over the recording; per-block latencies or throughput.
    ``rt`` > 0: the strategy under SCHED_FIFO at that priority (``[strategy] realtime_priority``)."""
    from alphapulse.metrics import MetricsBlock
    from alphapulse.ring import Ring
    from alphapulse.strategy.config import EngineConfig
    from perf.latency_kernels import block_stamps, signal_stamps
    ctx = mp.get_context("spawn")
    cfg = EngineConfig(stable_token=info["stable"], native_token=info["native"], evaluate=evaluate,
                       max_pools=16_384, max_tokens=2_048, max_v3_pools=8_192, max_ticks_per_pool=32,
                       journal_size=1 << 16, signal_table_size=1 << 17, max_signals_per_batch=8192)
    name = f"bp{os.getpid()}{tag}"
    mring = Ring.create(f"{name}_m", capacity=1 << 26, policy="overwrite")
    sring = Ring.create(f"{name}_s", capacity=1 << 24, policy="lossless")
    mblock = MetricsBlock.create(f"alphapulse_{name}", components=["source", "strategy"])
    stop, start, loaded, go = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
    res = ctx.Queue()
    mcons = mring.consumer("bench", wait="spin")
    scons = sring.consumer("bench", wait="spin")
    procs = [ctx.Process(target=strategy_proc, daemon=True,
                         args=(stop, mring.name, sring.name, cfg, mblock.name, rt)),
             ctx.Process(target=source_proc, daemon=True, args=(mring.name, str(rec), speed, start, loaded, go, res))]
    total = info["state_frames"] + info["swaps"] + info["blocks"]
    cap = info["blocks"] + 1024
    ev_block, ev_ts = np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    sig_block, sig_ts = np.zeros(1 << 20, np.int64), np.zeros(1 << 20, np.int64)
    nb = ns = 0
    frames_in = mblock.counter("strategy", "frames_in")
    try:
        for p in procs:
            p.start()
        t_limit = time.monotonic() + 480      # a cold Numba cache compiles the engine first (minutes on a busy host)
        last_block = mblock.gauge("strategy", "last_block")
        while mblock.gauge("strategy", "heartbeat_ns").value == 0:      # its consumer is on the ring
            if time.monotonic() > t_limit or not procs[0].is_alive():
                raise RuntimeError("strategy process did not start")
            time.sleep(0.05)
        start.set()
        while not (loaded.is_set() and last_block.value >= 1):     # the snapshot is searched
            if time.monotonic() > t_limit or not procs[0].is_alive():
                raise RuntimeError(f"strategy process did not load the market: loaded {loaded.is_set()}, "
                                   f"frames {frames_in.value}, block {last_block.value}, {[p.exitcode for p in procs]}")
            for c in (mcons, scons):
                if c.poll(timeout=0.0):
                    c.release()
            time.sleep(0.05)
        time.sleep(0.2)
        for c in (mcons, scons):
            if c.poll(timeout=0.0):
                c.release()
        cpu0 = cpu_s(procs[0].pid)
        fifo = os.sched_getscheduler(procs[0].pid) == os.SCHED_FIFO
        st0, wakes0, w0 = sched(procs[0].pid), mring.stats()["producer"]["wakes"], time.time_ns()
        me0 = sched(os.getpid())
        go.set()
        t_end = None
        while time.monotonic() < t_limit:
            views = mcons.poll(timeout=0.0)
            for v in views:
                nb = block_stamps(v, ev_block, ev_ts, nb)
            if views:
                mcons.release()
            views = scons.poll(timeout=0.0)
            for v in views:
                ns = signal_stamps(v, sig_block, sig_ts, ns)
            if views:
                scons.release()
            if frames_in.value >= total and last_block.value >= 9 + info["blocks"]:
                if t_end is None:
                    t_end = time.time_ns()
                    cpu1 = cpu_s(procs[0].pid)
                    st1, wakes1, w1 = sched(procs[0].pid), mring.stats()["producer"]["wakes"], time.time_ns()
                    me1 = sched(os.getpid())
                    t_quiet = time.monotonic() + 0.5       # the last block's signals
                elif time.monotonic() > t_quiet:
                    break
            elif not views:
                time.sleep(0.0002)
        else:
            raise RuntimeError(f"strategy consumed {frames_in.value} of {total} frames")
        _, t0, src, t_src, src_sched = res.get(timeout=60)
        lost = mblock.counter("strategy", "frames_lost").value
    finally:
        stop.set()
        for p in procs:
            p.join(20)
            if p.is_alive():
                p.kill()
        for c in (mcons, scons):
            c.close()
        for r in (mring, sring):
            r.close()
            r.unlink()
        mblock.close()
    # per block: its BlockEnd's stamp (written right after the block's last event, same published batch)
    last_sig: dict[int, int] = {}
    for b, t in zip(sig_block[:ns].tolist(), sig_ts[:ns].tolist()):
        if t > last_sig.get(b, 0):
            last_sig[b] = t
    sizes = info["sizes"]
    lat, lat100 = [], []
    for b, t in zip(ev_block[:nb].tolist(), ev_ts[:nb].tolist()):
        if b in last_sig:
            d = (last_sig[b] - t) / 1e3
            lat.append(d)
            if 80 <= sizes[b - 10] <= 120:
                lat100.append(d)
    return {"lat": np.asarray(lat), "lat100": np.asarray(lat100), "signals": ns, "frames": total,
            "frames_per_s": total / ((t_end - t0) / 1e9), "lost": int(lost), "source": src,
            "cpu_share": (cpu1 - cpu0) / ((t_end - t0) / 1e9),
            "frames_per_cpu_s": total / max(cpu1 - cpu0, 1e-3),
            "strategy_sched": {k: st1[k] - st0[k] for k in st0}, "ring_wakes": wakes1 - wakes0,
            "source_s": (t_src - t0) / 1e9, "source_sched": src_sched, "wall_s": (t_end - t0) / 1e9,
            "sched_wall_s": (w1 - w0) / 1e9,
            "reader_sched": {k: me1[k] - me0[k] for k in me0}, "fifo": fifo}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--quick", action="store_true", help="fewer blocks")
    ap.add_argument("--blocks", type=int, default=None)
    ap.add_argument("--realtime", type=int, default=0, metavar="PRIO",
                    help="also the full-speed block run with the strategy under SCHED_FIFO PRIO "
                         "(root or CAP_SYS_NICE; if refused it runs at normal priority and says so)")
    args = ap.parse_args(argv)
    n_blocks = args.blocks or (60 if args.quick else 400)
    t0 = time.perf_counter()
    res: dict = {"blocks": n_blocks}
    with tempfile.TemporaryDirectory() as d:
        rec = Path(d) / "market.apj"
        info = write_recording(rec, n_blocks)
        res["swaps"] = info["swaps"]
        figure("setup_s", round(time.perf_counter() - t0, 2), "s")
        speed = 2.0 / BLOCK_INTERVAL_S
        for evaluate in ("block", "frame"):
            sfx = "" if evaluate == "block" else "_frame"

            def pct(a, q):
                return round(float(np.percentile(a, q)), 1) if len(a) else None
            paced = run_once(rec, info, evaluate, speed, f"p{evaluate[0]}")
            res[f"block_latency_p50_us{sfx}"] = pct(paced["lat"], 50)
            res[f"block_latency_p99_us{sfx}"] = pct(paced["lat"], 99)
            res[f"block100_latency_p99_us{sfx}"] = pct(paced["lat100"], 99)
            res[f"blocks_with_signals{sfx}"] = int(len(paced["lat"]))
            res[f"signals{sfx}"] = paced["signals"]
            res[f"frames_lost_paced{sfx}"] = paced["lost"]
            fast = run_once(rec, info, evaluate, "max", f"m{evaluate[0]}")
            res[f"frames_per_s{sfx}"] = round(fast["frames_per_s"])
            res[f"strategy_cpu_share_max{sfx}"] = round(fast["cpu_share"], 3)
            res[f"frames_per_strategy_cpu_s{sfx}"] = round(fast["frames_per_cpu_s"])
            res[f"frames_lost_max{sfx}"] = fast["lost"]
            # where the strategy's wall time went at full speed: running, waiting for a CPU
            # (runnable), asleep on its futex; and what the source did meanwhile
            wall, ss, src = fast["wall_s"], fast["strategy_sched"], fast["source_sched"]
            res[f"strategy_runqueue_share_max{sfx}"] = round(ss["wait_ns"] / 1e9 / fast["sched_wall_s"], 3)
            res[f"strategy_sleeps_max{sfx}"] = ss["sleeps"]
            res[f"strategy_preempted_max{sfx}"] = ss["preempted"]
            res[f"market_ring_wakes_max{sfx}"] = fast["ring_wakes"]
            res[f"source_publishes_max{sfx}"] = fast["source"].get("publishes", 0)
            res[f"source_wall_share_max{sfx}"] = round(fast["source_s"] / wall, 3)
            res[f"source_cpu_s_max{sfx}"] = round(src["cpu_ns"] / 1e9, 3)
            res[f"source_runqueue_s_max{sfx}"] = round(src["wait_ns"] / 1e9, 3)
            res[f"reader_cpu_share_max{sfx}"] = round(fast["reader_sched"]["cpu_ns"] / 1e9 / wall, 3)
            if evaluate == "block" and args.realtime:
                # the same full-speed run with the strategy under SCHED_FIFO (the configuration's
                # realtime_priority): what the pipeline does when the strategy is not made to wait
                # for a CPU behind the host's other processes
                rt = run_once(rec, info, evaluate, "max", "mr", rt=args.realtime)
                res["frames_per_s_rt"] = round(rt["frames_per_s"])
                res["strategy_cpu_share_max_rt"] = round(rt["cpu_share"], 3)
                res["strategy_runqueue_share_max_rt"] = round(
                    rt["strategy_sched"]["wait_ns"] / 1e9 / rt["sched_wall_s"], 3)
                res["frames_lost_max_rt"] = rt["lost"]
                res["strategy_sched_fifo_rt"] = rt["fifo"]       # False: SCHED_FIFO was refused
                figure("frames_per_s_rt", res["frames_per_s_rt"], "frames/s")
            for k in ("block_latency_p50_us", "block_latency_p99_us", "block100_latency_p99_us"):
                figure(k + sfx, res[k + sfx], "us")
            figure("frames_per_s" + sfx, res["frames_per_s" + sfx], "frames/s")
    # the floor under the block latency on this machine: one frame's hop to a sleeping consumer
    wake = ring_wake_latency(300 if args.quick else 1000)
    res["ring_wake_p50_us"] = round(float(np.percentile(wake, 50)), 1)
    res["ring_wake_p99_us"] = round(float(np.percentile(wake, 99)), 1)
    figure("ring_wake_p50_us", res["ring_wake_p50_us"], "us")
    figure("ring_wake_p99_us", res["ring_wake_p99_us"], "us")
    res["load_avg_1m"] = round(os.getloadavg()[0], 2)
    res["targets"] = {
        "block100_p99_under_500us": res["block100_latency_p99_us"] is not None
        and res["block100_latency_p99_us"] < TARGET_BLOCK_P99_US,
        "frames_per_s_over_200k": res["frames_per_s"] >= TARGET_FRAMES_PER_S,
    }
    if "frames_per_s_rt" in res:        # with --realtime: the same target, the strategy under SCHED_FIFO
        res["targets"]["frames_per_s_rt_over_200k"] = res["frames_per_s_rt"] >= TARGET_FRAMES_PER_S
    res["quick"] = bool(args.quick)
    res["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
