"""Log dict -> typed event -> Protocol V2 record. Exact integers, no float anywhere.

Dispatch is on topic0 only; the data length and the topic count are then
*checked* against that event's ABI (a mismatch is a counted decode error, never
a reason to try another event). Logs may come raw from JSON-RPC (hex strings)
or formatted by web3 (HexBytes, ints); both are accepted.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping, Protocol

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.abi import AbiError, EventSpec, hex_to_bytes
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED, EVENT_TOKEN0_IN

U128 = 1 << 128
NS_PER_S = 1_000_000_000


class DecodeError(AbiError):
    """A log that cannot become a record; ``reason`` is the counter key."""


# ---------------------------------------------------------------- typed events
@dataclass(frozen=True, slots=True)
class EvmEvent:
    """Common part of every decoded pool log (block_ts in seconds, 0 when unknown)."""
    spec: EventSpec
    pool: bytes
    block_number: int
    log_index: int
    block_hash: bytes
    block_ts: int
    removed: bool

    @property
    def key(self) -> tuple[int, int]:
        return (self.block_number, self.log_index)


@dataclass(frozen=True, slots=True)
class V2Swap(EvmEvent):
    sender: bytes
    to: bytes
    amount0_in: int
    amount1_in: int
    amount0_out: int
    amount1_out: int


@dataclass(frozen=True, slots=True)
class V2Sync(EvmEvent):
    reserve0: int
    reserve1: int


@dataclass(frozen=True, slots=True)
class V2Mint(EvmEvent):
    sender: bytes
    amount0: int
    amount1: int


@dataclass(frozen=True, slots=True)
class V2Burn(EvmEvent):
    sender: bytes
    to: bytes
    amount0: int
    amount1: int


@dataclass(frozen=True, slots=True)
class V3Swap(EvmEvent):
    sender: bytes
    recipient: bytes
    amount0: int          # int256: > 0 paid into the pool
    amount1: int
    sqrt_price_x96: int   # uint160
    liquidity: int        # uint128
    tick: int             # int24


@dataclass(frozen=True, slots=True)
class V3Mint(EvmEvent):
    sender: bytes
    owner: bytes
    tick_lower: int
    tick_upper: int
    amount: int           # liquidity, uint128
    amount0: int
    amount1: int


@dataclass(frozen=True, slots=True)
class V3Burn(EvmEvent):
    owner: bytes
    tick_lower: int
    tick_upper: int
    amount: int
    amount0: int
    amount1: int


@dataclass(frozen=True, slots=True)
class AlgebraFee(EvmEvent):
    """Algebra's ``Fee(uint16 fee)``: the fee in force from this log on (pips)."""
    fee: int


# ---------------------------------------------------------------- decoding
def _int(v: Any, what: str) -> int:
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 16)
        except ValueError:
            raise DecodeError("bad_field", f"{what}={v!r} is not a hex quantity") from None
    if v is None:
        raise DecodeError("pending_log", f"{what} missing (pending log)")
    raise DecodeError("bad_field", f"{what} has type {type(v).__name__}")


_BAD_TOPIC = "bad_topic"


def _topic_word(t: Any, what: str) -> int:
    """A 32-byte topic as an unsigned int (hex str from JSON-RPC, or bytes from web3)."""
    if isinstance(t, str):
        h = t[2:] if t[:2] in ("0x", "0X") else t
        if len(h) != 64 or not (h.isascii() and h.isalnum()):
            raise DecodeError(_BAD_TOPIC, f"{what}: topic {t!r} is not 32 bytes of hex")
        try:
            return int(h, 16)
        except ValueError:
            raise DecodeError("bad_hex", f"{what}: topic {t!r}") from None
    b = bytes(t)
    if len(b) != 32:
        raise DecodeError(_BAD_TOPIC, f"{what}: topic of {len(b)} bytes")
    return int.from_bytes(b, "big")


def _topic_address(t: Any, what: str) -> bytes:
    v = _topic_word(t, what)
    if v >> 160:
        raise DecodeError(_BAD_TOPIC, f"{what}: topic 0x{v:064x} is not an address")
    return v.to_bytes(20, "big")


def _topic_int24(t: Any, what: str) -> int:
    v = _topic_word(t, what)
    if v >> 255:
        v -= 1 << 256
    if not -(1 << 23) <= v < 1 << 23:
        raise DecodeError(_BAD_TOPIC, f"{what}: {v} does not fit int24")
    return v


def _data_words(raw: Any, spec: EventSpec) -> list[int]:
    """The ABI words of a log's data as unsigned ints; exactly ``spec.data_words`` of them."""
    want = spec.data_words
    if isinstance(raw, str):
        h = raw[2:] if raw[:2] in ("0x", "0X") else raw
        # isascii+isalnum first: int() alone would accept "+", "_", spaces and non-ASCII digits
        if len(h) % 2 or not (h.isascii() and (h.isalnum() or not h)):
            raise DecodeError("bad_hex", f"{spec.name}: data is not hex")
        if len(h) != want * 64:
            raise DecodeError("bad_data_length",
                              f"{spec.name}: {len(h) // 2} data bytes, ABI has {want * 32}")
        try:
            return [int(h[i:i + 64], 16) for i in range(0, len(h), 64)]
        except ValueError:
            raise DecodeError("bad_hex", f"{spec.name}: data is not hex") from None
    b = bytes(raw)
    if len(b) != want * 32:
        raise DecodeError("bad_data_length", f"{spec.name}: {len(b)} data bytes, ABI has {want * 32}")
    return [int.from_bytes(b[i:i + 32], "big") for i in range(0, len(b), 32)]


def _u(w: list[int], i: int, bits: int, what: str) -> int:
    v = w[i]
    if v >> bits:
        raise DecodeError("bad_data", f"{what}: {v} does not fit uint{bits}")
    return v


def _i(w: list[int], i: int, bits: int, what: str) -> int:
    v = w[i]
    if v >> 255:
        v -= 1 << 256
    if bits < 256 and not -(1 << (bits - 1)) <= v < 1 << (bits - 1):
        raise DecodeError("bad_data", f"{what}: {v} does not fit int{bits}")
    return v


def _a(w: list[int], i: int, what: str) -> bytes:
    v = w[i]
    if v >> 160:
        raise DecodeError("bad_data", f"{what}: word 0x{v:064x} is not an address")
    return v.to_bytes(20, "big")


def _spec_of(t0: Any) -> EventSpec:
    if isinstance(t0, str):
        spec = abi.EVENT_BY_TOPIC0_HEX.get(t0) or abi.EVENT_BY_TOPIC0_HEX.get(t0.lower())
        if spec is None:
            raise DecodeError("unknown_topic", f"topic0 {t0}")
        return spec
    spec = abi.EVENT_BY_TOPIC0.get(bytes(t0))
    if spec is None:
        raise DecodeError("unknown_topic", f"topic0 0x{bytes(t0).hex()}")
    return spec


def _address(v: Any) -> bytes:
    try:
        b = hex_to_bytes(v)
    except (ValueError, TypeError):
        raise DecodeError("bad_hex", f"address {v!r}") from None
    if len(b) != 20:
        raise DecodeError("bad_field", f"address of {len(b)} bytes")
    return b


def decode_log(log: Mapping[str, Any]) -> EvmEvent:
    """Typed event of one log; raises :class:`DecodeError` (reason = counter key)."""
    try:
        topics = log["topics"]
        raw_data = log["data"]
        address = log["address"]
    except (KeyError, TypeError) as e:
        raise DecodeError("bad_log", f"missing field {e}") from None
    if not topics:
        raise DecodeError("no_topics", "anonymous log")
    spec = _spec_of(topics[0])
    if len(topics) != spec.n_topics:
        raise DecodeError("bad_topic_count", f"{spec.name}: {len(topics)} topics, ABI has {spec.n_topics}")
    w = _data_words(raw_data, spec)
    pool = _address(address)
    bn = _int(log.get("blockNumber"), "blockNumber")
    li = _int(log.get("logIndex"), "logIndex")
    bh = log.get("blockHash")
    try:
        bh = hex_to_bytes(bh) if bh is not None else b""
    except ValueError:
        raise DecodeError("bad_hex", f"blockHash {bh!r}") from None
    ts = log.get("blockTimestamp")
    ts = _int(ts, "blockTimestamp") if ts is not None else 0
    removed = bool(log.get("removed", False))
    common = (spec, pool, bn, li, bh, ts, removed)
    tp = topics
    if spec is abi.V2_SYNC:
        return V2Sync(*common, _u(w, 0, 112, "reserve0"), _u(w, 1, 112, "reserve1"))
    if spec is abi.V2_SWAP:
        return V2Swap(*common, _topic_address(tp[1], "sender"), _topic_address(tp[2], "to"),
                      w[0], w[1], w[2], w[3])
    if spec is abi.V3_SWAP:
        return V3Swap(*common, _topic_address(tp[1], "sender"), _topic_address(tp[2], "recipient"),
                      _i(w, 0, 256, "amount0"), _i(w, 1, 256, "amount1"),
                      _u(w, 2, 160, "sqrtPriceX96"), _u(w, 3, 128, "liquidity"), _i(w, 4, 24, "tick"))
    if spec is abi.V2_MINT:
        return V2Mint(*common, _topic_address(tp[1], "sender"), w[0], w[1])
    if spec is abi.V2_BURN:
        return V2Burn(*common, _topic_address(tp[1], "sender"), _topic_address(tp[2], "to"), w[0], w[1])
    if spec is abi.V3_MINT:
        return V3Mint(*common, _a(w, 0, "sender"), _topic_address(tp[1], "owner"),
                      _topic_int24(tp[2], "tickLower"), _topic_int24(tp[3], "tickUpper"),
                      _u(w, 1, 128, "amount"), w[2], w[3])
    if spec is abi.V3_BURN:
        return V3Burn(*common, _topic_address(tp[1], "owner"),
                      _topic_int24(tp[2], "tickLower"), _topic_int24(tp[3], "tickUpper"),
                      _u(w, 0, 128, "amount"), w[1], w[2])
    if spec is abi.ALGEBRA_FEE:
        return AlgebraFee(*common, _u(w, 0, 16, "fee"))
    raise AssertionError(f"event {spec.name} has no decoder")  # EVENTS and this function disagree


# ---------------------------------------------------------------- records
class PoolLike(Protocol):
    """What a record needs to know about its pool (see providers.PoolInfo)."""
    address: bytes
    kind: int
    venue: int
    token0: bytes
    token1: bytes
    decimals0: int
    decimals1: int


def _u128(v: int, what: str) -> int:
    if not 0 <= v < U128:
        raise DecodeError("amount_out_of_range", f"{what}={v} does not fit u128")
    return v


def _direction(net0: int, net1: int, name: str) -> tuple[bool, int, int]:
    """(token0_in, amount_in, amount_out) from the pool's net inflows of token0/token1."""
    if net0 > 0 and net1 <= 0:
        return True, _u128(net0, "amount_in"), _u128(-net1, "amount_out")
    if net1 > 0 and net0 <= 0:
        return False, _u128(net1, "amount_in"), _u128(-net0, "amount_out")
    raise DecodeError("swap_without_direction", f"{name}: net inflows {net0}, {net1}")


def to_record(ev: EvmEvent, pool: PoolLike, block_ts: int = 0) -> Any:
    """The Protocol V2 record of a decoded event of a known pool.

    ``block_ts`` (seconds) is used when the log itself carried no timestamp.
    Amounts must fit u128 (PROTOCOL.md); a wider one is a counted DecodeError.
    """
    ts_ns = (ev.block_ts or block_ts) * NS_PER_S
    flags = EVENT_REMOVED if ev.removed else 0
    t = type(ev)
    if t is V2Sync:
        return codec.PoolSync(reserve0=ev.reserve0, reserve1=ev.reserve1, block_number=ev.block_number,
                              block_ts_ns=ts_ns, log_index=ev.log_index, venue=pool.venue,
                              token0_decimals=pool.decimals0, token1_decimals=pool.decimals1,
                              flags=flags, pool=ev.pool, token0=pool.token0, token1=pool.token1)
    if t is V2Swap or t is V3Swap:
        if t is V2Swap:
            t0_in, a_in, a_out = _direction(ev.amount0_in - ev.amount0_out,
                                            ev.amount1_in - ev.amount1_out, ev.spec.name)
            sqrt_p = liq = tick = 0
        else:
            t0_in, a_in, a_out = _direction(ev.amount0, ev.amount1, ev.spec.name)
            sqrt_p, liq, tick = ev.sqrt_price_x96, ev.liquidity, ev.tick
        if t0_in:
            flags |= EVENT_TOKEN0_IN
            tin, tout, din, dout = pool.token0, pool.token1, pool.decimals0, pool.decimals1
        else:
            tin, tout, din, dout = pool.token1, pool.token0, pool.decimals1, pool.decimals0
        return codec.PoolSwap(amount_in=a_in, amount_out=a_out, sqrt_price_x96_after=sqrt_p,
                              liquidity_after=liq, block_number=ev.block_number, block_ts_ns=ts_ns,
                              log_index=ev.log_index, tick_after=tick, venue=pool.venue,
                              amount_in_decimals=din, amount_out_decimals=dout, flags=flags,
                              pool=ev.pool, token_in=tin, token_out=tout)
    if t is V2Mint or t is V2Burn:
        cls = codec.PoolMint if t is V2Mint else codec.PoolBurn
        return cls(liquidity_delta=0, amount0=_u128(ev.amount0, "amount0"),
                   amount1=_u128(ev.amount1, "amount1"), block_number=ev.block_number,
                   block_ts_ns=ts_ns, log_index=ev.log_index, tick_lower=0, tick_upper=0,
                   venue=pool.venue, token0_decimals=pool.decimals0, token1_decimals=pool.decimals1,
                   flags=flags, pool=ev.pool, owner=ev.sender, token0=pool.token0, token1=pool.token1)
    if t is V3Mint or t is V3Burn:
        cls = codec.PoolMint if t is V3Mint else codec.PoolBurn
        return cls(liquidity_delta=ev.amount, amount0=_u128(ev.amount0, "amount0"),
                   amount1=_u128(ev.amount1, "amount1"), block_number=ev.block_number,
                   block_ts_ns=ts_ns, log_index=ev.log_index, tick_lower=ev.tick_lower,
                   tick_upper=ev.tick_upper, venue=pool.venue, token0_decimals=pool.decimals0,
                   token1_decimals=pool.decimals1, flags=flags, pool=ev.pool, owner=ev.owner,
                   token0=pool.token0, token1=pool.token1)
    if t is AlgebraFee:
        return codec.PoolFee(block_number=ev.block_number, block_ts_ns=ts_ns, log_index=ev.log_index,
                             fee_pips=ev.fee, venue=pool.venue, flags=flags, pool=ev.pool)
    raise AssertionError(f"no record for {t.__name__}")


def as_removed(record: Any) -> Any:
    """The same pool-event record with the removed flag (0x01) set: the reader undoes it."""
    return replace(record, flags=record.flags | EVENT_REMOVED)
