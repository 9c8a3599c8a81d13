"""Recorder: frames -> journal files (PROTOCOL.md section 6), rotating by size.

The file format and the per-file writer are :mod:`alphapulse.journal`
(``JournalWriter``: whole frames only, a crash-truncated tail is cut when a file
is reopened); this module adds what a recording needs on top: a directory of
numbered files rotated by size (at frame boundaries; a frame never spans two
files), a flush after every batch (the bytes are in the kernel when a batch
returns, so a crash of this process loses nothing written and a torn write at
most the last partial frame, which every reader skips and counts; ``fsync_s``
bounds what a machine crash can lose), and ``record_ring``, the process entry
point that follows a ring as consumer ``recorder``.

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

from alphapulse.journal import FILE_HEADER_SIZE, JournalWriter
from alphapulse.protocol import layout as L

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".apj"
_PAYLOAD_SIZE = struct.Struct("<I")
_PAYLOAD_OFF = struct.calcsize(L.HEADER_STRUCT[:-2])   # header field payload_size


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
        if rotate_bytes < FILE_HEADER_SIZE + L.MAX_FRAME:
            raise ValueError(f"rotate_bytes must be >= {FILE_HEADER_SIZE + L.MAX_FRAME} "
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
        self._w: JournalWriter | None = None
        self._size = 0
        existing = journal_files(self.directory, name)
        self._next = (int(existing[-1].stem.rsplit("-", 1)[1]) + 1) if existing else 1
        self._last_sync = time.monotonic()
        self._open()

    def _open(self) -> None:
        path = self.directory / f"{self.name}-{self._next:06d}{JOURNAL_SUFFIX}"
        self._next += 1
        if path.exists():   # never append to another recorder's file
            raise FileExistsError(f"{path} exists")
        self._w = JournalWriter(path)
        self._w.flush()
        self._size = FILE_HEADER_SIZE
        self.files.append(path)
        log.info("recording to %s", path)

    def _rotate(self) -> None:
        self._sync()
        self._w.close()
        self._open()

    def _sync(self) -> None:
        self._w.flush()
        os.fsync(self._w._f.fileno())
        self._last_sync = time.monotonic()

    def _append(self, data: Any) -> None:
        n = len(data)
        self.frames_written += self._w.append(data)
        self._w.flush()                    # in the kernel: survives a crash of this process
        self._size += n
        self.bytes_written += n
        if self.fsync_s is not None and time.monotonic() - self._last_sync >= self.fsync_s:
            self._sync()

    def _room(self) -> int:
        return self.rotate_bytes - self._size

    def write_frames(self, frames: Iterable[bytes]) -> None:
        """Append complete frames."""
        batch: list[bytes] = []
        size = 0
        for f in frames:
            if size + len(f) > self._room():
                if batch:
                    self._append(b"".join(batch))
                    batch, size = [], 0
                if self._size > FILE_HEADER_SIZE:
                    self._rotate()
            batch.append(f)
            size += len(f)
        if batch:
            self._append(b"".join(batch))

    def write_buffer(self, buf: Any, nbytes: int | None = None) -> None:
        """Append ``buf[:nbytes]``, consecutive whole frames (e.g. a ring view)."""
        mv = memoryview(buf).cast("B")
        mv = mv[:len(mv) if nbytes is None else nbytes]
        while len(mv) > self._room():
            # the longest whole-frame prefix that fits, then a new file
            pos = 0
            while pos + L.HEADER_SIZE <= len(mv):
                n = L.HEADER_SIZE + _PAYLOAD_SIZE.unpack_from(mv, pos + _PAYLOAD_OFF)[0]
                if pos + n > self._room():
                    break
                pos += n
            if pos:
                self._append(mv[:pos])
                mv = mv[pos:]
            if self._size > FILE_HEADER_SIZE:
                self._rotate()
            elif not pos:
                break      # a single frame larger than a file: JournalWriter judges it
        if len(mv):
            self._append(mv)

    def flush(self) -> None:
        """Data is already in the kernel after every write; this forces it to the disk."""
        if self._w is not None:
            self._sync()

    def close(self) -> None:
        if self._w is not None:
            self._sync()
            self._w.close()
            self._w = None

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def record_ring(ring_name: str, directory: str | os.PathLike, stop_event: Any, *,
                name: str = "market", rotate_bytes: int = 256 << 20, fsync_s: float | None = 1.0,
                consumer_name: str = "recorder", poll_timeout_s: float = 0.1,
                beat: Any = None, beat_s: float = 0.5) -> dict:
    """Process entry point: copy every frame of ring ``ring_name`` into journal files until
    ``stop_event.is_set()``; returns counts. Frames lost by an overwrite ring are counted.
    ``beat()`` (the component's heartbeat) is called every ``beat_s`` while it runs."""
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name, timeout=10.0)
    consumer = ring.consumer(consumer_name, wait="sleep", copy=True)  # never write bytes being overwritten
    rec = Recorder(directory, name, rotate_bytes=rotate_bytes, fsync_s=fsync_s)
    try:
        next_beat = 0.0
        while not stop_event.is_set():
            if beat is not None and time.monotonic() >= next_beat:
                beat()
                next_beat = time.monotonic() + beat_s
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
