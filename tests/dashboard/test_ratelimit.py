"""Per-session rate limiting and coalescing, with an injected clock (no sleeps)."""
from __future__ import annotations

import pytest

from alphapulse.dashboard.ratelimit import CoalescingPusher, RateLimiter

MS = 1_000_000


def test_limiter_spacing_and_window_bound():
    lim = RateLimiter(100)
    assert lim.interval_ns == 10 * MS
    assert lim.acquire(0)
    assert not lim.acquire(9 * MS)
    assert lim.delay_ns(9 * MS) == 1 * MS
    assert lim.acquire(10 * MS)
    # hammering every 0.1 ms for 3 s: never more than 100 in any 1 s window
    lim = RateLimiter(100)
    times = [t for t in range(0, 3000 * MS, MS // 10) if lim.acquire(t)]
    assert len(times) == 300
    for i in range(len(times) - 100):
        assert times[i + 100] - times[i] >= 1000 * MS


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_limiter_rejects_bad_rates(bad):
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(bad)


class FakeLoop:
    """A scheduler with a manual clock: ``schedule`` records (due time, callback)."""

    def __init__(self):
        self.now = 0
        self.timers: list[int] = []
        self.pusher: CoalescingPusher | None = None

    def clock(self):
        return self.now

    def schedule(self, delay_ns):
        self.timers.append(self.now + delay_ns)

    def advance_to(self, t):
        """Run due timers in order up to time ``t``."""
        while self.timers and min(self.timers) <= t:
            due = min(self.timers)
            self.timers.remove(due)
            self.now = due
            self.pusher.run()
        self.now = t


def make(rate=100):
    loop = FakeLoop()
    state = {"version": 0, "pushed": 0, "history": []}

    def push(now_ns):
        assert now_ns == loop.now
        if state["pushed"] == state["version"]:
            return False
        state["pushed"] = state["version"]
        state["history"].append((loop.now, state["version"]))
        return True

    p = CoalescingPusher(RateLimiter(rate), loop.schedule, push, loop.clock)
    loop.pusher = p
    return loop, p, state


def test_burst_is_coalesced_newest_state_wins():
    loop, p, st = make(rate=100)
    for i in range(1, 1001):                 # 1000 changes within 1 ms
        st["version"] = i
        p.notify()
        assert len(loop.timers) <= 1         # never more than one scheduled push
        loop.now += 1000
    loop.advance_to(50 * MS)
    assert p.notified == 1000
    assert p.coalesced == 999
    # the first push ran at once (it saw some version), then one more with the newest
    assert st["history"][-1][1] == 1000
    assert p.pushes == len(st["history"]) <= 2


def test_sustained_changes_are_capped_at_the_rate():
    loop, p, st = make(rate=100)
    t = 0
    while t < 2000 * MS:                     # a change every 0.5 ms for 2 s
        st["version"] += 1
        p.notify()
        t += MS // 2
        loop.advance_to(t)
    loop.advance_to(2100 * MS)
    times = [h[0] for h in st["history"]]
    assert 195 <= len(times) <= 201
    assert all(b - a >= 10 * MS for a, b in zip(times, times[1:]))
    assert st["history"][-1][1] == st["version"]      # nothing lost at the end


def test_change_after_a_quiet_period_is_pushed_immediately():
    loop, p, st = make(rate=10)
    st["version"] = 1
    p.notify()
    assert loop.timers == [0]
    loop.advance_to(0)
    loop.advance_to(5000 * MS)
    st["version"] = 2
    p.notify()
    assert loop.timers == [5000 * MS]        # no delay: the last push is long ago
    loop.advance_to(5000 * MS)
    assert [v for _, v in st["history"]] == [1, 2]


def test_early_wakeup_reschedules_and_nothing_new_is_not_a_push():
    loop, p, st = make(rate=10)
    st["version"] = 1
    p.notify()
    loop.advance_to(0)
    st["version"] = 2
    p.notify()
    assert loop.timers == [100 * MS]
    loop.timers = [40 * MS]                  # the timer fires too early
    loop.advance_to(40 * MS)
    assert loop.timers == [100 * MS] and len(st["history"]) == 1
    loop.advance_to(100 * MS)
    assert [h for h in st["history"]] == [(0, 1), (100 * MS, 2)]
    p.notify()                               # notified but nothing changed
    loop.advance_to(300 * MS)
    assert p.idle_runs == 1 and p.pushes == 2


def test_concurrent_notifiers_schedule_one_push():
    import threading
    scheduled = []
    p = CoalescingPusher(RateLimiter(100), scheduled.append, lambda now: True, lambda: 0)
    go = threading.Barrier(8)

    def hammer():
        go.wait()
        for _ in range(20_000):
            p.notify()

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(scheduled) == 1
    assert p.notified == 160_000 and p.coalesced == 159_999


def make_acked(rate=100, timeout_ms=2000, window=1):
    loop, p, st = make(rate)
    p.ack_timeout_ns = timeout_ms * MS
    p.max_unacked = window
    return loop, p, st


def test_a_push_waits_for_the_ack_of_the_previous_one():
    loop, p, st = make_acked(rate=100)
    st["version"] = 1
    p.notify()
    loop.advance_to(0)
    assert [v for _, v in st["history"]] == [1]
    for t in range(1, 50):                    # changes keep coming, the client is slow
        st["version"] += 1
        p.notify()
        loop.advance_to(t * 10 * MS)
    assert len(st["history"]) == 1 and p.pending and p.ack_waits >= 1
    assert len(loop.timers) <= 2              # bounded: a timeout check, at most one more
    loop.now = 500 * MS
    p.ack(1)                                  # applied: the newest state goes at once
    loop.advance_to(500 * MS)
    assert [v for _, v in st["history"]] == [1, 50]
    assert p.ack_timeouts == 0


def test_a_client_that_never_acks_still_gets_a_push_per_timeout():
    loop, p, st = make_acked(rate=100, timeout_ms=2000)
    for t in range(0, 6001, 10):              # 6 s of changes, no ack ever
        st["version"] += 1
        p.notify()
        loop.advance_to(t * MS)
    loop.advance_to(7000 * MS)
    times = [t for t, _ in st["history"]]
    assert times == [0, 2000 * MS, 4000 * MS, 6000 * MS]
    assert p.ack_timeouts == 3
    assert st["history"][-1][1] == 601        # the newest state at 6 s (one change per 10 ms)


def test_ack_without_anything_pending_schedules_nothing():
    loop, p, st = make_acked()
    st["version"] = 1
    p.notify()
    loop.advance_to(0)
    p.ack(1)
    assert loop.timers == [] and not p.pending
    p.ack(1)                                  # duplicate and out-of-range acks are harmless
    p.ack(99)
    assert p.acked == 1


def test_a_window_of_two_pipelines_pushes():
    loop, p, st = make_acked(rate=100, window=2)
    for t in range(0, 100, 5):                # changes every 5 ms for 100 ms, no ack yet
        st["version"] += 1
        p.notify()
        loop.advance_to(t * MS)
    assert [t for t, _ in st["history"]] == [0, 10 * MS]      # two in flight, then wait
    loop.now = 100 * MS
    p.ack(1)                                  # one slot frees: the newest state goes
    loop.advance_to(100 * MS)
    assert [v for _, v in st["history"]][-1] == st["version"] and len(st["history"]) == 3
