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
from collections import deque
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
    """Turns change notifications into rate-limited pushes, at most one pending,
    at most one unacknowledged.

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

    Flow control: the rate cap bounds what the server sends, not what a slow
    browser has still to apply (a browser reads its websocket eagerly into an
    unbounded message queue, so TCP gives no back-pressure). With
    ``ack_timeout_ns`` set, at most ``max_unacked`` pushes are in flight: the
    page acknowledges push ``n`` from JavaScript once it has applied it
    (:meth:`ack`, cumulative), a window of a few pushes hides the round trip, and a slow
    client gets fewer, fuller pushes instead of a growing backlog. A client
    that never acknowledges still gets a push every ``ack_timeout_ns``
    (counted in ``ack_timeouts``).
    """

    def __init__(self, limiter: RateLimiter, schedule: Callable[[int], None],
                 push: Callable[[int], bool], clock_ns: Callable[[], int],
                 ack_timeout_ns: int | None = None, max_unacked: int = 3) -> None:
        self.limiter = limiter
        self._schedule = schedule
        self._push = push
        self._clock = clock_ns
        if max_unacked < 1:
            raise ValueError("max_unacked must be >= 1")
        self.ack_timeout_ns = ack_timeout_ns
        self.max_unacked = max_unacked
        self.pending = False
        self._lock = threading.Lock()
        self.acked = 0                           # pushes 1..acked were applied by the client
        self._inflight: deque[int] = deque()     # send times of pushes acked+1..pushes
        self.notified = 0
        self.coalesced = 0       # notifications folded into an already pending push
        self.pushes = 0          # pushes that changed something
        self.idle_runs = 0       # runs that found nothing new
        self.ack_waits = 0       # runs deferred until the previous push was acknowledged
        self.ack_timeouts = 0    # pushes sent without an ack of the previous one

    def notify(self) -> None:
        """Something changed: make sure one push is scheduled."""
        with self._lock:
            self.notified += 1
            if self.pending:
                self.coalesced += 1
                return
            self.pending = True
        self._schedule(self.limiter.delay_ns(self._clock()))

    def ack(self, n: int) -> None:
        """The client applied pushes 1..``n`` (push numbers count from 1): a waiting push may go."""
        with self._lock:
            if n <= self.acked:
                return
            full = len(self._inflight) >= self.max_unacked
            n = min(n, self.pushes)
            while self._inflight and self.acked < n:
                self._inflight.popleft()
                self.acked += 1
            self.acked = n
            waiting = full and self.pending
        if waiting:
            self._schedule(self.limiter.delay_ns(self._clock()))

    def run(self) -> None:
        """Called by the scheduler: push now if the limiter (and the client) allow."""
        now = self._clock()
        delay = self.limiter.delay_ns(now)
        if delay > 0:                      # woken early (timer granularity): try again
            self._schedule(delay)
            return
        with self._lock:
            full = self.ack_timeout_ns is not None and len(self._inflight) >= self.max_unacked
            if full:
                wait = self._inflight[0] + self.ack_timeout_ns - now
                if wait > 0:               # stay pending; ack() or the timeout reschedules
                    self.ack_waits += 1
                    timeout_check = wait
                else:
                    self.ack_timeouts += 1
                    timeout_check = 0
            else:
                timeout_check = 0
            if not timeout_check:
                self.pending = False       # before reading the state: see the class doc
        if timeout_check:
            self._schedule(timeout_check)
            return
        if self._push(now):
            self.limiter.acquire(now)
            with self._lock:
                self.pushes += 1
                if self.ack_timeout_ns is not None:
                    self._inflight.append(now)
                    while len(self._inflight) > self.max_unacked:   # timed out: forget the oldest
                        self._inflight.popleft()
                        self.acked += 1
        else:
            self.idle_runs += 1
