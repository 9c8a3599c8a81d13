"""Pure-Python Protocol V2 codec, for tools, tests and slow paths.

Layouts come from :mod:`alphapulse.protocol.layout`; nothing here restates an
offset. The hot path uses the Numba kernels of :mod:`alphapulse.jit` instead.
"""
from __future__ import annotations

import dataclasses
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject, TlvLayout

_HEADER = struct.Struct(L.HEADER_STRUCT)
assert _HEADER.size == L.HEADER_SIZE

ZERO_ADDRESS = bytes(20)
_SCALAR_STRUCT = {"u8": "B", "u16": "H", "i16": "h", "u32": "I", "i32": "i",
                  "u64": "Q", "i64": "q"}


class FrameError(ValueError):
    """A frame that violates PROTOCOL.md; ``reason`` is the :class:`Reject` code."""

    def __init__(self, reason: Reject, message: str) -> None:
        super().__init__(f"{reason.name}: {message}")
        self.reason = reason


# ---------------------------------------------------------------- records
def _default(f: L.Field) -> Any:
    one: Any = bytes(L.KINDS[f.kind][0]) if f.kind in L.BYTES_KINDS else 0
    return tuple([one] * f.count) if f.count > 1 else one


def _make_record_class(lay: TlvLayout) -> type:
    fields = [(f.name, Any, dataclasses.field(default=_default(f))) for f in lay.data_fields]
    cls = dataclasses.make_dataclass(lay.name, fields, frozen=True, slots=True)
    cls.TYPE = lay.type_id
    cls.LAYOUT = lay
    cls.__module__ = __name__
    cls.__doc__ = f"TLV type {lay.type_id} ({lay.size} bytes): fields as in PROTOCOL.md."
    return cls


RECORDS: dict[int, type] = {t: _make_record_class(lay) for t, lay in L.LAYOUTS.items()}
Trade = RECORDS[L.TRADE.type_id]
Quote = RECORDS[L.QUOTE.type_id]
PoolSwap = RECORDS[L.POOL_SWAP.type_id]
PoolMint = RECORDS[L.POOL_MINT.type_id]
PoolBurn = RECORDS[L.POOL_BURN.type_id]
PoolTick = RECORDS[L.POOL_TICK.type_id]
PoolState = RECORDS[L.POOL_STATE.type_id]
PoolSync = RECORDS[L.POOL_SYNC.type_id]
GasPrice = RECORDS[L.GAS_PRICE.type_id]
ArbitrageSignal = RECORDS[L.ARBITRAGE_SIGNAL.type_id]
Heartbeat = RECORDS[L.HEARTBEAT.type_id]
TickCoverage = RECORDS[L.TICK_COVERAGE.type_id]
PoolFee = RECORDS[L.POOL_FEE.type_id]
BlockEnd = RECORDS[L.BLOCK_END.type_id]
ExecutionReport = RECORDS[L.EXECUTION_REPORT.type_id]
PoolRefresh = RECORDS[L.POOL_REFRESH.type_id]


@dataclass(frozen=True, slots=True)
class RawTlv:
    """A TLV without a declared layout (vendor, unknown): kept as bytes."""
    type_id: int
    value: bytes


def _put_elem(out: bytearray, kind: str, v: Any, name: str) -> None:
    if kind in L.BYTES_KINDS:
        b = bytes(v)
        n = L.KINDS[kind][0]
        if len(b) != n:
            raise ValueError(f"{name}: {kind} must be {n} bytes, got {len(b)}")
        out += b
    elif kind == "pad":
        out += b"\0"
    elif kind in L.WIDE_KINDS:
        size = L.KINDS[kind][0]
        out += int(v).to_bytes(size, "little", signed=kind == "i128")
    else:
        out += struct.pack("<" + _SCALAR_STRUCT[kind], v)


def encode_value(record: Any) -> bytes:
    """The TLV value bytes of a typed record (no TLV header)."""
    lay: TlvLayout = record.LAYOUT
    out = bytearray()
    for f in lay.fields:
        if f.is_pad:
            out += bytes(f.count)
            continue
        v = getattr(record, f.name)
        if f.count > 1:
            if len(v) != f.count:
                raise ValueError(f"{lay.name}.{f.name}: expected {f.count} entries, got {len(v)}")
            for x in v:
                _put_elem(out, f.kind, x, f"{lay.name}.{f.name}")
        else:
            try:
                _put_elem(out, f.kind, v, f"{lay.name}.{f.name}")
            except (struct.error, OverflowError) as e:
                raise ValueError(f"{lay.name}.{f.name}={v!r}: {e}") from None
    assert len(out) == lay.size
    return bytes(out)


def _get_elem(buf: bytes | memoryview, off: int, kind: str) -> Any:
    size = L.KINDS[kind][0]
    if kind in L.BYTES_KINDS:
        return bytes(buf[off:off + size])
    if kind in L.WIDE_KINDS:
        return int.from_bytes(buf[off:off + size], "little", signed=kind == "i128")
    return struct.unpack_from("<" + _SCALAR_STRUCT[kind], buf, off)[0]


def decode_value(type_id: int, value: bytes | memoryview) -> Any:
    """Typed record from TLV value bytes; RawTlv for types without a layout."""
    lay = L.LAYOUTS.get(type_id)
    if lay is None:
        return RawTlv(type_id, bytes(value))
    if len(value) != lay.size:
        raise FrameError(Reject.BAD_TLV_SIZE,
                         f"{lay.name} (type {type_id}) must be {lay.size} bytes, got {len(value)}")
    kw = {}
    for f in lay.data_fields:
        if f.count > 1:
            kw[f.name] = tuple(_get_elem(value, f.offset + i * f.elem_size, f.kind)
                               for i in range(f.count))
        else:
            kw[f.name] = _get_elem(value, f.offset, f.kind)
    return RECORDS[type_id](**kw)


def encode_tlv(record: Any) -> bytes:
    """TLV header + value; the extended form only when the value exceeds 255 bytes."""
    if isinstance(record, RawTlv):
        t, value = record.type_id, record.value
    else:
        t, value = record.TYPE, encode_value(record)
    if not 0 < t < L.TLV_EXTENDED_MARKER:
        raise ValueError(f"TLV type {t} out of range 1..254")
    n = len(value)
    if n <= L.TLV_STD_MAX:
        return bytes((t, n)) + value
    if n > L.TLV_EXT_MAX:
        raise ValueError(f"TLV value of {n} bytes exceeds {L.TLV_EXT_MAX}")
    return bytes((L.TLV_EXTENDED_MARKER, 0, t)) + n.to_bytes(2, "little") + value


# ---------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class Header:
    magic: int
    relay_domain: int
    version: int
    source: int
    flags: int
    sequence: int
    timestamp_ns: int
    payload_size: int
    checksum: int


@dataclass(frozen=True, slots=True)
class Frame:
    header: Header
    tlvs: tuple
    size: int               # header + payload bytes

    @property
    def replayed(self) -> bool:
        return bool(self.header.flags & L.FLAG_REPLAYED)


def frame_checksum(frame: bytes | bytearray | memoryview) -> int:
    """CRC-32 over bytes 0..28 and the payload (PROTOCOL.md section 1)."""
    mv = memoryview(frame)
    return zlib.crc32(mv[L.HEADER_SIZE:], zlib.crc32(mv[:L.CHECKSUM_OFFSET]))


def build_frame(domain: int, source: int, sequence: int, records: Sequence[Any], *,
                timestamp_ns: int | None = None, flags: int = 0,
                checksum: bool = True) -> bytes:
    """One complete frame from typed records (or RawTlv); checksum computed unless False."""
    payload = b"".join(encode_tlv(r) for r in records)
    if len(payload) > L.MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {L.MAX_PAYLOAD}")
    ts = time.time_ns() if timestamp_ns is None else timestamp_ns
    buf = bytearray(_HEADER.pack(L.MAGIC, domain, L.VERSION, source, flags, sequence, ts,
                                 len(payload), 0))
    buf += payload
    if checksum:
        struct.pack_into("<I", buf, L.CHECKSUM_OFFSET, frame_checksum(buf))
    return bytes(buf)


def parse_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> Header:
    """Header at ``offset``, checked for magic, version, domain and payload limit."""
    avail = len(buf) - offset
    if avail < L.HEADER_SIZE:
        raise FrameError(Reject.TRUNCATED_HEADER, f"{avail} bytes available, header needs 32")
    h = Header(*_HEADER.unpack_from(buf, offset))
    if h.magic != L.MAGIC:
        raise FrameError(Reject.BAD_MAGIC, f"magic 0x{h.magic:08X} != 0x{L.MAGIC:08X}")
    if h.version != L.VERSION:
        raise FrameError(Reject.BAD_VERSION, f"version {h.version} != {L.VERSION}")
    if not 1 <= h.relay_domain <= 4:
        raise FrameError(Reject.BAD_DOMAIN, f"relay_domain {h.relay_domain} not in 1..4")
    if h.payload_size > L.MAX_PAYLOAD:
        raise FrameError(Reject.PAYLOAD_TOO_LARGE,
                         f"payload_size {h.payload_size} > {L.MAX_PAYLOAD}")
    if h.payload_size > avail - L.HEADER_SIZE:
        raise FrameError(Reject.TRUNCATED_PAYLOAD,
                         f"payload_size {h.payload_size} but {avail - L.HEADER_SIZE} bytes follow")
    return h


def iter_tlvs(payload: bytes | memoryview) -> Iterator[tuple[int, memoryview]]:
    """(type, value) of each TLV; raises FrameError if they do not exactly fill ``payload``."""
    mv = memoryview(payload)
    n, i = len(mv), 0
    while i < n:
        t = mv[i]
        if t == L.TLV_EXTENDED_MARKER:
            if i + L.TLV_EXT_HEADER > n:
                raise FrameError(Reject.TLV_OVERRUN, f"extended TLV header at {i} runs past {n}")
            t = mv[i + 2]
            length = mv[i + 3] | (mv[i + 4] << 8)
            i += L.TLV_EXT_HEADER
        else:
            if i + L.TLV_STD_HEADER > n:
                raise FrameError(Reject.TLV_OVERRUN, f"TLV header at {i} runs past {n}")
            length = mv[i + 1]
            i += L.TLV_STD_HEADER
        if i + length > n:
            raise FrameError(Reject.TLV_OVERRUN,
                             f"TLV type {t} of {length} bytes at {i} runs past {n}")
        fixed = int(L.FIXED_SIZE[t])
        if fixed and length != fixed:
            raise FrameError(Reject.BAD_TLV_SIZE,
                             f"{L.LAYOUTS[t].name} (type {t}) must be {fixed} bytes, got {length}")
        yield t, mv[i:i + length]
        i += length


def parse_frame(buf: bytes | bytearray | memoryview, offset: int = 0, *,
                verify_checksum: bool = True) -> Frame:
    """Validate and decode the frame at ``offset``; raises FrameError naming the reason."""
    h = parse_header(buf, offset)
    size = L.HEADER_SIZE + h.payload_size
    mv = memoryview(buf)[offset:offset + size]
    tlvs = tuple(decode_value(t, v) for t, v in iter_tlvs(mv[L.HEADER_SIZE:]))
    if verify_checksum and h.checksum != 0:
        got = frame_checksum(mv)
        if got != h.checksum:
            raise FrameError(Reject.BAD_CHECKSUM,
                             f"checksum 0x{h.checksum:08X} != computed 0x{got:08X}")
    return Frame(h, tlvs, size)


def iter_frames(buf: bytes | bytearray | memoryview, *,
                verify_checksum: bool = True) -> Iterator[Frame]:
    """Consecutive frames filling ``buf``; stops with FrameError at the first bad one."""
    off = 0
    while off < len(buf):
        fr = parse_frame(buf, off, verify_checksum=verify_checksum)
        yield fr
        off += fr.size


# ---------------------------------------------------------------- addresses
def to_checksum_address(addr: bytes) -> str:
    """EIP-55 checksummed hex of a 20-byte address."""
    from eth_utils import to_checksum_address as _cs
    return _cs(bytes(addr))


def address_bytes(addr: str | bytes) -> bytes:
    """20 raw bytes from 0x-hex (any case) or bytes."""
    if isinstance(addr, (bytes, bytearray, memoryview)):
        b = bytes(addr)
    else:
        s = addr[2:] if addr[:2] in ("0x", "0X") else addr
        b = bytes.fromhex(s)
    if len(b) != 20:
        raise ValueError(f"address must be 20 bytes, got {len(b)}")
    return b
