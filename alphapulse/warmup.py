"""Compile every hot kernel once, so the first pipeline start is not a compile.

``python -m alphapulse.warmup`` (the install script runs it) drives the bundled
recording through the same code paths the processes use: the replayer into a
shared-memory ring, a ring consumer, the strategy engine on ring views
(writable) and on bytes (read-only, as the backtest feeds it), and its spinning
loop (``engine.run``) between two rings, so Numba's
on-disk cache (``cache=True``) holds each specialisation. Safe to run again:
a warm cache makes it take seconds.
"""
from __future__ import annotations

import itertools
import logging
import os
import sys
import time

log = logging.getLogger("alphapulse.warmup")


def warm(frames: int = 400) -> dict[str, float]:
    import numpy as np

    from alphapulse.adapters.replayer import Replayer
    from alphapulse.apps.config import load_config
    from alphapulse.apps.pipeline import BUNDLED_MARKET, BUNDLED_RECORDING
    from alphapulse.ring import Ring
    from alphapulse.strategy.config import EngineConfig
    from alphapulse.strategy.engine import StrategyEngine

    t = {}
    t0 = time.perf_counter()
    cfg = load_config(base=BUNDLED_MARKET, environ={})
    engine_ro = StrategyEngine(EngineConfig.from_app_config(cfg))
    collected: list[bytes] = []

    def sink(batch: list[bytes]) -> None:
        collected.extend(batch)

    rp = Replayer(BUNDLED_RECORDING, sink=sink, speed="max", crc_every=1)
    rp.run()
    t["replayer"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for f in itertools.islice(collected, frames):
        engine_ro.process([f])                       # read-only buffers (backtest)
    t["engine_readonly"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    name = f"warmup_{os.getpid()}"
    with Ring.create(name, 1 << 22, "lossless") as ring:
        cons = ring.consumer("warmup", wait="sleep")
        prod = ring.producer()
        engine_rw = StrategyEngine(EngineConfig.from_app_config(cfg))
        for f in itertools.islice(collected, frames):
            prod.publish(f)
            views = cons.poll(timeout=0)
            if views:
                engine_rw.process_raw(views)         # writable ring views (live pipeline)
                cons.release()
        buf = np.frombuffer(b"".join(collected[:256]), np.uint8).copy()
        prod.publish_batch(buf, buf.shape[0])
        list(cons.frames(timeout=0))
        cons.close()
        prod.close()
    t["ring_engine"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    # the spinning strategy (wait = "spin"): engine.run's compiled loop, from an overwrite market
    # ring (copying consumer) to a lossless signal ring
    with Ring.create(f"{name}_md", 1 << 22, "overwrite") as md, \
            Ring.create(f"{name}_sig", 1 << 22, "lossless") as sig:
        cons = md.consumer("warmup", wait="spin")
        mprod, sprod = md.producer(), sig.producer()
        engine_spin = StrategyEngine(EngineConfig.from_app_config(cfg))
        for f in itertools.islice(collected, frames):
            mprod.publish(f)
        engine_spin.run(cons, sprod, 0.05)
        for x in (cons, mprod, sprod):
            x.close()
    t["spin_engine"] = time.perf_counter() - t0
    return t


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    t0 = time.perf_counter()
    t = warm()
    print("warm-up (Numba cache) done in %.1f s: %s" % (time.perf_counter() - t0,
          ", ".join(f"{k} {v:.1f}s" for k, v in t.items())), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
