"""Frame validation and TLV indexing kernels (PROTOCOL.md sections 1 and 2).

``validate_frames`` walks a byte region holding consecutive frames and fills a
:class:`FrameIndex` (one row per complete frame); ``index_tlvs`` lists every TLV
of the frames that validated OK into a :class:`TlvIndex`. Both are pure
``@njit(cache=True)`` functions over preallocated arrays: nothing is allocated
per frame, nothing is read past ``end`` (or past the array).

How ``validate_frames`` stops, and what a caller does about it
--------------------------------------------------------------
It returns ``(n, consumed, stop, reason)``. Rows ``0 .. n-1`` of the index are
complete frames, in order; ``consumed`` is the offset just past the last one
(where the next call starts). ``stop`` says why the walk ended:

``STOP_END``
    ``consumed == end``: the region held whole frames only.
``STOP_FULL``
    The index arrays are full; call again from ``consumed``.
``STOP_PARTIAL``
    ``[consumed, end)`` is the start of a frame that is not complete yet:
    fewer than 32 bytes (``reason = TRUNCATED_HEADER``) or a sane header whose
    payload runs past ``end`` (``reason = TRUNCATED_PAYLOAD``). It is *not* a
    rejected frame and is not in the index. A journal reader reads more bytes
    (at end of file it is a truncated tail). A ring consumer never sees partial
    frames, so there it means corruption.
``STOP_CORRUPT``
    The header at ``consumed`` cannot be trusted (``reason`` is BAD_MAGIC,
    BAD_VERSION, BAD_DOMAIN or PAYLOAD_TOO_LARGE): its length is meaningless,
    so the walk stops there and the frame is not in the index. The caller
    counts it and decides: a journal reader resynchronises on the next magic
    (:func:`find_magic`), a ring consumer reports a corrupt ring.

A frame whose header is sane but whose payload is wrong (TLV_OVERRUN,
BAD_TLV_SIZE) or whose sampled checksum fails (BAD_CHECKSUM) is recorded with
that status and skipped by its length; the walk continues. Checks run in the
order of the Python codec (``parse_frame``): header, TLV structure, checksum,
so both report the same reason for the same bytes.

Checksum sampling (PROTOCOL.md section 1)
-----------------------------------------
``crc_every = N``: verify every N-th frame that carries a checksum (N = 1 all,
N = 0 none). Frames whose checksum field is 0 carry none: they are never
verified and do not advance the cadence. ``crc_state`` is an int64 array of
length >= 2 owned by the caller: ``crc_state[0]`` counts checksum-carrying,
structurally valid frames seen so far (the sampling phase, frame verified when
``crc_state[0] % N == 0`` before the increment), ``crc_state[1]`` counts the
checksums actually verified. Keeping it across calls keeps the cadence across
batches.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from alphapulse.jit.crc import frame_crc
from alphapulse.jit.memory import ld_u32, ld_u64
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject

# Compile-time constants, all derived from layout.py.
HEADER_SIZE = L.HEADER_SIZE
MAX_PAYLOAD = L.MAX_PAYLOAD
MAGIC = L.MAGIC
VERSION = L.VERSION
CHECKSUM_OFFSET = L.CHECKSUM_OFFSET
DOMAIN_MIN = min(int(d) for d in L.Domain)
DOMAIN_MAX = max(int(d) for d in L.Domain)
EXT_MARKER = L.TLV_EXTENDED_MARKER
TLV_STD_HEADER = L.TLV_STD_HEADER
TLV_EXT_HEADER = L.TLV_EXT_HEADER
FIXED_SIZE = L.FIXED_SIZE
MAGIC_BYTES = MAGIC.to_bytes(4, "little")
_MAGIC_U64 = np.uint64(MAGIC)
_MB0, _MB1, _MB2, _MB3 = MAGIC_BYTES
_MAGIC_BYTES = np.frombuffer(MAGIC_BYTES, np.uint8).copy()
# Header field offsets from the header struct (<IBBBBQQII).
OFF_DOMAIN, OFF_VERSION, OFF_SOURCE, OFF_FLAGS = 4, 5, 6, 7
OFF_SEQUENCE, OFF_TIMESTAMP, OFF_PAYLOAD_SIZE = 8, 16, 24
assert OFF_PAYLOAD_SIZE + 4 == CHECKSUM_OFFSET and CHECKSUM_OFFSET + 4 == HEADER_SIZE

OK = int(Reject.OK)
TRUNCATED_HEADER = int(Reject.TRUNCATED_HEADER)
BAD_MAGIC = int(Reject.BAD_MAGIC)
BAD_VERSION = int(Reject.BAD_VERSION)
BAD_DOMAIN = int(Reject.BAD_DOMAIN)
PAYLOAD_TOO_LARGE = int(Reject.PAYLOAD_TOO_LARGE)
TRUNCATED_PAYLOAD = int(Reject.TRUNCATED_PAYLOAD)
TLV_OVERRUN = int(Reject.TLV_OVERRUN)
BAD_TLV_SIZE = int(Reject.BAD_TLV_SIZE)
BAD_CHECKSUM = int(Reject.BAD_CHECKSUM)

STOP_END = 0
STOP_FULL = 1
STOP_PARTIAL = 2
STOP_CORRUPT = 3
STOP_NAMES = {STOP_END: "END", STOP_FULL: "FULL", STOP_PARTIAL: "PARTIAL",
              STOP_CORRUPT: "CORRUPT"}

FrameIndex = namedtuple("FrameIndex", [
    "offset",        # int64: first byte of the frame in buf
    "length",        # int32: header + payload bytes
    "domain",        # uint8: relay_domain
    "source",        # uint8: header source
    "flags",         # uint8: header flags (0x20 replayed)
    "sequence",      # uint64
    "timestamp_ns",  # uint64: ns since the Unix epoch
    "status",        # uint8: Reject code, 0 = OK
])
FrameIndex.__doc__ = "Per-frame columns filled by validate_frames (one row per complete frame)."

TlvIndex = namedtuple("TlvIndex", [
    "frame",         # int64: row in the FrameIndex the TLV belongs to
    "type",          # uint8: TLV type (the inner type for the extended form)
    "value_offset",  # int64: first value byte in buf
    "value_length",  # int32: value bytes
])
TlvIndex.__doc__ = "Per-TLV columns filled by index_tlvs."


def alloc_frame_index(capacity: int) -> FrameIndex:
    """Empty FrameIndex holding up to ``capacity`` frames."""
    return FrameIndex(np.zeros(capacity, np.int64), np.zeros(capacity, np.int32),
                      np.zeros(capacity, np.uint8), np.zeros(capacity, np.uint8),
                      np.zeros(capacity, np.uint8), np.zeros(capacity, np.uint64),
                      np.zeros(capacity, np.uint64), np.zeros(capacity, np.uint8))


def alloc_tlv_index(capacity: int) -> TlvIndex:
    """Empty TlvIndex holding up to ``capacity`` TLVs."""
    return TlvIndex(np.zeros(capacity, np.int64), np.zeros(capacity, np.uint8),
                    np.zeros(capacity, np.int64), np.zeros(capacity, np.int32))


def new_crc_state() -> np.ndarray:
    """Checksum sampling state for validate_frames: [phase counter, verified count]."""
    return np.zeros(2, np.int64)


@njit(cache=True, inline="always")
def tlv_header(buf, p, end):
    """The TLV whose header starts at ``buf[p]``, in a payload that ends at ``end``.

    Resolves the standard (type, length u8) and the extended (marker, reserved, type,
    length u16) form. Returns ``(type, length, value_pos, reason)``: ``reason`` is OK, or
    TLV_OVERRUN when the header or the value runs past ``end`` (then only ``type`` is
    meaningful, and only when the header itself fits).
    """
    t = np.int64(buf[p])
    if t == EXT_MARKER:
        if end - p < TLV_EXT_HEADER:
            return t, np.int64(0), p, TLV_OVERRUN
        t = np.int64(buf[p + 2])
        length = np.int64(buf[p + 3]) | (np.int64(buf[p + 4]) << 8)
        v = p + TLV_EXT_HEADER
    else:
        if end - p < TLV_STD_HEADER:
            return t, np.int64(0), p, TLV_OVERRUN
        length = np.int64(buf[p + 1])
        v = p + TLV_STD_HEADER
    if length > end - v:
        return t, length, v, TLV_OVERRUN
    return t, length, v, OK


@njit(cache=True, inline="always")
def check_tlvs(buf, p, end):
    """Reject code of the TLV sequence ``buf[p:end]`` (must fill it exactly)."""
    while p < end:
        t, length, v, reason = tlv_header(buf, p, end)
        if reason != OK:
            return reason
        fixed = FIXED_SIZE[t]
        if fixed != 0 and length != fixed:
            return BAD_TLV_SIZE
        p = v + length
    return OK


@njit(cache=True, inline="always")
def check_header(buf, pos, avail):
    """(reason, payload_size) of the header at ``pos`` with ``avail`` bytes left.

    ``reason`` is OK, TRUNCATED_HEADER, BAD_MAGIC, BAD_VERSION, BAD_DOMAIN,
    PAYLOAD_TOO_LARGE or TRUNCATED_PAYLOAD, in the codec's order.
    """
    if avail < HEADER_SIZE:
        return TRUNCATED_HEADER, 0
    if ld_u32(buf, pos) != _MAGIC_U64:
        return BAD_MAGIC, 0
    if buf[pos + OFF_VERSION] != VERSION:
        return BAD_VERSION, 0
    d = buf[pos + OFF_DOMAIN]
    if d < DOMAIN_MIN or d > DOMAIN_MAX:
        return BAD_DOMAIN, 0
    psize = np.int64(ld_u32(buf, pos + OFF_PAYLOAD_SIZE))
    if psize > MAX_PAYLOAD:
        return PAYLOAD_TOO_LARGE, psize
    if psize > avail - HEADER_SIZE:
        return TRUNCATED_PAYLOAD, psize
    return OK, psize


@njit(cache=True)
def find_frame(buf, start, stop, end):
    """Offset of the first plausible frame start in ``buf[start:stop]``, or -1.

    Plausible: a header that passes :func:`check_header` with ``buf[:end]`` available and whose
    TLVs fill its payload, or the start of one cut by ``end`` (a magic, or the first bytes of
    one, too close to ``end`` to judge). Each offset costs O(1) header checks plus the TLV walk
    of a sane header, so a scan is linear in the bytes for any garbage (a run of magic bytes
    fails the version check at once).
    """
    if end > buf.shape[0]:
        end = buf.shape[0]
    if stop > end:
        stop = end
    q = max(start, 0)
    while q < stop:
        avail = end - q
        if avail < 4:
            ok = True
            for k in range(avail):
                if buf[q + k] != _MAGIC_BYTES[k]:
                    ok = False
                    break
            if ok:
                return q
        else:
            reason, psize = check_header(buf, q, avail)
            if reason == TRUNCATED_HEADER or reason == TRUNCATED_PAYLOAD:
                if ld_u32(buf, q) == _MAGIC_U64:
                    return q
            elif reason == OK and check_tlvs(buf, q + HEADER_SIZE, q + HEADER_SIZE + psize) == OK:
                return q
        q += 1
    return -1


@njit(cache=True)
def validate_frames(buf, start, end, crc_every, crc_state, out, resync=False):
    """Validate consecutive frames in ``buf[start:end]`` into ``out`` (a FrameIndex).

    ``buf``: uint8 array; ``end`` is clamped to its length. ``crc_every``: verify
    every N-th checksum-carrying frame (1 all, 0 none); ``crc_state``: int64[2]
    sampling state kept by the caller across calls (see module doc).
    Returns ``(n, consumed, stop, reason)``: ``n`` rows written to ``out``
    (statuses OK or TLV_OVERRUN / BAD_TLV_SIZE / BAD_CHECKSUM), ``consumed`` the
    offset after the last complete frame, ``stop`` one of STOP_END, STOP_FULL,
    STOP_PARTIAL, STOP_CORRUPT and ``reason`` the Reject code of the partial or
    corrupt header at ``consumed`` (OK for END/FULL).

    ``resync`` (readers of recordings): a frame whose payload is rejected ends at the first
    plausible frame start inside its declared span (:func:`find_frame`), if any, instead of at
    its declared length: a corrupt ``payload_size`` then swallows no valid frame behind it.
    Its row's ``length`` is the bytes it was given.
    """
    cap = out.offset.shape[0]
    if end > buf.shape[0]:
        end = buf.shape[0]
    pos = max(start, 0)
    n = 0
    while True:
        avail = end - pos
        if avail <= 0:
            return n, pos, STOP_END, OK
        if n >= cap:
            return n, pos, STOP_FULL, OK
        reason, psize = check_header(buf, pos, avail)
        if reason != OK:
            if reason == TRUNCATED_HEADER or reason == TRUNCATED_PAYLOAD:
                return n, pos, STOP_PARTIAL, reason
            return n, pos, STOP_CORRUPT, reason
        pend = pos + HEADER_SIZE + psize
        status = check_tlvs(buf, pos + HEADER_SIZE, pend)
        if status == OK and crc_every > 0:
            ck = ld_u32(buf, pos + CHECKSUM_OFFSET)
            if ck != np.uint64(0):
                if crc_state[0] % crc_every == 0:
                    crc_state[1] += 1
                    if frame_crc(buf, pos, psize) != ck:
                        status = BAD_CHECKSUM
                crc_state[0] += 1
        out.offset[n] = pos
        out.length[n] = HEADER_SIZE + psize
        out.domain[n] = buf[pos + OFF_DOMAIN]
        out.source[n] = buf[pos + OFF_SOURCE]
        out.flags[n] = buf[pos + OFF_FLAGS]
        out.sequence[n] = ld_u64(buf, pos + OFF_SEQUENCE)
        out.timestamp_ns[n] = ld_u64(buf, pos + OFF_TIMESTAMP)
        out.status[n] = status
        n += 1
        if resync and status != OK:
            q = find_frame(buf, pos + 1, pend, end)
            if q >= 0:
                out.length[n - 1] = q - pos
                pend = q
        pos = pend


@njit(cache=True)
def index_tlvs(buf, frames, frame_start, n_frames, out):
    """List the TLVs of frames ``frame_start .. n_frames-1`` whose status is OK.

    ``frames`` is a FrameIndex filled by validate_frames over the same ``buf``;
    ``out`` a TlvIndex. Unknown types are listed too (callers skip them by type);
    the extended form is resolved to its inner type. A frame's TLVs go in
    whole or not at all. Returns ``(n_tlv, next_frame)``: rows written and the
    first frame not indexed (``n_frames`` when done; less when ``out`` is full).
    Frames with a non-OK status are skipped. Defensive bounds keep garbage
    indexes from reading outside ``buf``.
    """
    cap = out.frame.shape[0]
    n_buf = buf.shape[0]
    n_frames = min(n_frames, frames.offset.shape[0])
    k = 0
    f = max(frame_start, 0)
    while f < n_frames:
        if frames.status[f] != OK:
            f += 1
            continue
        pos = frames.offset[f]
        flen = np.int64(frames.length[f])
        if pos < 0 or flen < HEADER_SIZE or pos + flen > n_buf:
            f += 1
            continue
        p = pos + HEADER_SIZE
        pend = pos + flen
        k0 = k
        full = False
        while p < pend:
            t, length, v, reason = tlv_header(buf, p, pend)
            if reason != OK:
                break
            if k >= cap:
                full = True
                break
            out.frame[k] = f
            out.type[k] = t
            out.value_offset[k] = v
            out.value_length[k] = length
            k += 1
            p = v + length
        if full:
            return k0, f
        f += 1
    return k, f


@njit(cache=True)
def find_magic(buf, start, end):
    """Offset of the first magic (``EF BE AD DE``) in ``buf[start:end]``, or -1.

    Used to resynchronise after a corrupt header; a magic found here is only a
    candidate frame start: validate it.
    """
    if end > buf.shape[0]:
        end = buf.shape[0]
    p = max(start, 0)
    last = end - 4
    while p <= last:
        if (buf[p] == _MB0 and buf[p + 1] == _MB1 and buf[p + 2] == _MB2
                and buf[p + 3] == _MB3):
            return p
        p += 1
    return -1
