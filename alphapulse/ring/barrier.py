"""The consumer side: what a consumer may read (the Disruptor's SequenceBarrier).

A consumer owns one slot of the header. Its private state (``cs``, int64)
holds the cursor (a position up to which it is done), the frame and byte
counters at the cursor, and the range returned by the last poll.

Reading, on both policies:

1. the publish sequence lock is read (acquire): position ``P``, frames and
   bytes published. Every byte before ``P`` is a complete frame or padding,
   because the producer stored ``P`` after the frames (release).
2. ``[cursor, P)`` is returned as one view, or two when it crosses the end of
   the data area (the first ends where that lap's frames end, ``LAP_END``).

Overwrite rings add the seqlock-style check of the claim/tail words the
producer stores *before* overwriting anything: before reading, a cursor behind
the tail is moved to the tail and the frames and bytes in between are counted
as lost (exactly: both counters are cumulative and stored with the tail).
After reading (a copy, by default, or the caller's processing of zero-copy
views, checked in ``release``), an acquire fence and a second read of the tail
tell whether any byte read could have been overwritten meanwhile; those frames
are dropped and counted, never trusted.

Joining (a consumer registering while the producer runs) is a Dekker-style
handshake: the joiner reserves a slot, writes its cursor, activates the slot,
increments the registration generation (seq_cst) and then re-reads the
published position with a seq_cst load. The producer stores the position
seq_cst and loads the generation seq_cst before every claim, re-reading the
slots when it changed. In the single total order of these operations either
the producer sees the new generation (and gates on the slot) or the joiner
sees the producer's latest position; the one claim that may still be in
flight starts at or before it and is at most ``capacity`` long, so it cannot
overwrite the joiner's start.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.ring import layout as RL
from alphapulse.ring.sequencer import copy_bytes
from alphapulse.ring.atomics import (
    cpu_relax, fence_acquire, load_acquire, load_relaxed, load_seq_cst, store_relaxed,
    store_release,
)

CS_CURSOR = 0
CS_FRAMES = 1
CS_BYTES = 2
CS_PEND_POS = 3        # P of the last poll (release moves the cursor there)
CS_PEND_FRAMES = 4
CS_PEND_BYTES = 5
CS_POLL_POS = 6        # cursor when the last poll's views were taken
CS_POLL_FRAMES = 7
CS_POLL_BYTES = 8
CS_LOST_FRAMES = 9
CS_LOST_BYTES = 10
CS_SLOT = 11           # word index of the slot
CS_PID = 12
CS_TOKEN = 13
CS_CAP = 14
CS_OVERWRITE = 15
CS_SEEN_PSEQ = 16      # publish sequence seen by the last poll (what waits spin on)
CS_HAVE_PEND = 17
CS_WORDS = 18

EVICTED = -2
CORRUPT = -3           # lossless ring whose header contradicts itself


@njit(cache=True, inline="always")
def read_published(h):
    """(position, frames, bytes, seq) under the publish sequence lock."""
    while True:
        s1 = load_acquire(h, RL.W_PSEQ)
        if s1 & np.uint64(1) == 0:
            p = np.int64(load_relaxed(h, RL.W_PUB_POS))
            f = np.int64(load_relaxed(h, RL.W_PUB_FRAMES))
            b = np.int64(load_relaxed(h, RL.W_PUB_BYTES))
            fence_acquire()
            if load_relaxed(h, RL.W_PSEQ) == s1:
                return p, f, b, np.int64(s1)
        cpu_relax()


@njit(cache=True, inline="always")
def read_tail(h):
    """(tail position, frames before it, bytes before it) under the claim sequence lock."""
    while True:
        s1 = load_acquire(h, RL.W_TSEQ)
        if s1 & np.uint64(1) == 0:
            t = np.int64(load_relaxed(h, RL.W_TAIL_POS))
            f = np.int64(load_relaxed(h, RL.W_TAIL_FRAMES))
            b = np.int64(load_relaxed(h, RL.W_TAIL_BYTES))
            fence_acquire()
            if load_relaxed(h, RL.W_TSEQ) == s1:
                return t, f, b
        cpu_relax()


@njit(cache=True)
def _store_cursor(h, cs):
    b = cs[CS_SLOT]
    store_relaxed(h, b + RL.S_FRAMES, cs[CS_FRAMES])
    store_relaxed(h, b + RL.S_BYTES, cs[CS_BYTES])
    store_relaxed(h, b + RL.S_LOST_FRAMES, cs[CS_LOST_FRAMES])
    store_relaxed(h, b + RL.S_LOST_BYTES, cs[CS_LOST_BYTES])
    # release: every read of the frames before the cursor happens before the
    # producer can see it and reuse their bytes
    store_release(h, b + RL.S_CURSOR, cs[CS_CURSOR])


@njit(cache=True)
def _owns_slot(h, cs):
    b = cs[CS_SLOT]
    return (np.int64(load_acquire(h, b + RL.S_STATE)) == cs[CS_PID]
            and np.int64(load_relaxed(h, b + RL.S_TOKEN)) == cs[CS_TOKEN])


@njit(cache=True)
def _resync(h, cs, t, tf, tb):
    cs[CS_LOST_FRAMES] += tf - cs[CS_FRAMES]
    cs[CS_LOST_BYTES] += tb - cs[CS_BYTES]
    cs[CS_CURSOR] = t
    cs[CS_FRAMES] = tf
    cs[CS_BYTES] = tb
    _store_cursor(h, cs)


@njit(cache=True)
def poll(h, cs, out, now_ns):
    """Views of ``[cursor, P)``: count (0, 1, 2) with data offsets in ``out``, or EVICTED/CORRUPT."""
    if not _owns_slot(h, cs):
        return EVICTED
    store_relaxed(h, cs[CS_SLOT] + RL.S_HB, now_ns)
    p, f, nb, seq = read_published(h)
    cs[CS_SEEN_PSEQ] = seq
    cap = cs[CS_CAP]
    c = cs[CS_CURSOR]
    if cs[CS_OVERWRITE] != 0:
        t, tf, tb = read_tail(h)
        if c < t:
            _resync(h, cs, t, tf, tb)
            c = t
    cs[CS_HAVE_PEND] = 0
    if p <= c:
        return 0
    lc = c // cap
    lp = (p - 1) // cap          # lap of the last published byte
    n = 0
    if lp == lc:
        out[0] = c % cap
        out[1] = out[0] + (p - c)
        n = 1
    else:
        if lp != lc + 1:
            return 0 if cs[CS_OVERWRITE] != 0 else CORRUPT
        e = np.int64(load_relaxed(h, RL.W_LAP_END + lc % RL.LAP_SLOTS))
        if e < c or e > (lc + 1) * cap:
            # a lap-end record newer than our lap: we are being lapped (the
            # next poll resyncs), or a broken header on a lossless ring
            return 0 if cs[CS_OVERWRITE] != 0 else CORRUPT
        if e > c:
            out[0] = c % cap
            out[1] = e - lc * cap
            n = 1
        out[2 * n] = 0
        out[2 * n + 1] = p - (lc + 1) * cap
        n += 1
    cs[CS_PEND_POS] = p
    cs[CS_PEND_FRAMES] = f
    cs[CS_PEND_BYTES] = nb
    cs[CS_POLL_POS] = c
    cs[CS_POLL_FRAMES] = cs[CS_FRAMES]
    cs[CS_POLL_BYTES] = cs[CS_BYTES]
    cs[CS_HAVE_PEND] = 1
    return n


@njit(cache=True)
def overwritten_since_poll(h, cs):
    """Frames of the last poll's range that the producer has overwritten since (0 = intact).

    Moves the cursor past them (resync) and counts them as lost.
    """
    if cs[CS_HAVE_PEND] == 0 or cs[CS_OVERWRITE] == 0:
        return 0
    fence_acquire()          # every read of the views happens before the tail load
    t, tf, tb = read_tail(h)
    if t <= cs[CS_POLL_POS]:
        return 0
    lost_in_poll = min(tf, cs[CS_PEND_FRAMES]) - cs[CS_POLL_FRAMES]
    if t >= cs[CS_PEND_POS]:
        cs[CS_HAVE_PEND] = 0
        cs[CS_FRAMES] = cs[CS_POLL_FRAMES]
        cs[CS_BYTES] = cs[CS_POLL_BYTES]
        _resync(h, cs, t, tf, tb)
    else:
        cs[CS_LOST_FRAMES] += tf - cs[CS_POLL_FRAMES]
        cs[CS_LOST_BYTES] += tb - cs[CS_POLL_BYTES]
        cs[CS_POLL_POS] = t
        cs[CS_POLL_FRAMES] = tf
        cs[CS_POLL_BYTES] = tb
    return lost_in_poll


@njit(cache=True)
def poll_copy(h, cs, data, priv, out, now_ns):
    """Overwrite rings: copy ``[cursor, P)`` into ``priv``, then keep only what was intact.

    Returns 1 with ``priv[out[0]:out[1]]`` holding whole, never-overwritten
    frames, 0 when there is nothing (or nothing intact), or EVICTED.
    """
    n = poll(h, cs, out, now_ns)
    if n <= 0:
        return n
    k = 0
    for i in range(n):
        a = out[2 * i]
        b = out[2 * i + 1]
        copy_bytes(priv, k, data, a, b - a)
        k += b - a
    poll_bytes = cs[CS_POLL_BYTES]
    lost = overwritten_since_poll(h, cs)
    if cs[CS_HAVE_PEND] == 0:
        return 0
    skip = 0
    if lost > 0:
        # the tail moved into our range: the frames before it are gone; the
        # copy holds frame bytes only, so the byte counters give the offset
        skip = cs[CS_POLL_BYTES] - poll_bytes
    out[0] = skip
    out[1] = k
    return 1 if k > skip else 0


@njit(cache=True)
def release(h, cs):
    """Move the cursor past the last poll's range (after any overwrite check)."""
    if cs[CS_HAVE_PEND] == 0:
        return
    cs[CS_HAVE_PEND] = 0
    cs[CS_CURSOR] = cs[CS_PEND_POS]
    cs[CS_FRAMES] = cs[CS_PEND_FRAMES]
    cs[CS_BYTES] = cs[CS_PEND_BYTES]
    _store_cursor(h, cs)


@njit(cache=True)
def release_owned(h, cs):
    """:func:`release` if this consumer still owns its slot (True), else nothing (False: evicted)."""
    if not _owns_slot(h, cs):
        return False
    release(h, cs)
    return True


@njit(cache=True)
def wait_published(h, seen_seq, max_spins):
    """Spin (acquire loads + cpu_relax) until the publish sequence moves past ``seen_seq``."""
    s = np.int64(load_acquire(h, RL.W_PSEQ))
    n = 0
    while s == seen_seq and n < max_spins:
        cpu_relax()
        s = np.int64(load_acquire(h, RL.W_PSEQ))
        n += 1
    return s != seen_seq


@njit(cache=True)
def join_position(h):
    """(position, frames, bytes) read with a seq_cst load of the position (joining)."""
    while True:
        s1 = load_acquire(h, RL.W_PSEQ)
        if s1 & np.uint64(1) == 0:
            p = np.int64(load_seq_cst(h, RL.W_PUB_POS))
            f = np.int64(load_relaxed(h, RL.W_PUB_FRAMES))
            b = np.int64(load_relaxed(h, RL.W_PUB_BYTES))
            fence_acquire()
            if load_relaxed(h, RL.W_PSEQ) == s1:
                return p, f, b
        cpu_relax()


@njit(cache=True)
def set_start(h, cs, p, f, b):
    cs[CS_CURSOR] = p
    cs[CS_FRAMES] = f
    cs[CS_BYTES] = b
    cs[CS_HAVE_PEND] = 0
    _store_cursor(h, cs)


def new_state(slot_word: int, pid: int, token: int, capacity: int, overwrite: bool) -> np.ndarray:
    cs = np.zeros(CS_WORDS, dtype=np.int64)
    cs[CS_SLOT] = slot_word
    cs[CS_PID] = pid
    cs[CS_TOKEN] = token
    cs[CS_CAP] = capacity
    cs[CS_OVERWRITE] = 1 if overwrite else 0
    cs[CS_SEEN_PSEQ] = -1
    return cs
