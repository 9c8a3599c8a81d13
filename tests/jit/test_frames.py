"""validate_frames / index_tlvs / find_magic against the Python codec and PROTOCOL.md."""
from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse import jit as J
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject

SYNC = C.PoolSync(reserve0=10**18, reserve1=3 * 10**6, block_number=19_000_000,
                  block_ts_ns=1_700_000_000_000_000_000, log_index=7, venue=300,
                  token0_decimals=18, token1_decimals=6, flags=L.EVENT_TOKEN0_IN,
                  pool=b"\x11" * 20, token0=b"\x22" * 20, token1=b"\x33" * 20)
HB = C.Heartbeat(timestamp_ns=123, frames_published=456)


def frame(seq: int = 1, records=(SYNC,), checksum: bool = True, domain: int = 1, **kw) -> bytes:
    return C.build_frame(domain, L.Source.POLYGON_COLLECTOR, seq, list(records),
                         timestamp_ns=1_700_000_000_000_000_000 + seq, checksum=checksum, **kw)


def arr(b: bytes) -> np.ndarray:
    return np.frombuffer(bytearray(b), dtype=np.uint8)


def validate(b, start=0, end=None, crc_every=1, cap=64, state=None):
    buf = b if isinstance(b, np.ndarray) else arr(b)
    idx = J.alloc_frame_index(cap)
    state = J.new_crc_state() if state is None else state
    n, consumed, stop, reason = J.validate_frames(buf, start, len(buf) if end is None else end,
                                                  crc_every, state, idx)
    return n, consumed, stop, reason, idx


def reference_walk(b: bytes):
    """What validate_frames must report, computed with the pure-Python codec
    (checksums verified on every frame)."""
    rows, pos = [], 0
    while pos < len(b):
        try:
            h = C.parse_header(b, pos)
        except C.FrameError as e:
            kind = (J.STOP_PARTIAL if e.reason in (Reject.TRUNCATED_HEADER,
                                                   Reject.TRUNCATED_PAYLOAD) else J.STOP_CORRUPT)
            return rows, pos, kind, int(e.reason)
        size = L.HEADER_SIZE + h.payload_size
        try:
            C.parse_frame(b, pos)
            status = Reject.OK
        except C.FrameError as e:
            status = e.reason
        rows.append((pos, size, h.relay_domain, h.source, h.flags, h.sequence,
                     h.timestamp_ns, int(status)))
        pos += size
    return rows, pos, J.STOP_END, 0


def kernel_walk(b: bytes, crc_every: int = 1):
    n, consumed, stop, reason, idx = validate(b, crc_every=crc_every, cap=len(b) // 32 + 1)
    rows = [(int(idx.offset[i]), int(idx.length[i]), int(idx.domain[i]), int(idx.source[i]),
             int(idx.flags[i]), int(idx.sequence[i]), int(idx.timestamp_ns[i]),
             int(idx.status[i])) for i in range(n)]
    return rows, consumed, stop, reason


def assert_matches_codec(b: bytes) -> None:
    assert kernel_walk(b) == reference_walk(b)


# ------------------------------------------------------------------ valid streams
def test_valid_stream_fills_index_with_header_fields():
    b = b"".join(frame(s, flags=L.FLAG_REPLAYED if s == 2 else 0) for s in (1, 2, 3))
    n, consumed, stop, reason, idx = validate(b)
    assert (n, consumed, stop, reason) == (3, len(b), J.STOP_END, 0)
    size = len(frame())
    assert list(idx.offset[:3]) == [0, size, 2 * size]
    assert list(idx.length[:3]) == [size] * 3
    assert list(idx.sequence[:3]) == [1, 2, 3]
    assert list(idx.flags[:3]) == [0, L.FLAG_REPLAYED, 0]
    assert list(idx.status[:3]) == [0, 0, 0]
    assert idx.timestamp_ns[1] == 1_700_000_000_000_000_002
    assert_matches_codec(b)


def test_start_offset_and_empty_region():
    b = b"\0" * 5 + frame(1)
    assert validate(b, start=5)[:4] == (1, len(b), J.STOP_END, 0)
    assert validate(b, start=5, end=5)[:4] == (0, 5, J.STOP_END, 0)
    assert validate(b"")[:4] == (0, 0, J.STOP_END, 0)


def test_full_index_stops_and_resumes_from_consumed():
    b = b"".join(frame(s) for s in range(1, 6))
    buf = arr(b)
    state = J.new_crc_state()
    idx = J.alloc_frame_index(2)
    n, consumed, stop, _ = J.validate_frames(buf, 0, len(buf), 1, state, idx)
    assert (n, stop) == (2, J.STOP_FULL) and consumed == 2 * len(frame())
    seqs = list(idx.sequence[:2])
    while stop == J.STOP_FULL:
        n, consumed, stop, _ = J.validate_frames(buf, consumed, len(buf), 1, state, idx)
        seqs += list(idx.sequence[:n])
    assert seqs == [1, 2, 3, 4, 5] and consumed == len(b)


# ------------------------------------------------------------------ truncation
def test_every_truncation_of_a_valid_buffer():
    frames = [frame(1), frame(2, records=(SYNC, HB)), frame(3, checksum=False)]
    b = b"".join(frames)
    bounds = np.cumsum([0] + [len(f) for f in frames])
    full = arr(b)
    for cut in range(len(b) + 1):
        complete = int(np.searchsorted(bounds, cut, side="right")) - 1
        expect_consumed = int(bounds[complete])
        rest = cut - expect_consumed
        if rest == 0:
            expect = (complete, expect_consumed, J.STOP_END, 0)
        elif rest < L.HEADER_SIZE:
            expect = (complete, expect_consumed, J.STOP_PARTIAL, Reject.TRUNCATED_HEADER)
        else:
            expect = (complete, expect_consumed, J.STOP_PARTIAL, Reject.TRUNCATED_PAYLOAD)
        # region ends at `cut` inside a longer valid buffer: nothing past end is used
        assert validate(full, end=cut)[:4] == expect, cut
        # the array itself ends at `cut`
        assert validate(b[:cut])[:4] == expect, cut
        assert_matches_codec(b[:cut])


def test_end_beyond_array_is_clamped():
    b = frame(1)
    assert validate(b, end=len(b) + 1000)[:4] == (1, len(b), J.STOP_END, 0)


# ------------------------------------------------------------------ header rejects
def _patched(b: bytes, off: int, fmt: str, value: int) -> bytes:
    m = bytearray(b)
    struct.pack_into(fmt, m, off, value)
    return bytes(m)


@pytest.mark.parametrize("off,fmt,value,reason", [
    (0, "<I", 0xDEADBEEE, Reject.BAD_MAGIC),
    (0, "<I", 0xEFBEADDE, Reject.BAD_MAGIC),   # big-endian magic
    (5, "<B", 2, Reject.BAD_VERSION),
    (5, "<B", 0, Reject.BAD_VERSION),
    (4, "<B", 0, Reject.BAD_DOMAIN),
    (4, "<B", 5, Reject.BAD_DOMAIN),
    (24, "<I", L.MAX_PAYLOAD + 1, Reject.PAYLOAD_TOO_LARGE),
    (24, "<I", 0xFFFFFFFF, Reject.PAYLOAD_TOO_LARGE),
])
def test_corrupt_header_stops_at_its_offset(off, fmt, value, reason):
    good = frame(1)
    bad = _patched(frame(2), off, fmt, value)
    b = good + bad + frame(3)
    n, consumed, stop, r, idx = validate(b)
    assert (n, consumed, stop, r) == (1, len(good), J.STOP_CORRUPT, reason)
    assert idx.sequence[0] == 1
    assert_matches_codec(b)
    # resynchronise on the next magic, as a journal reader does
    nxt = J.find_magic(arr(b), consumed + 1, len(b))
    assert nxt == len(good) + len(bad)
    assert validate(b, start=nxt)[:4] == (1, len(b), J.STOP_END, 0)


def test_payload_size_past_end_is_partial_not_corrupt():
    b = _patched(frame(1), 24, "<I", len(frame(1)))   # claims more than follows
    n, consumed, stop, r, _ = validate(b)
    assert (n, consumed, stop, r) == (0, 0, J.STOP_PARTIAL, Reject.TRUNCATED_PAYLOAD)
    assert_matches_codec(b)


# ------------------------------------------------------------------ payload rejects
def raw_frame(payload: bytes, seq: int = 9, checksum: bool = True) -> bytes:
    """A frame around arbitrary payload bytes (the codec's builder refuses bad TLVs)."""
    h = bytearray(struct.pack(L.HEADER_STRUCT, L.MAGIC, 1, L.VERSION, 4, 0, seq, 5,
                              len(payload), 0)) + payload
    if checksum:
        struct.pack_into("<I", h, L.CHECKSUM_OFFSET, C.frame_checksum(h))
    return bytes(h)


SYNC_VALUE = C.encode_value(SYNC)


@pytest.mark.parametrize("payload,reason", [
    (bytes([16]), Reject.TLV_OVERRUN),                              # std header cut
    (bytes([16, 120]) + SYNC_VALUE[:119], Reject.TLV_OVERRUN),      # value runs past
    (bytes([0xFF, 0, 200, 0x2C]), Reject.TLV_OVERRUN),              # ext header cut
    (bytes([0xFF, 0, 200, 0x2C, 0x01]) + bytes(299), Reject.TLV_OVERRUN),
    (bytes([16, 119]) + SYNC_VALUE[:119], Reject.BAD_TLV_SIZE),     # wrong fixed size
    (bytes([16, 121]) + SYNC_VALUE + b"\0", Reject.BAD_TLV_SIZE),
    (bytes([0xFF, 0, 16, 121, 0]) + SYNC_VALUE + b"\0", Reject.BAD_TLV_SIZE),
    (bytes([100, 16]) + bytes(16) + bytes([16, 120]) + SYNC_VALUE + b"\x07",
     Reject.TLV_OVERRUN),                                           # trailing byte
])
def test_payload_rejects_are_recorded_and_skipped_by_length(payload, reason):
    bad = raw_frame(payload)
    b = frame(1) + bad + frame(3)
    n, consumed, stop, r, idx = validate(b)
    assert (n, consumed, stop, r) == (3, len(b), J.STOP_END, 0)
    assert list(idx.status[:3]) == [0, reason, 0]
    assert list(idx.sequence[:3]) == [1, 9, 3]
    assert_matches_codec(b)
    with pytest.raises(C.FrameError) as e:
        C.parse_frame(bad)
    assert e.value.reason == reason


@pytest.mark.parametrize("payload", [
    b"",                                                            # empty payload
    bytes([0xFF, 0, 200, 0x2C, 0x01]) + bytes(300),                 # extended vendor TLV
    bytes([0xFF, 0, 16, 120, 0]) + SYNC_VALUE,                      # known type, ext form
    bytes([201, 0]) + bytes([202, 3]) + b"abc" + bytes([16, 120]) + SYNC_VALUE,
])
def test_valid_payload_forms(payload):
    b = raw_frame(payload)
    n, consumed, stop, r, idx = validate(b)
    assert (n, stop, idx.status[0]) == (1, J.STOP_END, 0)
    assert_matches_codec(b)


# ------------------------------------------------------------------ checksums
def test_every_single_bit_flip_is_caught_when_crc_verified():
    b = frame(1, records=(SYNC, HB))
    for bit in range(len(b) * 8):
        m = bytearray(b)
        m[bit // 8] ^= 1 << (bit % 8)
        m = bytes(m)
        rows, consumed, stop, reason = kernel_walk(m)
        accepted = [row for row in rows if row[-1] == 0]
        assert not accepted, f"bit {bit} flipped, frame accepted"
        assert (rows, consumed, stop, reason) == reference_walk(m), bit


def test_bad_checksum_is_rejected_and_unchecked_without_sampling():
    m = bytearray(frame(1))
    m[-1] ^= 0x40
    n, _, stop, _, idx = validate(bytes(m), crc_every=1)
    assert (n, stop, idx.status[0]) == (1, J.STOP_END, Reject.BAD_CHECKSUM)
    assert validate(bytes(m), crc_every=0)[4].status[0] == Reject.OK


def test_zero_checksum_is_never_verified_and_does_not_advance_cadence():
    m = bytearray(frame(1, checksum=False))
    m[-1] ^= 0x40
    state = J.new_crc_state()
    n, _, _, _, idx = validate(bytes(m), crc_every=1, state=state)
    assert idx.status[0] == Reject.OK
    assert list(state) == [0, 0]


def test_sampling_cadence_carries_across_calls():
    frames = [bytearray(frame(s)) for s in range(1, 11)]
    for f in frames:                      # every checksum wrong: a verified frame rejects
        f[L.CHECKSUM_OFFSET] ^= 0x01
    b = b"".join(bytes(f) for f in frames)
    buf = arr(b)
    state = J.new_crc_state()
    idx = J.alloc_frame_index(16)
    statuses = []
    cut = len(frames[0]) * 4
    for start, end in ((0, cut), (cut, len(b))):
        n, consumed, stop, _ = J.validate_frames(buf, start, end, 3, state, idx)
        assert stop == J.STOP_END and consumed == end
        statuses += [int(s) for s in idx.status[:n]]
    bad = int(Reject.BAD_CHECKSUM)
    assert statuses == [bad if i % 3 == 0 else 0 for i in range(10)]
    assert list(state) == [10, 4]


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=0, max_size=400), st.integers(0, 3))
def test_random_bytes_never_crash_and_match_codec(data, mode):
    if mode == 1 and len(data) >= 32:    # plausible header over random payload
        data = raw_frame(data[32:])[:32] + data[32:]
    elif mode == 2:
        data = frame(1) + data
    elif mode == 3 and len(data) >= 2:   # random TLV bytes in a well-formed frame
        data = raw_frame(data)
    assert kernel_walk(data) == reference_walk(data)


# ------------------------------------------------------------------ TLV index
def test_index_tlvs_lists_every_tlv_of_ok_frames():
    f1 = raw_frame(bytes([201, 0]) + bytes([0xFF, 0, 202, 0x2C, 0x01]) + bytes(300)
                   + bytes([16, 120]) + SYNC_VALUE, seq=1)
    bad = raw_frame(bytes([16, 119]) + SYNC_VALUE[:119], seq=2)
    f3 = frame(3, records=(HB, SYNC))
    b = f1 + bad + f3
    buf = arr(b)
    n, *_ , fidx = validate(b)
    assert n == 3
    tidx = J.alloc_tlv_index(16)
    k, nxt = J.index_tlvs(buf, fidx, 0, n, tidx)
    assert (k, nxt) == (5, 3)
    got = [(int(tidx.frame[i]), int(tidx.type[i]), int(tidx.value_offset[i]),
            int(tidx.value_length[i])) for i in range(k)]
    h = L.HEADER_SIZE
    f3_at = len(f1) + len(bad)
    assert got == [
        (0, 201, h + 2, 0),
        (0, 202, h + 2 + 5, 300),
        (0, 16, h + 2 + 5 + 300 + 2, 120),
        (2, 100, f3_at + h + 2, 16),
        (2, 16, f3_at + h + 2 + 16 + 2, 120),
    ]
    assert bytes(buf[got[2][2]:got[2][2] + 120]) == SYNC_VALUE


def test_index_tlvs_full_output_keeps_frames_whole():
    b = frame(1, records=(HB, SYNC)) + frame(2, records=(HB, SYNC))
    buf = arr(b)
    n, *_, fidx = validate(b)
    tidx = J.alloc_tlv_index(3)
    assert J.index_tlvs(buf, fidx, 0, n, tidx) == (2, 1)
    assert J.index_tlvs(buf, fidx, 1, n, tidx) == (2, 2)
    assert list(tidx.frame[:2]) == [1, 1]


def test_index_tlvs_ignores_garbage_index_rows():
    buf = arr(frame(1))
    fidx = J.alloc_frame_index(3)
    fidx.offset[:] = [-5, len(buf) - 10, 10**9]
    fidx.length[:] = [100, 100, 154]
    assert J.index_tlvs(buf, fidx, 0, 3, J.alloc_tlv_index(4)) == (0, 3)


def test_find_magic():
    b = arr(b"\xef\xbe\xad" + b"x" + L.MAGIC.to_bytes(4, "little") + b"yy")
    assert J.find_magic(b, 0, len(b)) == 4
    assert J.find_magic(b, 5, len(b)) == -1
    assert J.find_magic(b, 0, 7) == -1          # a magic cut by `end` is not a match
    assert J.find_magic(b, -3, 10**6) == 4


def test_index_tlvs_clamps_row_ranges_to_the_index():
    b = frame(1) + frame(2)
    buf = arr(b)
    n, *_, fidx = validate(b, cap=2)
    tidx = J.alloc_tlv_index(8)
    assert J.index_tlvs(buf, fidx, -5, 10**6, tidx) == (2, 2)
    assert list(tidx.frame[:2]) == [0, 1]
