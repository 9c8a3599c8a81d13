"""Wait strategies (the Disruptor's WaitStrategy) and process liveness checks.

``spin``   busy-spins on the publish sequence (acquire loads + ``pause``) in
           compiled bursts of ``SPIN_BURST`` iterations; lowest latency, one
           core at 100 %. Only for a pinned, latency-critical consumer.
``sleep``  (default) a short compiled spin (~5-10 us), a few ``sched_yield``,
           then a futex wait on the publish sequence (:mod:`~alphapulse.ring.futex`)
           in slices of at most 50 ms (each slice is a heartbeat): an idle
           consumer costs no CPU, so it never starves the other processes
           of a 2-core machine, and the producer's FUTEX_WAKE (issued only
           while someone sleeps) wakes it within tens of microseconds.
           Without futexes (not Linux) it sleeps with exponential backoff
           from 50 us to 1 ms instead.

The producer of a lossless ring waits the same way (spin, then yield, then
sleep) while the slowest consumer holds it back, up to its timeout.
"""
from __future__ import annotations

import os
import time
from enum import Enum


class Wait(str, Enum):
    SPIN = "spin"
    SLEEP = "sleep"


SPIN_BURST = 1 << 16          # iterations per compiled busy-spin burst (~100-300 us)
SHORT_SPIN = 256              # iterations before the sleeping strategy yields
YIELDS = 8
SLEEP_MIN_S = 50e-6
SLEEP_MAX_S = 1e-3
FUTEX_SLICE_S = 0.05          # longest single futex sleep: the consumer heartbeats between


class Backoff:
    """Spin -> yield -> sleep with exponential backoff; ``pause(i)`` for attempt ``i``."""

    __slots__ = ("spins", "yields", "sleep_min", "sleep_max")

    def __init__(self, spins: int = 64, yields: int = YIELDS,
                 sleep_min: float = SLEEP_MIN_S, sleep_max: float = SLEEP_MAX_S) -> None:
        self.spins = spins
        self.yields = yields
        self.sleep_min = sleep_min
        self.sleep_max = sleep_max

    def pause(self, attempt: int) -> None:
        if attempt < self.spins:
            return
        attempt -= self.spins
        if attempt < self.yields:
            os.sched_yield()
            return
        attempt -= self.yields
        time.sleep(min(self.sleep_max, self.sleep_min * (1 << min(attempt, 16))))


def pid_alive(pid: int) -> bool:
    """True if process ``pid`` exists and is not a zombie (a SIGKILLed, unreaped child)."""
    if pid <= 0:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except FileNotFoundError:
        return False
    except OSError:  # pragma: no cover - /proc unavailable: fall back to kill(0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    state = stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"x")
