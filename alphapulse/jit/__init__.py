"""Numba kernels over Protocol V2 bytes: the stable API other packages import.

All kernels are ``@njit(cache=True)`` pure functions over preallocated numpy
arrays (``uint8`` buffers, namedtuples of columns); none allocates per frame,
none reads or writes outside the arrays it is given, and they can be called
from Python or from other ``@njit`` code. Offsets and sizes all derive from
:mod:`alphapulse.protocol.layout`.

Validate and index (``alphapulse.jit.frames``)
    ``validate_frames(buf, start, end, crc_every, crc_state, out) -> (n, consumed, stop, reason)``
    fills a :class:`FrameIndex` (``alloc_frame_index(cap)``; ``crc_state`` from
    ``new_crc_state()``); ``stop`` is STOP_END / STOP_FULL / STOP_PARTIAL /
    STOP_CORRUPT, see the module doc for what each asks of the caller.
    ``index_tlvs(buf, frames, frame_start, n_frames, out) -> (n_tlv, next_frame)``
    fills a :class:`TlvIndex` (``alloc_tlv_index(cap)``) for OK frames.
    ``find_magic(buf, start, end) -> offset or -1`` for resynchronising;
    ``find_frame(buf, start, stop, end) -> offset or -1`` the first plausible frame start.
    ``check_header(buf, pos, avail)`` and ``check_tlvs(buf, p, end)`` are the
    per-frame checks, reusable from other kernels.

Checksum (``alphapulse.jit.crc``)
    ``crc32(buf, start, end, crc=0)`` equals ``zlib.crc32``;
    ``frame_crc(buf, frame_offset, payload_size)`` is the frame checksum.

Columns, decode and encode (``columns``, ``decode``, ``encode``)
    ``alloc_columns(layout_or_type_id, n)`` -> ``<Name>Columns`` namedtuple of
    arrays, one per data field of the layout (u128 as uint64 ``[lo, hi]``,
    u256 as 4 limbs, i128 two's complement, addresses ``(n, 20)`` uint8).
    ``decode_tlvs(buf, tlvs, tlv_start, tlv_end, cols, row_frame) -> (rows, next_tlv)``
    and ``decode_frames(buf, frames, frame_start, n_frames, cols, row_frame) -> (rows, next_frame)``
    decode the TLVs of ``cols``' type. ``encode_frames(buf, offset, cols,
    row_start, n, seq_start, ts_ns, source, flags, with_crc) -> (new_offset, n_written)``
    writes one frame per row with the given timestamp; ``encode_frames_now`` (same
    arguments, ``cal`` of a TSC clock instead of ``ts_ns``) stamps each as it is written.
    ``write_header``, ``write_tlv_header``,
    ``seal_frame`` build custom frames; ``frame_size_of(cols)`` sizes buffers.
    Inside kernels, ``load_row``/``store_row`` move one value between bytes and
    a row. Python helpers: ``row_to_record``, ``set_row``, ``limbs_to_int``,
    ``int_to_limbs``.

Numba caches kernels per source file; :mod:`alphapulse.jit.cache_guard` clears
the package's caches when a definition they inline (layout, byte loads, column
loaders) changes. :mod:`alphapulse.jit.specialise` compiles a kernel called with a constant
argument once per argument type, not once per constant value.
"""
from alphapulse.jit import cache_guard as _cache_guard
from alphapulse.jit import specialise as _specialise

_cache_guard.ensure_cache_dir()
_cache_guard.check()
_specialise.install()
from alphapulse.jit.columns import (  # noqa: E402,F401
    COLUMNS, ArbitrageSignalColumns, GasPriceColumns, HeartbeatColumns, PoolBurnColumns,
    PoolMintColumns, PoolStateColumns, PoolSwapColumns, PoolSyncColumns, PoolTickColumns,
    alloc_columns, int_to_limbs, limbs_to_int, load_row, row_to_record, set_row, store_row,
)
from alphapulse.jit.crc import crc32, frame_crc  # noqa: F401
from alphapulse.jit.decode import decode_frames, decode_tlvs  # noqa: F401
from alphapulse.jit.encode import (  # noqa: E402,F401
    encode_frames, encode_frames_now, frame_size_of, seal_frame, write_header, write_tlv_header,
)
from alphapulse.jit.frames import (  # noqa: E402,F401
    STOP_CORRUPT, STOP_END, STOP_FULL, STOP_NAMES, STOP_PARTIAL, FrameIndex, TlvIndex,
    alloc_frame_index, alloc_tlv_index, check_header, check_tlvs, find_frame, find_magic, index_tlvs,
    new_crc_state, validate_frames,
)

__all__ = [
    "validate_frames", "index_tlvs", "find_frame", "find_magic", "check_header", "check_tlvs",
    "FrameIndex", "TlvIndex", "alloc_frame_index", "alloc_tlv_index", "new_crc_state",
    "STOP_END", "STOP_FULL", "STOP_PARTIAL", "STOP_CORRUPT", "STOP_NAMES",
    "crc32", "frame_crc",
    "alloc_columns", "COLUMNS", "decode_tlvs", "decode_frames", "load_row", "store_row",
    "encode_frames", "encode_frames_now", "frame_size_of", "write_header", "write_tlv_header", "seal_frame",
    "row_to_record", "set_row", "limbs_to_int", "int_to_limbs",
    "PoolSwapColumns", "PoolSyncColumns", "PoolStateColumns", "PoolMintColumns",
    "PoolBurnColumns", "PoolTickColumns", "GasPriceColumns", "ArbitrageSignalColumns",
    "HeartbeatColumns",
]
