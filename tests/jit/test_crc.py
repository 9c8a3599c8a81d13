"""crc32 equals zlib.crc32 (by carry-less folding and by the tables alone); frame_crc equals
the codec's frame checksum."""
from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse.jit import crc32, frame_crc
from alphapulse.jit import crc as CRC
from alphapulse.jit.crc import POLYNOMIAL, TABLE, TABLES
from alphapulse.protocol import codec as C


def test_table_is_the_ieee_table():
    # zlib's byte-at-a-time table entry b equals crc of the single byte b, pre/post inverted
    for b in (0, 1, 0x80, 0xFF):
        assert int(TABLES[0, b]) == zlib.crc32(bytes([b]), 0xFFFFFFFF) ^ 0xFFFFFFFF
    assert int(TABLES[0, 128]) == POLYNOMIAL


def test_known_check_value():
    assert crc32(np.frombuffer(b"123456789", np.uint8), 0, 9) == 0xCBF43926


def _tables(buf, start, end, seed=0):
    return CRC.crc32_tables_with(buf, start, end, seed, TABLE)


PATHS = [pytest.param(crc32, id="crc32"), pytest.param(_tables, id="tables")]


@pytest.mark.parametrize("f", PATHS)
def test_all_lengths_and_alignments_up_to_80(f):
    data = np.random.default_rng(7).integers(0, 256, 200, dtype=np.uint8)
    raw = data.tobytes()
    for start in range(0, 9):
        for n in range(0, 81):
            assert f(data, start, start + n) == zlib.crc32(raw[start:start + n]), (start, n)


@pytest.mark.parametrize("f", PATHS)
@settings(max_examples=80, deadline=None)
@given(data=st.binary(max_size=2000), seed=st.integers(0, 2**32 - 1))
def test_matches_zlib_with_continuation(f, data, seed):
    buf = np.frombuffer(data, np.uint8)
    assert f(buf, 0, len(data), seed) == zlib.crc32(data, seed)
    half = len(data) // 2
    assert f(buf, half, len(data), f(buf, 0, half)) == zlib.crc32(data)


def _clmul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        a, b = a << 1, b >> 1
    return r


def test_fold_constants_append_16_zero_bytes():
    """fold(X) = clmul(X.lo, K_LO) ^ clmul(X.hi, K_HI) has the CRC of X followed by 16 zero bytes
    (from a zero register), whatever X: what lets the kernel xor the next block into it."""
    rng = np.random.default_rng(11)
    reg = lambda b: zlib.crc32(b, 0xFFFFFFFF) ^ 0xFFFFFFFF     # noqa: E731 - the raw register
    assert int(CRC.K_HI) == 0xCCAA009E       # Linux's crc32-pclmul R4: x^(128-32) mod P, reflected
    for _ in range(200):
        x = rng.bytes(16)
        lo, hi = int.from_bytes(x[:8], "little"), int.from_bytes(x[8:], "little")
        folded = _clmul(lo, int(CRC.K_LO)) ^ _clmul(hi, int(CRC.K_HI))
        assert reg(folded.to_bytes(16, "little")) == reg(x + bytes(16))


@pytest.mark.skipif(not CRC.CLMUL, reason="needs an x86-64 CPU with pclmulqdq")
def test_the_kernel_multiplies_as_python_does():
    from numba import njit

    @njit
    def clmul(a, b):
        return CRC._clmul(a, b)

    rng = np.random.default_rng(5)
    for a, b in [(0, 0), (2**64 - 1, 2**64 - 1), (1, 2**63)] + [tuple(int(v) for v in rng.integers(0, 2**63, 2,
                                                                                                    dtype=np.int64))
                                                             for _ in range(100)]:
        lo, hi = clmul(np.uint64(a), np.uint64(b))
        assert int(lo) | int(hi) << 64 == _clmul(a, b)


def test_bounds_are_clamped():
    buf = np.frombuffer(b"abcdef", np.uint8)
    assert crc32(buf, -4, 100) == zlib.crc32(b"abcdef")
    assert crc32(buf, 4, 2) == 0


def test_frame_crc_of_every_payload_size_skips_the_checksum_field():
    rng = np.random.default_rng(3)
    for n in list(range(0, 70)) + list(range(240, 300)):
        raw = rng.bytes(5 + 32 + n + 7)          # the frame at offset 5, garbage after it
        buf = np.frombuffer(raw, np.uint8)
        assert frame_crc(buf, 5, n) == zlib.crc32(raw[5:5 + 28] + raw[5 + 32:5 + 32 + n]), n


def test_frame_crc_equals_codec():
    rec = C.GasPrice(base_fee_wei=30 * 10**9, priority_fee_wei=10**9, block_number=5,
                     block_ts_ns=6, chain_id=137)
    f = C.build_frame(1, 4, 1, [rec], timestamp_ns=99)
    buf = np.frombuffer(b"xyz" + f, np.uint8)
    assert frame_crc(buf, 3, len(f) - 32) == C.frame_checksum(f) == int.from_bytes(f[28:32],
                                                                                    "little")
