"""The owner's watchdog: unlinks the rings of an owner that died without doing so.

Started by :mod:`alphapulse.ring.registry` as a separate interpreter
(``python -I -S watchdog.py``: standard library only, no numpy, ~20 ms) in its
own session, so a signal sent to the owner's process group does not take it
down too. It reads lines from its stdin, a pipe whose only writer is the
owner process:

    ``+<segment>``   the owner is creating this segment (sent *before* creating it)
    ``-<segment>``   the owner unlinked it

When the pipe reaches end of file the owner has exited, normally or by any
signal including SIGKILL. Segments still listed are unlinked and, because an
owner that exits cleanly unlinks its rings itself, each one is reported on
stderr as a leak that was cleaned up: the watchdog never hides a leak.
"""
from __future__ import annotations

import os
import signal
import sys


def _unlink(name: str) -> bool:
    try:
        import _posixshmem
        _posixshmem.shm_unlink("/" + name)
        return True
    except FileNotFoundError:
        return False
    except ImportError:  # pragma: no cover
        try:
            os.unlink("/dev/shm/" + name)
            return True
        except FileNotFoundError:
            return False


def main() -> int:
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    owner = sys.argv[1] if len(sys.argv) > 1 else "?"
    live: set[str] = set()
    stdin = sys.stdin.buffer
    for raw in stdin:
        line = raw.decode("ascii", "replace").strip()
        if len(line) < 2:
            continue
        name = line[1:]
        if "/" in name or not name.startswith("alphapulse_"):
            continue   # only ever touch our own namespace
        if line[0] == "+":
            live.add(name)
        elif line[0] == "-":
            live.discard(name)
    leaked = [n for n in sorted(live) if _unlink(n)]
    if leaked:
        sys.stderr.write(
            f"alphapulse.ring watchdog: owner pid {owner} exited without unlinking "
            f"{len(leaked)} ring segment(s), unlinked now: {', '.join(leaked)}\n")
        sys.stderr.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
