"""Deterministic Protocol V2 frames for the ring tests, as Numba kernels.

Frame ``seq`` (sequence number ``seq``, timestamp ``seq * 7``) carries one
vendor TLV (type 200, skipped by readers) of a length and content derived from
``seq`` alone (a slice of a fixed random pool), and a CRC-32 checksum. A consumer regenerates the expected
bytes from the sequence number and compares: byte-identical, in order.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.encode import seal_frame, write_header, write_tlv_header
from alphapulse.jit.frames import validate_frames
from alphapulse.jit.memory import ld_u32, ld_u64
from alphapulse.protocol.layout import HEADER_SIZE, Domain, Source

VENDOR_TLV = 200
DOMAIN = int(Domain.MARKET_DATA)
SOURCE = int(Source.POLYGON_COLLECTOR)
_C1 = np.uint64(0x9E3779B97F4A7C15)
_C2 = np.uint64(0xBF58476D1CE4E5B9)
_C3 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S8 = np.uint64(8)
_FF = np.uint64(0xFF)
# Payload bytes: slices of one fixed random pool (a Numba compile-time
# constant) at an offset derived from the sequence number: as unique per frame
# as the test needs, and written and compared at memcpy speed.
MAX_VALUE = 1 << 16
POOL_SPAN = 1 << 16
POOL = np.random.default_rng(20261126).integers(0, 256, POOL_SPAN + MAX_VALUE, dtype=np.uint8)
POOL.setflags(write=False)


@njit(cache=True, inline="always")
def mix(x):
    """splitmix64 finaliser."""
    z = np.uint64(x) * _C1
    z = (z ^ (z >> _S30)) * _C2
    z = (z ^ (z >> _S27)) * _C3
    return z ^ (z >> _S31)


@njit(cache=True)
def value_len(seq, big_every, big_max):
    """TLV value bytes of frame ``seq``: 0..255, and 256..big_max for one frame in big_every."""
    x = mix(seq)
    if big_every > 0 and (x >> np.uint64(40)) % np.uint64(big_every) == 0 and big_max > 256:
        return 256 + np.int64((x >> _S8) % np.uint64(big_max - 255))
    return np.int64((x >> _S8) & _FF)


@njit(cache=True)
def frame_len(seq, big_every, big_max):
    v = value_len(seq, big_every, big_max)
    return HEADER_SIZE + (2 if v <= 255 else 5) + v


@njit(cache=True)
def write_frame(buf, pos, seq, big_every, big_max, with_crc=True):
    """Write frame ``seq`` at ``buf[pos:]``; returns the position after it."""
    v = value_len(seq, big_every, big_max)
    th = 2 if v <= 255 else 5
    write_header(buf, pos, DOMAIN, SOURCE, 0, seq, seq * 7, th + v)
    p = write_tlv_header(buf, pos + HEADER_SIZE, VENDOR_TLV, v)
    o = np.int64(mix(seq ^ 0x5555) % np.uint64(POOL_SPAN))
    for i in range(v):                  # a slice of the random pool at a per-seq offset
        buf[p + i] = POOL[o + i]
    seal_frame(buf, pos, with_crc)
    return p + v


@njit(cache=True)
def fill(buf, seq0, seq_end, limit, big_every, big_max):
    """Frames seq0, seq0+1, ... (< seq_end) into ``buf[:limit]``; returns (bytes, next seq)."""
    pos = 0
    seq = seq0
    while seq < seq_end:
        n = frame_len(seq, big_every, big_max)
        if pos + n > limit:
            break
        pos = write_frame(buf, pos, seq, big_every, big_max)
        seq += 1
    return pos, seq


@njit(cache=True)
def same_bytes(expected, view, off, ln):
    """``expected[:ln] == view[off:off+ln]`` except the checksum field (bytes 28..32)."""
    j = 0
    while j + 8 <= ln:
        if j != 24 and ld_u64(expected, j) != ld_u64(view, off + j):
            return False
        j += 8
    while j < ln:
        if expected[j] != view[off + j]:
            return False
        j += 1
    return ld_u32(expected, 24) == ld_u32(view, off + 24)


@njit(cache=True)
def check_view(view, expect_seq, big_every, big_max, idx, crc_state, scratch):
    """Validate (CRC on every frame) and compare each frame of ``view`` with frame ``expect_seq``...

    Returns (frames, next expected seq, errors): an error is a frame that
    failed validation, came out of order, or differs by a byte.
    """
    start = 0
    end = view.shape[0]
    frames = 0
    errors = 0
    seq = expect_seq
    while start < end:
        n, consumed, stop, reason = validate_frames(view, start, end, 1, crc_state, idx)
        for i in range(n):
            off = idx.offset[i]
            ln = idx.length[i]
            got_seq = np.int64(idx.sequence[i])
            if idx.status[i] != 0 or got_seq != seq:
                errors += 1
            else:
                # regenerate without the checksum: validate_frames verified the
                # received checksum against the received bytes, and every
                # other byte must equal the regenerated frame
                e = write_frame(scratch, 0, seq, big_every, big_max, False)
                if e != ln or not same_bytes(scratch, view, off, ln):
                    errors += 1
            seq = got_seq + 1
            frames += 1
        if stop != 1:          # END, PARTIAL or CORRUPT: nothing more to walk
            if consumed != end:
                errors += 1
            break
        start = consumed
    return frames, seq, errors


@njit(cache=True)
def first_seq(view):
    return np.int64(ld_u64(view, 8))
