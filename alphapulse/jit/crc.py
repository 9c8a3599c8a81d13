"""CRC-32/IEEE identical to ``zlib.crc32``, as a Numba kernel (slicing-by-16).

Tails shorter than 16 bytes take one 8-byte and one 4-byte step before the
last 0-3 bytes go one at a time: frames are short, so the tail matters.

The tables are built at import from the reflected polynomial 0xEDB88320, not
pasted. ``TABLES[0]`` is the classic byte-at-a-time table; ``TABLES[k][b]`` is
the CRC of byte ``b`` followed by ``k`` zero bytes, which lets the kernel fold
16 input bytes per step with 16 independent table lookups.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.memory import ld_u32
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


@njit(cache=True)
def crc32(buf, start, end, crc=0):
    """CRC-32 of ``buf[start:end]`` (uint8 array), continuing from ``crc``.

    Same value as ``zlib.crc32(bytes(buf[start:end]), crc)``; ``crc`` is a
    previous result (0 to start). Returns an int in 0 .. 2**32-1. ``start`` and
    ``end`` are clamped to the array, so garbage bounds never read outside it.
    """
    return crc32_with(buf, start, end, crc, _T)


@njit(cache=True)
def crc32_with(buf, start, end, crc, _T):
    """:func:`crc32` with the tables ``_T`` (a copy of :data:`TABLE`) given."""
    n_buf = buf.shape[0]
    if start < 0:
        start = 0
    if end > n_buf:
        end = n_buf
    c = np.uint32(crc) ^ _ALL
    p = start
    while end - p >= 16:
        a = np.uint32(ld_u32(buf, p)) ^ c
        b = np.uint32(ld_u32(buf, p + 4))
        d = np.uint32(ld_u32(buf, p + 8))
        e = np.uint32(ld_u32(buf, p + 12))
        c = (_T[15 * 256 + (a & _M8)] ^ _T[14 * 256 + ((a >> 8) & _M8)]
             ^ _T[13 * 256 + ((a >> 16) & _M8)] ^ _T[12 * 256 + (a >> 24)]
             ^ _T[11 * 256 + (b & _M8)] ^ _T[10 * 256 + ((b >> 8) & _M8)]
             ^ _T[9 * 256 + ((b >> 16) & _M8)] ^ _T[8 * 256 + (b >> 24)]
             ^ _T[7 * 256 + (d & _M8)] ^ _T[6 * 256 + ((d >> 8) & _M8)]
             ^ _T[5 * 256 + ((d >> 16) & _M8)] ^ _T[4 * 256 + (d >> 24)]
             ^ _T[3 * 256 + (e & _M8)] ^ _T[2 * 256 + ((e >> 8) & _M8)]
             ^ _T[1 * 256 + ((e >> 16) & _M8)] ^ _T[e >> 24])
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
    c = crc32_with(buf, frame_offset, frame_offset + CHECKSUM_OFFSET, 0, t)
    return crc32_with(buf, frame_offset + HEADER_SIZE, frame_offset + HEADER_SIZE + payload_size, c, t)
