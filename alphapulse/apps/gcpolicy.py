"""Python's cyclic garbage collector in a latency-critical loop.

Automatic passes run whenever enough container objects were allocated, in the
middle of whatever the loop is doing: measured in a ring consumer at 100k
frames/s, ~100 young-generation passes a second of ~50 us each and ~9 older
ones of ~0.7 ms (perf/bench_ring.py, ``gc.callbacks``), each one a stall for
the frames arriving meanwhile. Reference counting frees everything the hot loop
allocates (it makes no cycles), so the collector is only a safety net there:
:class:`IdleCollector` turns the automatic passes off, freezes what start-up
allocated (modules, compiled kernels: never scanned again), and runs a pass
when the loop is idle, or after ``max_interval_s`` at the latest.
"""
from __future__ import annotations

import gc
import time
from typing import Callable


class IdleCollector:
    def __init__(self, *, min_interval_s: float = 1.0, max_interval_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic,
                 collect: Callable[[], int] = gc.collect) -> None:
        if not 0 <= min_interval_s <= max_interval_s:
            raise ValueError(f"need 0 <= min_interval_s <= max_interval_s, got "
                             f"{min_interval_s}, {max_interval_s}")
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self._clock = clock
        self._collect = collect
        self._last = clock()
        self._was_enabled = gc.isenabled()
        self.passes = 0          # passes run by tick()
        self.forced = 0          # of which: the loop was busy, max_interval_s ran out
        self.collected = 0       # objects found unreachable (cycles) by those passes

    def start(self) -> "IdleCollector":
        """Collect once, freeze the survivors, switch the automatic passes off."""
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()
        gc.disable()
        self._last = self._clock()
        return self

    def tick(self, idle: bool) -> bool:
        """Call once per loop iteration (``idle``: nothing to do); True if a pass ran."""
        now = self._clock()
        waited = now - self._last
        if waited < self.min_interval_s or (not idle and waited < self.max_interval_s):
            return False
        self.collected += self._collect()
        self.passes += 1
        self.forced += not idle
        self._last = self._clock()
        return True

    def stop(self) -> None:
        """Back to automatic passes (if they were on at start), frozen objects unfrozen."""
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def __enter__(self) -> "IdleCollector":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
