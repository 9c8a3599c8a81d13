"""Small real components for supervisor tests (importable by spawned children)."""
import logging
import os
import time
from pathlib import Path


def ticker(stop, path: str) -> None:
    """Appends its pid to ``path`` and then waits for stop."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    logging.getLogger("toy").info("ticker up")
    while not stop.wait(0.05):
        pass
    Path(path + ".stopped").write_text(str(os.getpid()))


def finisher(stop, seconds: float) -> None:
    time.sleep(seconds)


def crasher(stop) -> None:
    raise RuntimeError("boom")


def beater(stop, path: str) -> None:
    """Appends its pid to ``path``, then writes the wall clock (ns) to ``path + '.beat'`` every
    20 ms until stop (a SIGSTOP makes it silent)."""
    with open(path, "a") as f:
        f.write(f"{os.getpid()}\n")
    beat = Path(path + ".beat")
    while not stop.wait(0.02):
        tmp = beat.with_suffix(".tmp" + str(os.getpid()))
        tmp.write_text(str(time.time_ns()))
        tmp.replace(beat)


def stubborn(stop) -> None:
    """Ignores its stop event (the supervisor must kill it at shutdown)."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        time.sleep(0.05)
