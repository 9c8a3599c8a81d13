"""Journal files (recordings) of Protocol V2 frames: PROTOCOL.md section 6.

A journal is a 16-byte file header (``APJRNL01``, version u32 = 1, flags u32 = 0)
followed by whole frames back to back, exactly as they travelled.

:class:`JournalWriter` appends only whole frames (it validates what it is given
with the ``validate_frames`` kernel and refuses partial ones) and, when opening
an existing file that a crash left with a partial last frame, cuts that partial
frame off, so a crash loses at most that frame.

:class:`JournalReader` reads any file in this format in chunks and validates
every frame with :func:`alphapulse.jit.validate_frames` (checksums sampled
every ``crc_every`` frames, default all). A frame whose header is sane but whose
payload or checksum is wrong is reported with its reject reason; the next frame
is searched inside the span it declares (a corrupt length must not swallow the
valid frames behind it), else after it. After a corrupt header (bad magic,
version, domain, oversized payload) the reader resynchronises on the next
plausible frame start (:func:`alphapulse.jit.find_frame`, one linear scan in
compiled code) and counts the bytes it skipped. Bytes at the end of the file that start a frame but stop short of it
are counted as a truncated tail when they start with the frame magic and no
later magic follows; anything else there is garbage (skipped bytes). :class:`JournalStats` holds the counts.
"""
from __future__ import annotations

import logging
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from alphapulse.jit import (
    STOP_CORRUPT, STOP_END, STOP_FULL, STOP_PARTIAL, FrameIndex, alloc_frame_index,
    find_frame, new_crc_state, validate_frames,
)
from alphapulse.protocol.layout import MAGIC, MAX_FRAME, Reject

log = logging.getLogger(__name__)

FILE_MAGIC = b"APJRNL01"
FILE_VERSION = 1
FILE_HEADER = struct.Struct("<8sII")
FILE_HEADER_SIZE = FILE_HEADER.size
assert FILE_HEADER_SIZE == 16
_FRAME_MAGIC = MAGIC.to_bytes(4, "little")


class JournalError(ValueError):
    """A file that is not a journal this code can read or append to."""


def file_header(flags: int = 0) -> bytes:
    return FILE_HEADER.pack(FILE_MAGIC, FILE_VERSION, flags)


def read_file_header(f: BinaryIO, path: Path | str) -> int:
    """Check the 16-byte header at the start of ``f``; returns its flags."""
    raw = f.read(FILE_HEADER_SIZE)
    if len(raw) < FILE_HEADER_SIZE:
        raise JournalError(f"{path}: {len(raw)} bytes, a journal header needs 16")
    magic, version, flags = FILE_HEADER.unpack(raw)
    if magic != FILE_MAGIC:
        raise JournalError(f"{path}: magic {magic!r} is not {FILE_MAGIC!r}")
    if version != FILE_VERSION:
        raise JournalError(f"{path}: journal version {version}, this reader knows {FILE_VERSION}")
    return flags


@dataclass
class JournalStats:
    """What a reader saw. Offsets and byte counts are file offsets/bytes."""
    frames_ok: int = 0
    frames_rejected: dict[str, int] = field(default_factory=dict)   # Reject name -> count
    corrupt_headers: dict[str, int] = field(default_factory=dict)   # reason that lost sync
    bytes_skipped: int = 0        # bytes not part of any frame (resynchronisation)
    resyncs: int = 0              # times the reader lost and searched for frame sync
    truncated_tail_bytes: int = 0  # a partial last frame (crash while writing)
    checksums_verified: int = 0
    last_frame_end: int = FILE_HEADER_SIZE   # file offset after the last whole frame

    @property
    def rejected_total(self) -> int:
        return sum(self.frames_rejected.values())


@dataclass(frozen=True)
class Batch:
    """Frames validated in one chunk. ``buf`` and ``frames`` are reused by the
    reader: consume them before asking for the next batch."""
    buf: np.ndarray          # uint8 chunk buffer; frame offsets index into it
    frames: FrameIndex       # rows 0..n-1: offset, length, header fields, status
    n: int
    file_base: int           # file offset of buf[0]

    def file_offset(self, i: int) -> int:
        return self.file_base + int(self.frames.offset[i])

    def frame_bytes(self, i: int) -> bytes:
        o = int(self.frames.offset[i])
        return self.buf[o:o + int(self.frames.length[i])].tobytes()


class JournalReader:
    """Validated frames of a journal file, chunk by chunk (see module doc).

    ``crc_every``: verify every N-th checksum-carrying frame (1 = all, 0 = none).
    ``chunk_size``: bytes read per system call. ``max_frames``: FrameIndex rows
    per batch.
    """

    def __init__(self, path: str | os.PathLike, *, crc_every: int = 1,
                 chunk_size: int = 1 << 22, max_frames: int = 1 << 16) -> None:
        if chunk_size < 1:
            raise ValueError("chunk_size must be positive")
        self.path = Path(path)
        self.crc_every = int(crc_every)
        self.chunk_size = int(chunk_size)
        self.stats = JournalStats()
        self._index = alloc_frame_index(max_frames)
        self._crc_state = new_crc_state()
        # room for a whole chunk plus a maximal frame carried over from the previous one
        self._buf = np.empty(self.chunk_size + MAX_FRAME, dtype=np.uint8)
        self.flags = 0

    def batches(self) -> Iterator[Batch]:
        """Yield a Batch per validation pass; statistics accumulate in ``stats``."""
        st = self.stats
        buf = self._buf
        with open(self.path, "rb") as f:
            self.flags = read_file_header(f, self.path)
            base = FILE_HEADER_SIZE      # file offset of buf[0]
            pos = end = 0
            eof = False
            in_sync = True
            while True:
                if pos > 0 and not eof:                    # compact, then read more
                    rest = end - pos
                    buf[:rest] = buf[pos:end]
                    base += pos
                    pos, end = 0, rest
                if not eof and end < len(buf):
                    got = f.readinto(memoryview(buf)[end:min(len(buf), end + self.chunk_size)])
                    if not got:
                        eof = True
                    end += got or 0
                n, consumed, stop, reason = validate_frames(buf, pos, end, self.crc_every,
                                                            self._crc_state, self._index, True)
                if n:
                    in_sync = True
                    self._count(n)
                    st.last_frame_end = base + consumed
                    yield Batch(buf, self._index, n, base)
                pos = consumed
                if stop == STOP_FULL:
                    continue
                if stop == STOP_END:
                    if eof:
                        break
                    continue
                if stop == STOP_PARTIAL and not eof:
                    continue                               # read the rest of the frame
                # A corrupt header, or bytes at end of file that do not make a frame.
                m = find_frame(buf, pos + 1, end, end)
                head = buf[pos:min(end, pos + len(_FRAME_MAGIC))].tobytes()
                if m < 0 and stop == STOP_PARTIAL and _FRAME_MAGIC.startswith(head):
                    # eof: the start of a frame that a crash cut short
                    st.truncated_tail_bytes += end - pos
                    log.warning("%s: truncated last frame, %d bytes at offset %d",
                                self.path, end - pos, base + pos)
                    break
                if in_sync:                                # one loss of sync, counted once
                    st.resyncs += 1
                    in_sync = False
                    if stop == STOP_CORRUPT:
                        name = Reject(reason).name
                        st.corrupt_headers[name] = st.corrupt_headers.get(name, 0) + 1
                    log.warning("%s: %s at offset %d, resynchronising", self.path,
                                Reject(reason).name, base + pos)
                if m >= 0:
                    st.bytes_skipped += m - pos
                    pos = m
                    continue
                if eof:
                    st.bytes_skipped += end - pos
                    break
                st.bytes_skipped += end - pos              # find_frame keeps a magic cut by the chunk
                pos = end

    def _count(self, n: int) -> None:
        st = self.stats
        status = self._index.status[:n]
        ok = int(np.count_nonzero(status == 0))
        st.frames_ok += ok
        if ok != n:
            codes, counts = np.unique(status[status != 0], return_counts=True)
            for c, k in zip(codes, counts):
                name = Reject(int(c)).name
                st.frames_rejected[name] = st.frames_rejected.get(name, 0) + int(k)
        st.checksums_verified = int(self._crc_state[1])

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """(file offset, frame bytes) of every frame that validated OK, in order."""
        for b in self.batches():
            status = b.frames.status
            for i in range(b.n):
                if status[i] == 0:
                    yield b.file_offset(i), b.frame_bytes(i)


class JournalWriter:
    """Append whole frames to a journal file, creating it with its header.

    Opening an existing journal checks its header and cuts a partial last frame
    left by a crash (``repair_tail``). ``fsync``: fsync after every append.
    """

    def __init__(self, path: str | os.PathLike, *, fsync: bool = False,
                 repair_tail: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.frames_written = 0
        self.bytes_written = 0
        self._index = alloc_frame_index(4096)
        self._state = new_crc_state()
        size = self.path.stat().st_size if self.path.exists() else 0
        header = file_header()
        if 0 < size < FILE_HEADER_SIZE:
            with open(self.path, "rb") as f:
                head = f.read()
            if not header.startswith(head):
                raise JournalError(f"{self.path}: {size} bytes that are not a journal header")
            size = 0                                  # crash while writing the header
        if size == 0:
            self._f = open(self.path, "wb")
            self._f.write(header)
        else:
            with open(self.path, "rb") as f:
                read_file_header(f, self.path)
            if repair_tail:
                reader = JournalReader(self.path, crc_every=0)
                for _ in reader.batches():
                    pass
                cut = reader.stats.truncated_tail_bytes
                if cut:
                    log.warning("%s: cutting a partial last frame of %d bytes", self.path, cut)
                    os.truncate(self.path, size - cut)
            self._f = open(self.path, "ab")
        self._f.flush()

    def append(self, data: bytes | bytearray | memoryview | np.ndarray) -> int:
        """Append whole frames (any number, back to back); returns frames written.

        Raises JournalError, writing nothing, if ``data`` does not hold only
        whole frames with sane headers. Frames are not otherwise judged: a
        recorder keeps what travelled.
        """
        buf = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
        if buf.dtype != np.uint8 or buf.ndim != 1:
            raise TypeError("frames must be bytes or a 1-D uint8 array")
        pos, total = 0, 0
        while True:
            n, pos, stop, reason = validate_frames(buf, pos, len(buf), 0, self._state,
                                                   self._index)
            total += n
            if stop == STOP_FULL:
                continue
            if stop != STOP_END:
                raise JournalError(f"not whole frames: {Reject(reason).name} at byte {pos}")
            break
        self._f.write(memoryview(buf))
        if self.fsync:
            self._f.flush()
            os.fsync(self._f.fileno())
        self.frames_written += total
        self.bytes_written += len(buf)
        return total

    def flush(self) -> None:
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            if self.fsync:
                os.fsync(self._f.fileno())
            self._f.close()

    def __enter__(self) -> "JournalWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
