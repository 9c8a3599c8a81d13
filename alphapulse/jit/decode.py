"""Decoders: TLV values of validated frames into preallocated columns.

``cols`` is a ``<Name>Columns`` namedtuple from
:func:`alphapulse.jit.columns.alloc_columns`; its class decides which TLV type
is decoded (PoolSwap, PoolSync, PoolState, PoolMint, PoolBurn, PoolTick,
GasPrice, ArbitrageSignal, or any other declared layout). Units are the wire's:
token amounts and reserves in native token units, fees in pips, timestamps in
ns, u128/u256 as uint64 limbs (see :mod:`alphapulse.jit.columns`).

``row_frame`` (int64, one entry per row) receives the FrameIndex row each
decoded value came from, so a caller can join with the header (sequence,
timestamp, source). Rows always start at 0; a full ``cols`` stops the kernel
and the returned position says where to resume.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.columns import load_row, rows_of, tlv_type_of, value_size_of
from alphapulse.jit.frames import HEADER_SIZE, OK, tlv_header


@njit(cache=True)
def decode_tlvs(buf, tlvs, tlv_start, tlv_end, cols, row_frame):
    """Decode every TLV of ``cols``' type among ``tlvs`` rows ``tlv_start .. tlv_end-1``.

    ``tlvs`` is a TlvIndex built by ``index_tlvs`` over the same ``buf``. Rows
    of another type are skipped; a row whose length differs from the layout or
    that points outside ``buf`` (impossible after validation) is skipped too.
    Returns ``(n_rows, next_tlv)``: ``next_tlv == tlv_end`` unless ``cols`` or
    ``row_frame`` filled up first.
    """
    t = tlv_type_of(cols)
    size = value_size_of(cols)
    cap = min(rows_of(cols), row_frame.shape[0])
    n_buf = buf.shape[0]
    r = 0
    tlv_end = min(tlv_end, tlvs.type.shape[0])
    for i in range(max(tlv_start, 0), tlv_end):
        if tlvs.type[i] != t:
            continue
        p = tlvs.value_offset[i]
        if tlvs.value_length[i] != size or p < 0 or p + size > n_buf:
            continue
        if r >= cap:
            return r, i
        load_row(buf, p, cols, r)
        row_frame[r] = tlvs.frame[i]
        r += 1
    return r, tlv_end


@njit(cache=True)
def decode_frames(buf, frames, frame_start, n_frames, cols, row_frame):
    """Decode the TLVs of ``cols``' type straight from frames (no TlvIndex needed).

    Walks the payload of every OK frame among ``frames`` rows
    ``frame_start .. n_frames-1`` (a FrameIndex from ``validate_frames`` over the
    same ``buf``) and decodes each TLV of the columns' type. A frame's rows go
    in whole or not at all. Returns ``(n_rows, next_frame)``.
    """
    t = tlv_type_of(cols)
    size = value_size_of(cols)
    cap = min(rows_of(cols), row_frame.shape[0])
    n_buf = buf.shape[0]
    r = 0
    n_frames = min(n_frames, frames.offset.shape[0])
    for f in range(max(frame_start, 0), n_frames):
        if frames.status[f] != OK:
            continue
        pos = frames.offset[f]
        pend = pos + np.int64(frames.length[f])
        if pos < 0 or pend > n_buf or pend - pos < HEADER_SIZE:
            continue
        p = pos + HEADER_SIZE
        r0 = r
        while p < pend:
            tt, length, v, reason = tlv_header(buf, p, pend)
            if reason != OK:
                break
            if tt == t and length == size:
                if r >= cap:
                    return r0, f
                load_row(buf, v, cols, r)
                row_frame[r] = f
                r += 1
            p = v + length
    return r, n_frames
