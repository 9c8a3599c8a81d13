"""Unaligned little-endian loads and stores on ``uint8`` arrays, for the kernels.

Protocol V2 fields are unaligned (PROTOCOL.md section 1), so the kernels never
view the buffer as wider integers. They assemble values from bytes; LLVM's load
and store combining turns each pattern into one unaligned ``mov`` on x86-64
(checked in the disassembly, and measured in ``perf/bench_codec.py``: no
pointer intrinsic was faster). Callers guarantee ``p .. p+width`` lies inside
``buf``; these helpers do no bounds checks of their own.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_U8 = np.uint64(8)
_U16 = np.uint64(16)
_U24 = np.uint64(24)
_U32 = np.uint64(32)
_U40 = np.uint64(40)
_U48 = np.uint64(48)
_U56 = np.uint64(56)
_FF = np.uint64(0xFF)


@njit(cache=True, inline="always")
def ld_u16(buf, p):
    """u16 at byte ``p`` (little-endian), as uint64."""
    return np.uint64(buf[p]) | (np.uint64(buf[p + 1]) << _U8)


@njit(cache=True, inline="always")
def ld_u32(buf, p):
    """u32 at byte ``p`` (little-endian), as uint64."""
    return (np.uint64(buf[p]) | (np.uint64(buf[p + 1]) << _U8)
            | (np.uint64(buf[p + 2]) << _U16) | (np.uint64(buf[p + 3]) << _U24))


@njit(cache=True, inline="always")
def ld_u64(buf, p):
    """u64 at byte ``p`` (little-endian)."""
    return (np.uint64(buf[p]) | (np.uint64(buf[p + 1]) << _U8)
            | (np.uint64(buf[p + 2]) << _U16) | (np.uint64(buf[p + 3]) << _U24)
            | (np.uint64(buf[p + 4]) << _U32) | (np.uint64(buf[p + 5]) << _U40)
            | (np.uint64(buf[p + 6]) << _U48) | (np.uint64(buf[p + 7]) << _U56))


@njit(cache=True, inline="always")
def st_u16(buf, p, v):
    """Store the low 16 bits of ``v`` at byte ``p`` (little-endian)."""
    v = np.uint64(v)
    buf[p] = np.uint8(v & _FF)
    buf[p + 1] = np.uint8((v >> _U8) & _FF)


@njit(cache=True, inline="always")
def st_u32(buf, p, v):
    """Store the low 32 bits of ``v`` at byte ``p`` (little-endian)."""
    v = np.uint64(v)
    buf[p] = np.uint8(v & _FF)
    buf[p + 1] = np.uint8((v >> _U8) & _FF)
    buf[p + 2] = np.uint8((v >> _U16) & _FF)
    buf[p + 3] = np.uint8((v >> _U24) & _FF)


@njit(cache=True, inline="always")
def st_u64(buf, p, v):
    """Store ``v`` (any 64-bit integer, two's complement) at byte ``p`` (little-endian)."""
    v = np.uint64(v)
    buf[p] = np.uint8(v & _FF)
    buf[p + 1] = np.uint8((v >> _U8) & _FF)
    buf[p + 2] = np.uint8((v >> _U16) & _FF)
    buf[p + 3] = np.uint8((v >> _U24) & _FF)
    buf[p + 4] = np.uint8((v >> _U32) & _FF)
    buf[p + 5] = np.uint8((v >> _U40) & _FF)
    buf[p + 6] = np.uint8((v >> _U48) & _FF)
    buf[p + 7] = np.uint8((v >> _U56) & _FF)


@intrinsic
def prefetch(typingctx, arr, byte_off):
    """Hint the CPU to fetch the cache line at byte ``byte_off`` of array ``arr``'s data
    (``llvm.prefetch``, read, keep in all levels). No effect on results, never faults;
    issuing the prefetches of lines needed a little later lets their cache misses overlap
    instead of stalling one after the other."""
    if not isinstance(arr, types.Array) or not isinstance(byte_off, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        ary = context.make_array(signature.args[0])(context, builder, args[0])
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        off = context.cast(builder, args[1], signature.args[1], types.intp)
        ptr = builder.gep(builder.bitcast(ary.data, i8p), [off])
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()
    return types.none(arr, byte_off), codegen
