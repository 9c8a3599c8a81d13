"""Golden vectors written from PROTOCOL.md, and unit tests of the Python codec.

The vectors use ``struct`` formats transcribed by hand from the tables of
PROTOCOL.md section 4 (not from layout.py), so they are an independent check
of the one declaration, of the codec and of the Numba kernels: all three must
produce and accept exactly these bytes.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from alphapulse import jit as J
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject

POOL = bytes.fromhex("b4e16d0168e52d35cacd2c6185b44281ec28c9dc")    # USDC/WETH UniV2
USDC = bytes.fromhex("a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48")
WETH = bytes.fromhex("c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
OWNER = bytes.fromhex("c36442b4a4522e871399cd717abdd847ab11fe88")
POOL3 = bytes.fromhex("88e6a0c2ddd26feeb64f039a2c41296fcb3f5640")    # USDC/WETH UniV3 0.05%
U128_MAX = (1 << 128) - 1
SQRT_PRICE = 1_461_446_703_485_210_103_287_273_052_203_988_822_378_723_970_341   # uint160 max


def u128(v: int) -> bytes:
    return (v % (1 << 128)).to_bytes(16, "little")


def u256(v: int) -> bytes:
    return v.to_bytes(32, "little")


# type id -> (spec struct format, raw value tuple, codec record). Formats transcribed from
# PROTOCOL.md section 4; "16s"/"32s" carry u128/u256/i128 as little-endian bytes.
GOLDEN = {
    11: ("<16s16s32s16sQQIiHBBB3x20s20s20s",
         (u128(10**18), u128(2_500_000_000), u256(SQRT_PRICE), u128(U128_MAX), 19_000_001,
          1_700_000_012_000_000_000, 3, -887272, 301, 18, 6, 0x02, POOL3, WETH, USDC),
         C.PoolSwap(amount_in=10**18, amount_out=2_500_000_000,
                    sqrt_price_x96_after=SQRT_PRICE, liquidity_after=U128_MAX,
                    block_number=19_000_001, block_ts_ns=1_700_000_012_000_000_000,
                    log_index=3, tick_after=-887272, venue=301, amount_in_decimals=18,
                    amount_out_decimals=6, flags=0x02, pool=POOL3, token_in=WETH,
                    token_out=USDC)),
    12: ("<16s16s16sQQIiiHBBB3x20s20s20s20s",
         (u128(5 * 10**15), u128(0), u128(U128_MAX), 7, 0, 0, -60, 60, 301, 6, 18, 0, POOL3,
          OWNER, USDC, WETH),
         C.PoolMint(liquidity_delta=5 * 10**15, amount0=0, amount1=U128_MAX, block_number=7,
                    block_ts_ns=0, log_index=0, tick_lower=-60, tick_upper=60, venue=301,
                    token0_decimals=6, token1_decimals=18, flags=0, pool=POOL3, owner=OWNER,
                    token0=USDC, token1=WETH)),
    13: ("<16s16s16sQQIiiHBBB3x20s20s20s20s",
         (u128(1), u128(2), u128(3), 8, 9, 10, -887272, 887272, 301, 6, 18, 0x01, POOL3,
          OWNER, USDC, WETH),
         C.PoolBurn(liquidity_delta=1, amount0=2, amount1=3, block_number=8, block_ts_ns=9,
                    log_index=10, tick_lower=-887272, tick_upper=887272, venue=301,
                    token0_decimals=6, token1_decimals=18, flags=0x01, pool=POOL3,
                    owner=OWNER, token0=USDC, token1=WETH)),
    14: ("<16sQiHBx20s",
         (u128(-(10**20)), 19_000_002, -201_360, 301, 0, POOL3),
         C.PoolTick(liquidity_net=-(10**20), block_number=19_000_002, tick=-201_360,
                    venue=301, flags=0, pool=POOL3)),
    15: ("<16s16s32s16sQQiIHBBBBh20s20s20s",
         (u128(0), u128(0), u256(SQRT_PRICE), u128(10**22), 19_000_003, 0, -201_360, 500,
          301, 2, 6, 18, 0, 10, POOL3, USDC, WETH),
         C.PoolState(reserve0=0, reserve1=0, sqrt_price_x96=SQRT_PRICE, liquidity=10**22,
                     block_number=19_000_003, block_ts_ns=0, tick=-201_360, fee_pips=500,
                     venue=301, pool_kind=2, token0_decimals=6, token1_decimals=18, flags=0,
                     tick_spacing=10, pool=POOL3, token0=USDC, token1=WETH)),
    16: ("<16s16sQQIHBBB3x20s20s20s",
         (u128(10**18), u128(2_500_000_000), 19_000_000, 1_700_000_000_000_000_000, 42, 300,
          18, 6, 0x02, POOL, USDC, WETH),
         C.PoolSync(reserve0=10**18, reserve1=2_500_000_000, block_number=19_000_000,
                    block_ts_ns=1_700_000_000_000_000_000, log_index=42, venue=300,
                    token0_decimals=18, token1_decimals=6, flags=0x02, pool=POOL,
                    token0=USDC, token1=WETH)),
    18: ("<QQQQI4x",
         (30 * 10**9, 2 * 10**9, 19_000_004, 1_700_000_048_000_000_000, 137),
         C.GasPrice(base_fee_wei=30 * 10**9, priority_fee_wei=2 * 10**9,
                    block_number=19_000_004, block_ts_ns=1_700_000_048_000_000_000,
                    chain_id=137)),
    32: ("<16s16s16sqqqQQQIHBB3H2x3Ii60s60s",
         (u128(10**18), u128(10**18 + 12345), u128(21_000 * 30 * 10**9), -150_000_000,
          -50_000_000, 100_000_000, 19_000_005, 1_700_000_060_000_000_000, 77, 1, 3, 3,
          0x00, 300, 301, 302, 3000, 500, 3000, 12, POOL + POOL3 + bytes(20),
          WETH + USDC + bytes(20)),
         C.ArbitrageSignal(amount_in=10**18, amount_out=10**18 + 12345,
                           gas_cost_wei=21_000 * 30 * 10**9, net_profit_usd_e8=-150_000_000,
                           gross_profit_usd_e8=-50_000_000, gas_cost_usd_e8=100_000_000,
                           block_number=19_000_005, trigger_ts_ns=1_700_000_060_000_000_000,
                           signal_id=77, chain_id=1, strategy_id=3, hops=3, flags=0,
                           venues=(300, 301, 302), fees_pips=(3000, 500, 3000), spread_bps=12,
                           pools=(POOL, POOL3, bytes(20)), tokens=(WETH, USDC, bytes(20)))),
    100: ("<QQ", (1_700_000_000_000_000_000, 99),
          C.Heartbeat(timestamp_ns=1_700_000_000_000_000_000, frames_published=99)),
    1: ("<QqqQHBBB3x", (7, 6_500_000_000_000, -25_000_000, 5, 200, 1, 0, 1),
        C.Trade(asset_id=7, price=6_500_000_000_000, volume=-25_000_000, ts_ns=5, venue=200,
                asset_type=1, reserved=0, side=1)),
    2: ("<QqqqqQHBB4x", (7, 100, 2, 101, 3, 9, 200, 1, 0),
        C.Quote(asset_id=7, bid=100, bid_size=2, ask=101, ask_size=3, ts_ns=9, venue=200,
                asset_type=1, reserved=0)),
}
KERNEL_TYPES = (11, 12, 13, 14, 15, 16, 18, 32)

# One complete frame, byte by byte: PoolSync above, market data, source 4 (Polygon
# collector), sequence 1, timestamp 2025-11-26T00:00:00Z, CRC-32 0xD1ED3921.
GOLDEN_FRAME = bytes.fromhex(
    "efbeadde" "01" "01" "04" "00"            # magic, domain, version, source, flags
    "0100000000000000"                        # sequence 1
    "0000de7e6d657b18"                        # timestamp_ns 1_764_115_200_000_000_000
    "7a000000"                                # payload_size 122
    "2139edd1"                                # checksum 0xD1ED3921
    "1078"                                    # TLV type 16, length 120
    "000064a7b3b6e00d0000000000000000"        # reserve0 1e18
    "00f90295000000000000000000000000"        # reserve1 2.5e9
    "c0ea210100000000"                        # block_number 19_000_000
    "00002a36fe9c9717"                        # block_ts_ns
    "2a000000" "2c01" "12" "06" "02" "000000"  # log_index, venue 300, decimals, flags, pad
    "b4e16d0168e52d35cacd2c6185b44281ec28c9dc"
    "a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
    "c02aaa39b223fe8d0a0e5c4f27ead9083c756cc2")
GOLDEN_FRAME_TS = 1_764_115_200_000_000_000


def golden_value(t: int) -> bytes:
    fmt, raw, _ = GOLDEN[t]
    return struct.pack(fmt, *raw)


# ------------------------------------------------------------------ golden vectors
@pytest.mark.parametrize("t", sorted(GOLDEN))
def test_golden_value_size_is_the_spec_size(t):
    assert len(golden_value(t)) == L.LAYOUTS[t].size


@pytest.mark.parametrize("t", sorted(GOLDEN))
def test_codec_encodes_and_decodes_golden_values(t):
    value = golden_value(t)
    rec = GOLDEN[t][2]
    assert C.encode_value(rec) == value
    assert C.decode_value(t, value) == rec
    assert C.encode_tlv(rec) == bytes([t, len(value)]) + value


@pytest.mark.parametrize("t", KERNEL_TYPES)
def test_kernels_decode_and_encode_golden_values(t):
    rec = GOLDEN[t][2]
    lay = L.LAYOUTS[t]
    value = golden_value(t)
    frame = C.build_frame(lay.domain, 4, 5, [rec], timestamp_ns=GOLDEN_FRAME_TS)
    assert frame[L.HEADER_SIZE:] == bytes([t, len(value)]) + value
    buf = np.frombuffer(frame, np.uint8)
    fidx = J.alloc_frame_index(1)
    assert J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)[:3] == (
        1, len(frame), J.STOP_END)
    cols = J.alloc_columns(lay, 1)
    assert J.decode_frames(buf, fidx, 0, 1, cols, np.zeros(1, np.int64)) == (1, 1)
    assert J.row_to_record(cols, 0) == rec
    out = np.zeros(len(frame), np.uint8)
    assert J.encode_frames(out, 0, cols, 0, 1, 5, GOLDEN_FRAME_TS, 4, 0, True) == (len(frame), 1)
    assert bytes(out) == frame


def test_golden_frame_built_by_codec_and_kernels():
    rec = GOLDEN[16][2]
    assert C.build_frame(1, 4, 1, [rec], timestamp_ns=GOLDEN_FRAME_TS) == GOLDEN_FRAME
    assert C.frame_checksum(GOLDEN_FRAME) == 0xD1ED3921
    assert zlib.crc32(GOLDEN_FRAME[32:], zlib.crc32(GOLDEN_FRAME[:28])) == 0xD1ED3921
    cols = J.alloc_columns(L.POOL_SYNC, 1)
    J.set_row(cols, 0, rec)
    out = np.zeros(len(GOLDEN_FRAME), np.uint8)
    J.encode_frames(out, 0, cols, 0, 1, 1, GOLDEN_FRAME_TS, 4, 0, True)
    assert bytes(out) == GOLDEN_FRAME
    buf = np.frombuffer(GOLDEN_FRAME, np.uint8)
    assert J.frame_crc(buf, 0, len(GOLDEN_FRAME) - 32) == 0xD1ED3921


def test_golden_frame_parsed_by_codec_and_kernels():
    fr = C.parse_frame(GOLDEN_FRAME)
    assert fr.header == C.Header(L.MAGIC, 1, 1, 4, 0, 1, GOLDEN_FRAME_TS, 122, 0xD1ED3921)
    assert fr.tlvs == (GOLDEN[16][2],) and fr.size == len(GOLDEN_FRAME) and not fr.replayed
    buf = np.frombuffer(GOLDEN_FRAME, np.uint8)
    fidx = J.alloc_frame_index(1)
    J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)
    assert (fidx.domain[0], fidx.source[0], fidx.sequence[0], fidx.timestamp_ns[0],
            fidx.status[0]) == (1, 4, 1, GOLDEN_FRAME_TS, 0)


def test_golden_extended_tlv():
    value = bytes(range(256)) * 2                     # 512 bytes: extended form
    tlv = bytes([0xFF, 0x00, 200]) + struct.pack("<H", 512) + value
    assert C.encode_tlv(C.RawTlv(200, value)) == tlv
    frame = C.build_frame(4, 60, 3, [C.RawTlv(200, value), GOLDEN[100][2]], timestamp_ns=1)
    assert frame[32:32 + len(tlv)] == tlv
    assert C.parse_frame(frame).tlvs == (C.RawTlv(200, value), GOLDEN[100][2])
    buf = np.frombuffer(frame, np.uint8)
    fidx = J.alloc_frame_index(1)
    J.validate_frames(buf, 0, len(buf), 1, J.new_crc_state(), fidx)
    tidx = J.alloc_tlv_index(4)
    assert J.index_tlvs(buf, fidx, 0, 1, tidx) == (2, 1)
    assert (tidx.type[0], tidx.value_offset[0], tidx.value_length[0]) == (200, 37, 512)
    assert (tidx.type[1], tidx.value_length[1]) == (100, 16)


# ------------------------------------------------------------------ codec unit tests
def _reason(b: bytes, **kw) -> Reject:
    with pytest.raises(C.FrameError) as e:
        C.parse_frame(b, **kw)
    return e.value.reason


def _patch(b: bytes, off: int, fmt: str, v: int) -> bytes:
    m = bytearray(b)
    struct.pack_into(fmt, m, off, v)
    return bytes(m)


def test_parse_rejects_name_the_reason():
    g = GOLDEN_FRAME
    assert _reason(g[:31]) == Reject.TRUNCATED_HEADER
    assert _reason(_patch(g, 0, "<I", 0xDEADBEEE)) == Reject.BAD_MAGIC
    assert _reason(_patch(g, 5, "<B", 2)) == Reject.BAD_VERSION
    assert _reason(_patch(g, 4, "<B", 0)) == Reject.BAD_DOMAIN
    assert _reason(_patch(g, 24, "<I", 65_505)) == Reject.PAYLOAD_TOO_LARGE
    assert _reason(g[:-1]) == Reject.TRUNCATED_PAYLOAD
    assert _reason(_patch(g, 33, "<B", 121)) == Reject.TLV_OVERRUN
    assert _reason(_patch(g, 33, "<B", 119)) == Reject.BAD_TLV_SIZE
    assert _reason(_patch(g, 28, "<I", 1)) == Reject.BAD_CHECKSUM
    assert C.parse_frame(_patch(g, 28, "<I", 1), verify_checksum=False).tlvs[0] == GOLDEN[16][2]
    assert C.parse_frame(_patch(g, 28, "<I", 0)).header.checksum == 0     # 0 = not computed
    e = pytest.raises(C.FrameError, C.parse_frame, g[:-1]).value
    assert "TRUNCATED_PAYLOAD" in str(e) and isinstance(e, ValueError)


def test_iter_frames_and_offsets():
    two = GOLDEN_FRAME + C.build_frame(1, 4, 2, [GOLDEN[16][2]], timestamp_ns=1,
                                       flags=L.FLAG_REPLAYED)
    frames = list(C.iter_frames(two))
    assert [f.header.sequence for f in frames] == [1, 2]
    assert frames[1].replayed
    assert C.parse_frame(two, len(GOLDEN_FRAME)).header.sequence == 2
    with pytest.raises(C.FrameError):
        list(C.iter_frames(two + b"\xef\xbe"))


def test_unknown_types_are_raw_and_fixed_sizes_enforced():
    assert C.decode_value(201, b"abc") == C.RawTlv(201, b"abc")
    with pytest.raises(C.FrameError) as e:
        C.decode_value(16, bytes(119))
    assert e.value.reason == Reject.BAD_TLV_SIZE


def test_encode_errors_are_clear():
    with pytest.raises(ValueError, match="address must be 20 bytes"):
        C.encode_value(C.PoolTick(pool=b"\x01" * 19))
    with pytest.raises(ValueError, match="venue"):
        C.encode_value(C.PoolTick(venue=70_000))
    with pytest.raises(ValueError, match="reserve0"):
        C.encode_value(C.PoolSync(reserve0=1 << 128))
    with pytest.raises(ValueError, match="expected 3 entries"):
        C.encode_value(C.ArbitrageSignal(venues=(1, 2)))
    with pytest.raises(ValueError, match="out of range"):
        C.encode_tlv(C.RawTlv(255, b""))
    with pytest.raises(ValueError, match="exceeds"):
        C.encode_tlv(C.RawTlv(200, bytes(65_536)))
    with pytest.raises(ValueError, match="exceeds"):
        C.build_frame(4, 60, 1, [C.RawTlv(200, bytes(40_000))] * 2, timestamp_ns=1)


def test_largest_frame_is_accepted():
    payload_max = L.MAX_PAYLOAD - L.TLV_EXT_HEADER
    f = C.build_frame(4, 60, 1, [C.RawTlv(200, bytes(payload_max))], timestamp_ns=1)
    assert len(f) == L.MAX_FRAME
    assert C.parse_frame(f).size == L.MAX_FRAME


def test_address_helpers():
    assert C.address_bytes("0x" + WETH.hex()) == WETH
    assert C.address_bytes(WETH.hex().upper()) == WETH
    assert C.to_checksum_address(WETH) == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    with pytest.raises(ValueError):
        C.address_bytes("0x1234")
