"""Arbitrage engine: throughput, frame-in to signal-out latency, exact math vs pure Python.

The engine here searches after every frame (``evaluate = "frame"``): these figures are the
kernel's cost per event; ``perf/bench_pipeline.py`` measures the default block-end evaluation
through the pipeline's processes.

A synthetic market of 10,000 pools over 1,000 tokens (60 % constant product,
40 % concentrated liquidity with 4-8 initialised ticks each; token 0 is the
stable coin, a few hub tokens hold most pools) is loaded into a
``StrategyEngine`` from PoolState/PoolTick frames. A stream of updates
(PoolSync for V2, PoolSwap for V3, each re-pricing a pool at its tokens'
common price with 0.03 % noise; 0.2 % of them jumps of 1-4 % that open real
opportunities, closed 8 frames later; 5 % in the latency run so that it
collects enough signals) is then replayed:

* ``updates_per_s``   pool updates applied per second with the full cycle
                      search (2-pool and 3-pool cycles), frames in batches of 64
* ``cycles_per_s``    cycles evaluated per second in that run
* ``updates_per_cpu_s``  the same per second of this process's CPU time (the
                      machine is shared: wall-clock figures include time the
                      process was not running); ``updates_per_s_no_opportunity``
                      the stream without jumps (search cost when nothing pays)
* ``latency_*_us``    frame-in to signal-out, through real shared-memory rings
                      (``alphapulse.ring``): one market frame at a time, back to
                      back, is published on the market ring, stamped with its
                      arrival there (``perf.latency_kernels.publish_stamped``:
                      the header timestamp of the ring's copy is written just
                      before the commit that makes it visible;
                      ``latency_from_publish_call_*``: from the clock read
                      before the Python call that publishes it instead); this
                      process then calls ``engine.run(consumer, producer, 0)``:
                      the spinning strategy's compiled loop (poll, process,
                      release) for that one frame, whose kernel publishes
                      each signal on the signal ring itself (each 2-pool signal
                      as soon as it is sized, before the frame's other cycles
                      and its triangles); a busy-polling reader process on the
                      other CPU reads every signal: its header stamp (the
                      kernel's clock when it wrote the frame, just before its
                      publication) less the triggering frame's stamp is its
                      latency (``latency_seen_*``: its arrival time there
                      instead). ``latency_p50/p99/p999_us`` every 2-pool signal
                      (``latency_signals`` of them), ``latency_first_*`` the
                      first 2-pool signal of each frame,
                      ``latency_signalK_of_frame`` the K-th, ``latency_tri_*``
                      every triangle signal, ``latency_all_*`` every frame
                      (stamp to the end of its processing);
                      ``latency_pairs_only_*`` the same with ``max_hops = 2``,
                      ``latency_python_loop_*`` with the poll, the kernel call
                      (``process_raw(sink=producer)``) and the release each
                      called from Python instead.
                      The first 500 frames warm up. Python's cyclic garbage
                      collector runs as in the strategy process
                      (``apps.gcpolicy.IdleCollector``: no automatic passes
                      mid-frame; here, back to back, a pass every 5 s).
* ``latency_spin_*``  the spinning strategy process instead (``wait = "spin"``:
                      ``engine.run``, poll-process-publish in one compiled
                      loop) fed by a market producer process at SPIN_RATE
                      frames/s, the reader a third process. On this VM a frame
                      that arrives after the core idled ~0.1-0.5 ms costs about
                      twice as much as one right after another (measured: the
                      Python-side ring publish too, 1.6 -> 2.9 us), so these
                      figures are higher than the back-to-back ones.
* ``cycles_per_update``, ``simulations_per_sized_cycle``  work per update: cycles
                      screened, exact cycle simulations per cycle that reached
                      the exact sizing
* ``v2_speedup_vs_python``  exact V2 getAmountOut in Numba (u256 limbs) vs
                      the same in Python ints (``alphapulse.strategy.reference``)
* ``v3_speedup_vs_python``  exact V3 swap (crossing ticks) in Numba vs Python

Usage: python perf/bench_strategy.py [--quick] [--json]. Each figure is printed
as one JSON line; the last line is one JSON object with all of them.
``--quick`` (fewer updates and repeats) finishes in under two minutes once the
Numba cache is warm.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from alphapulse.apps.gcpolicy import IdleCollector  # noqa: E402
from alphapulse.jit import amm_v2, amm_v3  # noqa: E402
from perf.latency_kernels import _collect, publish_stamped  # noqa: E402
from alphapulse.ring.sequencer import WAKE  # noqa: E402
from alphapulse.jit.wideint import i128_rows, to_u256  # noqa: E402
from alphapulse.protocol import codec as C  # noqa: E402
from alphapulse.strategy import reference as R  # noqa: E402
from alphapulse.strategy.config import EngineConfig  # noqa: E402
from alphapulse.strategy.engine import StrategyEngine  # noqa: E402

N_POOLS = 10_000
N_TOKENS = 1_000
TARGET_P99_US = 35.0
SPIN_RATE = 2_000          # market frames/s of the spinning-strategy latency test
TARGET_UPDATES = 200_000


def figure(key, value, unit):
    print(json.dumps({"figure": key, "value": value, "unit": unit}), flush=True)


def _addr(kind: int, n: int) -> bytes:
    return kind.to_bytes(4, "big") + n.to_bytes(16, "big")


class SyntheticMarket:
    """Pools at consistent prices (each token has a USD price), deterministic from a seed."""

    def __init__(self, seed: int = 1):
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.tokens = [_addr(1, i) for i in range(N_TOKENS)]
        self.decimals = [6] + [int(rng.choice([6, 8, 18, 18, 18])) for _ in range(N_TOKENS - 1)]
        self.usd = [1.0] + list(np.exp(rng.uniform(np.log(0.01), np.log(50_000), N_TOKENS - 1)))
        # preferential attachment: tokens 0..19 are hubs
        weights = np.ones(N_TOKENS)
        weights[:20] = 150.0
        weights /= weights.sum()
        self.pools = []
        seen = {}
        while len(self.pools) < N_POOLS:
            a, b = rng.choice(N_TOKENS, 2, replace=False, p=weights)
            t0, t1 = (a, b) if self.tokens[a] < self.tokens[b] else (b, a)
            k = seen.get((t0, t1), 0)
            seen[(t0, t1)] = k + 1
            if k >= 4:
                continue
            v3 = rng.random() < 0.4
            depth_usd = float(np.exp(rng.uniform(np.log(2e4), np.log(2e7))))
            price = (self.usd[t0] / 10 ** self.decimals[t0]) / (self.usd[t1] / 10 ** self.decimals[t1])
            price *= 1.0 + rng.normal(0, 0.0005)
            pool = dict(addr=_addr(2, len(self.pools)), t0=int(t0), t1=int(t1), v3=v3, price=price)
            r0 = depth_usd / self.usd[t0] * 10 ** self.decimals[t0]
            if not v3:
                pool.update(kind=1, fee=3000, venue=int(rng.choice([400, 401, 300, 302])),
                            r0=int(r0) + 1000, r1=int(r0 * price) + 1000)
            else:
                fee, spacing = [(500, 10), (3000, 60), (10000, 200)][int(rng.integers(0, 3))]
                sp = min(max(int(math.sqrt(price) * 2**96), R.MIN_SQRT_RATIO + 1), R.MAX_SQRT_RATIO - 2)
                tick = R.get_tick_at_sqrt_ratio(sp)
                base_liq = max(int(math.sqrt(r0 * r0 * price)), 1000)
                cur = tick // spacing * spacing
                lo_full = -(-R.MIN_TICK // spacing) * spacing
                hi_full = R.MAX_TICK // spacing * spacing
                positions = [(lo_full, hi_full, base_liq)]
                for _ in range(int(rng.integers(2, 5))):
                    lo = max(lo_full, cur - spacing * int(rng.integers(1, 40)))
                    hi = min(hi_full, cur + spacing * int(rng.integers(1, 40)))
                    positions.append((lo, hi, base_liq * int(rng.integers(1, 4))))
                pool.update(kind=2, fee=fee, spacing=spacing, venue=405, sqrt=sp, positions=positions)
                self._v3_refresh(pool)
            self.pools.append(pool)

    @staticmethod
    def _v3_refresh(pool):
        tick, liq, ticks, nets = R.pool_from_positions(pool["positions"], pool["sqrt"])
        pool["tick"], pool["liq"] = tick, liq
        pool["ticks"] = list(zip(ticks, nets))

    def state_frames(self, seq0: int = 1) -> list[bytes]:
        out = []
        seq = seq0
        recs = []
        for p in self.pools:
            common = dict(block_number=1, fee_pips=p["fee"], venue=p["venue"],
                          token0_decimals=self.decimals[p["t0"]], token1_decimals=self.decimals[p["t1"]],
                          pool=p["addr"], token0=self.tokens[p["t0"]], token1=self.tokens[p["t1"]])
            if p["kind"] == 1:
                recs.append(C.PoolState(reserve0=p["r0"], reserve1=p["r1"], pool_kind=1, **common))
            else:
                recs.append(C.PoolState(sqrt_price_x96=p["sqrt"], liquidity=p["liq"], tick=p["tick"], pool_kind=2,
                                        tick_spacing=p["spacing"], **common))
                recs += [C.PoolTick(liquidity_net=n, block_number=1, tick=t, venue=405, pool=p["addr"])
                         for t, n in p["ticks"]]
            if len(recs) > 200:
                out.append(C.build_frame(1, 4, seq, recs, checksum=False))
                seq += 1
                recs = []
        if recs:
            out.append(C.build_frame(1, 4, seq, recs, checksum=False))
        return out

    def updates(self, n: int, seq0: int, jump_share: float = 0.02, close_after: int = 8) -> list[bytes]:
        """n single-update frames (consecutive sequences). Each update re-prices one pool at its
        tokens' common price times a small noise (0.03 %: arbitrage keeps venues aligned, so
        prices do not random-walk apart); a share of the updates are 1-4 % jumps that open real
        opportunities, closed ``close_after`` frames later (as arbitrageurs do on chain)."""
        rng = self.rng
        frames = []
        block = 2
        pending: dict[int, int] = {}   # frame index -> pool whose jump is closed then
        for i in range(n):
            if i % 50 == 0:
                block += 1
            if i in pending:
                k = pending.pop(i)
                target = self.pools[k]["price"] * (1.0 + rng.normal(0, 0.0003))
            else:
                k = int(rng.integers(0, N_POOLS))
                if rng.random() < jump_share:
                    target = self.pools[k]["price"] * (1.0 + rng.uniform(0.01, 0.04) * rng.choice([-1, 1]))
                    pending[i + close_after] = k
                else:
                    target = self.pools[k]["price"] * (1.0 + rng.normal(0, 0.0003))
            p = self.pools[k]
            if p["kind"] == 1:
                kk = float(p["r0"]) * float(p["r1"])
                p["r0"] = max(1000, int(math.sqrt(kk / target)))
                p["r1"] = max(1000, int(math.sqrt(kk * target)))
                rec = C.PoolSync(reserve0=p["r0"], reserve1=p["r1"], block_number=block, log_index=i,
                                 venue=p["venue"], token0_decimals=self.decimals[p["t0"]],
                                 token1_decimals=self.decimals[p["t1"]], pool=p["addr"],
                                 token0=self.tokens[p["t0"]], token1=self.tokens[p["t1"]])
            else:
                sp = int(math.sqrt(target) * 2**96)
                p["sqrt"] = min(max(sp, R.MIN_SQRT_RATIO + 1), R.MAX_SQRT_RATIO - 2)
                self._v3_refresh(p)
                rec = C.PoolSwap(amount_in=1, amount_out=1, sqrt_price_x96_after=p["sqrt"], liquidity_after=p["liq"],
                                 block_number=block, log_index=i, tick_after=p["tick"], venue=405,
                                 amount_in_decimals=18, amount_out_decimals=18, pool=p["addr"],
                                 token_in=self.tokens[p["t0"]], token_out=self.tokens[p["t1"]])
            frames.append(C.build_frame(1, 4, seq0 + i, [rec], checksum=False))
        return frames


def make_engine(market: SyntheticMarket, max_hops: int) -> StrategyEngine:
    cfg = EngineConfig(stable_token="0x" + market.tokens[0].hex(), native_token="0x" + market.tokens[1].hex(),
                       max_hops=max_hops, max_pools=16_384, max_tokens=2_048, max_v3_pools=8_192,
                       max_ticks_per_pool=32, journal_size=1 << 16, signal_table_size=1 << 17,
                       max_signals_per_batch=8192, max_triangles_per_pool=64, evaluate="frame")
    return StrategyEngine(cfg)


def load(engine: StrategyEngine, state_frames: list[bytes]) -> None:
    for f in state_frames:
        engine.process([np.frombuffer(f, np.uint8)])
    engine.process([np.frombuffer(C.build_frame(1, 4, len(state_frames) + 1, [C.GasPrice(
        base_fee_wei=30 * 10**9, priority_fee_wei=10**9, block_number=1, chain_id=137)], checksum=False), np.uint8)])


def bench_throughput(market, state_frames, updates, batch: int = 64):
    engine = make_engine(market, 3)
    load(engine, state_frames)
    bufs = [np.frombuffer(b"".join(updates[i:i + batch]), np.uint8) for i in range(0, len(updates), batch)]
    c0 = engine.counters()
    t = time.perf_counter()
    cpu = time.process_time()
    n_sig = 0
    for b in bufs:
        n, _ = engine.process_raw([b])
        n_sig += n
    dt = time.perf_counter() - t
    dcpu = time.process_time() - cpu
    c1 = engine.counters()
    applied = c1["applied"] - c0["applied"]
    d = {k: c1[k] - c0[k] for k in ("cycles", "candidates", "screened", "simulations", "signals_suppressed")}
    return dict(updates_per_s=applied / dt, cycles_per_s=d["cycles"] / dt,
                updates_per_cpu_s=applied / max(dcpu, 1e-9), signals=n_sig, candidates=d["candidates"],
                cycles_per_update=d["cycles"] / max(applied, 1), screened=d["screened"],
                simulations_per_sized_cycle=d["simulations"] / max(d["candidates"] - d["screened"], 1),
                suppressed=d["signals_suppressed"])


def signal_consumer(name, cpu, ready, done, res, nap_s=0.0):
    """The signal ring's reader, in its own process: busy-polls (``nap_s`` > 0: naps that long
    when the ring is empty, never asleep on the futex, so the publisher need not wake it), and
    per signal frame records its header stamp and now, less its trigger stamp."""
    import gc
    from alphapulse.ring import Ring
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    ring = Ring.attach(name)
    cons = ring.consumer("bench", wait="spin")
    cap = 1 << 20
    lat, seen, trig = np.zeros(cap, np.int64), np.zeros(cap, np.int64), np.zeros(cap, np.int64)
    hops = np.zeros(cap, np.uint8)
    _collect(np.zeros(0, np.uint8), 0, lat, seen, trig, hops, 0)
    gc.disable()
    ready.set()
    k = 0
    while True:
        views = cons.poll(timeout=0.0 if nap_s else 0.05)
        now = time.time_ns()
        if not views:
            if done.is_set():
                break
            if nap_s:
                time.sleep(nap_s)
            continue
        for v in views:
            k = _collect(v, now, lat, seen, trig, hops, k)
        cons.release()
    res.put((lat[:k].copy(), seen[:k].copy(), trig[:k].copy(), hops[:k].copy(), cons.lost_frames))
    cons.close()
    ring.close()


def market_producer(name, frames, rate, warmup, cpu, ready, go, res):
    """The market ring's publisher, in its own process: one frame every 1/rate s, each stamped
    with its arrival on the ring (:func:`publish_stamped`); sleeps in between (at
    least 100 us at a time, then the frames that fell due go out back to back)."""
    from alphapulse.ring import Ring
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        import ctypes
        ctypes.CDLL(None).prctl(29, 1, 0, 0, 0)       # PR_SET_TIMERSLACK: 1 ns
    except (OSError, AttributeError):
        pass
    ring = Ring.attach(name)
    prod = ring.producer()
    mk = prod.kernel_state()
    frs = [np.frombuffer(f, np.uint8).copy() for f in frames]
    ready.set()
    go.wait(120)
    interval = 1e9 / rate
    t0 = time.perf_counter_ns()
    t_measured = 0
    i = 0
    while i < len(frs):
        wait = t0 + int(i * interval) - time.perf_counter_ns()
        if wait > 0:
            time.sleep(max(wait, 100_000) / 1e9)
            continue
        r, ts = publish_stamped(*mk, frs[i])
        if r < 0:
            raise RuntimeError(f"market ring publication failed: {r}")
        if r >= WAKE:
            prod.wake()
        if i == warmup:
            t_measured = ts
        i += 1
    res.put(("producer", t_measured))
    prod.close()
    ring.close()


def _latency_figures(lat, seen, trig, hops, t_measured, all_lat):
    """From the reader's records: every 2-pool signal, the first of each frame, every triangle
    signal, the frames (all_lat), the k-th 2-pool signal of each frame, arrival times; in us."""
    keep = trig >= t_measured
    lat, seen, trig, hops = lat[keep], seen[keep], trig[keep], hops[keep]
    pair = hops == 2
    pair_lat = lat[pair]
    first = {}
    for t, v in zip(trig[pair].tolist(), pair_lat.tolist()):
        if t not in first or v < first[t]:
            first[t] = v
    first_lat = np.array(sorted(first.values()), np.float64)
    # the k-th 2-pool signal of its frame (arrival order): what the cycles sized before it cost
    t2 = trig[pair]
    idx = np.zeros(len(t2), np.int64)
    for i in range(1, len(t2)):
        if t2[i] == t2[i - 1]:
            idx[i] = idx[i - 1] + 1
    by_index = {k: pair_lat[idx == k] / 1e3 for k in range(int(idx.max()) + 1 if len(idx) else 0)}
    return (*(np.asarray(x, np.float64) / 1e3 for x in (pair_lat, first_lat, lat[hops == 3], all_lat)),
            by_index, seen[pair] / 1e3)


@contextlib.contextmanager
def _latency_rig(market, state_frames, max_hops: int, tag: str):
    """An engine loaded with the market, a market ring (overwrite) and a signal ring (lossless),
    a spawn context, and the CPU for the helper processes (the last one; this process is kept
    off it meanwhile). Yields (engine, market ring, signal ring, ctx, helper cpu, procs): the
    helper processes appended to ``procs`` are killed if still alive at the end."""
    import multiprocessing as mp
    from alphapulse.ring import Ring
    engine = make_engine(market, max_hops)
    load(engine, state_frames)
    tag = f"{tag}{os.getpid()}_{max_hops}"
    mring = Ring.create(f"{tag}_m", capacity=1 << 22, policy="overwrite")
    sring = Ring.create(f"{tag}_s", capacity=1 << 24, policy="lossless")
    cpus = sorted(os.sched_getaffinity(0))
    other = cpus[-1] if len(cpus) > 1 else None
    procs: list = []
    try:
        yield engine, mring, sring, mp.get_context("spawn"), other, procs
    finally:
        if other is not None:
            os.sched_setaffinity(0, set(cpus))
        for p in procs:
            if p.is_alive():
                p.kill()
        for r in (mring, sring):
            try:
                r.close()
                r.unlink()
            except Exception:  # noqa: BLE001 - best effort cleanup of the bench's own segments
                pass


def _start(procs_events, cpus_left, other):
    """Start the helper processes, keep this one off their CPU, wait until each is ready."""
    for p, _ in procs_events:
        p.start()
    if other is not None:
        os.sched_setaffinity(0, cpus_left)
    t_start = time.monotonic()
    for p, ev in procs_events:
        while not ev.wait(0.1):
            if not p.is_alive() or time.monotonic() - t_start > 120:
                raise RuntimeError(f"bench process did not start (exit code {p.exitcode})")


def bench_latency_spin(market, state_frames, updates, max_hops: int, rate: float = 2_000,
                       warmup: int = 500, python_loop: bool = False):
    """The spinning strategy (``[strategy] wait = "spin"``) between real rings, three processes:
    a market producer (paced at ``rate``, each frame stamped with its arrival on the ring),
    this one running ``engine.run`` (poll, process and publish in one compiled loop, on the
    first CPU; ``python_loop``: a spinning poll, ``process_raw`` and release from Python
    instead), and the signal ring's reader. Latency per signal: its header stamp (the
    kernel's clock when it wrote the frame, just before publishing it) less its trigger
    stamp. Same figures as :func:`bench_latency`; no per-frame or arrival times."""
    with _latency_rig(market, state_frames, max_hops, "bsp") as (engine, mring, sring, ctx, other, procs):
        ready_c, ready_p, go, done = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Event()
        res_c, res_p = ctx.Queue(), ctx.Queue()
        procs += [ctx.Process(target=signal_consumer, daemon=True,
                              args=(sring.name, other, ready_c, done, res_c, 0.001)),
                  ctx.Process(target=market_producer, daemon=True,
                              args=(mring.name, updates, rate, warmup, other, ready_p, go, res_p))]
        cons = mring.consumer("strategy", wait="spin")
        sprod = sring.producer()
        _start(list(zip(procs, (ready_c, ready_p))), set(sorted(os.sched_getaffinity(0))[:-1]), other)
        engine.run(cons, sprod, 0.01)       # loads the compiled loop before the first frame
        go.set()
        end = engine.counters()["frames"] + len(updates)
        t_limit = time.monotonic() + 60 + len(updates) / rate
        while engine.counters()["frames"] < end and time.monotonic() < t_limit:
            if python_loop:
                views = cons.poll(timeout=0.05)
                if views:
                    engine.process_raw(views, sink=sprod)
                    cons.release()
            else:
                engine.run(cons, sprod, 0.05)
        _, t_measured = res_p.get(timeout=60)
        done.set()
        lat, seen, trig, hops, lost = res_c.get(timeout=120)
        if lost or cons.lost_frames:
            raise RuntimeError(f"frames lost: signal reader {lost}, market consumer {cons.lost_frames}")
        for p in procs:
            p.join(10)
        cons.close()
        sprod.close()
    return _latency_figures(lat, seen, trig, hops, t_measured, [])


def bench_latency(market, state_frames, updates, max_hops: int, warmup: int = 500, python_loop: bool = False):
    """Frame-in to signal-out through real shared-memory rings, with the signal ring read by
    another process: market ring -> engine -> signal ring -> consumer process.

    Each market frame is published on the market ring by :func:`publish_stamped`, which
    writes its arrival (``wall_ns()``) into the header timestamp of the ring's copy just
    before the commit that makes it visible; this process runs the engine's compiled
    poll-process-release loop for it (``engine.run(consumer, producer, 0)``; ``python_loop``: ``poll``,
    ``process_raw(..., sink=producer)`` and ``release`` from Python), whose kernel publishes
    each signal on the signal ring itself: each 2-pool
    signal as soon as it is sized, the triangle signals after their search. A busy-polling
    consumer process (pinned to the last CPU, this process kept off it) records per signal
    its header stamp and arrival time, less the stamp of the frame that triggered it (the
    signal's ``trigger_ts_ns``). Returns latencies in us (see :func:`_latency_figures`), and
    the 2-pool signals' latencies counted from the clock read before each frame's publication
    call instead; the first ``warmup`` frames are run but not measured.
    """
    with _latency_rig(market, state_frames, max_hops, "bs") as (engine, mring, sring, ctx, other, procs):
        ready, done, res = ctx.Event(), ctx.Event(), ctx.Queue()
        procs.append(ctx.Process(target=signal_consumer, args=(sring.name, other, ready, done, res),
                                 daemon=True))
        _start([(procs[0], ready)], set(sorted(os.sched_getaffinity(0))[:-1]), other)
        mprod, sprod = mring.producer(), sring.producer()
        cons = mring.consumer("strategy", wait="spin")
        frames = [np.frombuffer(u, np.uint8).copy() for u in updates]
        mk = mprod.kernel_state()
        all_lat = []
        call_ns = {}    # arrival stamp -> how long before it the publication call began
        t_measured = 0
        clock = time.time_ns
        # the garbage collector as the strategy process runs it (apps.gcpolicy): no automatic
        # passes in the middle of a frame, a pass when idle (never here: frames are back to
        # back) or every 5 s at the latest
        with IdleCollector() as gcp:
            for i, fr in enumerate(frames):
                tb = clock()
                r, t0 = publish_stamped(*mk, fr)
                if r < 0:
                    raise RuntimeError(f"market ring publication failed: {r}")
                if r >= WAKE:
                    mprod.wake()
                call_ns[t0] = t0 - tb
                if python_loop:
                    views = cons.poll(timeout=0.0)
                    engine.process_raw(views, sink=sprod)
                    cons.release()
                else:
                    engine.run(cons, sprod, 0.0)    # poll, process, publish, release: compiled
                t1 = clock()
                gcp.tick(False)
                if i == warmup:
                    t_measured = t0     # first calls load the compiled kernels of every path
                if i >= warmup:
                    all_lat.append(t1 - t0)
        done.set()
        lat, seen, trig, hops, lost = res.get(timeout=120)
        if lost:
            raise RuntimeError(f"the signal consumer lost {lost} frames")
        procs[0].join(10)
    from_call = lat + np.array([call_ns[t] for t in trig.tolist()], np.int64)
    return (_latency_figures(lat, seen, trig, hops, t_measured, all_lat),
            _latency_figures(from_call, seen, trig, hops, t_measured, all_lat)[0])


def bench_v2_speedup(n: int):
    rng = np.random.default_rng(3)
    a = [int(x) for x in rng.integers(1, 10**15, n)] 
    a = [x * 10**6 for x in a]
    r_in = [int(x) * 10**9 for x in rng.integers(10**9, 10**12, n)]
    r_out = [int(x) * 10**9 for x in rng.integers(10**9, 10**12, n)]
    A = np.array([[x & (2**64 - 1), x >> 64] for x in a], np.uint64)
    RI = np.array([[x & (2**64 - 1), x >> 64] for x in r_in], np.uint64)
    RO = np.array([[x & (2**64 - 1), x >> 64] for x in r_out], np.uint64)
    from numba import njit

    @njit(cache=False)
    def run(A, RI, RO, out):
        for i in range(A.shape[0]):
            o, ok = amm_v2.v2_get_amount_out((A[i, 0], A[i, 1], np.uint64(0), np.uint64(0)),
                                             (RI[i, 0], RI[i, 1], np.uint64(0), np.uint64(0)),
                                             (RO[i, 0], RO[i, 1], np.uint64(0), np.uint64(0)), 3000)
            out[i, 0] = o[0]
            out[i, 1] = o[1]
    out = np.zeros((n, 2), np.uint64)
    run(A[:2], RI[:2], RO[:2], out[:2])
    t = time.perf_counter()
    run(A, RI, RO, out)
    t_nb = time.perf_counter() - t
    t = time.perf_counter()
    py = [R.v2_get_amount_out(x, y, z, 3000) for x, y, z in zip(a, r_in, r_out)]
    t_py = time.perf_counter() - t
    assert all(int(out[i, 0]) | (int(out[i, 1]) << 64) == py[i] for i in range(0, n, max(1, n // 500)))
    return t_py / t_nb, t_nb / n * 1e9, t_py / n * 1e9


def bench_v3_speedup(n: int):
    rng = np.random.default_rng(4)
    spacing = 60
    positions = [(-887220, 887220, 10**21)] + [(-60 * k, 60 * k, 10**21) for k in range(1, 12)]
    sp = R.get_sqrt_ratio_at_tick(0) + 12345
    tick, liq, ticks, nets = R.pool_from_positions(positions, sp)
    ta = np.array(ticks, np.int32)
    na = i128_rows(nets)
    amounts = [int(x) * 10**12 for x in rng.integers(10**6, 4 * 10**9, n)]  # crosses 0-10 ticks
    zfos = [bool(x) for x in rng.integers(0, 2, n)]
    AM = np.array([[x & (2**64 - 1), x >> 64] for x in amounts], np.uint64)
    Z = np.array(zfos, np.bool_)
    from numba import njit

    @njit(cache=False)
    def run(sp, tick, liq, ta, na, AM, Z, out):
        crossed = 0
        for i in range(AM.shape[0]):
            st, a_in, a_out, s2, l2, t2, c = amm_v3.v3_swap(
                sp, tick, liq, 3000, 60, ta, na, ta.shape[0], Z[i], True,
                (AM[i, 0], AM[i, 1], np.uint64(0), np.uint64(0)), amm_v3.default_limit(Z[i]))
            out[i, 0] = a_out[0]
            out[i, 1] = a_out[1]
            crossed += c
        return crossed
    out = np.zeros((n, 2), np.uint64)
    run(to_u256(sp), tick, to_u256(liq), ta, na, AM[:2], Z[:2], out[:2])
    t = time.perf_counter()
    crossed = run(to_u256(sp), tick, to_u256(liq), ta, na, AM, Z, out)
    t_nb = time.perf_counter() - t
    t = time.perf_counter()
    py = []
    for a, z in zip(amounts, zfos):
        r = R.v3_swap(sp, tick, liq, 3000, spacing, ticks, nets, z, a)
        py.append(-(r.amount1 if z else r.amount0))
    t_py = time.perf_counter() - t
    assert all(int(out[i, 0]) | (int(out[i, 1]) << 64) == py[i] for i in range(n))
    return t_py / t_nb, t_nb / n * 1e9, t_py / n * 1e9, crossed / n


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--quick", action="store_true", help="smaller counts (< 2 minutes)")
    args = ap.parse_args(argv)
    n_updates = 20_000 if args.quick else 100_000
    n_latency = 20_000 if args.quick else 100_000
    res: dict = {}
    t0 = time.perf_counter()
    market = SyntheticMarket(1)
    state = market.state_frames()
    updates = market.updates(n_updates, seq0=len(state) + 2, jump_share=0.002)
    lat_updates = market.updates(n_latency, seq0=len(state) + 2, jump_share=0.05)
    figure("setup_s", round(time.perf_counter() - t0, 2), "s")

    thr = bench_throughput(market, state, updates)
    res["updates_per_s"] = round(thr["updates_per_s"])
    res["cycles_per_s"] = round(thr["cycles_per_s"])
    res["throughput_signals"] = thr["signals"]
    res["updates_per_cpu_s"] = round(thr["updates_per_cpu_s"])
    res["throughput_candidates"] = thr["candidates"]
    res["throughput_screened"] = thr["screened"]
    res["throughput_suppressed"] = thr["suppressed"]
    res["cycles_per_update"] = round(thr["cycles_per_update"], 2)
    res["simulations_per_sized_cycle"] = round(thr["simulations_per_sized_cycle"], 2)
    figure("updates_per_s", res["updates_per_s"], "updates/s")
    figure("cycles_per_s", res["cycles_per_s"], "cycles/s")
    figure("updates_per_cpu_s", res["updates_per_cpu_s"], "updates/cpu-s")
    # the same stream without any jump: the cost of the cycle search when nothing pays
    calm = market.updates(n_updates // 2, seq0=len(state) + 2, jump_share=0.0)
    thr0 = bench_throughput(market, state, calm)
    res["updates_per_s_no_opportunity"] = round(thr0["updates_per_s"])
    res["updates_per_cpu_s_no_opportunity"] = round(thr0["updates_per_cpu_s"])
    figure("updates_per_s_no_opportunity", res["updates_per_s_no_opportunity"], "updates/s")

    def pct(a, q):
        return round(float(np.percentile(a, q)), 2) if len(a) else None

    # the full search (2-pool and triangles), one frame at a time back to back: 2-pool signals
    # are published before the triangle search, from the kernel
    (pair_lat, first_lat, tri_lat, all_lat, by_index, seen), pair_call = bench_latency(market, state, lat_updates,
                                                                                      max_hops=3)
    res["latency_p50_us"] = pct(pair_lat, 50)
    res["latency_p99_us"] = pct(pair_lat, 99)
    res["latency_p999_us"] = pct(pair_lat, 99.9)
    res["latency_signals"] = int(len(pair_lat))
    res["latency_from_publish_call_p50_us"] = pct(pair_call, 50)
    res["latency_from_publish_call_p99_us"] = pct(pair_call, 99)
    res["latency_first_p50_us"] = pct(first_lat, 50)
    res["latency_first_p99_us"] = pct(first_lat, 99)
    res["latency_frames"] = int(len(first_lat))
    for k, v in by_index.items():
        res[f"latency_signal{k + 1}_of_frame"] = {"n": int(len(v)), "p50_us": pct(v, 50), "p99_us": pct(v, 99)}
    res["latency_tri_p50_us"] = pct(tri_lat, 50)
    res["latency_tri_p99_us"] = pct(tri_lat, 99)
    res["latency_tri_signals"] = int(len(tri_lat))
    res["latency_all_p50_us"] = pct(all_lat, 50)
    res["latency_all_p99_us"] = pct(all_lat, 99)
    res["latency_seen_p50_us"] = pct(seen, 50)
    res["latency_seen_p99_us"] = pct(seen, 99)
    # the same with the poll, the kernel call and the release each called from Python
    (py_lat, py_first, _, _, _, _), _ = bench_latency(market, state, lat_updates, max_hops=3, python_loop=True)
    res["latency_python_loop_p50_us"] = pct(py_lat, 50)
    res["latency_python_loop_p99_us"] = pct(py_lat, 99)
    res["latency_python_loop_first_p50_us"] = pct(py_first, 50)
    # 2-pool cycles only (max_hops = 2)
    (pair2, first2, _, all2, _, _), _ = bench_latency(market, state, lat_updates, max_hops=2)
    res["latency_pairs_only_p50_us"] = pct(pair2, 50)
    res["latency_pairs_only_p99_us"] = pct(pair2, 99)
    res["latency_pairs_only_first_p99_us"] = pct(first2, 99)
    res["latency_pairs_only_all_p99_us"] = pct(all2, 99)
    # the spinning strategy process (wait = "spin": engine.run) fed by another process at a
    # steady rate, the signal reader a third one
    sp_lat, sp_first, _, _, sp_idx, _ = bench_latency_spin(market, state, lat_updates, max_hops=3,
                                                           rate=SPIN_RATE)
    res["latency_spin_rate_fps"] = SPIN_RATE
    res["latency_spin_p50_us"] = pct(sp_lat, 50)
    res["latency_spin_p99_us"] = pct(sp_lat, 99)
    res["latency_spin_first_p50_us"] = pct(sp_first, 50)
    res["latency_spin_first_p99_us"] = pct(sp_first, 99)
    for k in ("latency_p50_us", "latency_p99_us", "latency_p999_us", "latency_first_p99_us", "latency_tri_p50_us",
              "latency_tri_p99_us", "latency_all_p50_us", "latency_all_p99_us", "latency_pairs_only_p50_us",
              "latency_pairs_only_p99_us", "latency_spin_p50_us", "latency_spin_p99_us"):
        figure(k, res[k], "us")

    v2, v2_nb_ns, v2_py_ns = bench_v2_speedup(20_000 if args.quick else 100_000)
    res["v2_speedup_vs_python"] = round(v2, 1)
    res["v2_ns_numba"] = round(v2_nb_ns, 1)
    res["v2_ns_python"] = round(v2_py_ns, 1)
    figure("v2_speedup_vs_python", res["v2_speedup_vs_python"], "x")
    v3, v3_nb_ns, v3_py_ns, crossed = bench_v3_speedup(1_000 if args.quick else 5_000)
    res["v3_speedup_vs_python"] = round(v3, 1)
    res["v3_ns_numba"] = round(v3_nb_ns, 1)
    res["v3_ns_python"] = round(v3_py_ns, 1)
    res["v3_ticks_crossed_avg"] = round(crossed, 2)
    figure("v3_speedup_vs_python", res["v3_speedup_vs_python"], "x")
    res["targets"] = {
        "latency_p99_under_35us": res["latency_p99_us"] is not None and res["latency_p99_us"] < TARGET_P99_US,
        "updates_per_s_over_200k": res["updates_per_s"] >= TARGET_UPDATES,
    }
    res["quick"] = bool(args.quick)
    res["elapsed_s"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
