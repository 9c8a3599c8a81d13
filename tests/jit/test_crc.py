"""crc32 equals zlib.crc32; frame_crc equals the codec's frame checksum."""
from __future__ import annotations

import zlib

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse.jit import crc32, frame_crc
from alphapulse.jit.crc import POLYNOMIAL, TABLES
from alphapulse.protocol import codec as C


def test_table_is_the_ieee_table():
    # zlib's byte-at-a-time table entry b equals crc of the single byte b, pre/post inverted
    for b in (0, 1, 0x80, 0xFF):
        assert int(TABLES[0, b]) == zlib.crc32(bytes([b]), 0xFFFFFFFF) ^ 0xFFFFFFFF
    assert int(TABLES[0, 128]) == POLYNOMIAL


def test_known_check_value():
    assert crc32(np.frombuffer(b"123456789", np.uint8), 0, 9) == 0xCBF43926


def test_all_lengths_and_alignments_up_to_80():
    data = np.random.default_rng(7).integers(0, 256, 200, dtype=np.uint8)
    raw = data.tobytes()
    for start in range(0, 9):
        for n in range(0, 81):
            assert crc32(data, start, start + n) == zlib.crc32(raw[start:start + n]), (start, n)


@settings(max_examples=80, deadline=None)
@given(st.binary(max_size=2000), st.integers(0, 2**32 - 1))
def test_matches_zlib_with_continuation(data, seed):
    buf = np.frombuffer(data, np.uint8)
    assert crc32(buf, 0, len(data), seed) == zlib.crc32(data, seed)
    half = len(data) // 2
    assert crc32(buf, half, len(data), crc32(buf, 0, half)) == zlib.crc32(data)


def test_bounds_are_clamped():
    buf = np.frombuffer(b"abcdef", np.uint8)
    assert crc32(buf, -4, 100) == zlib.crc32(b"abcdef")
    assert crc32(buf, 4, 2) == 0


def test_frame_crc_equals_codec():
    rec = C.GasPrice(base_fee_wei=30 * 10**9, priority_fee_wei=10**9, block_number=5,
                     block_ts_ns=6, chain_id=137)
    f = C.build_frame(1, 4, 1, [rec], timestamp_ns=99)
    buf = np.frombuffer(b"xyz" + f, np.uint8)
    assert frame_crc(buf, 3, len(f) - 32) == C.frame_checksum(f) == int.from_bytes(f[28:32],
                                                                                    "little")
