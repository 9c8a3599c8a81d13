"""Encoders: frames written into a preallocated buffer, zero allocation per frame.

Each frame written by :func:`encode_frames` / :func:`encode_frames_now` holds one TLV
(the row of ``cols``) after a 32-byte header; the TLV type and relay domain come from
``cols``' class (its layout).

Timestamps: :func:`encode_frames_now` stamps each frame with the time it is written,
read from the process's TSC clock (``alphapulse.jit.clock.fast_ns`` with a
:class:`~alphapulse.jit.clock.TscClock`'s ``cal``: one ``rdtsc``, a multiply and a
shift, no call). :func:`encode_frames` writes a timestamp given by the caller (a
recorded or fixed one: golden frames, recordings). ``perf/bench_codec.py`` measures
what the per-frame read costs the encoder (``encode_stamp_ns_per_frame`` against
``encode_ns_per_frame``).

Lower-level pieces for frames with several TLVs or custom payloads:
:func:`write_header`, :func:`write_tlv_header` and :func:`seal_frame`.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.clock import fast_ns
from alphapulse.jit.columns import domain_of, rows_of, store_row, tlv_type_of, value_size_of
from alphapulse.jit.crc import TABLE, frame_crc_with
from alphapulse.jit.frames import (
    CHECKSUM_OFFSET, EXT_MARKER, HEADER_SIZE, MAGIC, MAX_PAYLOAD, OFF_DOMAIN, OFF_FLAGS,
    OFF_PAYLOAD_SIZE, OFF_SEQUENCE, OFF_SOURCE, OFF_TIMESTAMP, OFF_VERSION, TLV_EXT_HEADER,
    TLV_STD_HEADER, VERSION,
)
from alphapulse.jit.memory import ld_u32, st_u16, st_u32, st_u64
from alphapulse.protocol.layout import TLV_STD_MAX


@njit(cache=True, inline="always")
def write_header(buf, pos, domain, source, flags, sequence, timestamp_ns, payload_size):
    """Write a 32-byte header at ``pos`` with checksum 0 (see :func:`seal_frame`).

    Caller guarantees ``pos + 32 <= len(buf)`` and ``payload_size <= 65,504``.
    """
    st_u32(buf, pos, MAGIC)
    buf[pos + OFF_DOMAIN] = np.uint8(domain)
    buf[pos + OFF_VERSION] = np.uint8(VERSION)
    buf[pos + OFF_SOURCE] = np.uint8(source)
    buf[pos + OFF_FLAGS] = np.uint8(flags)
    st_u64(buf, pos + OFF_SEQUENCE, sequence)
    st_u64(buf, pos + OFF_TIMESTAMP, timestamp_ns)
    st_u32(buf, pos + OFF_PAYLOAD_SIZE, payload_size)
    st_u32(buf, pos + CHECKSUM_OFFSET, 0)


@njit(cache=True, inline="always")
def tlv_header_size(value_length):
    """2 for the standard form (value <= 255 bytes), 5 for the extended form."""
    return TLV_STD_HEADER if value_length <= TLV_STD_MAX else TLV_EXT_HEADER


@njit(cache=True, inline="always")
def write_tlv_header(buf, p, tlv_type, value_length):
    """Write a TLV header at ``p``; returns the value's offset. Extended form above 255."""
    if value_length <= TLV_STD_MAX:
        buf[p] = np.uint8(tlv_type)
        buf[p + 1] = np.uint8(value_length)
        return p + TLV_STD_HEADER
    buf[p] = np.uint8(EXT_MARKER)
    buf[p + 1] = np.uint8(0)
    buf[p + 2] = np.uint8(tlv_type)
    st_u16(buf, p + 3, value_length)
    return p + TLV_EXT_HEADER


@njit(cache=True, inline="always")
def seal_frame(buf, pos, with_crc):
    """Store the checksum of the frame at ``pos`` (0 when ``with_crc`` is False)."""
    seal_frame_with(buf, pos, with_crc, TABLE)


@njit(cache=True, inline="always")
def seal_frame_with(buf, pos, with_crc, crc_t):
    """:func:`seal_frame` with the CRC tables ``crc_t`` (a copy of ``alphapulse.jit.crc.TABLE``) given."""
    psize = np.int64(ld_u32(buf, pos + OFF_PAYLOAD_SIZE))
    c = frame_crc_with(buf, pos, psize, crc_t) if with_crc else np.uint32(0)
    st_u32(buf, pos + CHECKSUM_OFFSET, c)


@njit(cache=True, inline="always")
def _encode_rows(buf, offset, cols, row_start, n, seq_start, ts_ns, now, cal, source, flags, with_crc):
    """encode_frames' body: each frame stamped ``ts_ns``, or ``fast_ns(cal)`` as it is written
    when ``now``."""
    t = tlv_type_of(cols)
    size = value_size_of(cols)
    dom = domain_of(cols)
    th = tlv_header_size(size)
    psize = th + size
    flen = HEADER_SIZE + psize
    n_buf = buf.shape[0]
    avail_rows = rows_of(cols) - row_start
    if row_start < 0 or avail_rows < 0:
        return offset, 0
    if n > avail_rows:
        n = avail_rows
    if offset < 0 or psize > MAX_PAYLOAD:
        return offset, 0
    pos = offset
    for i in range(n):
        if pos + flen > n_buf:
            return pos, i
        ts = fast_ns(cal) if now else ts_ns
        write_header(buf, pos, dom, source, flags, seq_start + i, ts, psize)
        vp = write_tlv_header(buf, pos + HEADER_SIZE, t, size)
        store_row(buf, vp, cols, row_start + i)
        if with_crc:
            seal_frame(buf, pos, True)
        pos += flen
    return pos, n


_NO_CAL = np.zeros(1, np.int64)


@njit(cache=True)
def encode_frames(buf, offset, cols, row_start, n, seq_start, ts_ns, source, flags, with_crc):
    """Write rows ``row_start .. row_start+n-1`` of ``cols`` as frames at ``buf[offset:]``.

    One frame per row: header (domain from the layout, ``source``, ``flags``,
    sequence ``seq_start + i``, timestamp ``ts_ns`` as given: for frames whose time is
    known, e.g. recorded; see :func:`encode_frames_now`), one TLV, checksum when
    ``with_crc``. Pad bytes are written as zeros. Stops before a frame that would
    not fit in ``buf`` or past the columns' rows. Returns ``(new_offset, n_written)``.
    """
    return _encode_rows(buf, offset, cols, row_start, n, seq_start, ts_ns, False, _NO_CAL, source, flags,
                        with_crc)


@njit(cache=True)
def encode_frames_now(buf, offset, cols, row_start, n, seq_start, cal, source, flags, with_crc):
    """:func:`encode_frames` with each frame's timestamp read as it is written: ``fast_ns(cal)``
    (``cal`` of a :class:`alphapulse.jit.clock.TscClock`, e.g. ``process_clock().cal``)."""
    return _encode_rows(buf, offset, cols, row_start, n, seq_start, np.int64(0), True, cal, source, flags,
                        with_crc)


@njit(cache=True)
def frame_size_of(cols):
    """Bytes one frame written by encode_frames takes for this columns type."""
    size = value_size_of(cols)
    return HEADER_SIZE + tlv_header_size(size) + size
