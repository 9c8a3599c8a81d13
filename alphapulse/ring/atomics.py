"""Atomic loads, stores and fences on shared ``uint64`` words, for Numba code.

The only low-level trick of the ring, quarantined here (as hftbacktest keeps
its pointer intrinsics in one small file). Each function is an LLVM atomic
instruction on element ``i`` of a C-contiguous 1-d ``uint64`` array (the ring
header, which is 8-byte aligned because the mapping is page aligned):

=====================  ======================  ===============================
function               x86-64 (TSO)            AArch64
=====================  ======================  ===============================
``load_acquire``       ``mov``                 ``ldar``
``load_seq_cst``       ``mov``                 ``ldar``
``store_relaxed``      ``mov``                 ``str``
``store_release``      ``mov``                 ``stlr``
``store_seq_cst``      ``xchg``                ``stlr``
``fetch_add``          ``lock xadd``           ``ldaddal`` / LL-SC loop
``compare_exchange``   ``lock cmpxchg``        ``casal`` / LL-SC loop
``fence_acquire``      (compiler barrier)      ``dmb ishld``
``fence_release``      (compiler barrier)      ``dmb ish``
``fence_seq_cst``      ``mfence``              ``dmb ish``
``cpu_relax``          ``pause``               ``yield``
=====================  ======================  ===============================

Why this exists rather than plain ``h[i]`` loads and stores:

* **Compiler ordering and hoisting.** LLVM keeps a plain load in a register
  across loop iterations: with Numba 0.68 a spin ``while a[0] == 0`` compiles
  to one ``cmp`` and then ``L: jmp L``, an endless loop (a test checks this),
  and may reorder plain stores to different addresses inside one kernel (the
  position could be stored before the frame bytes). Atomic loads are never
  merged across iterations of a polling loop, and acquire/release orderings
  forbid exactly the reorderings that would break the protocol. The tests run
  a spin in one process against a store from another to prove the re-read.
* **Hardware ordering on ARM64.** x86-64 is TSO: stores become visible in
  program order and loads are not reordered with other loads, so once the
  compiler is constrained, a release store of the position after the frame
  bytes, and an acquire load of it before reading them, are plain ``mov``s.
  AArch64 is weakly ordered: without ``stlr``/``ldar`` (or ``dmb``) a consumer
  could see the new position and stale frame bytes. Neither CPython nor numpy
  offers fences (a numpy scalar store is a plain store with no ordering), so
  every synchronising access of the ring goes through these functions, and
  the data copies (numpy or Numba) are ordered by them in program order:
  ``stlr`` orders *all* earlier loads and stores of the thread, including those
  done by numpy's ``memcpy`` in an earlier C call, and ``ldar`` orders all later
  ones.
"""
from __future__ import annotations

import platform

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_ARCH = platform.machine().lower()
# Spin hints as LLVM target intrinsics (Numba's JIT has no inline-asm parser).
if _ARCH in ("x86_64", "amd64", "i686", "i386"):
    _RELAX = ("llvm.x86.sse2.pause", None)            # pause
elif _ARCH in ("aarch64", "arm64"):
    _RELAX = ("llvm.aarch64.hint", 1)                  # hint #1 = yield
else:  # unknown ISA: no hint instruction, the loop still re-reads memory
    _RELAX = (None, None)


def _word_ptr(context, builder, arrty, arr, idx, idxty):
    ary = context.make_array(arrty)(context, builder, arr)
    i = context.cast(builder, idx, idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, arrty, ary, [i],
                                    wraparound=False, boundscheck=False)


def _check(arr):
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.dtype == types.uint64):
        raise TypeError("ring atomics operate on 1-d uint64 arrays")


def _make_load(ordering):
    @intrinsic
    def _load(typingctx, arr, idx):
        _check(arr)
        sig = types.uint64(arr, idx)

        def codegen(context, builder, sig, args):
            ptr = _word_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
            return builder.load_atomic(ptr, ordering, 8)
        return sig, codegen
    return _load


def _make_store(ordering):
    @intrinsic
    def _store(typingctx, arr, idx, val):
        _check(arr)
        sig = types.void(arr, idx, val)

        def codegen(context, builder, sig, args):
            ptr = _word_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
            v = context.cast(builder, args[2], sig.args[2], types.uint64)
            builder.store_atomic(v, ptr, ordering, 8)
            return context.get_dummy_value()
        return sig, codegen
    return _store


load_acquire = _make_load("acquire")
load_seq_cst = _make_load("seq_cst")
load_relaxed = _make_load("monotonic")
store_relaxed = _make_store("monotonic")
store_release = _make_store("release")
store_seq_cst = _make_store("seq_cst")


@intrinsic
def fetch_add(typingctx, arr, idx, val):
    """Atomically add ``val`` to word ``idx`` (sequentially consistent); returns the old value."""
    _check(arr)
    sig = types.uint64(arr, idx, val)

    def codegen(context, builder, sig, args):
        ptr = _word_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        v = context.cast(builder, args[2], sig.args[2], types.uint64)
        return builder.atomic_rmw("add", ptr, v, "seq_cst")
    return sig, codegen


@intrinsic
def compare_exchange(typingctx, arr, idx, expected, desired):
    """If word ``idx`` equals ``expected`` store ``desired`` (seq_cst); returns the value seen."""
    _check(arr)
    sig = types.uint64(arr, idx, expected, desired)

    def codegen(context, builder, sig, args):
        ptr = _word_ptr(context, builder, sig.args[0], args[0], args[1], sig.args[1])
        e = context.cast(builder, args[2], sig.args[2], types.uint64)
        d = context.cast(builder, args[3], sig.args[3], types.uint64)
        pair = builder.cmpxchg(ptr, e, d, "seq_cst", "seq_cst")
        return builder.extract_value(pair, 0)
    return sig, codegen


def _make_fence(ordering):
    @intrinsic
    def _fence(typingctx):
        sig = types.void()

        def codegen(context, builder, sig, args):
            builder.fence(ordering)
            return context.get_dummy_value()
        return sig, codegen
    return _fence


fence_acquire = _make_fence("acquire")
fence_release = _make_fence("release")
fence_seq_cst = _make_fence("seq_cst")


@intrinsic
def cpu_relax(typingctx):
    """Spin-loop hint (``pause`` / ``yield``): saves power, frees the sibling hyperthread."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        name, arg = _RELAX
        if name is not None:
            if arg is None:
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), []), name)
                builder.call(fn, [])
            else:
                fn = cgutils.get_or_insert_function(
                    builder.module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]), name)
                builder.call(fn, [ir.Constant(ir.IntType(32), arg)])
        return context.get_dummy_value()
    return sig, codegen


# ------------------------------------------------- Python-callable wrappers
# Each is one compiled call (~0.2 us from Python); the hot paths call the
# intrinsics from inside their own kernels instead.
@njit(cache=True)
def py_load(arr, i):
    """Acquire load of ``arr[i]`` from Python."""
    return load_acquire(arr, i)


@njit(cache=True)
def py_store(arr, i, v):
    """Release store of ``arr[i] = v`` from Python."""
    store_release(arr, i, v)


@njit(cache=True)
def py_fetch_add(arr, i, v):
    """Sequentially consistent ``arr[i] += v`` from Python; returns the old value."""
    return fetch_add(arr, i, v)


@njit(cache=True)
def py_cas(arr, i, expected, desired):
    """Sequentially consistent compare-and-swap from Python; True if it stored."""
    return compare_exchange(arr, i, expected, desired) == expected


@njit(cache=True)
def spin_until_changed(arr, i, old, max_spins):
    """Spin until ``arr[i] != old`` or ``max_spins`` iterations; returns the last value read.

    Every iteration is an acquire load (never hoisted out of the loop) followed
    by ``cpu_relax``. ``max_spins`` bounds the time the caller cannot check
    its deadline.
    """
    v = load_acquire(arr, i)
    n = 0
    while v == old and n < max_spins:
        cpu_relax()
        v = load_acquire(arr, i)
        n += 1
    return v
