"""Linux futex on a word of the ring header, shared between processes.

A sleeping consumer blocks in ``FUTEX_WAIT`` on the low 32 bits of the
publish sequence (little-endian: the word's first 4 bytes) and the producer
issues ``FUTEX_WAKE`` after a publish when the header says someone sleeps.
The kernel compares the word with the expected value under its own lock, so a
publish between the consumer's last check and its sleep is never missed (the
wait returns at once). Non-private futex operations (no FUTEX_PRIVATE_FLAG)
work across processes mapping the same shared memory.

Elsewhere than Linux x86-64/AArch64 ``AVAILABLE`` is False and waiting falls
back to timed sleeps.
"""
from __future__ import annotations

import ctypes
import platform
import sys

FUTEX_WAIT = 0
FUTEX_WAKE = 1
_SYS_FUTEX = {"x86_64": 202, "amd64": 202, "aarch64": 98, "arm64": 98}.get(
    platform.machine().lower())
AVAILABLE = sys.platform.startswith("linux") and _SYS_FUTEX is not None


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


if AVAILABLE:
    _libc = ctypes.CDLL(None, use_errno=True)
    _syscall = _libc.syscall
    _syscall.restype = ctypes.c_long


def wait(addr: int, expected: int, timeout_s: float) -> None:
    """Sleep while the u32 at ``addr`` equals ``expected``, at most ``timeout_s``.

    Returns on a wake-up, a changed value, the timeout or a signal; callers
    re-check the condition in every case.
    """
    ts = _Timespec(int(timeout_s), int((timeout_s % 1.0) * 1e9))
    _syscall(_SYS_FUTEX, ctypes.c_void_p(addr), FUTEX_WAIT,
             ctypes.c_uint32(expected & 0xFFFFFFFF), ctypes.byref(ts), None, 0)


def wake(addr: int) -> int:
    """Wake every waiter on the u32 at ``addr``; returns how many were woken."""
    return int(_syscall(_SYS_FUTEX, ctypes.c_void_p(addr), FUTEX_WAKE, 0x7FFFFFFF,
                        None, None, 0))
