"""CRC-32/IEEE identical to ``zlib.crc32``, as a Numba kernel (carry-less multiplication, slicing-by-16).

On x86-64 CPUs with ``pclmulqdq`` a span of 32 bytes or more is folded 16 bytes
at a time by carry-less multiplication, with no tables: two constants K_LO and
K_HI turn the 128-bit state X into one congruent to X followed by 16 zero bytes
(``fold(X) = clmul(X.lo, K_LO) ^ clmul(X.hi, K_HI)``), the next block is xored in,
and the last state goes through one table step. The constants are solved for at
import (GF(2) linear algebra against the table CRC), not pasted. The strategy's
state evicts the tables' 16 KiB between two signals: a signal frame's checksum
cost ~0.3 us there by the tables (measured against no checksum; 0.12 us with
warm tables). Folded, a span reads 16 table entries for its last state and at
most 15 for its tail: 0.09 us warm, and 0.13 us less than the tables after
4,000 random reads of other memory. :func:`frame_crc_with` folds a frame's
checksummed header bytes and its payload as one stream.

Tails shorter than 16 bytes take one 8-byte and one 4-byte step before the
last 0-3 bytes go one at a time: frames are short, so the tail matters.

The tables are built at import from the reflected polynomial 0xEDB88320, not
pasted. ``TABLES[0]`` is the classic byte-at-a-time table; ``TABLES[k][b]`` is
the CRC of byte ``b`` followed by ``k`` zero bytes, which lets the kernel fold
16 input bytes per step with 16 independent table lookups.
"""
from __future__ import annotations

import zlib

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from alphapulse.jit.memory import ld_u32, ld_u64
from alphapulse.jit.wideint import X86_64
from alphapulse.protocol.layout import CHECKSUM_OFFSET, HEADER_SIZE

POLYNOMIAL = 0xEDB88320
SLICES = 16


def _build_tables(poly: int, slices: int) -> np.ndarray:
    t = np.zeros((slices, 256), dtype=np.uint32)
    for b in range(256):
        c = b
        for _ in range(8):
            c = (c >> 1) ^ (poly if c & 1 else 0)
        t[0, b] = c
    for k in range(1, slices):
        for b in range(256):
            prev = int(t[k - 1, b])
            t[k, b] = (prev >> 8) ^ int(t[0, prev & 0xFF])
    t.setflags(write=False)
    return t


TABLES = _build_tables(POLYNOMIAL, SLICES)
# One flat table: Numba freezes a global array as a constant; 1-D indexing
# with a computed base keeps the inner loop to plain loads.
_T = TABLES.reshape(-1).copy()
_T.setflags(write=False)
# The same for kernels that keep it in an array of their own (:func:`crc32_with`): a global
# array is a constant of each compiled function that reads it, so only a table passed in can
# be prefetched by the code that calls the CRC.
TABLE = _T
_M8 = np.uint32(0xFF)
_ALL = np.uint32(0xFFFFFFFF)


def _raw(data: bytes) -> int:
    """The table CRC's register after ``data`` from 0 (no inversions): zlib's, undone."""
    return zlib.crc32(data, 0xFFFFFFFF) ^ 0xFFFFFFFF


def _fold_constant(zeros: int) -> int:
    """The 64-bit K with ``raw(clmul(x, K)) == raw(x ++ zeros bytes)`` for every 64-bit x
    (little-endian bytes; the product as 16 bytes): the fold of one half of the state.

    ``raw`` and the carry-less product are linear over GF(2), so it is enough for each
    basis vector x = 2**i: 64 x 32 equations in K's 64 bits, solved by elimination."""
    def response(k: int) -> int:
        v = 0
        for i in range(64):
            v |= _raw(((k << i) & ((1 << 128) - 1)).to_bytes(16, "little")) << (32 * i)
        return v
    target = 0
    for i in range(64):
        target |= _raw((1 << i).to_bytes(8, "little") + bytes(zeros)) << (32 * i)
    rows: list[tuple[int, int, int]] = []        # (pivot bit, response, combination of K bits)
    for j in range(64):
        v, comb = response(1 << j), 1 << j
        for pb, rv, rc in rows:
            if v >> pb & 1:
                v, comb = v ^ rv, comb ^ rc
        if v:
            rows.append((v.bit_length() - 1, v, comb))
    v, k = target, 0
    for pb, rv, rc in sorted(rows, reverse=True):
        if v >> pb & 1:
            v, k = v ^ rv, k ^ rc
    if v:
        raise ArithmeticError("no carry-less fold constant")   # cannot happen for a CRC polynomial
    return k


K_LO = np.uint64(_fold_constant(24))     # the first 8 bytes of the state, 16 + 8 bytes further on
K_HI = np.uint64(_fold_constant(16))     # the last 8, 16 bytes further on


def _has_pclmul() -> bool:
    if not X86_64:
        return False
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " pclmulqdq" in line for line in f)
    except OSError:
        return False


CLMUL = _has_pclmul()
CLMUL_MIN = 32          # shorter spans: the tables (one fold would save nothing)
# frame_crc folds the header's 28 checksummed bytes and the payload as one stream, with the
# header's layout as it is (the checksum in its last 4 bytes)
_FRAME_FOLD = CLMUL and CHECKSUM_OFFSET == 28 and HEADER_SIZE == 32


@intrinsic
def _clmul(typingctx, a, b):
    """x86 ``pclmulqdq``: the carry-less product of two uint64, as (low, high) uint64."""
    if a != types.uint64 or b != types.uint64:
        return None
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        v2 = ir.VectorType(i64, 2)
        lane = [ir.Constant(ir.IntType(32), k) for k in (0, 1)]

        def vector(x):          # (x, 0): pclmulqdq $0 multiplies the low lanes
            return builder.insert_element(builder.insert_element(ir.Constant(v2, ir.Undefined), x, lane[0]),
                                          ir.Constant(i64, 0), lane[1])
        asm = ir.InlineAsm(ir.FunctionType(v2, [v2, v2]), "pclmulqdq $$0x00, $2, $0", "=x,0,x")
        r = builder.call(asm, [vector(args[0]), vector(args[1])])
        return context.make_tuple(builder, signature.return_type,
                                  tuple(builder.extract_element(r, k) for k in lane))

    return sig, codegen


@njit(cache=True)
def crc32(buf, start, end, crc=0):
    """CRC-32 of ``buf[start:end]`` (uint8 array), continuing from ``crc``.

    Same value as ``zlib.crc32(bytes(buf[start:end]), crc)``; ``crc`` is a
    previous result (0 to start). Returns an int in 0 .. 2**32-1. ``start`` and
    ``end`` are clamped to the array, so garbage bounds never read outside it.
    """
    return crc32_with(buf, start, end, crc, _T)


@njit(cache=True, inline="always")
def _step16(_T, a, b, d, e):
    """The register after 16 bytes, as four little-endian uint32 (the register already xored
    into ``a``): 16 independent table lookups."""
    return (_T[15 * 256 + (a & _M8)] ^ _T[14 * 256 + ((a >> 8) & _M8)]
            ^ _T[13 * 256 + ((a >> 16) & _M8)] ^ _T[12 * 256 + (a >> 24)]
            ^ _T[11 * 256 + (b & _M8)] ^ _T[10 * 256 + ((b >> 8) & _M8)]
            ^ _T[9 * 256 + ((b >> 16) & _M8)] ^ _T[8 * 256 + (b >> 24)]
            ^ _T[7 * 256 + (d & _M8)] ^ _T[6 * 256 + ((d >> 8) & _M8)]
            ^ _T[5 * 256 + ((d >> 16) & _M8)] ^ _T[4 * 256 + (d >> 24)]
            ^ _T[3 * 256 + (e & _M8)] ^ _T[2 * 256 + ((e >> 8) & _M8)]
            ^ _T[1 * 256 + ((e >> 16) & _M8)] ^ _T[e >> 24])


@njit(cache=True)
def crc32_with(buf, start, end, crc, _T):
    """:func:`crc32` with the tables ``_T`` (a copy of :data:`TABLE`) given: folded by carry-less
    multiplication where the CPU has it (:data:`CLMUL`) and the span is long enough."""
    if start < 0:
        start = 0
    if end > buf.shape[0]:
        end = buf.shape[0]
    if not CLMUL or end - start < CLMUL_MIN:
        return crc32_tables_with(buf, start, end, crc, _T)
    # the register xored into the first block
    lo = ld_u64(buf, start) ^ np.uint64(np.uint32(crc) ^ _ALL)
    return _fold_rest(buf, lo, ld_u64(buf, start + 8), start + 16, end, _T)


@njit(cache=True, inline="always")
def _fold(lo, hi, next_lo, next_hi):
    """The 128-bit state (lo, hi) moved 16 bytes on, with the next block (next_lo, next_hi) xored in."""
    a0, a1 = _clmul(lo, K_LO)
    b0, b1 = _clmul(hi, K_HI)
    return a0 ^ b0 ^ next_lo, a1 ^ b1 ^ next_hi


@njit(cache=True, inline="always")
def _fold_rest(buf, lo, hi, p, end, _T):
    """From the 128-bit state (lo, hi), fold in every whole 16-byte block of ``buf[p:end]``,
    turn the state into the register by one table step, and finish the tail by the tables."""
    while end - p >= 16:
        lo, hi = _fold(lo, hi, ld_u64(buf, p), ld_u64(buf, p + 8))
        p += 16
    m32 = np.uint64(0xFFFFFFFF)
    c = _step16(_T, np.uint32(lo & m32), np.uint32(lo >> np.uint64(32)), np.uint32(hi & m32),
                np.uint32(hi >> np.uint64(32)))
    return crc32_tables_with(buf, p, end, np.uint32(c) ^ _ALL, _T)


@njit(cache=True)
def crc32_tables_with(buf, start, end, crc, _T):
    """:func:`crc32_with` by the tables alone (slicing-by-16; what CPUs without ``pclmulqdq`` run)."""
    n_buf = buf.shape[0]
    if start < 0:
        start = 0
    if end > n_buf:
        end = n_buf
    c = np.uint32(crc) ^ _ALL
    p = start
    while end - p >= 16:
        c = _step16(_T, np.uint32(ld_u32(buf, p)) ^ c, np.uint32(ld_u32(buf, p + 4)),
                    np.uint32(ld_u32(buf, p + 8)), np.uint32(ld_u32(buf, p + 12)))
        p += 16
    if end - p >= 8:
        a = np.uint32(ld_u32(buf, p)) ^ c
        b = np.uint32(ld_u32(buf, p + 4))
        c = (_T[7 * 256 + (a & _M8)] ^ _T[6 * 256 + ((a >> 8) & _M8)]
             ^ _T[5 * 256 + ((a >> 16) & _M8)] ^ _T[4 * 256 + (a >> 24)]
             ^ _T[3 * 256 + (b & _M8)] ^ _T[2 * 256 + ((b >> 8) & _M8)]
             ^ _T[1 * 256 + ((b >> 16) & _M8)] ^ _T[b >> 24])
        p += 8
    if end - p >= 4:
        a = np.uint32(ld_u32(buf, p)) ^ c
        c = (_T[3 * 256 + (a & _M8)] ^ _T[2 * 256 + ((a >> 8) & _M8)]
             ^ _T[1 * 256 + ((a >> 16) & _M8)] ^ _T[a >> 24])
        p += 4
    while p < end:
        c = _T[(c ^ buf[p]) & _M8] ^ (c >> 8)
        p += 1
    return c ^ _ALL


@njit(cache=True)
def frame_crc(buf, frame_offset, payload_size):
    """Protocol V2 frame checksum: CRC over header bytes 0..28, then the payload.

    ``frame_offset`` is the frame's first byte in ``buf``; ``payload_size`` the
    header's value. Same as ``alphapulse.protocol.codec.frame_checksum``.
    """
    return frame_crc_with(buf, frame_offset, payload_size, _T)


@njit(cache=True)
def frame_crc_with(buf, frame_offset, payload_size, t):
    """:func:`frame_crc` with the tables ``t`` (a copy of :data:`TABLE`) given."""
    f = frame_offset
    if _FRAME_FOLD and payload_size >= 4 and f >= 0 and f + HEADER_SIZE + payload_size <= buf.shape[0]:
        # one folded stream: the header's first 28 bytes, then the payload (its second block
        # is the header's bytes 16..27 and the payload's first 4)
        lo, hi = _fold(ld_u64(buf, f) ^ np.uint64(0xFFFFFFFF), ld_u64(buf, f + 8), ld_u64(buf, f + 16),
                       np.uint64(ld_u32(buf, f + 24)) | np.uint64(ld_u32(buf, f + HEADER_SIZE)) << np.uint64(32))
        return _fold_rest(buf, lo, hi, f + HEADER_SIZE + 4, f + HEADER_SIZE + payload_size, t)
    c = crc32_with(buf, frame_offset, frame_offset + CHECKSUM_OFFSET, 0, t)
    return crc32_with(buf, frame_offset + HEADER_SIZE, frame_offset + HEADER_SIZE + payload_size, c, t)
