"""Process entry points for the ring tests (spawn start method: importable, top level)."""
from __future__ import annotations

import os
import signal
import time

import numpy as np

from alphapulse.jit import alloc_frame_index, new_crc_state
from alphapulse.ring import ConsumerEvicted, Ring
from tests.ring import framegen as G

BATCH = 1 << 16


def warm_up(idx, scratch) -> None:
    """Compile (or load from cache) the kernels a reader uses, on a throwaway frame."""
    buf = np.empty(1 << 12, dtype=np.uint8)
    n = G.write_frame(buf, 0, 1, 0, 0)
    crc = new_crc_state()
    G.check_view(buf[:n], 1, 0, 0, idx, crc, scratch)
    G.fill(buf, 1, 2, buf.shape[0], 0, 0)
    G.first_seq(buf)


def produce(ring_name: str, n_frames: int, big_every: int, big_max: int,
            start_evt=None, seq0: int = 1, pace_s: float = 0.0) -> None:
    """Publish frames seq0 .. seq0+n_frames-1, rotating over the three publish paths."""
    ring = Ring.attach(ring_name)
    p = ring.producer(publish_timeout=60.0)
    if start_evt is not None:
        start_evt.wait(60)
    buf = np.empty(BATCH, dtype=np.uint8)
    seq, end = seq0, seq0 + n_frames
    k = 0
    while seq < end:
        mode = k % 3
        k += 1
        if mode == 0:                                   # batch publish from a private buffer
            nb, nxt = G.fill(buf, seq, end, BATCH, big_every, big_max)
            p.publish_batch(buf, nb)
        elif mode == 1:                                 # encode in place: claim / commit
            want = min(BATCH, ring.capacity // 2)
            view = p.claim(want)
            nb, nxt = G.fill(view, seq, end, want, big_every, big_max)
            p.commit(nb)
        else:                                           # single frames
            nxt = seq
            for _ in range(8):
                if nxt >= end:
                    break
                n = G.write_frame(buf, 0, nxt, big_every, big_max)
                p.publish(buf[:n])
                nxt += 1
        seq = nxt
        if pace_s:
            time.sleep(pace_s)
    p.close()
    ring.close()


def consume_verify(ring_name: str, cname: str, n_frames: int, big_every: int, big_max: int,
                   ready_evt, result_q, wait: str = "sleep", delay_s: float = 0.0,
                   deadline_s: float = 300.0) -> None:
    """Read until ``n_frames`` frames (or lost+read) are accounted for; report what was seen."""
    idx = alloc_frame_index(1 << 14)
    crc = new_crc_state()
    scratch = np.empty(1 << 17, dtype=np.uint8)
    warm_up(idx, scratch)                 # compile before registering (a cold compile on a
    ring = Ring.attach(ring_name)         # loaded box must not look like a stalled consumer)
    c = ring.consumer(cname, wait=wait)
    expect = None
    frames = errors = gaps = 0
    first = None
    ready_evt.set()
    t_end = time.monotonic() + deadline_s
    while frames + c.lost_frames < n_frames and time.monotonic() < t_end:
        views = c.poll(timeout=0.5)
        if not views:
            if not c.producer_alive(stale_after_s=30.0):
                break
            continue
        for v in views:
            if expect is None:
                expect = G.first_seq(v)
                first = expect
            s0 = expect
            f, expect, e = G.check_view(v, expect, big_every, big_max, idx, crc, scratch)
            frames += f
            errors += e
            if f and G.first_seq(v) != s0:
                gaps += 1
        c.release()
        if delay_s:
            time.sleep(delay_s)
    result_q.put({"name": cname, "frames": frames, "errors": errors, "gaps": gaps,
                  "first": first, "last": None if expect is None else expect - 1,
                  "crc_checked": int(crc[1]), "lost_frames": c.lost_frames,
                  "lost_bytes": c.lost_bytes, "pid": os.getpid()})
    c.close()
    ring.close()


def consume_record(ring_name: str, cname: str, n_frames: int, ready_evt, result_q,
                   delay_s: float, batch_polls: int = 1) -> None:
    """A deliberately slow reader of an overwrite ring that records every sequence it got."""
    idx = alloc_frame_index(1 << 14)
    crc = new_crc_state()
    warm_up(idx, np.empty(1 << 17, dtype=np.uint8))
    ring = Ring.attach(ring_name)
    c = ring.consumer(cname)          # copy=True by default on overwrite rings
    seqs: list[np.ndarray] = []
    sizes: list[np.ndarray] = []
    bad = 0
    ready_evt.set()
    t_end = time.monotonic() + 120
    got = 0
    while got + c.lost_frames < n_frames and time.monotonic() < t_end:
        views = c.poll(timeout=0.5)
        for v in views:
            start = 0
            while start < v.shape[0]:
                n, consumed, stop, _ = G.validate_frames(v, start, v.shape[0], 1, crc, idx)
                seqs.append(idx.sequence[:n].copy())
                sizes.append(idx.length[:n].copy())
                bad += int(np.count_nonzero(idx.status[:n]))
                got += n
                if stop != 1:
                    bad += consumed != v.shape[0]
                    break
                start = consumed
        c.release()
        time.sleep(delay_s)
    result_q.put({"seqs": np.concatenate(seqs) if seqs else np.zeros(0, np.uint64),
                  "sizes": np.concatenate(sizes) if sizes else np.zeros(0, np.int32),
                  "bad": bad, "lost_frames": c.lost_frames, "lost_bytes": c.lost_bytes})
    c.close()
    ring.close()


def consume_then_hang(ring_name: str, cname: str, ready_evt) -> None:
    """Register, read once, then stop reading (to be SIGKILLed or SIGSTOPped)."""
    ring = Ring.attach(ring_name)
    c = ring.consumer(cname)
    c.poll(0.0)
    c.release()
    ready_evt.set()
    while True:
        time.sleep(1)


def consume_after_stop(ring_name: str, cname: str, ready_evt, go_evt, result_q) -> None:
    """Register, get SIGSTOPped by the test, then (after SIGCONT) poll: expect eviction."""
    ring = Ring.attach(ring_name)
    c = ring.consumer(cname)
    ready_evt.set()
    go_evt.wait(60)
    try:
        c.poll(0.0)
        c.release()
        result_q.put("not evicted")
    except ConsumerEvicted as e:
        result_q.put(f"evicted: {e}")
    ring.close()


def produce_then_die_mid_batch(ring_name: str, n_before: int, ready_evt) -> None:
    """Publish ``n_before`` frames, then claim a batch, write half of it and wait to be killed."""
    ring = Ring.attach(ring_name)
    p = ring.producer()
    buf = np.empty(BATCH, dtype=np.uint8)
    seq = 1
    while seq <= n_before:
        nb, seq = G.fill(buf, seq, n_before + 1, BATCH, 0, 0)
        p.publish_batch(buf, nb)
    want = min(8192, ring.capacity // 2)
    view = p.claim(want)
    nb, nxt = G.fill(view, seq, seq + 10_000, want, 0, 0)
    view[nb // 2:] = 0xAB                 # the second half of the batch is torn
    ready_evt.set()
    while True:                           # SIGKILL arrives here, before commit()
        time.sleep(1)


def spin_on_word(ring_name: str, word: int, ready_evt, result_q) -> None:
    """Spin (compiled, unbounded in practice) until a header word changes from 0."""
    from alphapulse.ring.atomics import spin_until_changed
    ring = Ring.attach(ring_name)
    h = ring._h
    ready_evt.set()
    t0 = time.monotonic()
    v = spin_until_changed(h, word, 0, 1 << 62)
    result_q.put((int(v), time.monotonic() - t0))
    ring.close()


def poll_spin_once(ring_name: str, ready_evt, result_q) -> None:
    """A busy-spinning consumer waits for one frame; reports what and when."""
    ring = Ring.attach(ring_name)
    c = ring.consumer("spinner", wait="spin")
    ready_evt.set()
    t0 = time.monotonic()
    views = c.poll(timeout=30.0)
    result_q.put((sum(v.shape[0] for v in views), time.monotonic() - t0,
                  bytes(views[0][:4]) if views else b""))
    c.release()
    ring.close()


def own_ring_and_wait(ring_name: str, capacity: int, ready_evt, how: str) -> None:
    """Create (own) a ring, signal, then exit cleanly / wait to be killed."""
    ring = Ring.create(ring_name, capacity, "lossless")
    ring.producer().publish(G_frame(1))
    ready_evt.set()
    if how == "exit":
        return                             # atexit unlinks (no close() called)
    while True:
        time.sleep(1)


def G_frame(seq: int) -> np.ndarray:
    buf = np.empty(1 << 12, dtype=np.uint8)
    n = G.write_frame(buf, 0, seq, 0, 0)
    return buf[:n]


def kill(pid: int, sig=signal.SIGKILL) -> None:
    os.kill(pid, sig)


def collect(q, n: int, procs, timeout: float) -> list:
    """``n`` results from ``q``; fails fast if a process died without reporting."""
    import queue
    out = []
    t_end = time.monotonic() + timeout
    while len(out) < n:
        try:
            out.append(q.get(timeout=0.5))
            continue
        except queue.Empty:
            pass
        dead = [p for p in procs if p.exitcode not in (None, 0)]
        if dead:
            raise AssertionError(f"worker(s) died: {[(p.name, p.exitcode) for p in dead]}")
        if all(p.exitcode is not None for p in procs) and q.empty():
            time.sleep(0.5)
            if q.empty():
                raise AssertionError(f"workers exited with {len(out)} of {n} results")
        if time.monotonic() > t_end:
            raise AssertionError(f"timed out with {len(out)} of {n} results")
    return out


def sleep_poll_once(ring_name: str, ready_evt, result_q) -> None:
    """A default (sleeping) consumer waits for one frame; reports bytes and wait time."""
    ring = Ring.attach(ring_name)
    c = ring.consumer("sleeper", wait="sleep")
    ready_evt.set()
    t0 = time.monotonic()
    views = c.poll(timeout=30.0)
    result_q.put((sum(v.shape[0] for v in views), time.monotonic() - t0))
    c.release()
    ring.close()


def sleep_forever_in_poll(ring_name: str, ready_evt) -> None:
    """A sleeping consumer that never gets data (to be SIGKILLed while asleep)."""
    ring = Ring.attach(ring_name)
    c = ring.consumer("doomed", wait="sleep")
    ready_evt.set()
    c.poll(timeout=600.0)
