"""Owner-side life cycle of ring segments: nothing is left in /dev/shm.

Three mechanisms, from the common case to the worst:

1. ``Ring.close()`` by the owner (or leaving its ``with`` block) unlinks the
   segment at once.
2. ``atexit``: rings an owner never closed are unlinked when its interpreter
   exits normally (end of script, ``sys.exit``, an uncaught exception).
3. The watchdog (:mod:`alphapulse.ring.watchdog`): the first ``Ring.create``
   of a process starts a tiny separate interpreter holding the read end of a
   pipe; the owner announces each segment *before* creating it and each
   unlink after it. When the owner dies by any means (SIGKILL, SIGTERM, a
   segfault, ``os._exit``) the kernel closes the pipe, the watchdog unlinks
   every segment still announced and reports them on stderr.

Only the creator unlinks; processes that attach never do (a consumer or a
producer that is SIGKILLed leaves nothing to clean: its mapping dies with it).
Segment names share the prefix ``alphapulse_ring_``, so
``python -m alphapulse.ring stat`` finds them, and
``python -m alphapulse.ring clean`` removes rings whose creator is gone in the
one case not covered above (the owner *and* its watchdog both SIGKILLed).
"""
from __future__ import annotations

import atexit
import logging
import os
import subprocess
import sys
import threading

from alphapulse.ring import segment as _seg

log = logging.getLogger(__name__)

_WATCHDOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "watchdog.py")


class _Registry:
    def __init__(self) -> None:
        self.pid = os.getpid()
        self.lock = threading.Lock()
        self.owned: set[str] = set()
        self.proc: subprocess.Popen | None = None
        atexit.register(self._at_exit)

    def _send(self, line: str) -> None:
        if self.proc is None:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", _WATCHDOG, str(self.pid)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=None,
                start_new_session=True, close_fds=True)
        try:
            self.proc.stdin.write((line + "\n").encode("ascii"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            log.error("ring watchdog is gone (%s): %s will only be unlinked by close()/atexit",
                      e, line[1:])

    def announce(self, name: str) -> None:
        with self.lock:
            self.owned.add(name)
            self._send("+" + name)

    def unlink(self, name: str) -> bool:
        with self.lock:
            existed = _seg.shm_unlink(name)
            if name in self.owned:
                self.owned.discard(name)
                self._send("-" + name)
            return existed

    def forget(self, name: str) -> None:
        """Withdraw an announcement whose segment this process did not create."""
        with self.lock:
            if name in self.owned:
                self.owned.discard(name)
                self._send("-" + name)

    def _at_exit(self) -> None:
        if os.getpid() != self.pid:     # a forked child inherited this object
            return
        with self.lock:
            for name in sorted(self.owned):
                _seg.shm_unlink(name)
            self.owned.clear()
            if self.proc is not None:
                try:
                    self.proc.stdin.close()   # EOF: the watchdog exits with nothing to do
                    self.proc.wait(timeout=2.0)
                except Exception:  # noqa: BLE001 - exiting anyway
                    pass


_registry: _Registry | None = None
_registry_lock = threading.Lock()


def registry() -> _Registry:
    """The registry of this process (a new one after fork)."""
    global _registry
    with _registry_lock:
        if _registry is None or _registry.pid != os.getpid():
            _registry = _Registry()
        return _registry


def announce(name: str) -> None:
    """Tell the watchdog a segment is about to be created by this process."""
    registry().announce(name)


def unlink(name: str) -> bool:
    """Unlink an owned segment and tell the watchdog; False if it was already gone."""
    return registry().unlink(name)


def forget(name: str) -> None:
    """Withdraw an announcement (creating the segment failed: it is someone else's)."""
    registry().forget(name)


def owned() -> list[str]:
    return sorted(registry().owned)
