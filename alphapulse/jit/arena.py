"""Many arrays in one buffer, so that a kernel called per frame takes one argument, not thirty.

The strategy kernel works on ~25 arrays. Passed from Python one by one, each is
unboxed on the call (~30-80 ns) and carries a reference count that the compiled
code increments and decrements, with locked instructions, around every inner
call it is passed to: measured 2.2-2.6 us per call of the strategy kernel before
it did any work, most of a one-frame batch. :func:`pack` copies the arrays into
one 64-byte-aligned ``uint8`` arena (2 MiB aligned and in transparent huge
pages when it is larger than one: measured, a quarter off the p99 of a signal's
latency) and returns views of it (the owner keeps using those) and a layout
table; a kernel re-derives the same views from ``(arena, layout)`` with
:func:`view1`, :func:`view2` and :func:`view3`, a few nanoseconds each,
as arrays without a reference count (measured: 0.56 us per call with an empty
batch, of which 0.29 us is the Python call itself).

The layout row of array ``k`` is ``(byte offset, dim0, dim1, dim2)``; an
array's dtype and rank are fixed by the kernel that reads it, and :func:`pack`
checks them against the ``spec`` it is given (dtype, ndim per array), so a
mismatch is an error at start-up, not garbage in the kernel.
"""
from __future__ import annotations

import mmap
from typing import Sequence

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

ALIGN = 64          # a cache line: every array starts on its own
LAYCOL = 4          # offset, dim0, dim1, dim2


def pack(arrays: Sequence[np.ndarray], spec: Sequence[tuple[type, int]]) -> tuple[np.ndarray, np.ndarray, list]:
    """Copy ``arrays`` into one arena (:func:`_huge_zeros`); returns (arena uint8, layout
    int64[n, LAYCOL], views).

    ``spec[k]`` is the (dtype, ndim) the kernels expect of ``arrays[k]``. The views have the
    arrays' shapes, dtypes and values; write to them, not to the originals.
    """
    lay = _table(arrays, spec)
    off = 0
    for k, a in enumerate(arrays):
        lay[k, 0] = off
        off += -(-max(a.nbytes, 1) // ALIGN) * ALIGN
    arena = _huge_zeros(off)
    views = []
    for k, a in enumerate(arrays):
        v = arena[lay[k, 0]:lay[k, 0] + a.nbytes].view(a.dtype).reshape(a.shape)
        v[...] = a
        views.append(v)
    return arena, lay, views


HUGE = 2 << 20      # a transparent huge page (x86-64)


def _huge_zeros(nbytes: int) -> np.ndarray:
    """``nbytes`` zero bytes, 2 MiB aligned, in memory the kernel is asked to back with
    transparent huge pages (``madvise(MADV_HUGEPAGE)``: in Linux's "madvise" THP mode, the
    usual one, memory that does not ask never gets them). The strategy's ~40 MB of state is
    read at random, a few cache lines per pool: with 4 KiB pages nearly every such line is
    also a TLB miss, whose page walk in a virtual machine costs as much again as the miss.
    Less than a huge page, or no anonymous mapping: ordinary memory, 64-byte aligned; a
    kernel that refuses the advice leaves ordinary pages."""
    if nbytes >= HUGE:
        size = -(-nbytes // HUGE) * HUGE
        try:
            mm = mmap.mmap(-1, size + HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except (OSError, ValueError, AttributeError):
            mm = None
        if mm is not None:
            raw = np.frombuffer(mm, np.uint8)       # keeps the mapping alive
            start = -raw.ctypes.data % HUGE
            if hasattr(mmap, "MADV_HUGEPAGE"):
                try:
                    mm.madvise(mmap.MADV_HUGEPAGE, start, size)
                except OSError:
                    pass
            return raw[start:start + nbytes]
    raw = np.zeros(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes]


def _table(arrays: Sequence[np.ndarray], spec: Sequence[tuple[type, int]]) -> np.ndarray:
    """A layout table with the arrays' shapes (column 0 left to the caller), ``spec`` checked."""
    if len(arrays) != len(spec):
        raise ValueError(f"{len(arrays)} arrays for a spec of {len(spec)}")
    tab = np.zeros((len(arrays), LAYCOL), np.int64)
    for k, (a, (dtype, ndim)) in enumerate(zip(arrays, spec)):
        if a.dtype != np.dtype(dtype) or a.ndim != ndim or ndim > 3:
            raise TypeError(f"array {k}: {a.dtype}[{a.ndim}d] where the kernel expects {np.dtype(dtype)}[{ndim}d]")
        tab[k, 1:1 + ndim] = a.shape
    return tab


def places(arrays: Sequence[np.ndarray], spec: Sequence[tuple[type, int]]) -> np.ndarray:
    """Where ``arrays`` are, for a kernel to take arrays owned elsewhere (a ring's shared memory,
    another object's buffers) in one argument: a table like :func:`pack`'s layout with each
    row's column 0 the array's address; kernels read them with :func:`at1`.

    No copy is made: the caller keeps every array alive (and its memory mapped) for as long
    as it passes the table, and each must be contiguous (checked, with ``spec`` as in :func:`pack`).
    """
    tab = _table(arrays, spec)
    for k, a in enumerate(arrays):
        if not a.flags.c_contiguous:
            raise TypeError(f"array {k}: not contiguous")
        tab[k, 0] = a.ctypes.data
    return tab


@intrinsic
def _ptr(typingctx, addr, dtype):
    """The address ``addr`` (int64) as a pointer to ``dtype`` items."""
    item = dtype.dtype if isinstance(dtype, types.DTypeSpec) else dtype.instance_type

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(types.CPointer(item)))
    return types.CPointer(item)(addr, dtype), codegen


@njit(cache=True, inline="always")
def _base(arena, lay, k):
    return arena.ctypes.data + lay[k, 0]


# The views are built over the arena's memory with no reference count of their own (carray):
# the engine owns the arena for its whole life, and a counted view costs an atomic increment
# and decrement of the arena's count every time the kernel passes it to a function (~70
# locked instructions per call of the strategy kernel, measured ~0.5 us). ``dtype`` is a
# NumPy scalar type (np.uint64, ...), a compile-time constant.
@njit(cache=True, inline="always")
def view1(arena, lay, k, dtype):
    """Array ``k`` of the arena, 1-d."""
    return carray(_ptr(_base(arena, lay, k), dtype), (lay[k, 1],))


@njit(cache=True, inline="always")
def view2(arena, lay, k, dtype):
    """Array ``k`` of the arena, 2-d."""
    return carray(_ptr(_base(arena, lay, k), dtype), (lay[k, 1], lay[k, 2]))


@njit(cache=True, inline="always")
def view3(arena, lay, k, dtype):
    """Array ``k`` of the arena, 3-d."""
    return carray(_ptr(_base(arena, lay, k), dtype), (lay[k, 1], lay[k, 2], lay[k, 3]))


@njit(cache=True, inline="always")
def at1(places_, k, dtype):
    """Array ``k`` of a :func:`places` table, 1-d (no reference count, as the arena views)."""
    return carray(_ptr(places_[k, 0], dtype), (places_[k, 1],))
