"""Clocks inside Numba kernels: ``wall_ns()`` = ``time.time_ns()`` (timestamps in frames),
``mono_ns()`` = ``time.monotonic_ns()`` (ring heartbeats: one clock for every process).

``clock_gettime(CLOCK_REALTIME)`` is called straight from the compiled code (libc,
through the vDSO on Linux: about 25 ns, no system call). The call is an external
symbol resolved when the code is loaded, not an address baked into it, so kernels
that use it are cached (``cache=True``) like any other. Kernels stamp what they
write with it at the moment they write it (a signal frame's header), instead of
the time their batch started.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1


@intrinsic
def _clock_ns(typingctx, clock_id):
    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        i32 = ir.IntType(32)
        timespec = ir.LiteralStructType([i64, i64])          # struct timespec on LP64
        fnty = ir.FunctionType(i32, [i32, timespec.as_pointer()])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "clock_gettime")
        ts = cgutils.alloca_once(builder, timespec)
        builder.call(fn, [builder.trunc(args[0], i32), ts])
        sec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 0))
        nsec = builder.load(cgutils.gep_inbounds(builder, ts, 0, 1))
        return builder.add(builder.mul(sec, ir.Constant(i64, 1_000_000_000)), nsec)
    return types.int64(types.int64), codegen


@njit(cache=True, inline="always")
def wall_ns():
    """Nanoseconds since the Unix epoch (CLOCK_REALTIME), as ``time.time_ns()``."""
    return _clock_ns(np.int64(CLOCK_REALTIME))


@njit(cache=True, inline="always")
def mono_ns():
    """CLOCK_MONOTONIC nanoseconds, as ``time.monotonic_ns()`` (the rings' heartbeat clock)."""
    return _clock_ns(np.int64(CLOCK_MONOTONIC))
