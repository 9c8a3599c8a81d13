"""Per-session push rate limiting with coalescing (time injected, no threads here).

A session is told "something changed" any number of times per second. It
pushes the newest state at most ``max_per_s`` times per second: notifications
that arrive while a push is already scheduled are folded into it (the push
reads the state when it runs, so the newest state wins), and nothing is ever
queued: per session there is at most one scheduled push, whatever the burst.
"""
from __future__ import annotations

import math
import threading
from typing import Callable


class RateLimiter:
    """At most ``max_per_s`` events per second, as a minimum spacing of ``1/max_per_s``.

    Spacing (a token bucket of depth 1) means any window of one second holds
    at most ``max_per_s`` events (``ceil`` of it for non-integer rates).
    """

    def __init__(self, max_per_s: float) -> None:
        if not max_per_s > 0 or math.isinf(max_per_s):
            raise ValueError(f"max updates per second must be a positive number, got {max_per_s}")
        self.max_per_s = max_per_s
        self.interval_ns = math.ceil(1e9 / max_per_s)
        self.last_ns: int | None = None
        self.count = 0

    def delay_ns(self, now_ns: int) -> int:
        """How long from ``now_ns`` until the next event is allowed (0 = now)."""
        if self.last_ns is None:
            return 0
        return max(0, self.last_ns + self.interval_ns - now_ns)

    def acquire(self, now_ns: int) -> bool:
        """Record an event at ``now_ns`` if allowed; False (nothing recorded) if too early."""
        if self.delay_ns(now_ns) > 0:
            return False
        self.last_ns = now_ns
        self.count += 1
        return True


class CoalescingPusher:
    """Turns change notifications into rate-limited pushes, at most one pending.

    ``schedule(delay_ns)`` arranges for :meth:`run` to be called after about
    ``delay_ns`` (the Bokeh session maps it to ``add_next_tick_callback`` /
    ``add_timeout_callback``); ``push(now_ns)`` applies the newest state and
    returns whether anything changed (``now_ns``: the time the limiter
    accounts the push at). The session's event loop calls :meth:`run`;
    :meth:`notify` may come from any thread (reader threads, the stats thread):
    ``pending`` is tested and set under a lock, so several notifiers never
    schedule two pushes, and ``run`` clears it *before* the push reads the
    state, so a notification racing with a running push is either included in
    it or schedules the next one.
    """

    def __init__(self, limiter: RateLimiter, schedule: Callable[[int], None],
                 push: Callable[[int], bool], clock_ns: Callable[[], int]) -> None:
        self.limiter = limiter
        self._schedule = schedule
        self._push = push
        self._clock = clock_ns
        self.pending = False
        self._lock = threading.Lock()
        self.notified = 0
        self.coalesced = 0       # notifications folded into an already pending push
        self.pushes = 0          # pushes that changed something
        self.idle_runs = 0       # runs that found nothing new

    def notify(self) -> None:
        """Something changed: make sure one push is scheduled."""
        with self._lock:
            self.notified += 1
            if self.pending:
                self.coalesced += 1
                return
            self.pending = True
        self._schedule(self.limiter.delay_ns(self._clock()))

    def run(self) -> None:
        """Called by the scheduler: push now if the limiter allows, else re-schedule."""
        now = self._clock()
        delay = self.limiter.delay_ns(now)
        if delay > 0:                      # woken early (timer granularity): try again
            self._schedule(delay)
            return
        with self._lock:
            self.pending = False           # before reading the state: see the class doc
        if self._push(now):
            self.limiter.acquire(now)
            self.pushes += 1
        else:
            self.idle_runs += 1
