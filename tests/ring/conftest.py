"""Ring test fixtures: spawn context, unique ring names, process reaping, /dev/shm check.

Every ring a test creates is named ``t<pytest pid>_<n>`` (segment
``alphapulse_ring_t<pid>_<n>``). The session fixture below fails the run if
any such segment is still in /dev/shm when the session ends, whoever created
it (the test process or a child that was killed).
"""
from __future__ import annotations

import itertools
import multiprocessing as mp
import os

import pytest

from alphapulse.ring.layout import SEGMENT_PREFIX
from alphapulse.ring.segment import list_segments

TEST_PREFIX = f"t{os.getpid()}_"
_counter = itertools.count()


def leftover_segments() -> list[str]:
    return list_segments(SEGMENT_PREFIX + TEST_PREFIX)


@pytest.fixture(scope="session", autouse=True)
def no_segment_left_in_dev_shm():
    yield
    left = leftover_segments()
    if left:
        pytest.fail(f"ring tests left shared-memory segments in /dev/shm: {left}", pytrace=False)


@pytest.fixture
def ring_name():
    """A fresh unique ring name per call: ``ring_name()``."""
    return lambda tag="r": f"{TEST_PREFIX}{tag}_{next(_counter)}"


@pytest.fixture
def spawn():
    """Start functions in spawned processes; any still alive at teardown is killed."""
    ctx = mp.get_context("spawn")
    started: list = []

    class Spawner:
        context = ctx

        def __call__(self, target, *args, **kw):
            p = ctx.Process(target=target, args=args, kwargs=kw, daemon=True)
            p.start()
            started.append(p)
            return p

        def Event(self):
            return ctx.Event()

        def Queue(self):
            return ctx.Queue()

    yield Spawner()
    for p in started:
        if p.is_alive():
            p.kill()
        p.join(10)
