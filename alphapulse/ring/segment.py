"""POSIX shared-memory segments for the rings, without the resource tracker.

Why not ``multiprocessing.shared_memory.SharedMemory``: in Python 3.11 every
``SharedMemory(name)`` (attach as well as create) registers the name with the
resource tracker, and processes started with *spawn* share their parent's
tracker, whose registry is a *set* of names. Attaching from a child and
unregistering there (the usual advice) therefore also erases the owner's
registration, and not unregistering makes the tracker of a standalone reader
unlink the owner's live segment when the reader exits and print false
"leaked shared_memory" warnings. Both are wrong, so the rings never involve
the tracker: attach maps the segment and registers nothing (no false
warnings), and the owner registers every segment it creates with its own
watchdog (:mod:`alphapulse.ring.registry`), which unlinks what the owner left
behind when the owner dies, and says so on stderr: real leaks are reported,
not hidden.
"""
from __future__ import annotations

import mmap
import os

try:
    import _posixshmem  # the C module behind SharedMemory
except ImportError:  # pragma: no cover - non-POSIX
    _posixshmem = None

SHM_DIR = "/dev/shm"


def _open(name: str, flags: int) -> int:
    if _posixshmem is not None:
        return _posixshmem.shm_open("/" + name, flags, mode=0o600)
    return os.open(os.path.join(SHM_DIR, name), flags, 0o600)  # pragma: no cover


def shm_unlink(name: str) -> bool:
    """Remove segment ``name``; False if it did not exist."""
    try:
        if _posixshmem is not None:
            _posixshmem.shm_unlink("/" + name)
        else:  # pragma: no cover
            os.unlink(os.path.join(SHM_DIR, name))
        return True
    except FileNotFoundError:
        return False


def shm_exists(name: str) -> bool:
    return os.path.exists(os.path.join(SHM_DIR, name))


def list_segments(prefix: str) -> list[str]:
    """Names of segments in /dev/shm starting with ``prefix``."""
    try:
        return sorted(n for n in os.listdir(SHM_DIR) if n.startswith(prefix))
    except FileNotFoundError:  # pragma: no cover
        return []


class Segment:
    """One mapped segment: ``buf`` is its ``mmap``; ``close()`` unmaps."""

    def __init__(self, name: str, mm: mmap.mmap, size: int, owner: bool) -> None:
        self.name = name
        self.buf = mm
        self.size = size
        self.owner = owner

    @classmethod
    def create(cls, name: str, size: int) -> "Segment":
        """A new zero-filled segment; FileExistsError if the name is taken."""
        fd = _open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR)
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            shm_unlink(name)
            raise
        os.close(fd)
        return cls(name, mm, size, True)

    @classmethod
    def attach(cls, name: str) -> "Segment":
        """Map an existing segment read-write; FileNotFoundError if absent."""
        fd = _open(name, os.O_RDWR)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise ValueError(f"shared memory {name!r} is empty: not a ring")
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, mm, size, False)

    def close(self) -> bool:
        """Unmap; False if numpy views still export the buffer (unmapped when they die)."""
        if self.buf is None:
            return True
        try:
            self.buf.close()
        except BufferError:
            # Views handed to callers still point into the mapping; unmapping
            # now would turn their next access into a segfault. The mmap
            # object is freed (and unmapped) with the last view.
            self.buf = None
            return False
        self.buf = None
        return True
