"""The clocks read from compiled code equal Python's: wall_ns() = time.time_ns(),
mono_ns() = time.monotonic_ns()."""
import time

import numpy as np
import pytest
from numba import njit

from alphapulse.jit.clock import mono_ns, wall_ns


@njit(cache=True)
def _read(out, mono):
    for i in range(out.shape[0]):
        out[i] = mono_ns() if mono else wall_ns()


@pytest.mark.parametrize("mono,clock", [(False, time.time_ns), (True, time.monotonic_ns)])
def test_kernel_clock_is_pythons(mono, clock):
    out = np.zeros(1000, np.int64)
    _read(out, mono)                # compile / load
    before = clock()
    _read(out, mono)
    after = clock()
    assert before <= out[0] and out[-1] <= after
    assert np.all(np.diff(out) >= 0)
    assert after - before < 10**9   # nanoseconds, not microseconds or seconds
