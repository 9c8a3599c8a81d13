"""Clocks inside Numba kernels: ``wall_ns()`` = ``time.time_ns()`` (timestamps in frames),
``mono_ns()`` = ``time.monotonic_ns()`` (ring heartbeats: one clock for every process), and
``fast_ns(cal)``: CLOCK_REALTIME from the CPU's time-stamp counter, calibrated by a
:class:`TscClock` (a few ns per read where the TSC is invariant, clock_gettime elsewhere).

``clock_gettime(CLOCK_REALTIME)`` is called straight from the compiled code (libc,
through the vDSO on Linux: about 25 ns, no system call). The call is an external
symbol resolved when the code is loaded, not an address baked into it, so kernels
that use it are cached (``cache=True``) like any other. Kernels stamp what they
write with it at the moment they write it (a signal frame's header), instead of
the time their batch started.
"""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import llvmlite.binding as llvm_binding
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


# ---------------------------------------------------------------- TSC clock
# fast_ns(cal) reads the CPU's time-stamp counter (``rdtsc``, ~20 cycles, no call) and scales it
# to CLOCK_REALTIME nanoseconds with a calibration array ``cal`` (int64[CAL_SIZE]) that the
# process owns (:class:`TscClock`). Only an *invariant* TSC (``constant_tsc``: fixed rate
# whatever the CPU frequency; ``nonstop_tsc``: runs in deep sleep states) is a clock; elsewhere
# ``cal[CAL_TSC] = 0`` and fast_ns() is clock_gettime (wall_ns()).
#
# Scaling: ns = anchor_ns + ((tsc - anchor_tsc) * mult) >> 32, mult = ns per tick << 32. Each
# read whose TSC is more than ``CAL_PERIOD`` ticks past the anchor re-anchors in place: a fresh
# (tsc, CLOCK_REALTIME) pair, and mult re-measured over the whole time since calibration (NTP's
# slewing of CLOCK_REALTIME is followed; a step of it restarts the baseline). Between anchors
# the error grows by at most the rate error times the period: with the 50 ms period and a
# baseline of seconds, tens of ns.
CAL_TSC = 0          # 1: the TSC is used; 0: fast_ns() is clock_gettime
CAL_ANCHOR_TSC = 1
CAL_ANCHOR_NS = 2
CAL_MULT = 3         # ns per tick << 32
CAL_PERIOD = 4       # ticks between re-anchors
CAL_BASE_TSC = 5     # the calibration baseline (its start)
CAL_BASE_NS = 6
CAL_REANCHORS = 7    # re-anchors so far
CAL_SIZE = 8
MULT_SHIFT = 32
REANCHOR_NS = 50_000_000
STEP_NS = 1_000_000  # an anchor this far off the extrapolation is a step of CLOCK_REALTIME


@intrinsic
def _rdtsc(typingctx):
    """The time-stamp counter (x86-64 ``rdtsc``: edx:eax), as uint64."""
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(ir.LiteralStructType([i32, i32]), [])
        asm = ir.InlineAsm(fnty, "rdtsc", "={eax},={edx}", side_effect=True)
        r = builder.call(asm, [])
        lo = builder.zext(builder.extract_value(r, 0), i64)
        hi = builder.zext(builder.extract_value(r, 1), i64)
        return builder.or_(builder.shl(hi, ir.Constant(i64, 32)), lo)
    return types.uint64(), codegen


X86_64 = platform.machine().lower() in ("x86_64", "amd64")
if X86_64:
    llvm_binding.initialize_native_asmparser()

    @njit(cache=True, inline="always")
    def rdtsc():
        """The CPU's time-stamp counter (ticks; uint64)."""
        return _rdtsc()
else:
    @njit(cache=True, inline="always")
    def rdtsc():
        """No TSC on this machine: 0 (a TscClock never enables itself here)."""
        return np.uint64(0)


@njit(cache=True, inline="always")
def _pair():
    """(tsc, CLOCK_REALTIME ns) read as close together as this thread gets them: the tightest
    of three tries, the TSC taken at the middle of the clock_gettime call."""
    best_gap = np.int64(1) << 62
    tsc = np.int64(0)
    ns = np.int64(0)
    for _ in range(3):
        t0 = np.int64(rdtsc())
        w = wall_ns()
        t1 = np.int64(rdtsc())
        if t1 - t0 < best_gap:
            best_gap = t1 - t0
            tsc = t0 + (t1 - t0) // 2
            ns = w
    return tsc, ns


@njit(cache=True, inline="always")
def reanchor(cal):
    """Take a new anchor and re-measure the rate over the calibration baseline (see above).
    Returns the anchor's CLOCK_REALTIME ns."""
    tsc, ns = _pair()
    dt = tsc - cal[CAL_BASE_TSC]
    if cal[CAL_MULT] > 0 and dt > 0:
        guess = float(cal[CAL_ANCHOR_NS]) + float(tsc - cal[CAL_ANCHOR_TSC]) * float(cal[CAL_MULT]) / 4294967296.0
        if abs(guess - float(ns)) > STEP_NS:          # CLOCK_REALTIME was stepped: new baseline
            cal[CAL_BASE_TSC] = tsc
            cal[CAL_BASE_NS] = ns
        else:
            # float: the baseline grows past what an int64 product holds; 53 bits of rate suffice
            cal[CAL_MULT] = np.int64(float(ns - cal[CAL_BASE_NS]) / float(dt) * 4294967296.0)
    cal[CAL_ANCHOR_TSC] = tsc
    cal[CAL_ANCHOR_NS] = ns
    cal[CAL_REANCHORS] += 1
    return ns


@njit(cache=True, inline="always")
def fast_ns(cal):
    """CLOCK_REALTIME nanoseconds from the TSC and ``cal`` (int64[CAL_SIZE], :class:`TscClock`):
    one ``rdtsc``, a multiply and a shift; clock_gettime where the TSC is not used. Re-anchors
    ``cal`` in place every ``cal[CAL_PERIOD]`` ticks (one clock_gettime then)."""
    if cal[CAL_TSC] == 0:
        return wall_ns()
    d = np.int64(rdtsc()) - cal[CAL_ANCHOR_TSC]
    if d < 0 or d >= cal[CAL_PERIOD]:
        return reanchor(cal)
    return cal[CAL_ANCHOR_NS] + np.int64((np.uint64(d) * np.uint64(cal[CAL_MULT])) >> np.uint64(MULT_SHIFT))


def invariant_tsc(cpuinfo: str | None = None) -> bool:
    """True when every CPU of /proc/cpuinfo (or ``cpuinfo``) lists ``constant_tsc`` and
    ``nonstop_tsc`` on an x86-64 machine."""
    if not X86_64 and cpuinfo is None:
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
    flag_lines = [ln.split(":", 1)[1].split() for ln in cpuinfo.splitlines()
                  if ln.split(":", 1)[0].strip() == "flags" and ":" in ln]
    return bool(flag_lines) and all("constant_tsc" in f and "nonstop_tsc" in f for f in flag_lines)


class TscClock:
    """A calibrated TSC clock for kernels: pass ``clock.cal`` to them and read ``fast_ns(cal)``.

    ``use_tsc``: None = where the CPU has an invariant TSC (:func:`invariant_tsc`); False =
    always clock_gettime. Calibration takes ``calibrate_s`` (two anchors that far apart).
    """

    def __init__(self, use_tsc: bool | None = None, calibrate_s: float = 0.05,
                 reanchor_ns: int = REANCHOR_NS) -> None:
        self.cal = np.zeros(CAL_SIZE, np.int64)
        self.uses_tsc = invariant_tsc() if use_tsc is None else bool(use_tsc) and X86_64
        if not self.uses_tsc:
            return
        t0, n0 = _pair()
        time.sleep(calibrate_s)
        t1, n1 = _pair()
        if t1 <= t0 or n1 <= n0:           # a TSC that does not move with the clock is no clock
            self.uses_tsc = False
            return
        cal = self.cal
        cal[CAL_MULT] = int((n1 - n0) / (t1 - t0) * (1 << MULT_SHIFT))
        cal[CAL_BASE_TSC], cal[CAL_BASE_NS] = t0, n0
        cal[CAL_ANCHOR_TSC], cal[CAL_ANCHOR_NS] = t1, n1
        ticks_per_ns = (t1 - t0) / (n1 - n0)
        cal[CAL_PERIOD] = max(1, int(reanchor_ns * ticks_per_ns))
        cal[CAL_TSC] = 1

    @property
    def ticks_per_ns(self) -> float:
        return (1 << MULT_SHIFT) / self.cal[CAL_MULT] if self.uses_tsc else 0.0

    def now_ns(self) -> int:
        """One read from Python (the kernels call fast_ns(cal) themselves)."""
        return int(_read_once(self.cal))


@njit(cache=True)
def _read_once(cal):
    return fast_ns(cal)


_PROCESS_CLOCK: tuple[int, TscClock] | None = None


def process_clock() -> TscClock:
    """This process's TscClock (calibrated on first use, again in a forked child): the writers
    that stamp each frame as they write it (:func:`alphapulse.jit.encode.encode_frames_now`, the
    replayer, the strategy's signals) copy or share its ``cal``."""
    global _PROCESS_CLOCK
    pid = os.getpid()
    if _PROCESS_CLOCK is None or _PROCESS_CLOCK[0] != pid:
        _PROCESS_CLOCK = (pid, TscClock())
    return _PROCESS_CLOCK[1]
