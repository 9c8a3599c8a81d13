"""Event signatures (topic0) and the eth_call ABIs the adapter uses, decoded exactly.

Everything is computed from the Solidity signatures below, so a typo cannot
silently produce a wrong selector. Return data is decoded strictly: a word
that does not fit its declared type is an error, never truncated.
"""
from __future__ import annotations

from dataclasses import dataclass

from eth_utils import keccak

WORD = 32
UINT256_MAX = (1 << 256) - 1
MIN_TICK = -887272
MAX_TICK = 887272


class AbiError(ValueError):
    """Return data or event data that does not match its ABI; ``reason`` is a short counter key."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# ---------------------------------------------------------------- events
@dataclass(frozen=True)
class EventSpec:
    name: str            # our name, also the counter key
    family: str          # "v2" or "v3"
    signature: str
    n_topics: int        # including topic0
    data_words: int

    @property
    def counter(self) -> str:
        return f"published_{self.name}"

    @property
    def topic0(self) -> bytes:
        return keccak(text=self.signature)

    @property
    def topic0_hex(self) -> str:
        return "0x" + self.topic0.hex()


V2_SWAP = EventSpec("v2_swap", "v2", "Swap(address,uint256,uint256,uint256,uint256,address)", 3, 4)
V2_SYNC = EventSpec("v2_sync", "v2", "Sync(uint112,uint112)", 1, 2)
V2_MINT = EventSpec("v2_mint", "v2", "Mint(address,uint256,uint256)", 2, 2)
V2_BURN = EventSpec("v2_burn", "v2", "Burn(address,uint256,uint256,address)", 3, 2)
V3_SWAP = EventSpec("v3_swap", "v3", "Swap(address,address,int256,int256,uint160,uint128,int24)", 3, 5)
V3_MINT = EventSpec("v3_mint", "v3", "Mint(address,address,int24,int24,uint128,uint256,uint256)", 4, 4)
V3_BURN = EventSpec("v3_burn", "v3", "Burn(address,int24,int24,uint128,uint256,uint256)", 4, 3)
# Algebra v1.0 (QuickSwap V3) pools emit Swap, Mint and Burn with Uniswap V3's types, hence its
# topics (decoded by the V3 specs above; the pool's factory tells the two apart), and this one:
ALGEBRA_FEE = EventSpec("algebra_fee", "algebra", "Fee(uint16)", 1, 1)
# the Algebra factory's pool creation: Pool(address indexed token0, address indexed token1, address pool)
ALGEBRA_POOL_CREATED = keccak(text="Pool(address,address,address)")

EVENTS: tuple[EventSpec, ...] = (V2_SWAP, V2_SYNC, V2_MINT, V2_BURN, V3_SWAP, V3_MINT, V3_BURN, ALGEBRA_FEE)
EVENT_BY_TOPIC0: dict[bytes, EventSpec] = {e.topic0: e for e in EVENTS}
EVENT_BY_TOPIC0_HEX: dict[str, EventSpec] = {e.topic0_hex: e for e in EVENTS}   # lower-case 0x-hex
ALL_TOPIC0_HEX: list[str] = [e.topic0_hex for e in EVENTS]


# ---------------------------------------------------------------- calls
def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


TOKEN0 = selector("token0()")
TOKEN1 = selector("token1()")
FACTORY = selector("factory()")
FEE = selector("fee()")
TICK_SPACING = selector("tickSpacing()")
DECIMALS = selector("decimals()")
GET_RESERVES = selector("getReserves()")
SLOT0 = selector("slot0()")
LIQUIDITY = selector("liquidity()")
TICK_BITMAP = selector("tickBitmap(int16)")
TICKS = selector("ticks(int24)")
GET_PAIR = selector("getPair(address,address)")
GET_POOL = selector("getPool(address,address,uint24)")
# Algebra v1.0: globalState() = (price, tick, fee, timepointIndex, communityFeeToken0,
# communityFeeToken1, unlocked); tickTable(int16) is tickBitmap's layout at spacing 60;
# ticks(int24) returns liquidityDelta second (word 1, as Uniswap's liquidityNet)
GLOBAL_STATE = selector("globalState()")
TICK_TABLE = selector("tickTable(int16)")
POOL_BY_PAIR = selector("poolByPair(address,address)")


def enc_int(v: int) -> bytes:
    """One ABI word of a signed or unsigned integer (two's complement)."""
    return (v & UINT256_MAX).to_bytes(WORD, "big")


def enc_address(a: bytes) -> bytes:
    return bytes(12) + a


def call_data(sel: bytes, *words: bytes) -> str:
    return "0x" + (sel + b"".join(words)).hex()


def hex_to_bytes(x) -> bytes:
    """0x-hex str (any case), HexBytes or bytes -> bytes."""
    if isinstance(x, str):
        return bytes.fromhex(x[2:] if x[:2] in ("0x", "0X") else x)
    return bytes(x)


def word_uint(data: bytes, i: int, bits: int, what: str) -> int:
    v = int.from_bytes(data[i * WORD:(i + 1) * WORD], "big")
    if v >> bits:
        raise AbiError("value_out_of_range", f"{what}: {v} does not fit uint{bits}")
    return v


def word_int(data: bytes, i: int, bits: int, what: str) -> int:
    v = int.from_bytes(data[i * WORD:(i + 1) * WORD], "big", signed=True)
    if not -(1 << (bits - 1)) <= v < (1 << (bits - 1)):
        raise AbiError("value_out_of_range", f"{what}: {v} does not fit int{bits}")
    return v


def word_address(data: bytes, i: int, what: str) -> bytes:
    w = data[i * WORD:(i + 1) * WORD]
    if any(w[:12]):
        raise AbiError("value_out_of_range", f"{what}: word {w.hex()} is not an address")
    return bytes(w[12:])


def need_words(data: bytes, n: int, what: str) -> None:
    """Return data must hold at least ``n`` words (extra words are allowed by the ABI)."""
    if len(data) < n * WORD:
        if not data:
            raise AbiError("empty_return", f"{what} returned no data (no contract or no such function)")
        raise AbiError("short_return", f"{what} returned {len(data)} bytes, need {n * WORD}")
