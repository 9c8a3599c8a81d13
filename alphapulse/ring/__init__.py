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

Memory ordering (details in :mod:`~alphapulse.ring.atomics`,
:mod:`~alphapulse.ring.sequencer`, :mod:`~alphapulse.ring.barrier`)
    The producer writes frame bytes, then stores the published position with
    release semantics (seq_cst, in fact); a consumer loads it with acquire
    semantics before it reads any byte below it. On x86-64 (TSO) stores are
    seen in program order and loads are not reordered with loads, so the only
    danger is the compiler: LLVM may reorder plain stores or hoist a load out
    of a polling loop. On ARM64 the hardware reorders too, and CPython/numpy
    give no fences at all (a numpy store is a plain ``str``). Both are handled
    the same way: every synchronising access is an LLVM atomic (``ldar`` /
    ``stlr`` / ``dmb`` on ARM64, plain ``mov`` on x86-64, ``xchg``/``mfence``
    only where seq_cst is needed) emitted by Numba intrinsics, which also
    cannot be hoisted; data copies done by numpy or Numba are ordered by them
    because the hardware orders all accesses of a thread around ``ldar`` /
    ``stlr``. Tests spin in one process on a word stored by another.

Life cycle (details in :mod:`~alphapulse.ring.registry`)
    The creator owns the segment ``/dev/shm/alphapulse_ring_<name>`` and
    unlinks it on ``close()``, at interpreter exit, or, if it dies by a
    signal (SIGKILL included), through its watchdog process, which reports
    the leak it cleaned. Attaching never registers with Python's resource
    tracker (whose shared set of names is wrong for spawned children), so
    there are no false "leaked shared_memory" warnings and no premature
    unlink by a reader's exit; ``python -m alphapulse.ring clean`` removes
    rings of a dead creator whose watchdog was killed too.

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
