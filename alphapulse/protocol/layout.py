"""The one declaration of Protocol V2 layouts (``shared/PROTOCOL.md``).

Every other place that needs a size or an offset (the Python codec, the Numba
kernels in ``alphapulse.jit``, the docs and the tests) derives it from the
tables below. Change a layout here and nowhere else.

Integers are little-endian and unaligned on the wire. Wide integers (u128,
i128, u256) travel as 16/16/32 little-endian bytes; in numpy they are held as
little-endian uint64 limbs (limb 0 least significant), i128 in two's
complement.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

# ---------------------------------------------------------------- header
MAGIC = 0xDEADBEEF
VERSION = 1
HEADER_SIZE = 32
MAX_PAYLOAD = 65_504
MAX_FRAME = HEADER_SIZE + MAX_PAYLOAD
HEADER_STRUCT = "<IBBBBQQII"
FLAG_REPLAYED = 0x20
CHECKSUM_OFFSET = 28

# pool-event flags (inside TLV values)
EVENT_REMOVED = 0x01
EVENT_TOKEN0_IN = 0x02
# ArbitrageSignal flags
SIGNAL_UNPRICED = 0x01      # no price path to the stable coin: USD fields are 0
SIGNAL_INTRA_BLOCK = 0x02   # priced between two events of one block: never tradable
# PoolFee.log_index when the fee was read from state, not from an event
LOG_INDEX_FROM_STATE = 0xFFFF_FFFF

TLV_EXTENDED_MARKER = 0xFF
TLV_STD_HEADER = 2
TLV_EXT_HEADER = 5
TLV_STD_MAX = 255
TLV_EXT_MAX = 65_535


class Domain(IntEnum):
    MARKET_DATA = 1
    SIGNAL = 2
    EXECUTION = 3
    SYSTEM = 4


class Source(IntEnum):
    POLYGON_COLLECTOR = 4
    IMPORTER = 5
    ARBITRAGE_STRATEGY = 20
    PORTFOLIO = 40
    RISK = 41
    EXECUTION_ENGINE = 42
    DASHBOARD = 60
    METRICS = 61
    STATE_MANAGER = 62
    RELAY_MARKET = 80
    RELAY_SIGNAL = 81
    RELAY_EXECUTION = 82
    RECORDER = 90


class Venue(IntEnum):
    ETHEREUM = 200
    POLYGON = 202
    UNISWAP_V2 = 300
    UNISWAP_V3 = 301
    SUSHISWAP = 302
    QUICKSWAP = 400
    SUSHISWAP_POLYGON = 401
    UNISWAP_V3_POLYGON = 405
    QUICKSWAP_V3 = 406
    SUSHISWAP_V3_POLYGON = 407
    TEST = 65000


class PoolKind(IntEnum):
    CONSTANT_PRODUCT = 1
    CONCENTRATED = 2
    CONCENTRATED_DYNAMIC_FEE = 3   # Algebra family (QuickSwap V3): fee from PoolFee/globalState


class RefreshReason(IntEnum):
    """PoolRefresh.reason: why a reader asks the source for a pool's full state."""
    UNKNOWN_TICK = 1        # an event touched a tick outside the known tick set
    NEGATIVE_LIQUIDITY = 2  # applying an event would make liquidity negative
    NO_TICK_DATA = 3
    STALE = 4               # state older than allowed


class ExecutionStatus(IntEnum):
    """ExecutionReport.status."""
    CONFIRMED = 1
    CHANGED = 2
    UNPROFITABLE = 3
    REVERTED = 4
    SENT = 5
    INCLUDED = 6
    FAILED = 7


class ExecutionMethod(IntEnum):
    """ExecutionReport.method."""
    ETH_CALL = 1
    IN_PROCESS_EVM = 2
    TRANSACTION = 3


class Reject(IntEnum):
    """Why a frame was rejected. Shared by the Python codec and the kernels."""
    OK = 0
    TRUNCATED_HEADER = 1      # fewer than 32 bytes available
    BAD_MAGIC = 2
    BAD_VERSION = 3
    BAD_DOMAIN = 4
    PAYLOAD_TOO_LARGE = 5     # payload_size > MAX_PAYLOAD
    TRUNCATED_PAYLOAD = 6     # payload_size > bytes available
    TLV_OVERRUN = 7           # a TLV header or value runs past payload_size
    BAD_TLV_SIZE = 8          # fixed-size TLV with the wrong length
    BAD_CHECKSUM = 9


def domain_of_type(tlv_type: int) -> int:
    """Relay domain a TLV type routes to (PROTOCOL.md section 2); 0 = vendor/none."""
    if 1 <= tlv_type <= 19:
        return Domain.MARKET_DATA
    if 20 <= tlv_type <= 39 or 60 <= tlv_type <= 79:
        return Domain.SIGNAL
    if 40 <= tlv_type <= 59:
        return Domain.EXECUTION
    if 100 <= tlv_type <= 119:
        return Domain.SYSTEM
    return 0


# ---------------------------------------------------------------- fields
# kind -> (bytes per element, numpy dtype of one element as held in arrays,
#          limbs: number of uint64 limbs for wide ints, else 0)
KINDS: dict[str, tuple[int, str, int]] = {
    "u8": (1, "<u1", 0),
    "u16": (2, "<u2", 0),
    "i16": (2, "<i2", 0),
    "u32": (4, "<u4", 0),
    "i32": (4, "<i4", 0),
    "u64": (8, "<u8", 0),
    "i64": (8, "<i8", 0),
    "u128": (16, "<u8", 2),
    "i128": (16, "<u8", 2),
    "u256": (32, "<u8", 4),
    "address": (20, "<u1", 0),
    "bytes32": (32, "<u1", 0),
    "pad": (1, "<u1", 0),
}
WIDE_KINDS = ("u128", "i128", "u256")
# Opaque byte strings (addresses, hashes): raw bytes on the wire and in the codec.
BYTES_KINDS = ("address", "bytes32")
SIGNED_KINDS = ("i16", "i32", "i64", "i128")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    count: int = 1          # >1 for fixed arrays (ArbitrageSignal venues, pools...) or pad bytes
    offset: int = -1        # filled in by TlvLayout

    @property
    def elem_size(self) -> int:
        return KINDS[self.kind][0]

    @property
    def size(self) -> int:
        return self.elem_size * self.count

    @property
    def is_pad(self) -> bool:
        return self.kind == "pad"


@dataclass(frozen=True)
class TlvLayout:
    type_id: int
    name: str
    fields: tuple[Field, ...]
    size: int = field(init=False)

    def __post_init__(self) -> None:
        off = 0
        placed = []
        for f in self.fields:
            placed.append(Field(f.name, f.kind, f.count, off))
            off += f.size
        object.__setattr__(self, "fields", tuple(placed))
        object.__setattr__(self, "size", off)

    @property
    def domain(self) -> int:
        return domain_of_type(self.type_id)

    @property
    def data_fields(self) -> tuple[Field, ...]:
        return tuple(f for f in self.fields if not f.is_pad)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    def offset(self, name: str) -> int:
        return self.field(name).offset

    def dtype(self) -> np.dtype:
        """Packed structured dtype of the wire value (wide ints as uint64 limbs)."""
        names, formats, offsets = [], [], []
        for f in self.data_fields:
            _, np_elem, limbs = KINDS[f.kind]
            if f.kind in BYTES_KINDS:
                n = KINDS[f.kind][0]
                shape: tuple[int, ...] = (f.count, n) if f.count > 1 else (n,)
            elif limbs:
                shape = (f.count, limbs) if f.count > 1 else (limbs,)
            else:
                shape = (f.count,) if f.count > 1 else ()
            names.append(f.name)
            formats.append((np_elem, shape) if shape else np_elem)
            offsets.append(f.offset)
        return np.dtype({"names": names, "formats": formats,
                         "offsets": offsets, "itemsize": self.size})


def _f(name: str, kind: str, count: int = 1) -> Field:
    return Field(name, kind, count)


def _pad(n: int) -> Field:
    return Field("_pad", "pad", n)


TRADE = TlvLayout(1, "Trade", (
    _f("asset_id", "u64"), _f("price", "i64"), _f("volume", "i64"), _f("ts_ns", "u64"),
    _f("venue", "u16"), _f("asset_type", "u8"), _f("reserved", "u8"), _f("side", "u8"),
    _pad(3),
))
QUOTE = TlvLayout(2, "Quote", (
    _f("asset_id", "u64"), _f("bid", "i64"), _f("bid_size", "i64"), _f("ask", "i64"),
    _f("ask_size", "i64"), _f("ts_ns", "u64"), _f("venue", "u16"), _f("asset_type", "u8"),
    _f("reserved", "u8"), _pad(4),
))
POOL_SWAP = TlvLayout(11, "PoolSwap", (
    _f("amount_in", "u128"), _f("amount_out", "u128"), _f("sqrt_price_x96_after", "u256"),
    _f("liquidity_after", "u128"), _f("block_number", "u64"), _f("block_ts_ns", "u64"),
    _f("log_index", "u32"), _f("tick_after", "i32"), _f("venue", "u16"),
    _f("amount_in_decimals", "u8"), _f("amount_out_decimals", "u8"), _f("flags", "u8"),
    _pad(3), _f("pool", "address"), _f("token_in", "address"), _f("token_out", "address"),
))
_MINT_BURN_FIELDS = (
    _f("liquidity_delta", "u128"), _f("amount0", "u128"), _f("amount1", "u128"),
    _f("block_number", "u64"), _f("block_ts_ns", "u64"), _f("log_index", "u32"),
    _f("tick_lower", "i32"), _f("tick_upper", "i32"), _f("venue", "u16"),
    _f("token0_decimals", "u8"), _f("token1_decimals", "u8"), _f("flags", "u8"), _pad(3),
    _f("pool", "address"), _f("owner", "address"), _f("token0", "address"),
    _f("token1", "address"),
)
POOL_MINT = TlvLayout(12, "PoolMint", _MINT_BURN_FIELDS)
POOL_BURN = TlvLayout(13, "PoolBurn", _MINT_BURN_FIELDS)
POOL_TICK = TlvLayout(14, "PoolTick", (
    _f("liquidity_net", "i128"), _f("block_number", "u64"), _f("tick", "i32"),
    _f("venue", "u16"), _f("flags", "u8"), _pad(1), _f("pool", "address"),
))
POOL_STATE = TlvLayout(15, "PoolState", (
    _f("reserve0", "u128"), _f("reserve1", "u128"), _f("sqrt_price_x96", "u256"),
    _f("liquidity", "u128"), _f("block_number", "u64"), _f("block_ts_ns", "u64"),
    _f("tick", "i32"), _f("fee_pips", "u32"), _f("venue", "u16"), _f("pool_kind", "u8"),
    _f("token0_decimals", "u8"), _f("token1_decimals", "u8"), _f("flags", "u8"),
    _f("tick_spacing", "i16"), _f("pool", "address"), _f("token0", "address"),
    _f("token1", "address"),
))
POOL_SYNC = TlvLayout(16, "PoolSync", (
    _f("reserve0", "u128"), _f("reserve1", "u128"), _f("block_number", "u64"),
    _f("block_ts_ns", "u64"), _f("log_index", "u32"), _f("venue", "u16"),
    _f("token0_decimals", "u8"), _f("token1_decimals", "u8"), _f("flags", "u8"), _pad(3),
    _f("pool", "address"), _f("token0", "address"), _f("token1", "address"),
))
GAS_PRICE = TlvLayout(18, "GasPrice", (
    _f("base_fee_wei", "u64"), _f("priority_fee_wei", "u64"), _f("block_number", "u64"),
    _f("block_ts_ns", "u64"), _f("chain_id", "u32"), _pad(4),
))
ARBITRAGE_SIGNAL = TlvLayout(32, "ArbitrageSignal", (
    _f("amount_in", "u128"), _f("amount_out", "u128"), _f("gas_cost_wei", "u128"),
    _f("net_profit_usd_e8", "i64"), _f("gross_profit_usd_e8", "i64"),
    _f("gas_cost_usd_e8", "i64"), _f("block_number", "u64"), _f("trigger_ts_ns", "u64"),
    _f("signal_id", "u64"), _f("chain_id", "u32"), _f("strategy_id", "u16"),
    _f("hops", "u8"), _f("flags", "u8"), _f("venues", "u16", 3), _pad(2),
    _f("fees_pips", "u32", 3), _f("spread_bps", "i32"), _f("pools", "address", 3),
    _f("tokens", "address", 3),
))
TICK_COVERAGE = TlvLayout(10, "TickCoverage", (
    _f("block_number", "u64"), _f("tick_lower", "i32"), _f("tick_upper", "i32"),
    _f("pool", "address"),
))
POOL_FEE = TlvLayout(17, "PoolFee", (
    _f("block_number", "u64"), _f("block_ts_ns", "u64"), _f("log_index", "u32"),
    _f("fee_pips", "u32"), _f("venue", "u16"), _f("flags", "u8"), _pad(1),
    _f("pool", "address"),
))
BLOCK_END = TlvLayout(19, "BlockEnd", (
    _f("block_number", "u64"), _f("block_ts_ns", "u64"), _f("event_count", "u32"),
    _f("chain_id", "u32"), _f("block_hash", "bytes32"),
))
EXECUTION_REPORT = TlvLayout(40, "ExecutionReport", (
    _f("signal_id", "u64"), _f("checked_block", "u64"), _f("signal_block", "u64"),
    _f("trigger_ts_ns", "u64"), _f("done_ts_ns", "u64"), _f("amount_in", "u128"),
    _f("amount_out_signal", "u128"), _f("amount_out_checked", "u128"), _f("gas_used", "u64"),
    _f("gas_price_wei", "u64"), _f("net_profit_usd_e8", "i64"), _f("chain_id", "u32"),
    _f("strategy_id", "u16"), _f("status", "u8"), _f("method", "u8"), _f("tx_hash", "bytes32"),
))
HEARTBEAT = TlvLayout(100, "Heartbeat", (
    _f("timestamp_ns", "u64"), _f("frames_published", "u64"),
))
POOL_REFRESH = TlvLayout(101, "PoolRefresh", (
    _f("pool", "address"), _f("reason", "u8"), _pad(3), _f("block_number", "u64"),
))

LAYOUTS: dict[int, TlvLayout] = {t.type_id: t for t in (
    TRADE, QUOTE, TICK_COVERAGE, POOL_SWAP, POOL_MINT, POOL_BURN, POOL_TICK, POOL_STATE,
    POOL_SYNC, POOL_FEE, GAS_PRICE, BLOCK_END, ARBITRAGE_SIGNAL, EXECUTION_REPORT, HEARTBEAT,
    POOL_REFRESH,
)}
BY_NAME: dict[str, TlvLayout] = {t.name: t for t in LAYOUTS.values()}

# Fixed size per TLV type, 0 for types without a declared layout (skipped by
# length). Index by type byte; the kernels use this array directly.
FIXED_SIZE = np.zeros(256, dtype=np.int32)
for _t in LAYOUTS.values():
    FIXED_SIZE[_t.type_id] = _t.size
FIXED_SIZE.setflags(write=False)


def offsets(layout: TlvLayout) -> dict[str, int]:
    """Field name -> byte offset inside the TLV value (pads excluded)."""
    return {f.name: f.offset for f in layout.data_fields}
