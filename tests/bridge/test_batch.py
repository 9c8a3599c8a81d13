"""Batch wire format and frame cutting (no NATS, no ring)."""
import struct
import zlib

import numpy as np
import pytest

from alphapulse.bridge.batch import (
    BATCH_HEADER, BATCH_HEADER_SIZE, BatchError, FrameWalker, batch_frames, cut, msg_id, pack_batch,
    parse_header,
)
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from tests.bridge import framegen


def test_pack_parse_roundtrip_keeps_frames_byte_identical():
    fr = framegen.frames(41, 25)
    msg = pack_batch("hosta", 1, 123456789, 1000, 41, 25, fr)
    hdr = parse_header(msg)
    assert (hdr.host, hdr.domain, hdr.session, hdr.first_index, hdr.first_seq, hdr.frame_count) == \
        ("hosta", 1, 123456789, 1000, 41, 25)
    assert hdr.byte_length == fr.nbytes and hdr.next_index == 1025
    assert msg[BATCH_HEADER_SIZE:] == fr.tobytes()
    assert hdr.msg_id() == msg_id("hosta", 1, 123456789, 1000) == "hosta.1.75bcd15.1000"
    offs = batch_frames(FrameWalker(), hdr, np.frombuffer(msg, np.uint8, offset=BATCH_HEADER_SIZE))
    assert offs[0] == 0 and offs[-1] == fr.nbytes and len(offs) == 26


def _with(msg: bytes, off: int, raw: bytes) -> bytes:
    b = bytearray(msg)
    b[off:off + len(raw)] = raw
    return bytes(b)


@pytest.mark.parametrize("mutate,reason", [
    (lambda m: m[:40], "short"),
    (lambda m: _with(m, 0, b"XPBR"), "magic"),
    (lambda m: _with(m, 4, b"\x02"), "version"),
    (lambda m: _with(m, 7, b"\x00"), "host"),
    (lambda m: m + b"\x00", "length"),
    (lambda m: _with(m, 32, struct.pack("<I", 0)), "count"),
    (lambda m: _with(m, BATCH_HEADER_SIZE + 40, b"\xff"), "crc"),
])
def test_parse_rejects_each_kind_of_damage(mutate, reason):
    msg = pack_batch("h", 1, 1, 0, 1, 3, framegen.frames(1, 3))
    with pytest.raises(BatchError) as ei:
        parse_header(mutate(msg))
    assert ei.value.reason == reason


def _batch(frames: np.ndarray, count: int, domain: int = 1) -> tuple:
    msg = pack_batch("h", domain, 1, 0, 1, count, frames)
    return parse_header(msg), np.frombuffer(msg, np.uint8, offset=BATCH_HEADER_SIZE)


def test_batch_frames_checks_count_structure_and_domain():
    fr = framegen.frames(1, 5)
    with pytest.raises(BatchError, match="header says 4 frames, found 5"):
        batch_frames(FrameWalker(), *_batch(fr, 4))
    with pytest.raises(BatchError, match="domain"):
        batch_frames(FrameWalker(), *_batch(fr, 5, domain=2))
    cut_short = fr[:-3]                      # last frame truncated, CRC recomputed by pack_batch
    with pytest.raises(BatchError, match="PARTIAL"):
        batch_frames(FrameWalker(), *_batch(cut_short, 5))
    bad = fr.copy()
    struct.pack_into("<I", bad, L.CHECKSUM_OFFSET, 0xDEAD)   # frame 0: wrong checksum
    with pytest.raises(BatchError, match="BAD_CHECKSUM"):
        batch_frames(FrameWalker(crc_every=1), *_batch(bad, 5))


def test_cut_covers_every_frame_once_in_batches_under_the_limit():
    fr = framegen.frames(7, 3000)
    w = FrameWalker()
    batches = list(cut(w, fr, 16 * 1024))
    assert len(batches) > 10
    pos, seq = 0, 7
    for s, e, n, first_seq in batches:
        assert s == pos and e - s <= 16 * 1024 and n >= 1 and first_seq == seq
        got = list(codec.iter_frames(fr[s:e].tobytes()))
        assert len(got) == n and got[0].header.sequence == seq
        pos, seq = e, seq + n
    assert pos == fr.nbytes and seq == 3007 and w.rejected == 0 and w.frames == 3000


def test_cut_leaves_out_invalid_frames_and_resyncs_after_a_corrupt_header():
    fr = framegen.frames(1, 50, crc=True)
    offs = [0]
    for f in codec.iter_frames(fr.tobytes()):
        offs.append(offs[-1] + 32 + f.header.payload_size)
    bad = fr.copy()
    bad[offs[10] + L.CHECKSUM_OFFSET] ^= 0xFF           # frame 11: checksum mismatch
    bad[offs[30] + 5] = 9                               # frame 31: bad version, length untrusted
    w = FrameWalker(crc_every=1)
    seqs = []
    for s, e, n, _ in cut(w, bad, 1 << 20):
        seqs += [f.header.sequence for f in codec.iter_frames(bad[s:e].tobytes())]
    assert 11 not in seqs and 31 not in seqs
    assert seqs == [s for s in range(1, 51) if s not in (11, 31)]
    assert w.rejected == 1 and w.corrupt == 1
    assert w.reasons == {"BAD_CHECKSUM": 1, "BAD_VERSION": 1}
    assert w.skipped_bytes == offs[31] - offs[30]


def test_header_layout_is_80_bytes_with_documented_offsets():
    raw = BATCH_HEADER.pack(b"APBR", 1, 2, 0, 3, 0x1111, 0x2222, 0x3333, 4, 5, 6, 0, b"abc")
    assert len(raw) == 80
    assert struct.unpack_from("<Q", raw, 8)[0] == 0x1111 and struct.unpack_from("<Q", raw, 16)[0] == 0x2222
    assert struct.unpack_from("<Q", raw, 24)[0] == 0x3333 and struct.unpack_from("<III", raw, 32) == (4, 5, 6)
    assert raw[48:51] == b"abc" and raw[5] == 2
    assert zlib.crc32(b"") == 0
