"""Compile every hot kernel once, so the first pipeline start is not a compile.

``python -m alphapulse.warmup`` (the install script runs it) drives the bundled
recording through the same code paths the processes use, so that Numba's on-disk
cache (``cache=True``) holds each kernel the processes look up: the replayer into
a shared-memory ring, ring consumers (zero-copy and copying), the strategy engine
on ring views and on bytes (as the backtest feeds it; the engine copies read-only
input, so both share one compiled kernel), and its spinning loop (``engine.run``)
between two rings.

The strategy's batch kernel is most of the work and needs no ring: a second
process (spawned) compiles the replayer's and the rings' kernels meanwhile, on
the machine's second core. Then the bundled recording runs through every path
above, loading what the two processes cached; only the spinning loop compiles
then (it links the batch kernel in). Safe to run again: a warm cache makes it
take seconds. ``--serial`` runs everything in this process.
"""
from __future__ import annotations

import hashlib
import itertools
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("alphapulse.warmup")


def serialise_cache_writes() -> None:
    """Make each read-modify-write of a Numba cache index atomic across the warm-up's processes.

    Numba saves a kernel by reading its index file, adding the new version and writing it back:
    two processes adding different versions of one kernel (the CRC's with a read-only table in
    the replayer, with the engine's in the batch kernel) at once can pair one version's entry with
    the other's data file. An exclusive ``flock`` on one file around every save and load of
    this process's cache rules that out between the processes that take it.
    """
    import fcntl

    from numba.core import caching
    if getattr(caching.IndexDataCacheFile, "_alphapulse_locked", False):
        return
    # one lock per installed package, wherever its cache is (see cache_guard.ensure_cache_dir)
    pkg = hashlib.sha256(str(Path(__file__).resolve().parent).encode()).hexdigest()[:16]
    fd = os.open(Path(tempfile.gettempdir()) / f"alphapulse-warmup-{pkg}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def locked(method):
        def run(self, *args, **kwargs):
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                return method(self, *args, **kwargs)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        return run

    caching.IndexDataCacheFile.save = locked(caching.IndexDataCacheFile.save)
    caching.IndexDataCacheFile.load = locked(caching.IndexDataCacheFile.load)
    caching.IndexDataCacheFile._alphapulse_locked = True


def _load_frames() -> list[bytes]:
    """The bundled recording's frames, through the replayer (its kernels compile here)."""
    from alphapulse.adapters.replayer import Replayer
    from alphapulse.apps.pipeline import BUNDLED_RECORDING
    collected: list[bytes] = []
    Replayer(BUNDLED_RECORDING, sink=collected.extend, speed="max", crc_every=1).run()
    return collected


def _engine():
    from alphapulse.apps.config import load_config
    from alphapulse.apps.pipeline import BUNDLED_MARKET
    from alphapulse.strategy.config import EngineConfig
    from alphapulse.strategy.engine import StrategyEngine
    return StrategyEngine(EngineConfig.from_app_config(load_config(base=BUNDLED_MARKET, environ={})))


def warm_batch_kernel() -> float:
    """Compile (or load) the strategy's batch kernel: one frame it ignores (a system frame
    without records) through :meth:`StrategyEngine.process_raw` on a writable buffer, the
    type of a ring view. Returns the seconds it took."""
    import numpy as np

    from alphapulse.protocol import codec
    from alphapulse.protocol.layout import Domain
    t0 = time.perf_counter()
    engine = _engine()
    frame = np.frombuffer(codec.build_frame(Domain.SYSTEM, 1, 1, []), np.uint8).copy()
    engine.process_raw([frame])
    return time.perf_counter() - t0


def warm_io() -> dict[str, float]:
    """The replayer's kernels and the rings': a lossless ring with a zero-copy (sleeping)
    consumer, an overwrite ring with a copying (spinning) one, single and batch publication."""
    import numpy as np

    from alphapulse.ring import Ring
    serialise_cache_writes()
    t = {}
    t0 = time.perf_counter()
    collected = _load_frames()
    t["replayer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    name = f"warmup_io_{os.getpid()}"
    for policy, wait in (("lossless", "sleep"), ("overwrite", "spin")):
        with Ring.create(f"{name}_{policy}", 1 << 22, policy) as ring:
            cons = ring.consumer("warmup", wait=wait)
            prod = ring.producer()
            for f in itertools.islice(collected, 8):
                prod.publish(f)
                if cons.poll(timeout=0):
                    cons.release()
            buf = np.frombuffer(b"".join(collected[:256]), np.uint8).copy()
            prod.publish_batch(buf, buf.shape[0])
            list(cons.frames(timeout=0))
            cons.close()
            prod.close()
    t["rings"] = time.perf_counter() - t0
    return t


def warm_paths(frames: int = 400) -> dict[str, float]:
    """Every path the processes take, on the bundled recording (what the steps above cached
    loads here; the spinning loop compiles)."""
    import numpy as np

    from alphapulse.ring import Ring
    t = {}
    t0 = time.perf_counter()
    collected = _load_frames()
    t["replayer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine_ro = _engine()
    for f in itertools.islice(collected, frames):
        engine_ro.process([f])                       # bytes (backtest)
    t["engine_bytes"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    name = f"warmup_{os.getpid()}"
    with Ring.create(name, 1 << 22, "lossless") as ring, \
            Ring.create(f"{name}_out", 1 << 22, "lossless") as out:
        cons = ring.consumer("warmup", wait="sleep")
        prod = ring.producer()
        sink = out.producer()
        engine_rw = _engine()
        lat: list[int] = []
        for f in itertools.islice(collected, frames):
            prod.publish(f)
            views = cons.poll(timeout=0)
            if views:
                # writable ring views, the kernel publishing on a ring (the strategy process)
                engine_rw.process_raw(views, sink=sink, latency=lat.extend)
                cons.release()
        engine_rw.refresh_requests()                 # its heartbeat: pools waiting on a snapshot
        buf = np.frombuffer(b"".join(collected[:256]), np.uint8).copy()
        prod.publish_batch(buf, buf.shape[0])
        list(cons.frames(timeout=0))
        for x in (cons, prod, sink):
            x.close()
    t["ring_engine"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the spinning strategy (wait = "spin"): engine.run's compiled loop, from an overwrite market
    # ring (copying consumer) to a lossless signal ring
    with Ring.create(f"{name}_md", 1 << 22, "overwrite") as md, \
            Ring.create(f"{name}_sig", 1 << 22, "lossless") as sig:
        cons = md.consumer("warmup", wait="spin")
        mprod, sprod = md.producer(), sig.producer()
        engine_spin = _engine()
        for f in itertools.islice(collected, frames):
            mprod.publish(f)
        engine_spin.run(cons, sprod, 0.05)
        for x in (cons, mprod, sprod):
            x.close()
    t["spin_engine"] = time.perf_counter() - t0
    return t


def warm(frames: int = 400, parallel: bool = True) -> dict[str, float]:
    """Fill the cache; returns the seconds of each step."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    import alphapulse.jit  # noqa: F401  (clears stale caches, see cache_guard, before the 2nd process starts)
    if parallel:
        serialise_cache_writes()
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            io = pool.submit(warm_io)
            t["batch_kernel"] = warm_batch_kernel()
            t.update({f"{k} (2nd process)": v for k, v in io.result().items()})
    else:
        t["batch_kernel"] = warm_batch_kernel()
        t.update(warm_io())
    t["parallel step"] = time.perf_counter() - t0
    t.update(warm_paths(frames))
    return t


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(prog="python -m alphapulse.warmup", description=__doc__.split("\n")[0])
    ap.add_argument("--serial", action="store_true", help="one process (no second core)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    t = warm(parallel=not args.serial)
    print("warm-up (Numba cache) done in %.1f s: %s" % (time.perf_counter() - t0,
          ", ".join(f"{k} {v:.1f}s" for k, v in t.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
