"""The relays: lock-free shared-memory rings of Protocol V2 frames between processes.

One producer writes each ring; any number of consumers in other processes read
it, each at its own pace, built as LMAX Disruptor and Aeron IPC build theirs::

    from alphapulse.ring import Ring
    ring = Ring.create("market_data", capacity=1 << 24, policy="overwrite")  # owner
    p = ring.producer()
    p.publish(frame)                          # one frame
    p.publish_batch(buf, nbytes)              # many whole frames, one publish
    view = p.claim(nbytes); ...; p.commit(n)  # encode in place (Numba), publish once

    ring = Ring.attach("market_data")         # any other process (spawn-safe)
    c = ring.consumer("strategy", wait="sleep")
    views = c.poll(timeout=0.1)               # 0, 1 or 2 uint8 views of whole frames
    ... validate/decode views (alphapulse.jit.validate_frames) ...
    c.release()
    ring.stats()                              # also: python -m alphapulse.ring stat

Vocabulary, one module each: :mod:`~alphapulse.ring.layout` (the shared
header), :mod:`~alphapulse.ring.sequencer` (claim and publish),
:mod:`~alphapulse.ring.barrier` (what a consumer may read),
:mod:`~alphapulse.ring.wait` (wait strategies), :mod:`~alphapulse.ring.atomics`
(memory ordering), :mod:`~alphapulse.ring.registry` and
:mod:`~alphapulse.ring.watchdog` (life cycle: nothing left in /dev/shm).

Policies, chosen at creation: ``lossless`` (the producer waits, spin then
yield then sleep, for the slowest live consumer, with a timeout error; dead
consumers are dropped and reported) and ``overwrite`` (the producer never
waits; a lapped consumer resyncs to the oldest intact frame and counts exactly
the frames and bytes it lost in ``lost_frames`` / ``lost_bytes``).
"""
from alphapulse.ring.layout import Eviction, Policy  # noqa: F401
from alphapulse.ring.ring import (  # noqa: F401
    ConsumerEvicted, Consumer, FrameTooLarge, NotARingError, Producer, Ring, RingError,
    RingFullTimeout,
)
from alphapulse.ring.wait import Wait, pid_alive  # noqa: F401

__all__ = ["Ring", "Producer", "Consumer", "Policy", "Wait", "Eviction", "RingError",
           "RingFullTimeout", "ConsumerEvicted", "FrameTooLarge", "NotARingError", "pid_alive"]
