"""Shared-memory ring vs the IPC a Python user would otherwise pick.

Producer and consumer always run in two separate processes (spawn start
method), the same frames (valid Protocol V2 frames of 64, 128 and 256 bytes:
header + one vendor TLV) for every transport:

* ``ring``          (lossless, 8 MiB) claim a 256 KiB region, a Numba kernel writes the frames
                    (template copy + sequence number) straight into it, commit
                    once; the consumer busy-polls, walks every frame header in
                    a Numba kernel (count, sequence continuity) and releases.
* ``ring_single``   ``Producer.publish(frame)`` once per frame from Python
                    (the per-frame API, for an apples-to-apples look).
* ``mpq``           ``multiprocessing.Queue``, one frame (bytes) per put.
* ``mpq_blob``      ``multiprocessing.Queue``, one bytes blob of 256 frames per put;
                    like the ring, the producer writes fresh sequence numbers with
                    the same kernel and the consumer walks every frame header.
* ``faster_fifo``   ``faster_fifo.Queue``, one frame per put / get.
* ``faster_fifo_batch`` its batch API: ``put_many`` of 256 frames, ``get_many``.
* ``zmq``           pyzmq PUSH/PULL over ``ipc://``, one frame per message.

Throughput = frames / (consumer's last receive - producer's first send), on
the system-wide monotonic clock; each pair runs ``--repeat`` rounds in the
same two processes and the best round is reported (the median too, as
``*_fps_median_*``), because on a shared machine the neighbours' load, not the
code, decides the slow rounds. CPU = user+sys seconds of each process over
its run (``resource.getrusage``), also as % of the wall time.

Latency: single-frame ``publish`` paced at a steady rate (default 100k
frames/s), each frame stamped with ``time.time_ns()`` just before publish; a
busy-spinning consumer (``wait="spin"``) computes now - stamp per frame:
p50 / p99 / p99.9 / max one-way latency. The producer sleeps until each frame
is due, at least 100 us at a time (1 ns timer slack), then publishes the
frames that fell due, one ``publish`` each, back to back: it leaves its core
to the rest of the machine instead of spinning on it. The consumer is pinned
to the last CPU and the producer to the first (``--no-pin``: placement left
to the scheduler). Python's cyclic GC is off in both measured loops (``--gc``
keeps it on): its passes stall the consumer for 50 us to 1 ms, ~100 times a
second at this rate. Each latency test first sends ``--warmup`` frames (20,000:
0.2 s) at the same rate and leaves them out of the figures: the first polls
and publishes load compiled kernels and fault in pages, and stall the first
~1,000 frames for up to ~7 ms (reported as ``latency_warmup_max_us``). The
measured window lasts 5 s (3 s with ``--quick``; ``--latency-seconds``).
Before it, ``jitter_*`` measures the floor under any busy-spin figure on the
consumer's CPU: a loop that only reads the clock for 1 s counts how often and
how long the CPU is taken from it (timer ticks, interrupts, the hypervisor,
other tasks). The same at 2,000 frames/s with the default sleeping
consumer (``wait="sleep"``, woken through a futex): ``latency_sleep_*``.
``--realtime PRIO`` repeats the busy-spin test with both processes under
``SCHED_FIFO`` (``latency_rt_*``). Note that Linux throttles a CPU-bound
real-time task for 50 ms of every second unless
``/proc/sys/kernel/sched_rt_runtime_us`` is -1, which this script never changes.

``--json``: the last line is one JSON object (``ring_fps_128``, ``mpq_fps_128``,
``mpq_blob_fps_128``, ``faster_fifo_fps_128``, ``zmq_fps_128``,
``latency_p50_us``, ``latency_p99_us``, ... and ``*_ratio`` keys).
``--quick``: smaller counts, under two minutes. Needs the ``perf`` extra
(``pip install -e .[perf]``: faster-fifo, pyzmq); a missing one is reported
as null, not faked.
"""
from __future__ import annotations

import argparse
import gc
import json
import multiprocessing as mp
import os
import platform
import resource
import sys
import time

import numpy as np
from numba import njit

from alphapulse.jit.memory import ld_u32, ld_u64, st_u64

SIZES = (64, 128, 256)
BLOB = 256
# 256 KiB claims (2,048 frames of 128 B per publish) in an 8 MiB ring: the
# faster-fifo queue below gets the same 8 MiB (multiprocessing.Queue is
# unbounded); the buffer absorbs the scheduler gaps of either process on a
# shared box instead of stalling the other. Override with these variables.
RING_BATCH_BYTES = int(os.environ.get("ALPHAPULSE_BENCH_RING_BATCH", 1 << 18))
RING_CAPACITY = int(os.environ.get("ALPHAPULSE_BENCH_RING_CAPACITY", 1 << 23))
# the latency test's producer sleeps at least this long between bursts of due frames
PACE_QUANTUM_NS = int(os.environ.get("ALPHAPULSE_BENCH_PACE_QUANTUM_NS", 100_000))


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def make_frames(size: int, count: int) -> list[bytes]:
    """``count`` valid frames of exactly ``size`` bytes, sequences 1..count."""
    from alphapulse.protocol import codec
    out = []
    for seq in range(1, count + 1):
        f = codec.build_frame(1, 4, seq, [codec.RawTlv(200, bytes([seq % 251]) * (size - 34))],
                              timestamp_ns=0, checksum=False)
        assert len(f) == size
        out.append(f)
    return out


# ----------------------------------------------------------------- ring kernels
@njit(cache=True)
def fill(view, batch, size, seq0, k):
    """k frames of ``size`` bytes: copy of a prepared batch + sequence numbers; returns bytes."""
    n = k * size
    for i in range(n):             # a plain loop: LLVM vectorises it (memcpy speed)
        view[i] = batch[i]
    p = 0
    for i in range(k):
        st_u64(view, p + 8, seq0 + i)
        p += size
    return n


@njit(cache=True)
def walk(view, expect):
    """(frames, next expected sequence, errors) over consecutive frames."""
    p = 0
    n = view.shape[0]
    k = 0
    err = 0
    while p + 32 <= n:
        s = np.int64(ld_u64(view, p + 8))
        if s != expect:
            err += 1
        expect = s + 1
        p += 32 + np.int64(ld_u32(view, p + 24))
        k += 1
    return k, expect, err


@njit(cache=True)
def stamps(view, out, at, now):
    """now - timestamp_ns of each frame into out[at:]; returns the new fill level."""
    p = 0
    n = view.shape[0]
    while p + 32 <= n and at < out.shape[0]:
        out[at] = now - np.int64(ld_u64(view, p + 16))
        at += 1
        p += 32 + np.int64(ld_u32(view, p + 24))
    return at


@njit(cache=True)
def set_seq_ts(frame, seq, ts):
    st_u64(frame, 8, seq)
    st_u64(frame, 16, ts)


# ----------------------------------------------------------------- workers
# Each pair runs ``reps`` measured rounds of ``n`` frames in the same two
# processes; both sides meet at a barrier before each round. A producer
# reports (t_first_send, t_last_send, cpu_s), a consumer (t_last_receive,
# cpu_s from its first receive, frames, errors).
def ring_producer(name, size, n, single, reps, barrier, res):
    from alphapulse.ring import Ring
    ring = Ring.attach(name)
    p = ring.producer(publish_timeout=60)
    template = np.frombuffer(make_frames(size, 1)[0], dtype=np.uint8).copy()
    per = RING_BATCH_BYTES // size
    batch = np.tile(template, per)
    fill(np.empty(per * size, np.uint8), batch, size, 1, per)     # compile before timing
    frame = template.copy()
    seq = 1
    for rep in range(reps):
        barrier.wait(120)
        c0, t0 = _cpu(), time.monotonic()
        end = seq + n
        if single:
            while seq < end:
                set_seq_ts(frame, seq, 0)
                p.publish(frame)
                seq += 1
        else:
            while seq < end:
                k = min(per, end - seq)
                view = p.claim(k * size)
                fill(view, batch, size, seq, k)
                p.commit(k * size)
                seq += k
        res.put(("producer", rep, t0, time.monotonic(), _cpu() - c0))
    p.close()
    ring.close()


def ring_consumer(name, n, reps, barrier, res):
    from alphapulse.ring import Ring
    walk(np.zeros(0, np.uint8), 1)
    ring = Ring.attach(name)
    c = ring.consumer("bench", wait="spin")
    expect = 1
    for rep in range(reps):
        barrier.wait(120)
        got = errors = 0
        c0 = None
        while got < n:
            views = c.poll(timeout=30)
            if not views:
                break
            if c0 is None:
                c0 = _cpu()
            for v in views:
                k, expect, e = walk(v, expect)
                got += k
                errors += e
            c.release()
        res.put(("consumer", rep, time.monotonic(), _cpu() - (c0 or _cpu()), got, errors))
    c.close()
    ring.close()


def mpq_producer(q, size, n, blob, reps, barrier, res):
    frames = make_frames(size, BLOB)
    batch = np.frombuffer(b"".join(frames), dtype=np.uint8).copy()
    buf = np.empty_like(batch)
    fill(buf, batch, size, 1, BLOB)                      # compile before timing
    seq = 1
    for rep in range(reps):
        barrier.wait(120)
        c0, t0 = _cpu(), time.monotonic()
        if blob:
            # like the ring producer: fresh frames (sequence numbers) for every blob
            for _ in range(n // BLOB):
                fill(buf, batch, size, seq, BLOB)
                q.put(buf.tobytes())
                seq += BLOB
        else:
            for i in range(n):
                q.put(frames[i & (BLOB - 1)])
        res.put(("producer", rep, t0, time.monotonic(), _cpu() - c0))


def mpq_consumer(q, size, n, blob, reps, barrier, res):
    walk(np.zeros(0, np.uint8), 1)
    expect = 1
    for rep in range(reps):
        barrier.wait(120)
        got = nbytes = errors = 0
        m = q.get()
        c0 = _cpu()
        while True:
            if blob:
                # like the ring consumer: walk every frame header, check the sequence
                k, expect, e = walk(np.frombuffer(m, dtype=np.uint8), expect)
                got += k
                errors += e
            else:
                nbytes += len(m)
                got += 1
            if got >= n:
                break
            m = q.get()
        if not blob and nbytes != got * size:
            errors += 1
        res.put(("consumer", rep, time.monotonic(), _cpu() - c0, got, errors))


def ff_producer(q, size, n, batch, reps, barrier, res):
    frames = make_frames(size, BLOB)
    for rep in range(reps):
        barrier.wait(120)
        c0, t0 = _cpu(), time.monotonic()
        if batch:
            for _ in range(n // BLOB):
                q.put_many(frames, timeout=60)
        else:
            for i in range(n):
                q.put(frames[i & (BLOB - 1)], timeout=60)
        res.put(("producer", rep, t0, time.monotonic(), _cpu() - c0))


def ff_consumer(q, size, n, batch, reps, barrier, res):
    for rep in range(reps):
        barrier.wait(120)
        got = bad = 0
        c0 = None
        while got < n:
            if batch:
                ms = q.get_many(timeout=60, max_messages_to_get=4096)
                for m in ms:
                    bad += len(m) != size
                got += len(ms)
            else:
                m = q.get(timeout=60)
                bad += len(m) != size
                got += 1
            if c0 is None:
                c0 = _cpu()
        res.put(("consumer", rep, time.monotonic(), _cpu() - c0, got, bad))


def zmq_producer(addr, size, n, reps, barrier, res):
    import zmq
    frames = make_frames(size, BLOB)
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, 100_000)
    s.bind(addr)
    for rep in range(reps):
        barrier.wait(120)
        c0, t0 = _cpu(), time.monotonic()
        for i in range(n):
            s.send(frames[i & (BLOB - 1)])
        res.put(("producer", rep, t0, time.monotonic(), _cpu() - c0))
    s.close(linger=10_000)
    ctx.term()


def zmq_consumer(addr, size, n, reps, barrier, res):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.RCVHWM, 100_000)
    s.connect(addr)
    for rep in range(reps):
        barrier.wait(120)
        got = bad = 0
        c0 = None
        while got < n:
            m = s.recv()
            if c0 is None:
                c0 = _cpu()
            bad += len(m) != size
            got += 1
        res.put(("consumer", rep, time.monotonic(), _cpu() - c0, got, bad))
    s.close()
    ctx.term()


def _fine_timer_slack() -> None:
    """Linux: wake sleeps within 1 ns of their deadline instead of the default 50 us slack."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)     # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


def _realtime(prio: int) -> str | None:
    """SCHED_FIFO at ``prio`` for this process (root or CAP_SYS_NICE); None if refused."""
    if not prio:
        return None
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))
        return f"SCHED_FIFO {prio}"
    except (OSError, AttributeError) as e:
        print(f"--realtime not applied: {e}", file=sys.stderr)
        return None


def _pin(cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def _gc_collections() -> int:
    return sum(g["collections"] for g in gc.get_stats())


def latency_producer(name, rate, seconds, ready, res, rt=0, cpu=None, gc_on=False, warmup=0):
    from alphapulse.ring import Ring
    _realtime(rt)
    _pin(cpu)
    ring = Ring.attach(name)
    p = ring.producer(publish_timeout=10)
    frame = np.frombuffer(make_frames(128, 1)[0], dtype=np.uint8).copy()
    set_seq_ts(frame, 1, 0)
    ready.wait(60)
    n = int(rate * seconds) + warmup
    interval = 1e9 / rate
    _fine_timer_slack()
    if not gc_on:
        gc.disable()
    c0 = _cpu()
    t0 = time.perf_counter_ns()
    i = 0
    while i < n:
        # sleep, not spin, while no frame is due: a spinning producer and a spinning consumer
        # take both cores, and whatever else runs then preempts one of them for a scheduler
        # tick (ms). Each sleep lasts at least PACE_QUANTUM_NS (a wake-up costs several us of
        # CPU here): the frames that fell due meanwhile then go out back to back, each
        # stamped just before its own single-frame publish; the average rate is exact.
        wait = t0 + int(i * interval) - time.perf_counter_ns()
        if wait > 0:
            time.sleep(max(wait, PACE_QUANTUM_NS) / 1e9)
            continue
        i += 1
        set_seq_ts(frame, i, time.time_ns())
        p.publish(frame)
    wall = (time.perf_counter_ns() - t0) / 1e9
    gc.enable()
    res.put(("producer", n, wall, _cpu() - c0))
    p.close()
    ring.close()


def latency_consumer(name, n, wait, ready, res, rt=0, cpu=None, gc_on=False):
    _realtime(rt)
    _pin(cpu)
    from alphapulse.ring import Ring
    lat = np.zeros(n, dtype=np.int64)
    stamps(np.zeros(0, np.uint8), lat, 0, 0)
    ring = Ring.attach(name)
    c = ring.consumer("latency", wait=wait)
    ready.set()
    at = 0
    # the loop makes no reference cycles; a cyclic-GC pass here costs ~50 us (young
    # generation, ~100 per second at this rate) to ~1 ms (older ones, ~9 per second),
    # measured with gc.callbacks: the frames that arrive meanwhile wait that long
    if not gc_on:
        gc.disable()
    gc0 = _gc_collections()
    c0 = _cpu()
    t0 = time.monotonic()
    while at < n:
        views = c.poll(timeout=10)
        now = time.time_ns()
        if not views:
            break
        for v in views:
            at = stamps(v, lat, at, now)
        c.release()
    wall = time.monotonic() - t0
    collections = _gc_collections() - gc0
    gc.enable()
    res.put(("consumer", lat[:at], _cpu() - c0, wall, collections))
    c.close()
    ring.close()


def jitter_probe(seconds, cpu, res):
    """Spin on the clock for ``seconds`` on ``cpu``: how often, and for how long, the CPU is
    taken away from a spinning task (timer ticks, interrupts, other tasks, the hypervisor).
    This is the floor under any busy-spin latency figure measured on that CPU."""
    _pin(cpu)
    gc.disable()
    clock = time.perf_counter_ns
    t0 = prev = clock()
    end = t0 + int(seconds * 1e9)
    n20 = n100 = lost20 = 0
    gmax = 0
    while prev < end:
        t = clock()
        g = t - prev
        prev = t
        if g > 20_000:
            n20 += 1
            lost20 += g
            if g > 100_000:
                n100 += 1
            if g > gmax:
                gmax = g
    wall = (prev - t0) / 1e9
    gc.enable()
    res.put({"jitter_cpu": cpu, "jitter_gaps_over_20us_per_s": n20 / wall,
             "jitter_gaps_over_100us_per_s": n100 / wall,
             "jitter_lost_pct": 100 * lost20 / 1e9 / wall, "jitter_max_gap_us": gmax / 1e3})


def bench_jitter(ctx, seconds, pin=True):
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    res = ctx.Queue()
    p = ctx.Process(target=jitter_probe, args=(seconds, cpus[-1] if pin and cpus else None, res),
                    daemon=True)
    p.start()
    try:
        return res.get(timeout=60 + seconds)
    finally:
        p.join(10)


# ----------------------------------------------------------------- driver
def run_pair(ctx, prod, pargs, cons, cargs, n, reps, timeout=300):
    """Run ``reps`` rounds; the round with the best throughput, and the median."""
    barrier = ctx.Barrier(2)
    res = ctx.Queue()
    pc = ctx.Process(target=cons, args=(*cargs, reps, barrier, res), daemon=True)
    pp = ctx.Process(target=prod, args=(*pargs, reps, barrier, res), daemon=True)
    pc.start()
    pp.start()
    got: dict = {}
    try:
        for _ in range(2 * reps):
            r = res.get(timeout=timeout)
            got[(r[0], r[1])] = r
    finally:
        for p in (pp, pc):
            p.join(10)
            if p.is_alive():
                p.kill()
    rounds = []
    for rep in range(reps):
        _, _, t0, _, prod_cpu = got[("producer", rep)]
        _, _, t_end, cons_cpu, frames, errors = got[("consumer", rep)]
        if frames != n or errors:
            raise RuntimeError(f"{prod.__name__}: consumer got {frames} of {n} frames, "
                               f"{errors} errors")
        wall = t_end - t0
        rounds.append({"fps": n / wall, "wall_s": wall, "producer_cpu_pct": 100 * prod_cpu / wall,
                       "consumer_cpu_pct": 100 * cons_cpu / wall})
    best = max(rounds, key=lambda r: r["fps"])
    best["median_fps"] = sorted(r["fps"] for r in rounds)[reps // 2]
    return best


def bench_ring(ctx, size, n, single, reps):
    from alphapulse.ring import Ring
    name = f"bench_{os.getpid()}_{size}_{int(single)}"
    with Ring.create(name, RING_CAPACITY, "lossless"):
        return run_pair(ctx, ring_producer, (name, size, n, single), ring_consumer, (name, n),
                        n, reps)


def bench_mpq(ctx, size, n, blob, reps):
    q = ctx.Queue()
    return run_pair(ctx, mpq_producer, (q, size, n, blob), mpq_consumer, (q, size, n, blob),
                    n, reps)


def bench_ff(ctx, size, n, batch, reps):
    from faster_fifo import Queue
    q = Queue(max_size_bytes=RING_CAPACITY)
    return run_pair(ctx, ff_producer, (q, size, n, batch), ff_consumer, (q, size, n, batch),
                    n, reps)


def bench_zmq(ctx, size, n, reps):
    addr = f"ipc:///tmp/alphapulse_bench_{os.getpid()}_{size}.ipc"
    try:
        return run_pair(ctx, zmq_producer, (addr, size, n), zmq_consumer, (addr, size, n),
                        n, reps)
    finally:
        try:
            os.unlink(addr[len("ipc://"):])
        except FileNotFoundError:
            pass


def bench_latency(ctx, rate, seconds, wait="spin", rt=0, pin=True, gc_on=False, warmup=0):
    """``pin``: the consumer on the last CPU, the producer on the first (two or more CPUs).

    ``warmup`` frames go first at the same rate and are left out of the figures
    (their worst case is reported as ``latency_warmup_max_us``).
    """
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pc_cpu, pp_cpu = (cpus[-1], cpus[0]) if pin and len(cpus) >= 2 else (None, None)
    from alphapulse.ring import Ring
    name = f"benchlat_{os.getpid()}"
    n = int(rate * seconds) + warmup
    with Ring.create(name, RING_CAPACITY, "lossless"):
        ready, res = ctx.Event(), ctx.Queue()
        pc = ctx.Process(target=latency_consumer, args=(name, n, wait, ready, res, rt, pc_cpu, gc_on), daemon=True)
        pp = ctx.Process(target=latency_producer, args=(name, rate, seconds, ready, res, rt, pp_cpu, gc_on, warmup),
                        daemon=True)
        pc.start()
        pp.start()
        out = {}
        try:
            for _ in range(2):
                r = res.get(timeout=120 + seconds)
                out[r[0]] = r
        finally:
            for p in (pp, pc):
                p.join(10)
                if p.is_alive():
                    p.kill()
    _, sent, pwall, pcpu = out["producer"]
    _, lat, ccpu, cwall, collections = out["consumer"]
    if len(lat) != sent:
        raise RuntimeError(f"latency: {len(lat)} of {sent} frames received")
    warm_us = lat[:warmup] / 1000.0
    us = lat[warmup:] / 1000.0
    sent -= warmup
    return {"latency_p50_us": float(np.percentile(us, 50)),
            "latency_p90_us": float(np.percentile(us, 90)),
            "latency_p95_us": float(np.percentile(us, 95)),
            "latency_frac_over_20us": float(np.mean(us > 20.0)),
            "latency_p99_us": float(np.percentile(us, 99)),
            "latency_p999_us": float(np.percentile(us, 99.9)),
            "latency_max_us": float(us.max()),
            "latency_frames": int(sent), "latency_rate_fps": (sent + warmup) / pwall,
            "latency_warmup_frames": int(warmup),
            "latency_warmup_max_us": float(warm_us.max()) if warmup else None,
            "latency_pinned": pc_cpu is not None,
            "latency_consumer_gc_collections": collections,
            "latency_producer_cpu_pct": 100 * pcpu / pwall,
            "latency_consumer_cpu_pct": 100 * ccpu / cwall}


def bench_idle_consumer(seconds: float) -> dict:
    """CPU a waiting consumer costs on an idle ring, per wait strategy (this process)."""
    from alphapulse.ring import Ring
    out = {}
    with Ring.create(f"benchidle_{os.getpid()}", 1 << 16, "lossless") as ring:
        for wait in ("sleep", "spin"):
            c = ring.consumer(f"idle_{wait}", wait=wait)
            c.poll(0.01)                                  # compile outside the measurement
            c0, t0 = _cpu(), time.monotonic()
            c.poll(timeout=seconds)
            out[f"idle_{wait}_consumer_cpu_pct"] = 100 * (_cpu() - c0) / (time.monotonic() - t0)
            c.close()
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--quick", action="store_true", help="smaller counts (< 2 minutes)")
    ap.add_argument("--rate", type=float, default=100_000, help="latency test frames/s")
    ap.add_argument("--repeat", type=int, default=None,
                    help="measured rounds per transport and size (default 3, 2 with --quick); "
                         "the best is reported (and the median, as *_fps_median_*)")
    ap.add_argument("--priority", action="store_true",
                    help="raise this session's scheduler autogroup to nice -10 (root; Linux "
                         "autogroups share the CPU per session, so on a box shared with other "
                         "sessions the measured figure is otherwise the neighbours' load)")
    ap.add_argument("--realtime", type=int, default=0, metavar="PRIO",
                    help="also run the busy-spin latency test with producer and consumer under "
                         "SCHED_FIFO PRIO (root or CAP_SYS_NICE): latency_rt_* keys")
    ap.add_argument("--no-pin", action="store_true",
                    help="latency tests: let the scheduler place producer and consumer (default: "
                         "consumer pinned to the last CPU, producer to the first)")
    ap.add_argument("--gc", action="store_true",
                    help="latency tests: leave Python's cyclic GC on in the measured loops "
                         "(default: off there, as in a latency-critical process)")
    ap.add_argument("--latency-seconds", type=float, default=None,
                    help="measured seconds of each latency test (default 5, 3 with --quick)")
    ap.add_argument("--warmup", type=int, default=20_000,
                    help="latency tests: frames sent first at the same rate and left out of the "
                         "figures (first polls, page faults, lazy imports); default 20000")
    ap.add_argument("--only", default="", help="comma-separated subset: ring,ring_single,mpq,"
                    "mpq_blob,faster_fifo,faster_fifo_batch,zmq,latency,idle")
    a = ap.parse_args(argv)
    q = a.quick
    priority = None
    if a.priority:
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write("-10")
            priority = "autogroup nice -10"
        except OSError as e:
            print(f"--priority not applied: {e}", file=sys.stderr)
    counts = {  # frames per run
        "ring": 2_000_000 if q else 20_000_000,
        "ring_single": 50_000 if q else 1_000_000,
        "mpq": 30_000 if q else 300_000,
        "mpq_blob": 512_000 if q else 4_096_000,
        "faster_fifo": 30_000 if q else 300_000,
        "faster_fifo_batch": 256_000 if q else 4_096_000,
        "zmq": 50_000 if q else 1_000_000,
    }
    lat_seconds = a.latency_seconds or (3.0 if q else 5.0)
    ctx = mp.get_context("spawn")
    try:
        import faster_fifo  # noqa: F401
        have_ff = True
    except ImportError:
        have_ff = False
    try:
        import zmq  # noqa: F401
        have_zmq = True
    except ImportError:
        have_zmq = False
    out: dict = {"machine": platform.machine(), "cpus": os.cpu_count(),
                 "loadavg_start": os.getloadavg()[0], "quick": q, "counts": counts,
                 "priority": priority, "repeat": a.repeat or (2 if q else 3)}
    skipped = {kind: pkg for kind, pkg, have in (("faster_fifo", "faster-fifo", have_ff),
                                                  ("faster_fifo_batch", "faster-fifo", have_ff),
                                                  ("zmq", "pyzmq", have_zmq)) if not have}
    for pkg in sorted(set(skipped.values())):
        print(f"{pkg} is not installed: its comparison is skipped "
              "(pip install -e '.[perf]' installs the peer libraries)", file=sys.stderr)
    out["skipped_peers"] = sorted(set(skipped.values()))
    reps = a.repeat or (2 if q else 3)
    runs = {
        "ring": lambda s, n: bench_ring(ctx, s, n, False, reps),
        "ring_single": lambda s, n: bench_ring(ctx, s, n, True, reps),
        "mpq": lambda s, n: bench_mpq(ctx, s, n, False, reps),
        "mpq_blob": lambda s, n: bench_mpq(ctx, s, n, True, reps),
        "faster_fifo": (lambda s, n: bench_ff(ctx, s, n, False, reps)) if have_ff else None,
        "faster_fifo_batch": (lambda s, n: bench_ff(ctx, s, n, True, reps)) if have_ff else None,
        "zmq": (lambda s, n: bench_zmq(ctx, s, n, reps)) if have_zmq else None,
    }
    only = set(filter(None, a.only.split(",")))
    for kind, fn in runs.items():
        if only and kind not in only:
            continue
        sizes = SIZES if kind in ("ring", "mpq", "mpq_blob", "faster_fifo", "zmq") else (128,)
        if q and kind != "ring":
            sizes = (128,)
        for size in sizes:
            key = f"{kind}_fps_{size}"
            if fn is None:          # a missing peer library: said above, no figure at all
                continue
            r = fn(size, counts[kind])
            out[key] = r["fps"]
            out[f"{kind}_fps_median_{size}"] = r["median_fps"]
            out[f"{kind}_mbps_{size}"] = r["fps"] * size / 1e6
            out[f"{kind}_producer_cpu_pct_{size}"] = r["producer_cpu_pct"]
            out[f"{kind}_consumer_cpu_pct_{size}"] = r["consumer_cpu_pct"]
            if not a.json:
                print(f"{kind:18} {size:4} B  {r['fps'] / 1e6:8.3f} M frames/s  "
                      f"{r['fps'] * size / 1e6:9.1f} MB/s  cpu producer {r['producer_cpu_pct']:5.1f} % "
                      f"consumer {r['consumer_cpu_pct']:5.1f} %", flush=True)
    ring128 = out.get("ring_fps_128") or 0
    for other in ("mpq", "mpq_blob", "faster_fifo", "faster_fifo_batch", "zmq", "ring_single"):
        v = out.get(f"{other}_fps_128")
        if other in skipped or not v:
            continue
        out[f"ring_vs_{other}_ratio"] = ring128 / v
    if out.get("mpq_fps_128") and out.get("ring_single_fps_128"):
        out["ring_single_vs_mpq_ratio"] = out["ring_single_fps_128"] / out["mpq_fps_128"]
    lat = {"latency_p50_us": None, "latency_p99_us": None}
    if not only or "latency" in only:
        out.update(bench_jitter(ctx, 1.0, pin=not a.no_pin))
        lat = bench_latency(ctx, a.rate, lat_seconds, pin=not a.no_pin, gc_on=a.gc,
                            warmup=a.warmup)
        # the default consumer (wait="sleep": futex) at a rate where it sleeps between frames
        sl = bench_latency(ctx, 2000, lat_seconds, wait="sleep", pin=not a.no_pin, gc_on=a.gc,
                           warmup=a.warmup // 50)
        out.update({k.replace("latency_", "latency_sleep_"): v for k, v in sl.items()})
        if not a.json:
            print(f"latency at {sl['latency_rate_fps']:.0f} frames/s, default sleeping consumer "
                  f"(futex): p50 {sl['latency_p50_us']:.1f} us  p99 {sl['latency_p99_us']:.1f} us  "
                  f"cpu consumer {sl['latency_consumer_cpu_pct']:.1f} %")
    out.update(lat)
    rt = {}
    if a.realtime and (not only or "latency" in only):
        rt = bench_latency(ctx, a.rate, lat_seconds, rt=a.realtime, pin=not a.no_pin, gc_on=a.gc,
                           warmup=a.warmup)
        out.update({k.replace("latency_", "latency_rt_"): v for k, v in rt.items()})
        out["latency_rt_policy"] = f"SCHED_FIFO {a.realtime}"
    if not only or "idle" in only:
        out.update(bench_idle_consumer(0.5 if q else 2.0))
        if not a.json:
            print(f"idle consumer cpu: sleep {out['idle_sleep_consumer_cpu_pct']:.2f} %  "
                  f"spin {out['idle_spin_consumer_cpu_pct']:.1f} %")
    out["loadavg_end"] = os.getloadavg()[0]
    out["targets"] = {"ring_fps_128 >= 10M": ring128 >= 10e6}
    for other, times in (("mpq", 50), ("mpq_blob", 5), ("zmq", 10)):
        if f"ring_vs_{other}_ratio" in out:      # only comparisons that were run
            out["targets"][f"ring >= {times}x {other}"] = out[f"ring_vs_{other}_ratio"] >= times
    if lat["latency_p99_us"] is not None:
        out["targets"]["latency_p99 < 20us"] = lat["latency_p99_us"] < 20
    if rt:
        out["targets"]["latency_rt_p99 < 20us"] = rt["latency_p99_us"] < 20
    if not a.json and "jitter_lost_pct" in out:
        print(f"cpu {out['jitter_cpu']} taken from a spinning task: "
              f"{out['jitter_gaps_over_20us_per_s']:.0f} gaps > 20 us per s "
              f"({out['jitter_gaps_over_100us_per_s']:.1f} > 100 us), "
              f"{out['jitter_lost_pct']:.2f} % of the time, longest {out['jitter_max_gap_us']:.0f} us")
    if not a.json and lat["latency_p50_us"] is not None:
        print(f"latency at {lat['latency_rate_fps']:.0f} frames/s (busy-spinning consumer): "
              f"p50 {lat['latency_p50_us']:.2f} us  p90 {lat['latency_p90_us']:.2f} us  "
              f"p95 {lat['latency_p95_us']:.2f} us  "
              f"({100 * lat['latency_frac_over_20us']:.2f} % over 20 us)  p99 {lat['latency_p99_us']:.2f} us  "
              f"p99.9 {lat['latency_p999_us']:.2f} us  max {lat['latency_max_us']:.1f} us  "
              f"cpu producer {lat['latency_producer_cpu_pct']:.0f} % consumer "
              f"{lat['latency_consumer_cpu_pct']:.0f} %")
    if not a.json and rt:
        print(f"latency at {rt['latency_rate_fps']:.0f} frames/s, busy-spinning consumer, both "
              f"under SCHED_FIFO {a.realtime}: p50 {rt['latency_p50_us']:.2f} us  "
              f"({100 * rt['latency_frac_over_20us']:.2f} % over 20 us)  p99 {rt['latency_p99_us']:.2f} us  "
              f"p99.9 {rt['latency_p999_us']:.2f} us  "
              f"max {rt['latency_max_us']:.1f} us")
    if not a.json:
        for k, v in out.items():
            if k.endswith("_ratio"):
                print(f"{k:34} {v:.1f}x" if v else f"{k:34} n/a")
        print("targets:", out["targets"])
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.exit(main())
