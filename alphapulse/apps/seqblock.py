"""A small shared-memory block with one writer and a generation counter (a seqlock).

Layout: 8 bytes of magic, then the generation (u64), then the block's own payload. The writer
makes the generation odd while it writes and even when done; a reader keeps what it copied only
when it saw the same even generation before and after the copy. The supervisor creates the
block (and unlinks it on close); components attach to it by name.
"""
from __future__ import annotations

import mmap
import os
from multiprocessing import shared_memory
from typing import Any


class SeqlockBlock:
    """Subclasses set ``MAGIC`` (8 bytes), ``SIZE`` and ``WHAT`` (named in errors)."""

    MAGIC: bytes = b""
    SIZE: int = 0
    WHAT: str = "block"

    def __init__(self, name: str, buf: memoryview, keep: Any, owner: bool) -> None:
        self.name, self._buf, self._keep, self.owner = name, buf, keep, owner
        self._gen = buf[8:16].cast("Q")

    @classmethod
    def _create(cls, name: str) -> Any:
        """The new zeroed block, its magic written last by :meth:`_seal` (once its payload is)."""
        shm = shared_memory.SharedMemory(name=name, create=True, size=cls.SIZE)
        shm.buf[:cls.SIZE] = bytes(cls.SIZE)
        return cls(name, shm.buf, shm, True)

    def _seal(self) -> None:
        self._buf[0:8] = self.MAGIC

    @classmethod
    def attach(cls, name: str) -> Any:
        import _posixshmem
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
        try:
            mm = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        buf = memoryview(mm)
        if len(buf) < cls.SIZE or bytes(buf[0:8]) != cls.MAGIC:
            buf.release()
            mm.close()
            raise ValueError(f"shared memory {name!r} is not a {cls.WHAT}")
        return cls(name, buf, mm, False)

    @property
    def generation(self) -> int:
        return self._gen[0]

    def _begin_write(self) -> None:
        self._gen[0] = self._gen[0] + 1 | 1          # odd: writing

    def _end_write(self) -> int:
        self._gen[0] = (self._gen[0] | 1) + 1        # even: complete
        return self._gen[0]

    def close(self) -> None:
        if self._keep is None:
            return
        keep, self._keep = self._keep, None
        self._gen.release()
        if isinstance(keep, shared_memory.SharedMemory):
            keep.close()
            if self.owner:
                try:
                    keep.unlink()
                except FileNotFoundError:
                    pass
        else:
            self._buf.release()
            keep.close()
