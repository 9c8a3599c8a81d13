"""Columnar numpy views of TLV values, derived from ``layout.py``.

For every layout in ``LAYOUTS`` there is one namedtuple class
``<Name>Columns`` (``PoolSyncColumns``, ``PoolSwapColumns``...) whose fields are
the layout's data fields, in order. :func:`alloc_columns` allocates one with
``n`` rows. Column shapes and dtypes follow ``layout.KINDS``:

- u8/u16/i16/u32/i32/u64/i64: ``(n,)`` of that dtype;
- u128 and i128: ``(n, 2)`` uint64 limbs ``[lo, hi]`` (i128 in two's complement);
- u256: ``(n, 4)`` uint64 limbs, least significant first;
- address: ``(n, 20)`` uint8;
- fixed arrays (``count > 1``, e.g. ArbitrageSignal ``venues``/``pools``):
  one more axis of ``count`` before the element axes, e.g. ``(n, 3, 20)``.

The kernels in :mod:`alphapulse.jit.decode` and :mod:`alphapulse.jit.encode`
are generic over these classes: ``load_row`` / ``store_row`` below are Numba
overloads whose bodies are generated from the layout at compile time (field
offsets become constants), so kernels and Python agree by construction and no
offset is written twice. Helpers convert between limbs and Python ints.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Any

import numpy as np
from numba.extending import overload

from alphapulse.jit.memory import ld_u16, ld_u32, ld_u64, st_u16, st_u32, st_u64
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import TlvLayout

ADDRESS_SIZE = L.KINDS["address"][0]
assert ADDRESS_SIZE == 20


def _class_name(lay: TlvLayout) -> str:
    return f"{lay.name}Columns"


def _make_columns_class(lay: TlvLayout) -> type:
    cls = namedtuple(_class_name(lay), [f.name for f in lay.data_fields])
    cls.__module__ = __name__
    cls.__doc__ = (f"Columns of TLV type {lay.type_id} {lay.name} ({lay.size} bytes); "
                   "see alphapulse.jit.columns for shapes.")
    cls.LAYOUT = lay
    return cls


COLUMNS: dict[int, type] = {}
for _lay in L.LAYOUTS.values():
    COLUMNS[_lay.type_id] = globals()[_class_name(_lay)] = _make_columns_class(_lay)

# Named aliases for the common ones (the globals above exist for every layout).
PoolSwapColumns = COLUMNS[L.POOL_SWAP.type_id]
PoolMintColumns = COLUMNS[L.POOL_MINT.type_id]
PoolBurnColumns = COLUMNS[L.POOL_BURN.type_id]
PoolTickColumns = COLUMNS[L.POOL_TICK.type_id]
PoolStateColumns = COLUMNS[L.POOL_STATE.type_id]
PoolSyncColumns = COLUMNS[L.POOL_SYNC.type_id]
GasPriceColumns = COLUMNS[L.GAS_PRICE.type_id]
ArbitrageSignalColumns = COLUMNS[L.ARBITRAGE_SIGNAL.type_id]
HeartbeatColumns = COLUMNS[L.HEARTBEAT.type_id]


def column_shape(f: L.Field, n: int) -> tuple[int, ...]:
    """Array shape of field ``f`` for ``n`` rows."""
    _, _, limbs = L.KINDS[f.kind]
    elem: tuple[int, ...] = ()
    if f.kind in L.BYTES_KINDS:
        elem = (L.KINDS[f.kind][0],)
    elif limbs:
        elem = (limbs,)
    return (n,) + ((f.count,) if f.count > 1 else ()) + elem


def column_dtype(f: L.Field) -> np.dtype:
    return np.dtype(L.KINDS[f.kind][1])


def alloc_columns(layout: TlvLayout | int, n: int) -> Any:
    """Zeroed ``<Name>Columns`` with ``n`` rows for ``layout`` (a TlvLayout or type id)."""
    lay = L.LAYOUTS[layout] if isinstance(layout, int) else layout
    cls = COLUMNS[lay.type_id]
    return cls(*(np.zeros(column_shape(f, n), column_dtype(f)) for f in lay.data_fields))


def layout_of(cols: Any) -> TlvLayout:
    return type(cols).LAYOUT


# ------------------------------------------------------------ Python-side helpers
def limbs_to_int(limbs: np.ndarray, signed: bool = False) -> int:
    """Python int of little-endian uint64 limbs (two's complement when ``signed``)."""
    v = 0
    for i, x in enumerate(np.asarray(limbs, dtype=np.uint64)):
        v |= int(x) << (64 * i)
    bits = 64 * len(limbs)
    if signed and v >> (bits - 1):
        v -= 1 << bits
    return v


def int_to_limbs(v: int, n_limbs: int) -> np.ndarray:
    """uint64 limbs of ``v`` (negative values in two's complement); ValueError if it does not fit."""
    bits = 64 * n_limbs
    if not -(1 << (bits - 1)) <= v < (1 << bits):
        raise ValueError(f"{v} does not fit in {bits} bits")
    v &= (1 << bits) - 1
    return np.array([(v >> (64 * i)) & 0xFFFF_FFFF_FFFF_FFFF for i in range(n_limbs)],
                    dtype=np.uint64)


def row_to_record(cols: Any, row: int) -> Any:
    """The typed codec record (``alphapulse.protocol.codec``) of one row."""
    from alphapulse.protocol.codec import RECORDS
    lay = layout_of(cols)
    kw = {}
    for f in lay.data_fields:
        a = getattr(cols, f.name)[row]

        def one(x: np.ndarray, kind: str = f.kind) -> Any:
            if kind in L.BYTES_KINDS:
                return bytes(np.asarray(x, dtype=np.uint8))
            if kind in L.WIDE_KINDS:
                return limbs_to_int(x, signed=kind == "i128")
            return int(x)
        kw[f.name] = tuple(one(a[j]) for j in range(f.count)) if f.count > 1 else one(a)
    return RECORDS[lay.type_id](**kw)


def set_row(cols: Any, row: int, record: Any) -> None:
    """Write a typed codec record into row ``row`` (inverse of row_to_record)."""
    lay = layout_of(cols)
    for f in lay.data_fields:
        col = getattr(cols, f.name)
        vals = getattr(record, f.name)
        vals = vals if f.count > 1 else (vals,)
        for j, v in enumerate(vals):
            idx = (row, j) if f.count > 1 else (row,)
            if f.kind in L.BYTES_KINDS:
                col[idx] = np.frombuffer(bytes(v), dtype=np.uint8)
            elif f.kind in L.WIDE_KINDS:
                col[idx] = int_to_limbs(int(v), L.KINDS[f.kind][2])
            else:
                col[idx] = v


# ------------------------------------------------------------ kernel overloads
_SCALAR_LOAD = {1: "np.uint64(buf[{p}])", 2: "ld_u16(buf, {p})", 4: "ld_u32(buf, {p})",
                8: "ld_u64(buf, {p})"}
_SCALAR_STORE = {1: "buf[{p}] = np.uint8({v})", 2: "st_u16(buf, {p}, {v})",
                 4: "st_u32(buf, {p}, {v})", 8: "st_u64(buf, {p}, {v})"}
_NP_SCALAR = {"u8": "np.uint8", "u16": "np.uint16", "i16": "np.int16", "u32": "np.uint32",
              "i32": "np.int32", "u64": "np.uint64", "i64": "np.int64"}
_UNSIGNED_OF = {"i16": "np.uint16", "i32": "np.uint32", "i64": "np.uint64"}



def _copy_lines(src: str, dst: str, n: int = ADDRESS_SIZE) -> list[str]:
    """Copy an opaque byte string (an address: 20 bytes, a hash: 32) as 8-byte words and a tail.

    No array views (a view costs two atomic refcount operations per row);
    indexed byte loads and stores that LLVM merges into word moves.
    """
    out = []
    for base, width in [(b, min(8, n - b)) for b in range(0, n, 8)]:
        terms = [f"(np.uint64({src.format(k=base + i)}) << np.uint64({8 * i}))"
                 for i in range(width)]
        out.append("    w = " + " | ".join(terms))
        for i in range(width):
            out.append(f"    {dst.format(k=base + i)} = np.uint8((w >> np.uint64({8 * i})) & np.uint64(255))")
    return out


def _load_source(lay: TlvLayout) -> str:
    lines = ["def impl(buf, p, cols, row):"]
    for f in lay.data_fields:
        size, _, limbs = L.KINDS[f.kind]
        for j in range(f.count):
            off = f.offset + j * f.elem_size
            at = f"row, {j}" if f.count > 1 else "row"
            col = f"cols.{f.name}"
            if f.kind in L.BYTES_KINDS:
                lines += _copy_lines(f"buf[p + {off} + {{k}}]", f"{col}[{at}, {{k}}]", size)
            elif limbs:
                for k in range(limbs):
                    lines.append(f"    {col}[{at}, {k}] = ld_u64(buf, p + {off + 8 * k})")
            else:
                raw = _SCALAR_LOAD[size].format(p=f"p + {off}")
                if f.kind in _UNSIGNED_OF:  # same-width reinterpretation: two's complement
                    expr = f"{_NP_SCALAR[f.kind]}({_UNSIGNED_OF[f.kind]}({raw}))"
                else:
                    expr = f"{_NP_SCALAR[f.kind]}({raw})"
                lines.append(f"    {col}[{at}] = {expr}")
    return "\n".join(lines) + "\n"


def _store_source(lay: TlvLayout) -> str:
    lines = ["def impl(buf, p, cols, row):"]
    for f in lay.fields:
        if f.is_pad:
            for j in range(f.count):
                lines.append(f"    buf[p + {f.offset + j}] = np.uint8(0)")
            continue
        size, _, limbs = L.KINDS[f.kind]
        for j in range(f.count):
            off = f.offset + j * f.elem_size
            at = f"row, {j}" if f.count > 1 else "row"
            col = f"cols.{f.name}"
            if f.kind in L.BYTES_KINDS:
                lines += _copy_lines(f"{col}[{at}, {{k}}]", f"buf[p + {off} + {{k}}]", size)
            elif limbs:
                for k in range(limbs):
                    lines.append(f"    st_u64(buf, p + {off + 8 * k}, {col}[{at}, {k}])")
            else:
                lines.append("    " + _SCALAR_STORE[size].format(p=f"p + {off}",
                                                                 v=f"{col}[{at}]"))
    return "\n".join(lines) + "\n"


_GEN_NS = {"np": np, "ld_u16": ld_u16, "ld_u32": ld_u32, "ld_u64": ld_u64,
           "st_u16": st_u16, "st_u32": st_u32, "st_u64": st_u64}


def _compile(src: str) -> Any:
    ns = dict(_GEN_NS)
    exec(compile(src, "<alphapulse.jit.columns generated>", "exec"), ns)  # noqa: S102
    return ns["impl"]


def _layout_for(cols_type: Any) -> TlvLayout | None:
    cls = getattr(cols_type, "instance_class", None)
    return getattr(cls, "LAYOUT", None)


def load_row(buf, p, cols, row):  # pragma: no cover - replaced by the overload in kernels
    """Kernel-only: decode the TLV value at ``buf[p:p+size]`` into row ``row`` of ``cols``."""
    raise TypeError("load_row is only callable from @njit code (its overload is the implementation)")


def store_row(buf, p, cols, row):  # pragma: no cover - replaced by the overload in kernels
    """Kernel-only: encode row ``row`` of ``cols`` as a TLV value at ``buf[p:p+size]``."""
    raise TypeError("store_row is only callable from @njit code (its overload is the implementation)")


def tlv_type_of(cols):  # pragma: no cover
    """Kernel-only: TLV type id of a columns tuple (compile-time constant)."""
    return layout_of(cols).type_id


def value_size_of(cols):  # pragma: no cover
    """Kernel-only: TLV value size of a columns tuple (compile-time constant)."""
    return layout_of(cols).size


def domain_of(cols):  # pragma: no cover
    """Kernel-only: relay domain the columns' TLV type routes to."""
    return layout_of(cols).domain


def rows_of(cols):  # pragma: no cover
    """Rows every column of ``cols`` can hold (the smallest first dimension)."""
    return min(len(a) for a in cols)


@overload(load_row, inline="always")
def _ov_load_row(buf, p, cols, row):
    lay = _layout_for(cols)
    if lay is not None:
        return _compile(_load_source(lay))


@overload(store_row, inline="always")
def _ov_store_row(buf, p, cols, row):
    lay = _layout_for(cols)
    if lay is not None:
        return _compile(_store_source(lay))


def _const_impl(value: int) -> Any:
    return _compile(f"def impl(cols):\n    return {int(value)}\n")


@overload(tlv_type_of)
def _ov_tlv_type_of(cols):
    lay = _layout_for(cols)
    if lay is not None:
        return _const_impl(lay.type_id)


@overload(value_size_of)
def _ov_value_size_of(cols):
    lay = _layout_for(cols)
    if lay is not None:
        return _const_impl(lay.size)


@overload(domain_of)
def _ov_domain_of(cols):
    lay = _layout_for(cols)
    if lay is not None:
        return _const_impl(lay.domain)


@overload(rows_of)
def _ov_rows_of(cols):
    lay = _layout_for(cols)
    if lay is not None:
        names = [f.name for f in lay.data_fields]
        expr = f"cols.{names[0]}.shape[0]"
        for nm in names[1:]:
            expr = f"min({expr}, cols.{nm}.shape[0])"
        return _compile(f"def impl(cols):\n    return {expr}\n")
