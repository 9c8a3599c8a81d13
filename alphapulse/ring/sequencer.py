"""The producer side: claim space, write frames, publish once (the Disruptor's Sequencer).

One producer per ring. Its private state (``ps``, an int64 array) holds the
next position, the cached gating position (the slowest consumer's cursor, a
lossless ring re-reads the slots only when the cache says "full" or the
registration generation moved) and, on an overwrite ring, the tail walk
state and a private index of frame sizes (``sizes``: never read back from
shared memory, so a corrupted ring cannot derail the producer).

Publishing a region ``[start, end)`` (the kernels below):

1. *reserve*: if the frames do not fit before the end of the data area, the
   rest of the lap becomes padding and ``start`` is the next lap's first byte.
   Lossless: the region may only reuse bytes every live consumer has
   released (``end - capacity <= min(cursor)``), else the caller waits.
   Overwrite: the tail (oldest intact frame) walks forward past every frame
   the region will overwrite, and claim and tail are stored under the claim
   sequence lock *before* any byte is written (then a release fence orders
   them before the data stores), so a consumer that re-reads the tail after
   reading data knows whether it read overwritten bytes.
2. the frame bytes are written straight into the data area (numpy copy, or a
   Numba encoder through :meth:`Producer.claim`);
3. *commit*: the frames are walked (framing only: magic, payload size, sizes
   add up exactly), then position, frame and byte counters are stored under
   the publish sequence lock, the position with a sequentially consistent
   store: every frame byte is visible before the new position (release), and
   the store is ordered before the producer's next load of the registration
   generation (see ``Consumer`` joining in :mod:`alphapulse.ring.barrier`).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.memory import ld_u32
from alphapulse.protocol import layout as P
from alphapulse.ring import layout as RL
from alphapulse.ring.atomics import (
    fence_release, fence_seq_cst, load_acquire, load_relaxed, load_seq_cst, store_relaxed,
    store_release, store_seq_cst,
)

# private producer state words
PS_POS = 0
PS_FRAMES = 1
PS_BYTES = 2
PS_GATING = 3
PS_GEN = 4
PS_TAIL_POS = 5
PS_TAIL_FRAMES = 6
PS_TAIL_BYTES = 7
PS_TSEQ = 8
PS_PSEQ = 9
PS_CLAIM_START = 10
PS_CLAIM_LEN = 11          # -1: no open claim
PS_PAD_FROM = 12           # position where padding of the open claim starts, -1 none
PS_CAP = 13
PS_OVERWRITE = 14
PS_NIDX = 15
PS_MAXC = 16
PS_LAP_END = 17            # RL.LAP_SLOTS words
PS_WORDS = PS_LAP_END + RL.LAP_SLOTS

NO_GATING = 1 << 62        # no live consumer: a lossless ring is never full

# kernel results (>= 0 is success)
BLOCKED = -1
ERR_BAD_MAGIC = -2
ERR_PAYLOAD_TOO_LARGE = -3
ERR_TRUNCATED = -4
ERR_NO_CLAIM = -5
ERR_COMMIT_TOO_LARGE = -6
ERR_TOO_LARGE = -7
# added to a non-negative result when a consumer sleeps in futex_wait: the
# caller (Python) issues FUTEX_WAKE on the publish sequence
WAKE = 1 << 40
ERRORS = {
    ERR_BAD_MAGIC: "a frame does not start with the Protocol V2 magic",
    ERR_PAYLOAD_TOO_LARGE: f"a frame's payload_size exceeds {P.MAX_PAYLOAD}",
    ERR_TRUNCATED: "frame sizes (32 + payload_size) do not add up to the byte count",
    ERR_NO_CLAIM: "commit() without an open claim()",
    ERR_COMMIT_TOO_LARGE: "commit() of more bytes than claimed",
    ERR_TOO_LARGE: "region larger than the ring's capacity",
}

_HDR = P.HEADER_SIZE
_MAX_PAYLOAD = P.MAX_PAYLOAD
_MAGIC = np.uint64(P.MAGIC)
_OFF_PSIZE = 24
assert P.HEADER_STRUCT == "<IBBBBQQII"   # payload_size is the u32 at byte 24
_K = RL.LAP_SLOTS


@njit(cache=True, inline="always")
def copy_bytes(dst, doff, src, soff, n):
    """``dst[doff:doff+n] = src[soff:soff+n]`` as a plain loop.

    LLVM vectorises it (~20 GB/s); Numba's slice assignment goes through a
    generic strided copy that is an order of magnitude slower (measured:
    64 KiB in 65 us against 5 us).
    """
    for i in range(n):
        dst[doff + i] = src[soff + i]


@njit(cache=True)
def walk_frames(buf, start, nbytes):
    """Frames in ``buf[start:start+nbytes]`` by their headers, or a negative error.

    Checks framing only (magic, payload_size <= 65,504, sizes add up exactly);
    the full validation is the consumer's (``alphapulse.jit.validate_frames``).
    """
    p = start
    end = start + nbytes
    k = 0
    while p < end:
        if end - p < _HDR:
            return ERR_TRUNCATED
        if ld_u32(buf, p) != _MAGIC:
            return ERR_BAD_MAGIC
        psz = np.int64(ld_u32(buf, p + _OFF_PSIZE))
        if psz > _MAX_PAYLOAD:
            return ERR_PAYLOAD_TOO_LARGE
        p += _HDR + psz
        k += 1
    if p != end:
        return ERR_TRUNCATED
    return k


@njit(cache=True)
def largest_frame(buf, start, nbytes):
    """Size of the largest frame in a region that :func:`walk_frames` accepted."""
    p = start
    end = start + nbytes
    m = 0
    while p < end:
        fl = _HDR + np.int64(ld_u32(buf, p + _OFF_PSIZE))
        m = max(m, fl)
        p += fl
    return m


@njit(cache=True)
def fit_prefix(buf, start, nbytes, room):
    """Bytes of the longest run of whole frames from ``start`` that fits in ``room``."""
    p = start
    end = start + nbytes
    while p < end:
        fl = _HDR + np.int64(ld_u32(buf, p + _OFF_PSIZE))
        if p + fl - start > room:
            break
        p += fl
    return p - start


@njit(cache=True)
def _gating(h, maxc):
    g = NO_GATING
    for k in range(maxc):
        b = RL.W_SLOTS + k * RL.SLOT_WORDS
        st = load_acquire(h, b + RL.S_STATE)
        if st != 0 and (st & np.uint64(RL.EVICTED_BIT | RL.JOINING_BIT)) == 0:
            c = np.int64(load_acquire(h, b + RL.S_CURSOR))
            if c < g:
                g = c
    return g



@njit(cache=True)
def reserve(h, ps, sizes, nbytes):
    """Open a claim of ``nbytes`` contiguous bytes; data offset, BLOCKED or an error."""
    cap = ps[PS_CAP]
    if nbytes > cap:
        return ERR_TOO_LARGE
    pos = ps[PS_POS]
    off = pos % cap
    start = pos + (cap - off) if off + nbytes > cap else pos
    end = start + nbytes
    if ps[PS_OVERWRITE] == 0:
        # the region reuses the bytes of positions [end - cap, ...); those at or
        # past ``pos`` were never written in this lap (they become padding), so
        # a consumer needs to be done only up to min(end - cap, pos)
        need = min(end - cap, pos)
        gen = np.int64(load_seq_cst(h, RL.W_GEN))
        if gen != ps[PS_GEN] or need > ps[PS_GATING]:
            ps[PS_GATING] = _gating(h, ps[PS_MAXC])
            ps[PS_GEN] = gen
            if need > ps[PS_GATING]:
                return BLOCKED
        store_relaxed(h, RL.W_CLAIM, end)
    else:
        lim = end - cap
        t = ps[PS_TAIL_POS]
        if t < lim:
            tf = ps[PS_TAIL_FRAMES]
            tb = ps[PS_TAIL_BYTES]
            nidx = ps[PS_NIDX]
            while t < lim:
                if t >= pos:            # everything published is overwritten
                    t = start
                    tf = ps[PS_FRAMES]
                    tb = ps[PS_BYTES]
                    break
                if t % cap != 0 and t == ps[PS_LAP_END + (t // cap) % _K]:
                    t = (t // cap + 1) * cap        # padding: skip to the next lap
                    continue
                sz = np.int64(sizes[tf % nidx])
                t += sz
                tb += sz
                tf += 1
            seq = ps[PS_TSEQ] + 1
            store_relaxed(h, RL.W_TSEQ, seq)
            fence_release()
            store_relaxed(h, RL.W_CLAIM, end)
            store_relaxed(h, RL.W_TAIL_POS, t)
            store_relaxed(h, RL.W_TAIL_FRAMES, tf)
            store_relaxed(h, RL.W_TAIL_BYTES, tb)
            store_release(h, RL.W_TSEQ, seq + 1)
            fence_release()             # tail visible before any overwriting store
            ps[PS_TSEQ] = seq + 1
            ps[PS_TAIL_POS] = t
            ps[PS_TAIL_FRAMES] = tf
            ps[PS_TAIL_BYTES] = tb
        else:
            store_relaxed(h, RL.W_CLAIM, end)
    ps[PS_CLAIM_START] = start
    ps[PS_CLAIM_LEN] = nbytes
    ps[PS_PAD_FROM] = pos if start != pos else -1
    return start % cap


@njit(cache=True)
def commit(h, ps, sizes, data, nbytes, now_ns):
    """Publish the first ``nbytes`` of the open claim; frames published (+ WAKE) or an error."""
    clen = ps[PS_CLAIM_LEN]
    if clen < 0:
        return ERR_NO_CLAIM
    if nbytes > clen:
        return ERR_COMMIT_TOO_LARGE
    ps[PS_CLAIM_LEN] = -1
    if nbytes == 0:
        return 0
    cap = ps[PS_CAP]
    start = ps[PS_CLAIM_START]
    off = start % cap
    k = walk_frames(data, off, nbytes)
    if k < 0:
        return k
    if ps[PS_OVERWRITE] != 0:
        nidx = ps[PS_NIDX]
        f = ps[PS_FRAMES]
        p = off
        for i in range(k):
            fl = _HDR + np.int64(ld_u32(data, p + _OFF_PSIZE))
            sizes[(f + i) % nidx] = fl
            p += fl
    pad_from = ps[PS_PAD_FROM]
    if pad_from >= 0:
        j = (pad_from // cap) % _K
        ps[PS_LAP_END + j] = pad_from
        store_relaxed(h, RL.W_LAP_END + j, pad_from)
    new_pos = start + nbytes
    if new_pos % cap == 0:
        j = (start // cap) % _K
        ps[PS_LAP_END + j] = new_pos
        store_relaxed(h, RL.W_LAP_END + j, new_pos)
    frames = ps[PS_FRAMES] + k
    nb = ps[PS_BYTES] + nbytes
    seq = ps[PS_PSEQ] + 1
    store_relaxed(h, RL.W_PSEQ, seq)
    fence_release()
    store_seq_cst(h, RL.W_PUB_POS, new_pos)
    store_relaxed(h, RL.W_PUB_FRAMES, frames)
    store_relaxed(h, RL.W_PUB_BYTES, nb)
    store_release(h, RL.W_PSEQ, seq + 1)
    store_relaxed(h, RL.W_PRODUCER_HB, now_ns)
    ps[PS_PSEQ] = seq + 1
    ps[PS_POS] = new_pos
    ps[PS_FRAMES] = frames
    ps[PS_BYTES] = nb
    # Dekker with a sleeping consumer (it counts itself in W_WAITERS, then
    # re-reads W_PSEQ before futex_wait): the full fence orders our W_PSEQ
    # store before the W_WAITERS load, so one of us sees the other.
    fence_seq_cst()
    if load_relaxed(h, RL.W_WAITERS) != 0:
        return k + WAKE
    return k


@njit(cache=True)
def publish_span(h, ps, sizes, data, buf, start, nbytes, now_ns):
    """Publish whole frames from ``buf[start:start+nbytes]`` until done or blocked.

    Returns the bytes published (a prefix of whole frames; fewer than
    ``nbytes`` only when a lossless ring is full), plus WAKE if a consumer
    sleeps, or a negative error.
    Each contiguous chunk is one reserve/copy/commit.
    """
    cap = ps[PS_CAP]
    done = 0
    wake = 0
    while done < nbytes:
        room = cap - ps[PS_POS] % cap
        chunk = fit_prefix(buf, start + done, nbytes - done, room)
        if chunk == 0:      # the next frame needs the next lap
            chunk = fit_prefix(buf, start + done, nbytes - done, cap)
            if chunk == 0:
                return ERR_TOO_LARGE
        off = reserve(h, ps, sizes, chunk)
        if off == BLOCKED:
            return done + wake
        if off < 0:
            return off
        copy_bytes(data, off, buf, start + done, chunk)
        r = commit(h, ps, sizes, data, chunk, now_ns)
        if r < 0:
            return r
        if r >= WAKE:
            wake = WAKE
        done += chunk
    return done + wake


@njit(cache=True)
def publish_one(h, ps, sizes, data, frame, n, now_ns):
    """Publish one frame of ``n`` bytes: 1 (1 + WAKE if a consumer sleeps), BLOCKED or an error."""
    off = reserve(h, ps, sizes, n)
    if off < 0:
        return off
    copy_bytes(data, off, frame, 0, n)
    return commit(h, ps, sizes, data, n, now_ns)


def new_state(capacity: int, overwrite: bool, max_consumers: int) -> tuple[np.ndarray, np.ndarray]:
    """Private producer state and frame-size index for a ring."""
    ps = np.zeros(PS_WORDS, dtype=np.int64)
    ps[PS_CAP] = capacity
    ps[PS_OVERWRITE] = 1 if overwrite else 0
    ps[PS_CLAIM_LEN] = -1
    ps[PS_PAD_FROM] = -1
    ps[PS_GATING] = -1
    ps[PS_GEN] = -1
    ps[PS_MAXC] = max_consumers
    nidx = capacity // RL.MIN_FRAME + 1 if overwrite else 1
    ps[PS_NIDX] = nidx
    return ps, np.zeros(nidx, dtype=np.uint32)
