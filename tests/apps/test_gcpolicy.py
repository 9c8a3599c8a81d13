import gc

import pytest

from alphapulse.apps.gcpolicy import IdleCollector


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_passes_run_when_idle_and_at_the_latest_after_max_interval():
    clock, calls = Clock(), []
    c = IdleCollector(min_interval_s=1.0, max_interval_s=5.0, clock=clock,
                      collect=lambda: calls.append(clock.t) or 3)
    assert gc.isenabled()
    with c:
        assert not gc.isenabled()
        clock.t = 0.5
        assert not c.tick(idle=True)            # too soon after the start
        clock.t = 1.0
        assert c.tick(idle=True)                # idle and min interval passed
        clock.t = 2.5
        assert not c.tick(idle=False)           # busy: wait
        clock.t = 5.9
        assert not c.tick(idle=False)
        clock.t = 6.0
        assert c.tick(idle=False)               # busy for max_interval_s: forced
        clock.t = 6.5
        assert not c.tick(idle=True)
    assert gc.isenabled()
    assert calls == [1.0, 6.0]
    assert (c.passes, c.forced, c.collected) == (2, 1, 6)


def test_cycles_made_while_off_are_collected_by_a_pass():
    class Node:
        pass
    c = IdleCollector(min_interval_s=0.0, max_interval_s=0.0)
    with c:
        before = gc.get_count()[0]
        for _ in range(1000):
            a, b = Node(), Node()
            a.b, b.a = b, a                     # a cycle reference counting cannot free
        del a, b
        assert gc.get_count()[0] > before       # no automatic pass ran
        assert c.tick(idle=True)
        assert c.collected >= 2000


def test_bad_intervals_are_refused():
    with pytest.raises(ValueError):
        IdleCollector(min_interval_s=2.0, max_interval_s=1.0)
