"""Decoding real ABI-encoded logs (eth_abi) into typed events and Protocol V2 records."""
import pytest
from eth_abi import encode

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.decode import (DecodeError, V2Swap, V2Sync, V3Burn, V3Mint, V3Swap,
                                            as_removed, decode_log, to_record)
from alphapulse.adapters.evm.providers import PoolInfo
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED, EVENT_TOKEN0_IN, PoolKind

POOL = bytes.fromhex("11" * 20)
T0 = bytes.fromhex("a0" * 20)
T1 = bytes.fromhex("b1" * 20)
ALICE = bytes.fromhex("cc" * 20)
BOB = bytes.fromhex("dd" * 20)
V2 = PoolInfo(POOL, int(PoolKind.CONSTANT_PRODUCT), 400, bytes(20), T0, T1, 18, 6, 3000, 0)
V3 = PoolInfo(POOL, int(PoolKind.CONCENTRATED), 405, bytes(20), T0, T1, 8, 18, 500, 10)


def topic_addr(a: bytes) -> str:
    return "0x" + (bytes(12) + a).hex()


def topic_int(v: int) -> str:
    return "0x" + encode(["int256"], [v]).hex()


def mklog(spec, topics, types, values, *, block=7, index=3, removed=False, ts=None):
    lg = {"address": "0x" + POOL.hex(), "topics": [spec.topic0_hex] + topics,
          "data": "0x" + encode(types, values).hex(), "blockNumber": hex(block),
          "logIndex": hex(index), "blockHash": "0x" + "ab" * 32, "removed": removed,
          "transactionHash": "0x" + "cd" * 32}
    if ts is not None:
        lg["blockTimestamp"] = hex(ts)
    return lg


def test_topic0_constants_are_keccak_of_signatures():
    assert abi.V2_SWAP.topic0.hex() == "d78ad95fa46c994b6551d0da85fc275fe613ce37657fb8d5e3d130840159d822"
    assert abi.V2_SYNC.topic0.hex() == "1c411e9a96e071241c2f21f7726b17ae89e3cab4c78be50e062b03a9fffbbad1"
    assert abi.V3_SWAP.topic0.hex() == "c42079f94a6350d7e6235f29174924f928cc2ac818eb64fed8004e115fbcca67"
    assert abi.ALGEBRA_FEE.topic0.hex() == "598b9f043c813aa6be3426ca60d1c65d17256312890be5118dab55b0775ebe2a"
    assert len(abi.EVENT_BY_TOPIC0) == 8
    assert abi.DECIMALS.hex() == "313ce567" and abi.TOKEN0.hex() == "0dfe1681"


def test_v2_sync_exact_u112():
    r0, r1 = (1 << 112) - 1, 123456789012345678901234567
    ev = decode_log(mklog(abi.V2_SYNC, [], ["uint112", "uint112"], [r0, r1], ts=1_700_000_000))
    assert isinstance(ev, V2Sync) and (ev.reserve0, ev.reserve1) == (r0, r1)
    rec = to_record(ev, V2)
    assert isinstance(rec, codec.PoolSync)
    assert (rec.reserve0, rec.reserve1, rec.block_number, rec.log_index) == (r0, r1, 7, 3)
    assert (rec.token0, rec.token1, rec.token0_decimals, rec.token1_decimals) == (T0, T1, 18, 6)
    assert rec.block_ts_ns == 1_700_000_000 * 10**9 and rec.venue == 400 and rec.flags == 0
    # survives the wire
    fr = codec.parse_frame(codec.build_frame(1, 4, 1, [rec]))
    assert fr.tlvs[0] == rec


def test_v2_swap_direction_and_amounts():
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [0, 5 * 10**6, 2 * 10**18, 0])
    ev = decode_log(lg)
    assert isinstance(ev, V2Swap) and ev.sender == ALICE and ev.to == BOB
    rec = to_record(ev, V2, block_ts=99)
    assert (rec.amount_in, rec.amount_out) == (5 * 10**6, 2 * 10**18)
    assert (rec.token_in, rec.token_out) == (T1, T0)
    assert (rec.amount_in_decimals, rec.amount_out_decimals) == (6, 18)
    assert rec.flags & EVENT_TOKEN0_IN == 0 and rec.block_ts_ns == 99 * 10**9
    assert rec.sqrt_price_x96_after == 0 and rec.liquidity_after == 0
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [7, 0, 0, 3])
    rec = to_record(decode_log(lg), V2)
    assert rec.flags & EVENT_TOKEN0_IN and (rec.token_in, rec.amount_in, rec.amount_out) == (T0, 7, 3)


def test_v3_swap_signed_amounts_price_tick():
    sp = (1 << 160) - 12345
    lg = mklog(abi.V3_SWAP, [topic_addr(ALICE), topic_addr(BOB)],
               ["int256", "int256", "uint160", "uint128", "int24"],
               [-(10**20), 3 * 10**7, sp, (1 << 128) - 1, -887271])
    ev = decode_log(lg)
    assert isinstance(ev, V3Swap) and ev.amount0 == -(10**20) and ev.tick == -887271
    rec = to_record(ev, V3)
    assert (rec.amount_in, rec.amount_out, rec.token_in) == (3 * 10**7, 10**20, T1)
    assert rec.sqrt_price_x96_after == sp and rec.liquidity_after == (1 << 128) - 1
    assert rec.tick_after == -887271 and rec.venue == 405
    assert (rec.amount_in_decimals, rec.amount_out_decimals) == (18, 8)
    assert codec.parse_frame(codec.build_frame(1, 4, 1, [rec])).tlvs[0] == rec


def test_v3_mint_burn_ticks_from_topics_and_sender_from_data():
    lg = mklog(abi.V3_MINT, [topic_addr(BOB), topic_int(-600), topic_int(600)],
               ["address", "uint128", "uint256", "uint256"], ["0x" + ALICE.hex(), 10**18, 5, 6])
    ev = decode_log(lg)
    assert isinstance(ev, V3Mint) and ev.sender == ALICE and ev.owner == BOB
    rec = to_record(ev, V3)
    assert isinstance(rec, codec.PoolMint)
    assert (rec.tick_lower, rec.tick_upper, rec.liquidity_delta, rec.owner) == (-600, 600, 10**18, BOB)
    lg = mklog(abi.V3_BURN, [topic_addr(BOB), topic_int(-887220), topic_int(887220)],
               ["uint128", "uint256", "uint256"], [77, 1, 2])
    ev = decode_log(lg)
    assert isinstance(ev, V3Burn)
    rec = to_record(ev, V3)
    assert isinstance(rec, codec.PoolBurn) and (rec.tick_lower, rec.tick_upper) == (-887220, 887220)


def test_v2_mint_burn():
    rec = to_record(decode_log(mklog(abi.V2_MINT, [topic_addr(ALICE)], ["uint256", "uint256"], [10, 20])), V2)
    assert isinstance(rec, codec.PoolMint) and (rec.amount0, rec.amount1, rec.owner) == (10, 20, ALICE)
    rec = to_record(decode_log(mklog(abi.V2_BURN, [topic_addr(ALICE), topic_addr(BOB)],
                                     ["uint256", "uint256"], [3, 4])), V2)
    assert isinstance(rec, codec.PoolBurn) and (rec.amount0, rec.amount1) == (3, 4)


def test_web3_formatted_log_decodes_identically():
    from hexbytes import HexBytes
    lg = mklog(abi.V2_SYNC, [], ["uint112", "uint112"], [5, 6])
    fmt = dict(lg, topics=[HexBytes(t) for t in lg["topics"]], data=HexBytes(lg["data"]),
               blockNumber=7, logIndex=3, blockHash=HexBytes(lg["blockHash"]))
    assert decode_log(fmt) == decode_log(lg)


def test_removed_flag():
    ev = decode_log(mklog(abi.V2_SYNC, [], ["uint112", "uint112"], [5, 6], removed=True))
    assert ev.removed and to_record(ev, V2).flags == EVENT_REMOVED
    rec = to_record(decode_log(mklog(abi.V2_SYNC, [], ["uint112", "uint112"], [5, 6])), V2)
    assert as_removed(rec).flags == EVENT_REMOVED and as_removed(rec).reserve0 == 5


@pytest.mark.parametrize("mutate,reason", [
    (lambda lg: lg.update(topics=["0x" + "ee" * 32]), "unknown_topic"),
    (lambda lg: lg.update(topics=[]), "no_topics"),
    (lambda lg: lg.update(data=lg["data"][:-2]), "bad_data_length"),
    (lambda lg: lg.update(data=lg["data"] + "00" * 32), "bad_data_length"),
    (lambda lg: lg.update(data="0x" + "zz" * 64), "bad_hex"),
    (lambda lg: lg.update(data="0x" + "+1" * 64), "bad_hex"),
    (lambda lg: lg.update(data="0x" + " 1" * 64), "bad_hex"),
    (lambda lg: lg.update(data="0x" + "\u0663" * 128), "bad_hex"),
    (lambda lg: lg.update(data="0x123"), "bad_hex"),
    (lambda lg: lg.update(address="0x1234"), "bad_field"),
    (lambda lg: lg.update(topics=["0x" + "1c" * 31]), "unknown_topic"),
    (lambda lg: lg.update(topics=lg["topics"] + ["0x" + "00" * 32]), "bad_topic_count"),
    (lambda lg: lg.update(blockNumber=None), "pending_log"),
    (lambda lg: lg.pop("data"), "bad_log"),
    # a Sync word above uint112 is malformed, not truncated
    (lambda lg: lg.update(data="0x" + encode(["uint256", "uint256"], [1 << 112, 1]).hex()), "bad_data"),
])
def test_malformed_logs_raise_decode_error_with_reason(mutate, reason):
    lg = mklog(abi.V2_SYNC, [], ["uint112", "uint112"], [5, 6])
    mutate(lg)
    with pytest.raises(DecodeError) as ei:
        decode_log(lg)
    assert ei.value.reason == reason


def test_dispatch_is_on_topic0_not_on_data_length():
    # a V2 Mint's data (2 words) under the V2 Sync topic decodes as Sync; a Sync's data
    # under the V2 Swap topic (4 words expected) is an error, not a guess
    lg = mklog(abi.V2_SYNC, [], ["uint256", "uint256"], [1, 2])
    assert isinstance(decode_log(lg), V2Sync)
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint112", "uint112"], [1, 2])
    with pytest.raises(DecodeError) as ei:
        decode_log(lg)
    assert ei.value.reason == "bad_data_length"


def test_amount_beyond_u128_is_a_counted_error_not_a_truncation():
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [1 << 130, 0, 0, 1])
    with pytest.raises(DecodeError) as ei:
        to_record(decode_log(lg), V2)
    assert ei.value.reason == "amount_out_of_range"


def test_bad_indexed_address_topic():
    lg = mklog(abi.V2_SWAP, ["0x" + "ff" * 32, topic_addr(BOB)], ["uint256"] * 4, [0, 1, 1, 0])
    with pytest.raises(DecodeError) as ei:
        decode_log(lg)
    assert ei.value.reason == "bad_topic"


def test_swap_without_a_direction_is_a_counted_error():
    # V3: both amounts paid in (impossible for a real pool) - not guessed
    lg = mklog(abi.V3_SWAP, [topic_addr(ALICE), topic_addr(BOB)],
               ["int256", "int256", "uint160", "uint128", "int24"], [5, 7, 2**96, 1, 0])
    with pytest.raises(DecodeError) as ei:
        to_record(decode_log(lg), V3)
    assert ei.value.reason == "swap_without_direction"
    # V2: a flash swap that paid into both sides nets to a direction; a net gain of both does not
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [10, 3, 4, 5])
    rec = to_record(decode_log(lg), V2)
    assert (rec.token_in, rec.amount_in, rec.amount_out) == (T0, 6, 2)
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [10, 3, 4, 2])
    with pytest.raises(DecodeError):
        to_record(decode_log(lg), V2)
    lg = mklog(abi.V2_SWAP, [topic_addr(ALICE), topic_addr(BOB)], ["uint256"] * 4, [0, 0, 0, 0])
    with pytest.raises(DecodeError):
        to_record(decode_log(lg), V2)


def test_snapshots_pack_into_frames_under_the_payload_limit():
    from alphapulse.adapters.evm.data import FramePublisher
    from alphapulse.protocol.layout import MAX_FRAME
    out = []
    pub = FramePublisher(out.extend)
    state = codec.PoolState(pool=POOL, token0=T0, token1=T1, pool_kind=2, tick_spacing=10)
    ticks = [codec.PoolTick(liquidity_net=(-1) ** i * 10**20, tick=i * 10, pool=POOL) for i in range(3000)]
    pub.add_packed([state] + ticks)
    pub.flush()
    assert len(out) == 3 and all(len(f) <= MAX_FRAME for f in out)
    recs = [t for f in out for t in codec.parse_frame(f).tlvs]
    assert recs == [state] + ticks
    assert [codec.parse_frame(f).header.sequence for f in out] == [1, 2, 3]


def test_tick_coverage_narrows_to_the_ticks_nearest_the_price():
    from alphapulse.adapters.evm.providers import MAX_TICKS_PER_FRAME, _nearest
    from alphapulse.protocol import layout as L
    ticks = list(range(-600, 601, 60))                     # 21 initialised ticks
    assert _nearest(ticks, 0, 5, (-1000, 1000)) == ([-120, -60, 0, 60, 120], (-179, 179))
    assert _nearest(ticks, -590, 3, (-1000, 1000)) == ([-600, -540, -480], (-1000, -421))
    assert _nearest(ticks, 900, 2, (-1000, 1000)) == ([540, 600], (481, 1000))
    # a snapshot of that many ticks still fits one frame with its PoolState and TickCoverage
    room = L.MAX_PAYLOAD - (L.POOL_STATE.size + 2) - (L.TICK_COVERAGE.size + 2)
    assert MAX_TICKS_PER_FRAME * (L.POOL_TICK.size + 2) <= room < (MAX_TICKS_PER_FRAME + 1) * (L.POOL_TICK.size + 2)
