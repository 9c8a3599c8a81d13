"""Wait strategies: the default sleeping consumer blocks in a futex and is woken by a publish."""
from __future__ import annotations

import os
import signal
import time

import pytest

from alphapulse.ring import Ring, futex
from alphapulse.ring.layout import W_WAITERS
from tests.ring import workers as W

pytestmark = pytest.mark.skipif(not futex.AVAILABLE, reason="futex needs Linux x86-64/AArch64")


def wait_for(cond, timeout=30.0):
    t_end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > t_end:
            return False
        time.sleep(0.01)
    return True


def test_sleeping_consumer_is_woken_by_the_producer_through_the_futex(ring_name, spawn):
    name = ring_name("futex")
    with Ring.create(name, 1 << 16, "lossless") as ring:
        p = ring.producer()
        q, ready = spawn.Queue(), spawn.Event()
        spawn(W.sleep_poll_once, name, ready, q)
        assert ready.wait(60)
        assert wait_for(lambda: int(ring._h[W_WAITERS]) == 1)    # it is asleep and counted
        assert ring.stats()["sleeping_consumers"] == 1
        frame = W.G_frame(1)
        p.publish(frame)
        nbytes, waited = q.get(timeout=30)
        assert nbytes == len(frame)
        assert ring.stats()["producer"]["wakes"] >= 1             # woken by FUTEX_WAKE ...
        assert wait_for(lambda: int(ring._h[W_WAITERS]) == 0)    # ... and uncounted


def test_a_consumer_killed_asleep_is_uncounted_so_publishes_stop_issuing_wakes(ring_name, spawn,
                                                                              caplog):
    name = ring_name("futexkill")
    with Ring.create(name, 1 << 16, "overwrite") as ring:
        p = ring.producer()
        ready = spawn.Event()
        proc = spawn(W.sleep_forever_in_poll, name, ready)
        assert ready.wait(60)
        assert wait_for(lambda: int(ring._h[W_WAITERS]) == 1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert int(ring._h[W_WAITERS]) == 1                      # it died counted
        for s in range(1, 101):                                  # wakes find nobody ...
            p.publish(W.G_frame(s))
        assert int(ring._h[W_WAITERS]) == 0                      # ... so the producer repaired it
        assert any("dead_pid" in r.getMessage() for r in caplog.records)


def test_idle_sleeping_consumer_uses_no_cpu_while_waiting(ring_name):
    """Not a speed claim: a blocked futex wait accrues (almost) no CPU time, a spin does."""
    with Ring.create(ring_name("idle"), 1 << 12, "lossless") as ring:
        c = ring.consumer("idle")
        c.poll(0.01)
        t0 = time.process_time()
        assert c.poll(timeout=0.6) == []
        sleep_cpu = time.process_time() - t0
        c.close()
        s = ring.consumer("spin", wait="spin")
        s.poll(0.01)
        t0 = time.process_time()
        assert s.poll(timeout=0.6) == []
        spin_cpu = time.process_time() - t0
        assert sleep_cpu < spin_cpu / 5
