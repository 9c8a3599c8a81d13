"""Numba kernels of the strategy latency bench, in an importable module: kernels cached from
a script run as ``__main__`` (or a spawned child's ``__mp_main__``) cannot be loaded back by
another process that imports the script under its own name."""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.frames import OFF_PAYLOAD_SIZE as OFF_PAYLOAD, OFF_TIMESTAMP
from alphapulse.jit.clock import mono_ns, wall_ns
from alphapulse.jit.memory import ld_u32, ld_u64, st_u64
from alphapulse.protocol import layout as L
from alphapulse.ring.sequencer import commit, copy_bytes, reserve

HEADER = L.HEADER_SIZE
TLV_HDR = L.TLV_STD_HEADER
TRIG = L.ARBITRAGE_SIGNAL.offset("trigger_ts_ns")
HOPS = L.ARBITRAGE_SIGNAL.offset("hops")


@njit(cache=True)
def publish_stamped(h, ps, sizes, data, frame):
    """Publish ``frame`` on a ring (a producer's ``kernel_state()``) stamped with its arrival:
    reserve, copy, write ``wall_ns()`` into the header timestamp of the ring's copy, commit.
    The stamp is the moment the frame becomes visible to the ring's readers (the commit, a
    few stores later), not when the Python caller started publishing it (that call, ~1.5 us
    here, is the producer's cost). Returns (commit result, stamp): result < 0 an error (or
    BLOCKED, a full lossless ring), >= WAKE a consumer to wake (``Producer.wake``)."""
    n = frame.shape[0]
    off = reserve(h, ps, sizes, n)
    if off < 0:
        return off, np.int64(0)
    copy_bytes(data, off, frame, 0, n)
    ts = wall_ns()
    st_u64(data, off + OFF_TIMESTAMP, np.uint64(ts))
    return commit(h, ps, sizes, data, n, mono_ns()), ts


@njit(cache=True)
def _collect(view, now, lat, seen, trig, hops, k):
    """Per signal frame in ``view``: its header stamp (written just before its publication) and
    now, each less its trigger stamp; the trigger stamp, hops; returns the new count."""
    p = 0
    n = view.shape[0]
    while p + HEADER <= n and k < lat.shape[0]:
        size = HEADER + np.int64(ld_u32(view, p + OFF_PAYLOAD))
        t = np.int64(ld_u64(view, p + HEADER + TLV_HDR + TRIG))
        trig[k] = t
        lat[k] = np.int64(ld_u64(view, p + OFF_TIMESTAMP)) - t
        seen[k] = now - t
        hops[k] = view[p + HEADER + TLV_HDR + HOPS]
        k += 1
        p += size
    return k


BLOCK_END = L.BLOCK_END.type_id
BE_BLOCK = L.BLOCK_END.offset("block_number")
SIG_BLOCK = L.ARBITRAGE_SIGNAL.offset("block_number")


@njit(cache=True)
def block_stamps(view, blocks, stamps, k):
    """Per BlockEnd frame in ``view`` (market data, first TLV): its block number and header
    stamp (written by the source's TSC clock as it copied the frame into the batch it published,
    right after the block's last event); returns the new count."""
    p = 0
    n = view.shape[0]
    while p + HEADER <= n:
        size = HEADER + np.int64(ld_u32(view, p + OFF_PAYLOAD))
        if view[p + HEADER] == BLOCK_END and k < blocks.shape[0]:
            blocks[k] = np.int64(ld_u64(view, p + HEADER + TLV_HDR + BE_BLOCK))
            stamps[k] = np.int64(ld_u64(view, p + OFF_TIMESTAMP))
            k += 1
        p += size
    return k


@njit(cache=True)
def signal_stamps(view, blocks, stamps, k):
    """Per ArbitrageSignal frame in ``view``: its block number and header stamp (written just
    before its publication); returns the new count."""
    p = 0
    n = view.shape[0]
    while p + HEADER <= n and k < blocks.shape[0]:
        size = HEADER + np.int64(ld_u32(view, p + OFF_PAYLOAD))
        blocks[k] = np.int64(ld_u64(view, p + HEADER + TLV_HDR + SIG_BLOCK))
        stamps[k] = np.int64(ld_u64(view, p + OFF_TIMESTAMP))
        k += 1
        p += size
    return k
