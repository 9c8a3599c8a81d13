"""The bridge batch: many whole Protocol V2 frames in one NATS message.

Wire format of one JetStream message (all integers little-endian)::

    off size field
      0    4 magic        b"APBR"
      4    1 version      1
      5    1 domain       relay domain of every frame inside (PROTOCOL.md table 1)
      6    1 flags        0 (reserved)
      7    1 host_len     bytes of ``host`` used (1..32)
      8    8 session      u64: the outbound bridge run that cut this batch (its start time, ns)
     16    8 first_index  u64: bridge frame index of the first frame: frames this session
                          published before it (0-based, +1 per frame, never reset in a session)
     24    8 first_seq    u64: Protocol V2 header sequence of the first frame (diagnostics)
     32    4 frame_count  u32: whole frames that follow, >= 1
     36    4 byte_length  u32: bytes of frames that follow (= message size - 80)
     40    4 crc32        u32: zlib.crc32 of those bytes (transport integrity, always set)
     44    4 reserved     0
     48   32 host         source host id, ASCII, NUL padded (a subject token)
     80    .. frames      the frames exactly as they were in the source ring, back to back

Why a bridge index and not only the frames' own sequence numbers: a ring may
carry frames of several producers (sources), and a restarted producer starts
its sequence at 1 again; ``(session, first_index)`` is strictly increasing
for everything one outbound bridge publishes, so it names each frame exactly
once. It is what JetStream deduplicates on (message id
``<host>.<domain>.<session hex>.<first_index>``, stable across retries of the
same batch) and what the inbound bridge deduplicates on after a redelivery.
The frames keep their own header (sequence, flags incl. the replay flag,
timestamps) untouched, so those mean the same end to end.
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from alphapulse.jit import frames as F
from alphapulse.protocol.layout import Reject

BATCH_MAGIC = b"APBR"
BATCH_VERSION = 1
BATCH_HEADER = struct.Struct("<4sBBBBQQQIIII32s")
BATCH_HEADER_SIZE = BATCH_HEADER.size
assert BATCH_HEADER_SIZE == 80
HOST_MAX = 32


class BatchError(ValueError):
    """A NATS message that is not a valid bridge batch (``reason`` names the check)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"invalid bridge batch ({reason}): {detail}")
        self.reason = reason


@dataclass(frozen=True)
class BatchHeader:
    domain: int
    host: str
    session: int
    first_index: int
    first_seq: int
    frame_count: int
    byte_length: int
    crc32: int

    @property
    def next_index(self) -> int:
        """Bridge index just past this batch's last frame."""
        return self.first_index + self.frame_count

    def msg_id(self) -> str:
        """JetStream ``Nats-Msg-Id``: the same for every retry of this batch."""
        return msg_id(self.host, self.domain, self.session, self.first_index)


def msg_id(host: str, domain: int, session: int, first_index: int) -> str:
    return f"{host}.{domain}.{session:x}.{first_index}"


def pack_batch(host: str, domain: int, session: int, first_index: int, first_seq: int,
               frame_count: int, frames: bytes | memoryview | np.ndarray) -> bytes:
    """One NATS message: the 80-byte header followed by ``frames`` (copied once)."""
    hb = host.encode("ascii")
    if not 1 <= len(hb) <= HOST_MAX:
        raise ValueError(f"host id must be 1..{HOST_MAX} ASCII bytes, got {host!r}")
    mv = memoryview(frames).cast("B")
    hdr = BATCH_HEADER.pack(BATCH_MAGIC, BATCH_VERSION, domain, 0, len(hb), session, first_index,
                            first_seq, frame_count, mv.nbytes, zlib.crc32(mv), 0, hb)
    return b"".join((hdr, mv))


def parse_header(data: bytes | memoryview) -> BatchHeader:
    """Header of a batch, checked against the message length and its CRC."""
    if len(data) < BATCH_HEADER_SIZE:
        raise BatchError("short", f"{len(data)} bytes, the header alone is {BATCH_HEADER_SIZE}")
    (magic, version, domain, _flags, host_len, session, first_index, first_seq, count,
     length, crc, _res, host) = BATCH_HEADER.unpack_from(data, 0)
    if magic != BATCH_MAGIC:
        raise BatchError("magic", f"{magic!r} is not {BATCH_MAGIC!r}")
    if version != BATCH_VERSION:
        raise BatchError("version", f"version {version}, this code reads {BATCH_VERSION}")
    if not 1 <= host_len <= HOST_MAX:
        raise BatchError("host", f"host length {host_len}")
    if length != len(data) - BATCH_HEADER_SIZE:
        raise BatchError("length", f"header says {length} frame bytes, message holds "
                                   f"{len(data) - BATCH_HEADER_SIZE}")
    if count < 1:
        raise BatchError("count", "a batch holds at least one frame")
    if zlib.crc32(memoryview(data)[BATCH_HEADER_SIZE:]) != crc:
        raise BatchError("crc", "frame bytes do not match the batch CRC-32")
    try:
        host_s = host[:host_len].decode("ascii")
    except UnicodeDecodeError:
        raise BatchError("host", f"host id is not ASCII: {host[:host_len]!r}") from None
    return BatchHeader(domain, host_s, session, first_index, first_seq, count, length, crc)


class FrameWalker:
    """Validates regions of whole frames with the ``alphapulse.jit.frames`` kernel.

    Reused across calls: the frame index is allocated once (``capacity`` rows).
    Counters: ``rejected`` frames with a bad payload or sampled checksum,
    ``corrupt`` untrustworthy headers (then the walk resynchronises on the next
    magic, ``skipped_bytes`` counts what it stepped over), per reason in
    ``reasons``.
    """

    def __init__(self, crc_every: int = 0, capacity: int = 1 << 16) -> None:
        self.crc_every = crc_every
        self.crc_state = F.new_crc_state()
        self.index = F.alloc_frame_index(capacity)
        self.frames = 0             # complete frames walked (valid or rejected)
        self.rejected = 0
        self.corrupt = 0
        self.skipped_bytes = 0
        self.reasons: dict[str, int] = {}

    def _count(self, reason: int, n: int = 1) -> None:
        name = Reject(reason).name
        self.reasons[name] = self.reasons.get(name, 0) + n

    def runs(self, buf: np.ndarray, start: int = 0, end: int | None = None):
        """Yield ``(first_row, n_rows)`` runs of consecutive valid frames in ``buf[start:end]``.

        Rows index :attr:`index` and are valid until the next iteration step.
        Invalid frames are counted and left out of every run.
        """
        end = buf.shape[0] if end is None else end
        pos = start
        idx = self.index
        while pos < end:
            n, consumed, stop, reason = F.validate_frames(buf, pos, end, self.crc_every,
                                                          self.crc_state, idx)
            if n:
                self.frames += n
                bad = np.flatnonzero(idx.status[:n])
                a = 0
                for b in bad.tolist():
                    self.rejected += 1
                    self._count(int(idx.status[b]))
                    if b > a:
                        yield a, b - a
                    a = b + 1
                if n > a:
                    yield a, n - a
            pos = consumed
            if stop in (F.STOP_CORRUPT, F.STOP_PARTIAL):
                # A ring never holds a partial frame: either case is corruption.
                self.corrupt += 1
                self._count(reason)
                nxt = F.find_magic(buf, pos + 1, end)
                nxt = end if nxt < 0 else nxt
                self.skipped_bytes += nxt - pos
                pos = nxt


def cut(walker: FrameWalker, buf: np.ndarray, max_bytes: int):
    """Split the valid frames of ``buf`` into batches of at most ``max_bytes``.

    Yields ``(start, end, n_frames, first_seq)``: ``buf[start:end]`` is a run of
    ``n_frames`` whole valid frames. Every frame is at most MAX_FRAME bytes, which
    the configuration keeps <= ``max_bytes``, so each batch holds >= 1 frame.
    """
    idx = walker.index
    for a, n in walker.runs(buf):
        offs = idx.offset[a:a + n]
        ends = offs + idx.length[a:a + n]
        i = 0
        while i < n:
            s = int(offs[i])
            k = int(np.searchsorted(ends[i:], s + max_bytes, side="right"))
            k = max(k, 1)
            yield s, int(ends[i + k - 1]), k, int(idx.sequence[a + i])
            i += k


def batch_frames(walker: FrameWalker, hdr: BatchHeader, frames: np.ndarray) -> np.ndarray:
    """Check that a received batch holds exactly ``frame_count`` valid frames of its domain.

    Returns the byte offset of every frame plus the end (length ``frame_count + 1``),
    so a caller can write any suffix of the batch. Raises BatchError otherwise.
    """
    idx = walker.index
    if hdr.frame_count > idx.offset.shape[0]:
        raise BatchError("count", f"{hdr.frame_count} frames exceed the walker's {idx.offset.shape[0]}")
    n, consumed, stop, reason = F.validate_frames(frames, 0, frames.shape[0], walker.crc_every,
                                                  walker.crc_state, idx)
    if stop != F.STOP_END or n != hdr.frame_count:
        raise BatchError("frames", f"header says {hdr.frame_count} frames, found {n} valid-length "
                                   f"frames then {F.STOP_NAMES[stop]} ({Reject(reason).name}) at byte {consumed}")
    bad = np.flatnonzero(idx.status[:n])
    if bad.size:
        raise BatchError("frames", f"frame {int(bad[0])} rejected: {Reject(int(idx.status[bad[0]])).name}")
    if np.any(idx.domain[:n] != hdr.domain):
        raise BatchError("domain", f"a frame's domain differs from the batch domain {hdr.domain}")
    out = np.empty(n + 1, np.int64)
    out[:n] = idx.offset[:n]
    out[n] = consumed
    return out
