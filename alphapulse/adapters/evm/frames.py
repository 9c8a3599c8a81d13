"""Records -> Protocol V2 frames, fast, for the adapter's hot path.

:func:`alphapulse.protocol.codec.build_frame` walks every field in Python; here
each TLV layout is compiled once into a ``struct.Struct`` (derived from
:mod:`alphapulse.protocol.layout`, no offset restated) so a record is one
``pack`` call plus ``int.to_bytes`` for its wide integers. The bytes are
identical to the codec's (tests/adapters/test_frames.py proves it for every layout).
"""
from __future__ import annotations

import struct
import time
import zlib
from typing import Any, Callable

from alphapulse.protocol import layout as L

_SCALAR = {"u8": "B", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q", "i64": "q"}
_HEADER = struct.Struct(L.HEADER_STRUCT)
_HEAD28 = struct.Struct(L.HEADER_STRUCT[:-1])     # the header without its checksum
assert _HEAD28.size == L.CHECKSUM_OFFSET


class EncodeError(ValueError):
    """A record value that does not fit its wire type."""


def _opaque(n: int, kind: str) -> Callable[[Any], bytes]:
    def conv(v: Any) -> bytes:
        b = bytes(v)
        if len(b) != n:   # struct's "20s" would pad or cut silently
            raise EncodeError(f"{kind} must be {n} bytes, got {len(b)}")
        return b
    return conv


def _wide(size: int, signed: bool) -> Callable[[int], bytes]:
    def conv(v: int) -> bytes:
        return v.to_bytes(size, "little", signed=signed)
    return conv


class _TlvEncoder:
    """One layout: TLV header + value as a single struct."""

    def __init__(self, lay: L.TlvLayout) -> None:
        if lay.size > L.TLV_STD_MAX:
            head = "<BBBH"
            self.head = (L.TLV_EXTENDED_MARKER, 0, lay.type_id, lay.size)
        else:
            head = "<BB"
            self.head = (lay.type_id, lay.size)
        fmt = head
        getters: list[tuple[str, Callable[[Any], Any] | None, int]] = []
        for f in lay.fields:
            if f.is_pad:
                fmt += f"{f.count}x"
                continue
            if f.kind in L.BYTES_KINDS:
                size = L.KINDS[f.kind][0]
                fmt += f"{size}s" * f.count
                conv = _opaque(size, f.kind)
            elif f.kind in L.WIDE_KINDS:
                size = L.KINDS[f.kind][0]
                fmt += f"{size}s" * f.count
                conv = _wide(size, f.kind == "i128")
            else:
                fmt += _SCALAR[f.kind] * f.count
                conv = None
            getters.append((f.name, conv, f.count))
        self.struct = struct.Struct(fmt)
        assert self.struct.size == struct.calcsize(head) + lay.size
        self.getters = tuple(getters)
        self.name = lay.name

    def encode(self, record: Any) -> bytes:
        vals = list(self.head)
        try:
            for name, conv, count in self.getters:
                v = getattr(record, name)
                if count > 1:
                    vals.extend(v if conv is None else [conv(x) for x in v])
                else:
                    vals.append(v if conv is None else conv(v))
            return self.struct.pack(*vals)
        except (struct.error, OverflowError, TypeError, EncodeError) as e:
            raise EncodeError(f"{self.name}: {e}") from None


ENCODERS: dict[int, _TlvEncoder] = {t: _TlvEncoder(lay) for t, lay in L.LAYOUTS.items()}


def encode_tlvs(records: list[Any]) -> bytes:
    """TLV bytes of typed records (same bytes as ``codec.encode_tlv`` of each)."""
    if len(records) == 1:
        r = records[0]
        return ENCODERS[r.TYPE].encode(r)
    return b"".join(ENCODERS[r.TYPE].encode(r) for r in records)


def build_frame(domain: int, source: int, sequence: int, records: list[Any], *,
                timestamp_ns: int | None = None, flags: int = 0, checksum: bool = True) -> bytes:
    """Same contract and bytes as :func:`alphapulse.protocol.codec.build_frame`."""
    payload = encode_tlvs(records)
    n = len(payload)
    if n > L.MAX_PAYLOAD:
        raise EncodeError(f"payload of {n} bytes exceeds {L.MAX_PAYLOAD}")
    ts = time.time_ns() if timestamp_ns is None else timestamp_ns
    head = _HEAD28.pack(L.MAGIC, domain, L.VERSION, source, flags, sequence, ts, n)
    crc = zlib.crc32(payload, zlib.crc32(head)) if checksum else 0
    return head + crc.to_bytes(4, "little") + payload
