"""Recorder: frames -> journal files (PROTOCOL.md section 6), rotating by size.

A journal file is the 16-byte header ``APJRNL01`` + version u32 (1) + flags
u32 (0), then whole frames back to back, exactly as they travelled. Frames are
written with unbuffered ``os.write`` calls of whole frames, so the bytes are in
the kernel as soon as a batch returns: a crash of this process loses nothing
written, a crash of the machine at most what the page cache held (``fsync_s``
bounds that) and a torn write leaves at most one partial frame at the end of a
file, which every reader skips (counted). Files rotate when the next batch would
pass ``rotate_bytes`` (at frame boundaries; one frame never spans two files).

``record_ring`` is the process entry point: it follows a ring as consumer
``recorder`` and writes everything it reads.
"""
from __future__ import annotations

import logging
import os
import re
import struct
import time
from pathlib import Path
from typing import Any, Iterable

from alphapulse.protocol import layout as L

log = logging.getLogger(__name__)

JOURNAL_MAGIC = b"APJRNL01"
JOURNAL_VERSION = 1
JOURNAL_HEADER = struct.Struct("<8sII")
JOURNAL_HEADER_SIZE = JOURNAL_HEADER.size
JOURNAL_SUFFIX = ".apj"
assert JOURNAL_HEADER_SIZE == 16

_PAYLOAD_SIZE = struct.Struct("<I")
_PAYLOAD_OFF = 24   # header field payload_size: HEADER_STRUCT "<IBBBBQQII" -> 4+1+1+1+1+8+8
assert struct.calcsize(L.HEADER_STRUCT[:-2]) == _PAYLOAD_OFF


def journal_header() -> bytes:
    return JOURNAL_HEADER.pack(JOURNAL_MAGIC, JOURNAL_VERSION, 0)


def journal_files(directory: str | os.PathLike, name: str = "") -> list[Path]:
    """The journal files of ``directory`` (of recording ``name`` if given) in write order."""
    d = Path(directory)
    pat = re.compile(rf"^{re.escape(name) if name else '.+'}-(\d+){re.escape(JOURNAL_SUFFIX)}$")
    found = [(int(m.group(1)), p.name, p) for p in d.iterdir() if (m := pat.match(p.name))] \
        if d.is_dir() else []
    return [p for _, _, p in sorted(found)]


class Recorder:
    """Appends whole frames to ``<directory>/<name>-NNNNNN.apj``, a new file every ``rotate_bytes``."""

    def __init__(self, directory: str | os.PathLike, name: str = "market", *,
                 rotate_bytes: int = 256 << 20, fsync_s: float | None = None) -> None:
        if rotate_bytes < JOURNAL_HEADER_SIZE + L.MAX_FRAME:
            raise ValueError(f"rotate_bytes must be >= {JOURNAL_HEADER_SIZE + L.MAX_FRAME} "
                             f"(one maximal frame), got {rotate_bytes}")
        if not re.match(r"^[A-Za-z0-9_.]+$", name):
            raise ValueError(f"recording name must be [A-Za-z0-9_.]+, got {name!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.rotate_bytes = rotate_bytes
        self.fsync_s = fsync_s
        self.files: list[Path] = []
        self.frames_written = 0
        self.bytes_written = 0
        self._fd = -1
        self._size = 0
        existing = journal_files(self.directory, name)
        self._next = (int(existing[-1].stem.rsplit("-", 1)[1]) + 1) if existing else 1
        self._last_sync = time.monotonic()
        self._open()

    def _open(self) -> None:
        path = self.directory / f"{self.name}-{self._next:06d}{JOURNAL_SUFFIX}"
        self._next += 1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(fd, journal_header())
        self._fd = fd
        self._size = JOURNAL_HEADER_SIZE
        self.files.append(path)
        log.info("recording to %s", path)

    def _rotate(self) -> None:
        os.fsync(self._fd)
        os.close(self._fd)
        self._open()

    def _write(self, data: Any, nbytes: int, frames: int) -> None:
        mv = memoryview(data).cast("B")[:nbytes]
        while mv:
            n = os.write(self._fd, mv)
            mv = mv[n:]
        self._size += nbytes
        self.bytes_written += nbytes
        self.frames_written += frames
        if self.fsync_s is not None and time.monotonic() - self._last_sync >= self.fsync_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()

    def write_frames(self, frames: Iterable[bytes]) -> None:
        """Append frames (each a complete frame; the caller validated them)."""
        batch: list[bytes] = []
        size = 0
        for f in frames:
            n = len(f)
            if self._size + size + n > self.rotate_bytes and self._size + size > JOURNAL_HEADER_SIZE:
                if batch:
                    self._write(b"".join(batch), size, len(batch))
                    batch, size = [], 0
                if self._size > JOURNAL_HEADER_SIZE:
                    self._rotate()
            batch.append(f)
            size += n
        if batch:
            self._write(b"".join(batch), size, len(batch))

    def write_buffer(self, buf: Any, nbytes: int | None = None) -> int:
        """Append ``buf[:nbytes]``, consecutive whole frames (e.g. a ring view); returns frames."""
        mv = memoryview(buf).cast("B")
        end = len(mv) if nbytes is None else nbytes
        pos = 0
        frames = 0
        start = 0
        while pos < end:
            if end - pos < L.HEADER_SIZE:
                raise ValueError(f"partial frame header at {pos} of a {end}-byte buffer")
            n = L.HEADER_SIZE + _PAYLOAD_SIZE.unpack_from(mv, pos + _PAYLOAD_OFF)[0]
            if pos + n > end:
                raise ValueError(f"frame at {pos} of {n} bytes runs past {end}")
            if self._size + (pos - start) + n > self.rotate_bytes and self._size + (pos - start) > JOURNAL_HEADER_SIZE:
                if pos > start:
                    self._write(mv[start:pos], pos - start, frames)
                    frames, start = 0, pos
                self._rotate()
            pos += n
            frames += 1
        if pos > start:
            self._write(mv[start:pos], pos - start, frames)
        return frames

    def flush(self) -> None:
        """Data is already in the kernel; this also forces it to the disk."""
        if self._fd >= 0:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_ring(ring_name: str, directory: str | os.PathLike, stop_event: Any, *,
                name: str = "market", rotate_bytes: int = 256 << 20, fsync_s: float | None = 1.0,
                consumer_name: str = "recorder", poll_timeout_s: float = 0.1) -> dict:
    """Process entry point: copy every frame of ring ``ring_name`` into journal files until
    ``stop_event.is_set()``; returns counts. Frames lost by an overwrite ring are counted."""
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name, timeout=10.0)
    consumer = ring.consumer(consumer_name, wait="sleep", copy=True)  # never write bytes being overwritten
    rec = Recorder(directory, name, rotate_bytes=rotate_bytes, fsync_s=fsync_s)
    try:
        while not stop_event.is_set():
            views = consumer.poll(timeout=poll_timeout_s)
            for v in views:
                rec.write_buffer(v)
            if views:
                lost = consumer.release()
                if lost:
                    log.warning("recorder: %d frames overwritten while being written", lost)
        while True:   # drain what is left
            views = consumer.poll(timeout=0)
            if not views:
                break
            for v in views:
                rec.write_buffer(v)
            consumer.release()
    finally:
        rec.close()
        out = {"frames": rec.frames_written, "bytes": rec.bytes_written,
               "files": [str(f) for f in rec.files], "lost_frames": consumer.lost_frames}
        consumer.close()
        ring.close()
    return out
