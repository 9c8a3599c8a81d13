"""Journal files: writer, reader, resynchronisation and truncated tails (PROTOCOL.md 6)."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse.journal import (
    FILE_HEADER_SIZE, JournalError, JournalReader, JournalWriter, file_header,
)
from alphapulse.protocol import codec as C


def make_frame(seq: int, checksum: bool = True) -> bytes:
    rec = C.PoolSync(reserve0=10**18 + seq, reserve1=seq, block_number=seq, block_ts_ns=0,
                     log_index=seq % 7, venue=300, token0_decimals=18, token1_decimals=6,
                     flags=0, pool=bytes([seq % 256]) * 20, token0=b"\x01" * 20,
                     token1=b"\x02" * 20)
    recs = [rec] if seq % 3 else [rec, C.Heartbeat(timestamp_ns=seq, frames_published=seq)]
    return C.build_frame(1, 4, seq, recs, timestamp_ns=1_700_000_000_000_000_000 + seq,
                         checksum=checksum)


FRAMES = [make_frame(s, checksum=bool(s % 4)) for s in range(1, 41)]


def write_raw(path, body: bytes) -> None:
    path.write_bytes(file_header() + body)


def read_all(path, **kw):
    r = JournalReader(path, **kw)
    got = list(r.frames())
    return [b for _, b in got], [o for o, _ in got], r.stats


def test_round_trip_through_writer_and_reader(tmp_path):
    p = tmp_path / "a.jrnl"
    with JournalWriter(p) as w:
        assert w.append(b"".join(FRAMES[:10])) == 10
        for f in FRAMES[10:]:
            w.append(f)
        assert w.frames_written == 40
    assert p.read_bytes()[:16] == b"APJRNL01" + struct.pack("<II", 1, 0)
    frames, offsets, stats = read_all(p)
    assert frames == FRAMES
    assert offsets[0] == FILE_HEADER_SIZE and offsets[1] == FILE_HEADER_SIZE + len(FRAMES[0])
    assert (stats.frames_ok, stats.rejected_total, stats.bytes_skipped, stats.resyncs,
            stats.truncated_tail_bytes) == (40, 0, 0, 0, 0)
    assert stats.checksums_verified == sum(1 for s in range(1, 41) if s % 4)
    assert stats.last_frame_end == p.stat().st_size


def test_reopening_appends_after_existing_frames(tmp_path):
    p = tmp_path / "a.jrnl"
    with JournalWriter(p) as w:
        w.append(FRAMES[0])
    with JournalWriter(p) as w:
        w.append(FRAMES[1])
    assert read_all(p)[0] == FRAMES[:2]


@pytest.mark.parametrize("chunk", [1, 5, 33, 160, 1 << 20])
def test_chunk_size_does_not_change_the_result(tmp_path, chunk):
    p = tmp_path / "a.jrnl"
    garbage = bytes(range(1, 200))               # no magic in it
    write_raw(p, b"".join(FRAMES[:5]) + garbage + b"".join(FRAMES[5:]))
    frames, _, stats = read_all(p, chunk_size=chunk, max_frames=3)
    assert frames == FRAMES
    assert (stats.bytes_skipped, stats.resyncs) == (len(garbage), 1)
    assert stats.corrupt_headers == {"BAD_MAGIC": 1}


def test_corrupt_header_resyncs_on_next_magic_and_counts_skipped_bytes(tmp_path):
    p = tmp_path / "a.jrnl"
    bad = bytearray(FRAMES[3])
    bad[5] = 9                                   # version 9: header cannot be trusted
    write_raw(p, b"".join(FRAMES[:3]) + bytes(bad) + b"".join(FRAMES[4:]))
    frames, _, stats = read_all(p)
    assert frames == FRAMES[:3] + FRAMES[4:]
    assert stats.bytes_skipped == len(bad) and stats.resyncs == 1
    assert stats.corrupt_headers == {"BAD_VERSION": 1}


def test_bad_checksum_is_rejected_and_the_rest_kept(tmp_path):
    p = tmp_path / "a.jrnl"
    bad = bytearray(FRAMES[0])
    bad[60] ^= 0x10
    write_raw(p, bytes(bad) + b"".join(FRAMES[1:]))
    frames, _, stats = read_all(p)
    assert frames == FRAMES[1:]
    assert stats.frames_rejected == {"BAD_CHECKSUM": 1}
    assert stats.bytes_skipped == 0 and stats.resyncs == 0
    # without verification the flipped frame passes: the checksum is what caught it
    assert len(read_all(p, crc_every=0)[0]) == 40


def test_every_truncation_of_the_last_frame(tmp_path):
    body = b"".join(FRAMES[:3])
    last = FRAMES[3]
    for cut in range(0, len(last)):
        p = tmp_path / f"t{cut}.jrnl"
        write_raw(p, body + last[:cut])
        frames, _, stats = read_all(p, chunk_size=64)
        assert frames == FRAMES[:3], cut
        assert stats.truncated_tail_bytes == cut and stats.bytes_skipped == 0, cut
        assert stats.last_frame_end == FILE_HEADER_SIZE + len(body)


def test_writer_cuts_a_partial_last_frame_left_by_a_crash(tmp_path):
    p = tmp_path / "a.jrnl"
    write_raw(p, FRAMES[0] + FRAMES[1][:50])
    with JournalWriter(p) as w:
        w.append(FRAMES[2])
    frames, _, stats = read_all(p)
    assert frames == [FRAMES[0], FRAMES[2]]
    assert (stats.bytes_skipped, stats.truncated_tail_bytes) == (0, 0)


def test_writer_refuses_partial_or_corrupt_frames(tmp_path):
    p = tmp_path / "a.jrnl"
    with JournalWriter(p) as w:
        with pytest.raises(JournalError, match="TRUNCATED_PAYLOAD"):
            w.append(FRAMES[0] + FRAMES[1][:-1])
        with pytest.raises(JournalError, match="BAD_MAGIC"):
            w.append(b"\0" * 40)
        with pytest.raises(TypeError):
            import numpy as np
            w.append(np.zeros(40, np.int32))
        assert w.frames_written == 0
    assert p.stat().st_size == FILE_HEADER_SIZE


def test_writer_restarts_a_header_cut_by_a_crash_and_refuses_other_files(tmp_path):
    p = tmp_path / "a.jrnl"
    p.write_bytes(file_header()[:5])
    with JournalWriter(p) as w:
        w.append(FRAMES[0])
    assert read_all(p)[0] == [FRAMES[0]]
    q = tmp_path / "b.bin"
    q.write_bytes(b"hello")
    with pytest.raises(JournalError):
        JournalWriter(q)
    q.write_bytes(b"NOTAJRNL" + bytes(8))
    with pytest.raises(JournalError, match="magic"):
        JournalWriter(q)


@pytest.mark.parametrize("head,match", [
    (b"APJRNL01\x01", "needs 16"), (b"APJRNL01" + struct.pack("<II", 2, 0), "version 2"),
    (b"APJRNL02" + struct.pack("<II", 1, 0), "magic"),
])
def test_reader_rejects_files_that_are_not_journals(tmp_path, head, match):
    p = tmp_path / "x.jrnl"
    p.write_bytes(head + (FRAMES[0] if len(head) == 16 else b""))
    with pytest.raises(JournalError, match=match):
        list(JournalReader(p).frames())


def test_empty_journal_and_random_tail(tmp_path):
    p = tmp_path / "a.jrnl"
    write_raw(p, b"")
    assert read_all(p)[0] == []
    write_raw(p, FRAMES[0] + b"\x01\x02" * 40)     # 80 garbage bytes, no magic
    frames, _, stats = read_all(p)
    assert frames == [FRAMES[0]] and stats.bytes_skipped == 80 and stats.resyncs == 1


def test_batches_expose_index_and_file_offsets(tmp_path):
    p = tmp_path / "a.jrnl"
    write_raw(p, b"".join(FRAMES[:4]))
    r = JournalReader(p)
    [b] = list(r.batches())
    assert b.n == 4 and list(b.frames.sequence[:4]) == [1, 2, 3, 4]
    assert b.file_offset(1) == FILE_HEADER_SIZE + len(FRAMES[0])
    assert b.frame_bytes(3) == FRAMES[3]


_NO_MAGIC = st.binary(min_size=1, max_size=90).map(lambda b: b.replace(b"\xef", b"\x00"))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 39), st.one_of(st.none(), _NO_MAGIC)),
                min_size=1, max_size=12),
       st.sampled_from([3, 40, 200, 4096]))
def test_property_frames_and_garbage_any_chunking(tmp_path_factory, plan, chunk):
    """Whole frames separated by magic-free garbage: every frame comes back, every
    garbage byte is counted as skipped, whatever the chunk size."""
    body, expect, garbage = b"", [], 0
    for i, g in plan:
        if g is not None:
            body += g
            garbage += len(g)
        body += FRAMES[i]
        expect.append(FRAMES[i])
    p = tmp_path_factory.mktemp("j") / "p.jrnl"
    write_raw(p, body)
    frames, _, stats = read_all(p, chunk_size=chunk, max_frames=5)
    assert frames == expect
    assert stats.bytes_skipped == garbage and stats.truncated_tail_bytes == 0
    assert stats.frames_ok == len(expect)


@pytest.mark.parametrize("grow", [1, 37, 200, 2000])
def test_a_corrupt_payload_size_swallows_no_valid_frame_behind_it(tmp_path, grow):
    """A bit flip in payload_size leaves a sane header over a span of invalid TLVs: the frames
    inside that span are found again, the corrupt one alone is rejected."""
    bad = bytearray(FRAMES[0])
    struct.pack_into("<I", bad, 24, struct.unpack_from("<I", bad, 24)[0] + grow)
    p = tmp_path / "a.jrnl"
    write_raw(p, bytes(bad) + b"".join(FRAMES[1:]))
    frames, _, stats = read_all(p)
    assert frames == FRAMES[1:]
    assert stats.rejected_total == 1 and stats.truncated_tail_bytes == 0


def test_resynchronising_over_megabytes_of_magic_bytes_is_linear(tmp_path):
    import time
    p = tmp_path / "a.jrnl"
    write_raw(p, FRAMES[0] + bytes.fromhex("efbeadde") * (1 << 20) + FRAMES[1])
    read_all(p)                               # compiled once
    t0 = time.perf_counter()
    frames, _, stats = read_all(p)
    dt = time.perf_counter() - t0
    assert frames == FRAMES[:2] and stats.bytes_skipped == 4 << 20
    assert dt < 1.0, dt


_CRC_FRAMES = [make_frame(s) for s in range(1, 41)]


@settings(max_examples=120, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from(["flip", "byte", "magic"]),
                          st.integers(0, 255)), min_size=1, max_size=6),
       st.sampled_from([7, 64, 1000, 1 << 16]), st.integers(0, 3))
def test_fuzz_random_corruption_loses_only_the_frames_it_touched(tmp_path_factory, edits, chunk, cut):
    """Point corruptions of a journal of checksummed frames: the reader ends, returns only
    original frames, in order, and every frame whose bytes were not touched."""
    body = bytearray(b"".join(_CRC_FRAMES))
    touched = set()
    for where, how, val in edits:
        i = where % len(body)
        n = 4 if how == "magic" else 1
        i = min(i, len(body) - n)
        if how == "flip":
            body[i] ^= 1 << (val % 8)
        elif how == "byte":
            body[i] = val
        else:
            body[i:i + 4] = bytes.fromhex("efbeadde")
        touched.update(range(i, i + n))
    if cut:
        body = body[:len(body) - cut * 13]
    p = tmp_path_factory.mktemp("j") / "f.jrnl"
    write_raw(p, bytes(body))
    frames, offsets, stats = read_all(p, chunk_size=chunk, max_frames=7)
    starts, o = [], 0
    for fr in _CRC_FRAMES:
        starts.append(o)
        o += len(fr)
    intact = [fr for fr, s in zip(_CRC_FRAMES, starts)
              if s + len(fr) <= len(body) and not touched & set(range(s, s + len(fr)))]
    assert all(fr in _CRC_FRAMES for fr in frames)
    idx = [_CRC_FRAMES.index(fr) for fr in frames]
    assert idx == sorted(idx)
    assert [fr for fr in frames if fr in intact] == intact
