"""Processes and helpers for the bridge end-to-end tests.

Layout of a run (every box its own process, rings owned by the test process)::

    test (producer) -> ring src -> outbound bridge -> nats-server -> inbound bridge -> ring dst -> verifier

The verifier rebuilds every frame it must receive from its sequence number
(``framegen``) and compares bytes: any loss, duplicate, reordering or change
shows up as a mismatch, reported with the first sequence that differs.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback

import numpy as np

from alphapulse.protocol import codec
from tests.bridge import framegen

SPAWN = mp.get_context("spawn")


def verifier_main(ring_name: str, total: int, ready, result, stop) -> None:
    """Consume ``ring_name`` until ``total`` frames arrived; result: [frames, ok, error text]."""
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name)
    c = ring.consumer("verifier", wait="sleep")
    ready.set()
    expect = 1
    scratch = np.empty(1 << 23, np.uint8)
    try:
        while expect <= total and not stop.is_set():
            views = c.poll(0.05)
            for v in views:
                n = v.shape[0]
                if n > scratch.shape[0]:
                    scratch = np.empty(2 * n, np.uint8)
                nbytes, got = framegen.fill(scratch[:n], expect, max(total - expect + 1, 0), 0, False)
                if nbytes != n or not np.array_equal(scratch[:n], v):
                    result.put((expect - 1, False, _describe(v, expect)))
                    return
                expect += got
            c.release()
        result.put((expect - 1, expect - 1 == total, "" if expect - 1 == total else "stopped early"))
    except Exception:  # noqa: BLE001 (reported to the test)
        result.put((expect - 1, False, traceback.format_exc()))
    finally:
        c.close()
        ring.close()


def _describe(view: np.ndarray, expect: int) -> str:
    seqs = [f.header.sequence for f in codec.iter_frames(view.tobytes())]
    return f"expected frames from sequence {expect}, got sequences {seqs[:5]}... ({len(seqs)} frames)"


def produce(ring_name: str, first: int, n: int, chunk: int = 2000) -> None:
    """Publish frames ``first .. first+n-1`` into ``ring_name`` (this process is its producer)."""
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name)
    p = ring.producer(publish_timeout=120.0)
    buf = np.empty(chunk * 290, np.uint8)
    seq = first
    try:
        while seq < first + n:
            k = min(chunk, first + n - seq)
            nbytes, got = framegen.fill(buf, seq, k, 0, False)
            p.publish_batch(buf, nbytes)
            seq += got
    finally:
        p.close()
        ring.close()


def wait_for_consumer(ring, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(c["name"] == name and c["state"] == "active" for c in ring.stats()["consumers"]):
            # A joining consumer is "active" just before it reads the position it starts
            # at (the ring's join handshake); give it time to finish, so frames published
            # next cannot fall before its start on a loaded 2-core machine.
            time.sleep(0.5)
            return
        time.sleep(0.02)
    raise TimeoutError(f"consumer {name!r} did not register on ring {ring.name!r} in {timeout}s")


def _logged(target, stop, **kwargs):
    import logging
    logging.basicConfig(level=os.environ.get("ALPHAPULSE_TEST_LOG", "WARNING"),
                        format=f"%(asctime)s {target.__name__}[{os.getpid()}] %(levelname)s %(message)s")
    return target(stop, **kwargs)


def start(target, stop, **kwargs):
    """Run ``target(stop, **kwargs)`` in a spawned process (log level: $ALPHAPULSE_TEST_LOG)."""
    p = SPAWN.Process(target=_logged, args=(target, stop), kwargs=kwargs, daemon=True)
    p.start()
    return p


def reap(*procs, timeout: float = 10.0) -> None:
    for p in procs:
        if p is not None and p.is_alive():
            p.join(timeout)
        if p is not None and p.is_alive():
            os.kill(p.pid, 9)
            p.join(5)


def strategy_fixed_groups(stop, *, market_ring: str, signal_ring: str, engine, flush, done,
                          group: int = 1024) -> None:
    """The strategy engine fed fixed groups of ``group`` frames, ring to ring.

    The engine evaluates the pools a call touched once per call, so its signals depend on
    how frames are grouped into calls; the pipeline's strategy component groups them by
    whatever each poll returns (timing). Here groups are cut by frame count, so the signals
    are a function of the frame sequence alone, equal on both hosts iff the frames are.
    The last, partial group is processed when the event ``flush`` is set (the test sets it
    once the whole stream is in the ring) and the ring is drained; then ``done`` is set.
    """
    from alphapulse.ring import Ring
    from alphapulse.strategy.engine import StrategyEngine
    rin, rout = Ring.attach(market_ring), Ring.attach(signal_ring)
    cons = rin.consumer("strategy", wait="sleep")
    prod = rout.producer(publish_timeout=60.0)
    eng = StrategyEngine(engine)
    pending: list[bytes] = []

    def run(frames: list[bytes]) -> None:
        for sig in eng.process([b"".join(frames)]):
            prod.publish(sig)

    try:
        while not stop.is_set():
            views = cons.poll(0.05)
            if views:
                pending.extend(f.tobytes() for v in views for f in _split(v))
                cons.release()
            while len(pending) >= group:
                run(pending[:group])
                del pending[:group]
            if not views and flush.is_set() and not done.is_set():
                if pending:
                    run(pending)
                    pending.clear()
                done.set()
    finally:
        cons.close()
        prod.close()
        rin.close()
        rout.close()


def _split(view: np.ndarray) -> list[np.ndarray]:
    from alphapulse.bridge.batch import FrameWalker
    w = FrameWalker()
    out = []
    for a, n in w.runs(view):
        for i in range(a, a + n):
            s = int(w.index.offset[i])
            out.append(view[s:s + int(w.index.length[i])])
    return out
