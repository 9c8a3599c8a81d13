"""The bridges' two ends on a local ring (``alphapulse.ring``).

``RingSource``: the outbound bridge's consumer. Views returned by ``read`` stay
valid until ``done``: on a lossless ring they are zero-copy and the consumer's
cursor holds the producer back until then, on an overwrite ring they are the
consumer's private copy (the ring's default), checked against overwriting.

``RingSink``: the inbound bridge's producer. ``write`` is one ``claim`` and one
``commit``: either the whole run of frames is published or nothing is, which
the exactly-once argument of ``state.py`` relies on (``publish_batch`` may
publish a prefix and then time out).
"""
from __future__ import annotations

import os
import time

import numpy as np

from alphapulse.ring import Ring, RingError, RingFullTimeout
from alphapulse.ring import layout as RL
from alphapulse.ring.atomics import py_store


IDLE_MIN_S = 20e-6


class RingSource:
    def __init__(self, ring_name: str, consumer_name: str) -> None:
        self.ring = Ring.attach(ring_name)
        self.consumer_name = consumer_name
        self.consumer = self.ring.consumer(consumer_name, wait="sleep")
        self._held = False

    def read(self) -> list[np.ndarray]:
        """Frames published since the last ``done`` (0-2 arrays of whole frames); never waits.

        The bridge waits on its own (``idle``): the ring's sleeping strategy yields the
        CPU with ``sched_yield``, which on a busy 2-core machine returns only after
        other processes ran their slice (milliseconds), far longer than a short sleep.
        """
        views = self.consumer.poll(0)
        self._held = bool(views)
        return views

    @staticmethod
    def idle(attempt: int, max_s: float) -> None:
        """Sleep after ``attempt`` + 1 empty reads: 20 us doubling up to ``max_s`` (a
        nanosleep, no yield)."""
        time.sleep(min(IDLE_MIN_S * (1 << min(attempt, 16)), max_s))

    def done(self) -> None:
        """The frames of the last ``read`` are bridged: let the ring reuse them."""
        if self._held:
            self.consumer.release()
            self._held = False

    def keepalive(self) -> None:
        """Refresh this consumer's heartbeat while it holds frames without polling
        (NATS unreachable), so the ring does not evict it as stale.

        The ring's heartbeat is its slot's ``S_HB`` word, the monotonic clock in
        ns, written with the same relaxed store ``poll`` uses.
        """
        c = self.consumer
        py_store(c._h, RL.slot_base(c.slot) + RL.S_HB, time.monotonic_ns())

    def reattach(self) -> int:
        """Register anew after the ring dropped this consumer; returns the frames skipped
        (published between the old cursor and where the new consumer starts)."""
        old = self.consumer.frames_consumed
        try:
            self.consumer.close()
        except RingError:
            pass
        self.consumer = self.ring.consumer(self.consumer_name, wait="sleep")
        self._held = False
        return max(self.consumer.frames_consumed - old, 0)

    @property
    def lost_frames(self) -> int:
        return self.consumer.lost_frames

    def lag_bytes(self) -> int:
        return self.consumer.lag()[0]

    def close(self) -> None:
        self.consumer.close()
        self.ring.close()


class RingSink:
    def __init__(self, ring_name: str) -> None:
        self.ring = Ring.attach(ring_name)
        self.producer = self.ring.producer()
        # Largest single commit: a quarter of the ring keeps a lossless producer
        # from waiting for every consumer to drain the whole ring.
        self.max_write = max(self.ring.capacity // 4, 1)
        st = os.stat(f"/dev/shm/{self.ring.segment}")
        self._token = ((st.st_ino << 22) ^ self.ring.stats()["creator_pid"]) & ((1 << 64) - 1)

    def token(self) -> int:
        """Identifies this incarnation of the ring (a recreated ring gets another)."""
        return self._token

    def position(self) -> int:
        """The ring's published position (bytes, only grows)."""
        return self.producer.position

    def write(self, frames: np.ndarray, start: int, end: int, timeout: float) -> bool:
        """Publish ``frames[start:end]`` (whole frames) in one commit; False if the ring
        stayed full for ``timeout`` seconds (then nothing was published)."""
        n = end - start
        try:
            view = self.producer.claim(n, timeout=timeout)
        except RingFullTimeout:
            return False
        view[:] = frames[start:end]
        self.producer.commit(n)
        return True

    def idle(self) -> None:
        self.producer.heartbeat()

    def close(self) -> None:
        self.producer.close()
        self.ring.close()
