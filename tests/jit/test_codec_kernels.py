"""Decoders and encoders agree with the Python codec in both directions."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse import jit as J
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject

from jit_strategies import DECODED_LAYOUTS, U160_MAX, extreme_record, record_strategy

TS = 1_764_000_000_123_456_789


def arr(b: bytes) -> np.ndarray:
    return np.frombuffer(bytearray(b), dtype=np.uint8)


def kernel_decode(b: bytes, lay: L.TlvLayout, via: str = "tlvs"):
    """validate -> (index ->) decode every TLV of ``lay`` in ``b``; records and frame rows."""
    buf = arr(b)
    fidx = J.alloc_frame_index(64)
    n, consumed, stop, _ = J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)
    assert stop == J.STOP_END and consumed == len(buf)
    assert not fidx.status[:n].any()
    cols = J.alloc_columns(lay, 64)
    row_frame = np.full(64, -1, np.int64)
    if via == "tlvs":
        tidx = J.alloc_tlv_index(256)
        k, nxt = J.index_tlvs(buf, fidx, 0, n, tidx)
        assert nxt == n
        rows, done = J.decode_tlvs(buf, tidx, 0, k, cols, row_frame)
        assert done == k
    else:
        rows, done = J.decode_frames(buf, fidx, 0, n, cols, row_frame)
        assert done == n
    return [J.row_to_record(cols, r) for r in range(rows)], list(row_frame[:rows])


# ------------------------------------------------------------------ columns
@pytest.mark.parametrize("lay", list(L.LAYOUTS.values()), ids=lambda x: x.name)
def test_columns_follow_the_layout(lay):
    cols = J.alloc_columns(lay, 5)
    assert type(cols) is J.COLUMNS[lay.type_id]
    assert cols._fields == tuple(f.name for f in lay.data_fields)
    dt = lay.dtype()
    for f in lay.data_fields:
        a = getattr(cols, f.name)
        assert a.shape == (5,) + dt.fields[f.name][0].shape, f.name
        assert a.dtype == dt.fields[f.name][0].base, f.name


@pytest.mark.parametrize("lay", DECODED_LAYOUTS, ids=lambda x: x.name)
def test_decoded_columns_equal_numpy_structured_view(lay):
    """Independent oracle: numpy reads the value bytes with layout.dtype()."""
    rng = np.random.default_rng(lay.type_id)
    values = [bytes(rng.integers(0, 256, lay.size, dtype=np.uint8)) for _ in range(3)]
    # zero pad bytes, as a valid value has them
    for i, v in enumerate(values):
        m = bytearray(v)
        for f in lay.fields:
            if f.is_pad:
                m[f.offset:f.offset + f.size] = bytes(f.size)
        values[i] = bytes(m)
    b = b"".join(C.build_frame(lay.domain or 4, 4, s + 1,
                               [C.RawTlv(lay.type_id, v)], timestamp_ns=TS)
                 for s, v in enumerate(values))
    recs, frames = kernel_decode(b, lay)
    assert frames == [0, 1, 2]
    buf = arr(b)
    fidx = J.alloc_frame_index(4)
    J.validate_frames(buf, 0, len(buf), 0, J.new_crc_state(), fidx)
    cols = J.alloc_columns(lay, 3)
    J.decode_frames(buf, fidx, 0, 3, cols, np.zeros(3, np.int64))
    expect = np.frombuffer(b"".join(values), dtype=lay.dtype())
    for f in lay.data_fields:
        np.testing.assert_array_equal(getattr(cols, f.name), expect[f.name], err_msg=f.name)


# ------------------------------------------------------------------ Python -> Numba
@pytest.mark.parametrize("lay", DECODED_LAYOUTS, ids=lambda x: x.name)
@pytest.mark.parametrize("which", ["max", "min", "zero"])
@pytest.mark.parametrize("via", ["tlvs", "frames"])
def test_extremes_python_encode_numba_decode(lay, which, via):
    rec = extreme_record(lay, which)
    b = C.build_frame(lay.domain, 4, 1, [rec], timestamp_ns=TS)
    assert kernel_decode(b, lay, via) == ([rec], [0])


def test_uint160_sqrt_price_and_negative_tick():
    rec = C.PoolState(reserve0=0, reserve1=0, sqrt_price_x96=U160_MAX, liquidity=(1 << 128) - 1,
                      block_number=1, block_ts_ns=0, tick=-887272, fee_pips=3000, venue=301,
                      pool_kind=L.PoolKind.CONCENTRATED, token0_decimals=18, token1_decimals=6,
                      flags=0, tick_spacing=-60, pool=b"\x01" * 20, token0=b"\x02" * 20,
                      token1=b"\xfe" * 20)
    b = C.build_frame(1, 4, 1, [rec], timestamp_ns=TS)
    [got], _ = kernel_decode(b, L.POOL_STATE)
    assert got == rec
    cols = J.alloc_columns(L.POOL_STATE, 1)
    J.set_row(cols, 0, rec)
    assert list(cols.sqrt_price_x96[0]) == [2**64 - 1, 2**64 - 1, 2**32 - 1, 0]
    assert cols.tick[0] == -887272 and cols.tick_spacing[0] == -60


def test_i128_liquidity_net_is_twos_complement_limbs():
    rec = C.PoolTick(liquidity_net=-2, block_number=3, tick=-10, venue=301, flags=0,
                     pool=b"\x05" * 20)
    cols = J.alloc_columns(L.POOL_TICK, 1)
    b = C.build_frame(1, 4, 1, [rec], timestamp_ns=TS)
    buf = arr(b)
    fidx = J.alloc_frame_index(1)
    J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)
    J.decode_frames(buf, fidx, 0, 1, cols, np.zeros(1, np.int64))
    assert list(cols.liquidity_net[0]) == [2**64 - 2, 2**64 - 1]
    assert J.limbs_to_int(cols.liquidity_net[0], signed=True) == -2


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_property_python_encode_numba_decode(data):
    lay = data.draw(st.sampled_from(DECODED_LAYOUTS))
    recs = data.draw(st.lists(record_strategy(lay), min_size=1, max_size=4))
    others = [C.Heartbeat(timestamp_ns=1, frames_published=2), C.RawTlv(200, b"v" * 300)]
    frames = []
    for i, r in enumerate(recs):   # mix other TLVs in; the decoder must skip them
        content = [others[i % 2], r] if i % 3 else [r]
        frames.append(C.build_frame(lay.domain, 4, i + 1, content, timestamp_ns=TS,
                                    checksum=bool(i % 2)))
    b = b"".join(frames)
    for via in ("tlvs", "frames"):
        got, rows = kernel_decode(b, lay, via)
        assert got == recs
        assert rows == list(range(len(recs)))


def test_decode_stops_when_columns_are_full_and_resumes():
    recs = [extreme_record(L.POOL_SYNC, "max"), extreme_record(L.POOL_SYNC, "zero"),
            extreme_record(L.POOL_SYNC, "min")]
    b = b"".join(C.build_frame(1, 4, i + 1, [r], timestamp_ns=TS) for i, r in enumerate(recs))
    buf = arr(b)
    fidx = J.alloc_frame_index(4)
    n = J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)[0]
    cols = J.alloc_columns(L.POOL_SYNC, 2)
    rf = np.zeros(2, np.int64)
    assert J.decode_frames(buf, fidx, 0, n, cols, rf) == (2, 2)
    assert J.decode_frames(buf, fidx, 2, n, cols, rf) == (1, 3)
    assert J.row_to_record(cols, 0) == recs[2] and rf[0] == 2
    tidx = J.alloc_tlv_index(4)
    k = J.index_tlvs(buf, fidx, 0, n, tidx)[0]
    assert J.decode_tlvs(buf, tidx, 0, k, cols, rf) == (2, 2)
    assert J.decode_tlvs(buf, tidx, 2, k, cols, rf) == (1, 3)


def test_rejected_frames_are_not_decoded():
    good = C.build_frame(1, 4, 1, [extreme_record(L.POOL_SYNC, "max")], timestamp_ns=TS)
    bad = bytearray(C.build_frame(1, 4, 2, [extreme_record(L.POOL_SYNC, "zero")],
                                  timestamp_ns=TS))
    bad[-1] ^= 1
    buf = arr(good + bytes(bad))
    fidx = J.alloc_frame_index(4)
    n = J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)[0]
    assert list(fidx.status[:n]) == [0, Reject.BAD_CHECKSUM]
    cols = J.alloc_columns(L.POOL_SYNC, 4)
    assert J.decode_frames(buf, fidx, 0, n, cols, np.zeros(4, np.int64)) == (1, 2)


# ------------------------------------------------------------------ Numba -> Python
def _encode(cols, n, *, with_crc=True, seq=7, source=L.Source.POLYGON_COLLECTOR, flags=0,
            size=None, fill=0xFF):
    fsz = J.frame_size_of(cols)
    buf = np.full(size if size is not None else fsz * n + 3, fill, np.uint8)
    off, written = J.encode_frames(buf, 3 if size is None else 0, cols, 0, n, seq, TS,
                                   int(source), flags, with_crc)
    return buf, off, written


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_property_numba_encode_python_parse(data):
    lay = data.draw(st.sampled_from(DECODED_LAYOUTS))
    recs = data.draw(st.lists(record_strategy(lay), min_size=1, max_size=4))
    with_crc = data.draw(st.booleans())
    cols = J.alloc_columns(lay, len(recs))
    for i, r in enumerate(recs):
        J.set_row(cols, i, r)
    buf, off, written = _encode(cols, len(recs), with_crc=with_crc)   # dirty buffer (0xFF)
    assert written == len(recs)
    b = bytes(buf[3:off])
    frames = list(C.iter_frames(b))
    assert [f.tlvs for f in frames] == [(r,) for r in recs]
    for i, f in enumerate(frames):
        h = f.header
        assert (h.relay_domain, h.source, h.sequence, h.timestamp_ns, h.flags) == (
            lay.domain, L.Source.POLYGON_COLLECTOR, 7 + i, TS, 0)
        assert (h.checksum != 0) == with_crc
        expect = C.build_frame(lay.domain, L.Source.POLYGON_COLLECTOR, 7 + i, [recs[i]],
                               timestamp_ns=TS, checksum=with_crc)
        assert b[i * len(expect):(i + 1) * len(expect)] == expect   # byte-identical


@pytest.mark.parametrize("lay", DECODED_LAYOUTS, ids=lambda x: x.name)
def test_numba_encode_extremes_byte_identical_to_codec(lay):
    recs = [extreme_record(lay, w) for w in ("max", "min", "zero")]
    cols = J.alloc_columns(lay, 3)
    for i, r in enumerate(recs):
        J.set_row(cols, i, r)
    buf, off, written = _encode(cols, 3, flags=L.FLAG_REPLAYED)
    expect = b"".join(C.build_frame(lay.domain, 4, 7 + i, [r], timestamp_ns=TS,
                                    flags=L.FLAG_REPLAYED) for i, r in enumerate(recs))
    assert written == 3 and bytes(buf[3:off]) == expect


def test_encode_stops_before_a_frame_that_does_not_fit():
    cols = J.alloc_columns(L.POOL_SYNC, 4)
    fsz = J.frame_size_of(cols)
    buf, off, written = _encode(cols, 4, size=fsz * 2 + fsz - 1, fill=0)
    assert (off, written) == (2 * fsz, 2)
    assert not buf[off:].any()                       # nothing written past the last frame
    # rows beyond the columns are not encoded either
    buf2 = np.zeros(fsz * 10, np.uint8)
    assert J.encode_frames(buf2, 0, cols, 3, 5, 1, TS, 4, 0, False) == (fsz, 1)
    assert J.encode_frames(buf2, 0, cols, 9, 5, 1, TS, 4, 0, False) == (0, 0)
    assert J.encode_frames(buf2, -1, cols, 0, 5, 1, TS, 4, 0, False) == (-1, 0)


def test_encoded_frames_validate_and_decode_in_numba():
    rec = extreme_record(L.ARBITRAGE_SIGNAL, "max")
    cols = J.alloc_columns(L.ARBITRAGE_SIGNAL, 2)
    J.set_row(cols, 0, rec)
    J.set_row(cols, 1, rec)
    buf, off, _ = _encode(cols, 2, source=L.Source.ARBITRAGE_STRATEGY)
    fidx = J.alloc_frame_index(2)
    n, consumed, stop, _ = J.validate_frames(buf, 3, off, 1, J.new_crc_state(), fidx)
    assert (n, consumed, stop) == (2, off, J.STOP_END)
    assert list(fidx.domain[:2]) == [L.Domain.SIGNAL] * 2
    out = J.alloc_columns(L.ARBITRAGE_SIGNAL, 2)
    assert J.decode_frames(buf, fidx, 0, n, out, np.zeros(2, np.int64)) == (2, 2)
    assert J.row_to_record(out, 1) == rec


def test_header_and_tlv_writers_build_multi_tlv_frames():
    from alphapulse.jit.encode import write_header, write_tlv_header, seal_frame
    hb = C.Heartbeat(timestamp_ns=5, frames_published=6)
    vendor = C.RawTlv(200, bytes(range(256)) + b"xy")           # extended form
    payload = C.encode_tlv(hb) + C.encode_tlv(vendor)
    buf = np.zeros(32 + len(payload), np.uint8)
    write_header(buf, 0, 4, 60, 0, 11, TS, len(payload))
    p = write_tlv_header(buf, 32, 100, 16)
    buf[p:p + 16] = np.frombuffer(C.encode_value(hb), np.uint8)
    p = write_tlv_header(buf, p + 16, 200, 258)
    buf[p:p + 258] = np.frombuffer(vendor.value, np.uint8)
    seal_frame(buf, 0, True)
    assert bytes(buf) == C.build_frame(4, 60, 11, [hb, vendor], timestamp_ns=TS)


def test_decoders_clamp_row_ranges_to_the_index():
    rec = extreme_record(L.POOL_SYNC, "max")
    b = C.build_frame(1, 4, 1, [rec], timestamp_ns=TS)
    buf = arr(b)
    fidx = J.alloc_frame_index(1)
    J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)
    tidx = J.alloc_tlv_index(1)
    J.index_tlvs(buf, fidx, 0, 1, tidx)
    cols = J.alloc_columns(L.POOL_SYNC, 2)
    rf = np.zeros(2, np.int64)
    assert J.decode_frames(buf, fidx, -3, 10**6, cols, rf) == (1, 1)
    assert J.decode_tlvs(buf, tidx, -3, 10**6, cols, rf) == (1, 1)
    assert J.row_to_record(cols, 0) == rec
