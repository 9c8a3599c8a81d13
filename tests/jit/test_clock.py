"""wall_ns(): the wall clock read from compiled code equals time.time_ns()'s."""
import time

import numpy as np
from numba import njit

from alphapulse.jit.clock import mono_ns, wall_ns


@njit(cache=True)
def _read(out):
    for i in range(out.shape[0]):
        out[i] = wall_ns()


def test_wall_ns_is_time_time_ns_from_compiled_code():
    out = np.zeros(1000, np.int64)
    _read(out)                      # compile / load
    before = time.time_ns()
    _read(out)
    after = time.time_ns()
    assert before <= out[0] and out[-1] <= after
    assert np.all(np.diff(out) >= 0)
    assert after - before < 10**9   # nanoseconds, not microseconds or seconds


@njit(cache=True)
def _read_mono(out):
    for i in range(out.shape[0]):
        out[i] = mono_ns()


def test_mono_ns_is_time_monotonic_ns_from_compiled_code():
    out = np.zeros(1000, np.int64)
    _read_mono(out)
    before = time.monotonic_ns()
    _read_mono(out)
    after = time.monotonic_ns()
    assert before <= out[0] and out[-1] <= after and np.all(np.diff(out) >= 0)
