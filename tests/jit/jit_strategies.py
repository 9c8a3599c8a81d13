"""Hypothesis strategies shared by the tests of alphapulse.jit: typed codec
records with values biased toward the extremes the wire must carry."""
from __future__ import annotations

from hypothesis import strategies as st

from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L

U128_MAX = (1 << 128) - 1
U160_MAX = (1 << 160) - 1      # largest sqrt_price_x96 a Uniswap V3 pool can hold
U256_MAX = (1 << 256) - 1

_RANGES = {
    "u8": (0, 255), "u16": (0, 65535), "i16": (-(1 << 15), (1 << 15) - 1),
    "u32": (0, (1 << 32) - 1), "i32": (-(1 << 31), (1 << 31) - 1),
    "u64": (0, (1 << 64) - 1), "i64": (-(1 << 63), (1 << 63) - 1),
    "u128": (0, U128_MAX), "i128": (-(1 << 127), (1 << 127) - 1), "u256": (0, U256_MAX),
}
# Uniswap V3 tick bounds: negative ticks are the common case for half the pools.
MIN_TICK, MAX_TICK = -887272, 887272


def value_strategy(kind: str) -> st.SearchStrategy:
    if kind in L.BYTES_KINDS:
        n = L.KINDS[kind][0]
        return st.one_of(st.just(bytes(n)), st.just(b"\xff" * n), st.binary(min_size=n, max_size=n))
    lo, hi = _RANGES[kind]
    edges = {lo, hi, 0, 1} | ({-1} if lo < 0 else set())
    if kind == "u256":
        edges |= {U160_MAX, 1 << 96}
    if kind == "i32":
        edges |= {MIN_TICK, MAX_TICK}
    return st.one_of(st.sampled_from(sorted(edges)), st.integers(lo, hi))


def record_strategy(lay: L.TlvLayout) -> st.SearchStrategy:
    cls = C.RECORDS[lay.type_id]
    kw = {}
    for f in lay.data_fields:
        one = value_strategy(f.kind)
        kw[f.name] = st.tuples(*([one] * f.count)) if f.count > 1 else one
    return st.builds(cls, **kw)


def extreme_record(lay: L.TlvLayout, which: str) -> object:
    """Every field at its maximum (``max``), minimum (``min``) or zero (``zero``)."""
    kw = {}
    for f in lay.data_fields:
        if f.kind in L.BYTES_KINDS:
            n = L.KINDS[f.kind][0]
            v: object = b"\xff" * n if which == "max" else bytes(n)
        else:
            lo, hi = _RANGES[f.kind]
            v = {"max": hi, "min": lo, "zero": 0}[which]
        kw[f.name] = tuple([v] * f.count) if f.count > 1 else v
    return C.RECORDS[lay.type_id](**kw)


DECODED_LAYOUTS = (L.POOL_SWAP, L.POOL_SYNC, L.POOL_STATE, L.POOL_MINT, L.POOL_BURN,
                   L.POOL_TICK, L.GAS_PRICE, L.ARBITRAGE_SIGNAL)
