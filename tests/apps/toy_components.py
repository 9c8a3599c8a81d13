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
