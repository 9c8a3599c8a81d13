"""Deterministic Protocol V2 frames for the bridge tests: frame ``seq`` is a pure
function of ``seq``, so a verifier in another process rebuilds what it must receive.

Frame ``seq``: header (market data, source RELAY_MARKET, sequence ``seq``,
timestamp ``TS_BASE + seq``, checksum CRC-32 when ``crc``) + one vendor TLV
(type 200) of ``value_len(seq)`` bytes whose byte j is ``(seq * 131 + j * 7) & 0xFF``.
Sizes vary from 34 to 289 bytes (``sizes="var"``) or are fixed (``sizes=128``).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.crc import frame_crc
from alphapulse.jit.memory import st_u32, st_u64
from alphapulse.protocol import layout as L

TS_BASE = 1_700_000_000_000_000_000
VENDOR_TLV = 200
_MAGIC = L.MAGIC
_HDR = L.HEADER_SIZE
_DOMAIN = int(L.Domain.MARKET_DATA)
_SOURCE = int(L.Source.RELAY_MARKET)
_VERSION = L.VERSION
_CK = L.CHECKSUM_OFFSET
_STD = L.TLV_STD_HEADER


@njit(cache=True)
def value_len(seq, fixed):
    if fixed > 0:
        return fixed - _HDR - _STD
    return (seq * 37) % 256


@njit(cache=True)
def fill(buf, first_seq, n, fixed, with_crc):
    """Write frames first_seq .. first_seq+n-1 back to back into buf; return bytes used
    (stops early, returning the frames that fit, when buf is full): (nbytes, frames)."""
    p = 0
    for i in range(n):
        seq = first_seq + i
        vl = value_len(seq, fixed)
        size = _HDR + _STD + vl
        if p + size > buf.shape[0]:
            return p, i
        st_u32(buf, p, _MAGIC)
        buf[p + 4] = _DOMAIN
        buf[p + 5] = _VERSION
        buf[p + 6] = _SOURCE
        buf[p + 7] = 0
        st_u64(buf, p + 8, seq)
        st_u64(buf, p + 16, TS_BASE + seq)
        st_u32(buf, p + 24, _STD + vl)
        st_u32(buf, p + 28, 0)
        buf[p + _HDR] = VENDOR_TLV
        buf[p + _HDR + 1] = vl
        q = p + _HDR + _STD
        for j in range(vl):
            buf[q + j] = (seq * 131 + j * 7) & 0xFF
        if with_crc:
            st_u32(buf, p + _CK, frame_crc(buf, p, _STD + vl))
        p += size
    return p, n


def frames(first_seq: int, n: int, fixed: int = 0, crc: bool = False) -> np.ndarray:
    """The frames as one uint8 array."""
    buf = np.zeros(n * 290, np.uint8)
    nbytes, got = fill(buf, first_seq, n, fixed, crc)
    assert got == n
    return buf[:nbytes].copy()
