"""The strategy's busy-polling loop in compiled code: poll the market ring, run
``arb.process_packed`` on what arrived (which publishes the signals on the signal
ring itself), release, repeat; back in Python only at a deadline or for what the
kernel cannot do (a futex wake for a sleeping signal reader, a full lossless signal
ring, a ring error).

Against one Python call per batch (poll, process, release: three calls through
Python and their argument unboxing, ~4 us a frame here), a frame's latency is then
the ring hop and the work on it. :meth:`alphapulse.strategy.engine.StrategyEngine.run`
drives it.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from alphapulse.jit.arb import BATCH_ARRAYS, RS_PENDING, RS_PUB, RS_SINK, STOP_FLUSH, process_packed
from alphapulse.jit.arena import at1, view1
from alphapulse.jit.clock import mono_ns
from alphapulse.jit.frames import OFF_TIMESTAMP
from alphapulse.jit.memory import ld_u64
from alphapulse.protocol import layout as L
from alphapulse.ring.barrier import CS_SEEN_PSEQ, EVICTED, poll, poll_copy, release_owned, wait_published

RUN_DEADLINE = 0        # the deadline passed with nothing held
RUN_PENDING = 1         # a batch stopped for Python (see module doc); its view is held, not released
SPINS = 256             # polls between two looks at the clock
_NAMES = [name for name, _, _ in BATCH_ARRAYS]
B_OUT, B_OUT_OFFSETS, B_RESUME = _NAMES.index("out"), _NAMES.index("out_offsets"), _NAMES.index("resume")
# What run_until reads besides the engine's arena, in one alphapulse.jit.arena.places table
# (one argument instead of eleven: each array argument costs ~60 ns to unbox on every call):
# the market consumer's (Consumer.kernel_state), the signal producer's
# (Producer.kernel_state), the engine's latency record.
IO_ARRAYS = (("h", np.uint64, 1), ("cs", np.int64, 1), ("data", np.uint8, 1), ("priv", np.uint8, 1),
             ("out4", np.int64, 1), ("sink_h", np.uint64, 1), ("sink_ps", np.int64, 1),
             ("sink_sizes", np.uint32, 1), ("sink_data", np.uint8, 1), ("lat", np.int64, 1),
             ("lat_n", np.int64, 1))
(IO_H, IO_CS, IO_DATA, IO_PRIV, IO_OUT4, IO_SINK_H, IO_SINK_PS, IO_SINK_SIZES, IO_SINK_DATA, IO_LAT,
 IO_LAT_N) = range(len(IO_ARRAYS))
TRIGGER = L.HEADER_SIZE + L.TLV_STD_HEADER + L.ARBITRAGE_SIGNAL.offset("trigger_ts_ns")
STAMP = OFF_TIMESTAMP


@njit(cache=True)
def record_latency(out, out_offsets, n_sig, lat, lat_n):
    """Trigger-to-publication time of each signal just published, into the ``lat`` ring: from its
    trigger to its header's stamp (the TSC clock's time when the kernel wrote it, just before it
    went on the ring)."""
    for i in range(n_sig):
        o = out_offsets[i]
        t = np.int64(ld_u64(out, o + TRIGGER))
        now = np.int64(ld_u64(out, o + STAMP))
        if 0 < t <= now:
            lat[lat_n[0] % lat.shape[0]] = now - t
            lat_n[0] += 1


@njit(cache=True)
def run_until(deadline_ns, io, copy, arena, lay, seq):
    """Busy-poll the market ring as the consumer of ``io`` (a places table of IO_ARRAYS) and
    process every batch until ``deadline_ns`` (``time.monotonic_ns()``); the signals go out
    on the ring of io's producer.

    ``copy``: the consumer copies into ``priv`` (overwrite rings), else zero-copy views of
    ``data`` (lossless rings only). Returns (status, signals, batches, next signal sequence,
    bytes of ``out`` of the last batch, batches cut short by a corrupt frame header, and when
    RUN_PENDING which of the poll's views stopped and how many there are (the poll is held,
    not released)). status: RUN_DEADLINE, RUN_PENDING, or the ring's EVICTED/CORRUPT code.
    """
    out = view1(arena, lay, B_OUT, np.uint8)
    out_offsets = view1(arena, lay, B_OUT_OFFSETS, np.int64)
    resume = view1(arena, lay, B_RESUME, np.int64)
    h = at1(io, IO_H, np.uint64)
    cs = at1(io, IO_CS, np.int64)
    data = at1(io, IO_DATA, np.uint8)
    priv = at1(io, IO_PRIV, np.uint8)
    out4 = at1(io, IO_OUT4, np.int64)
    sink_h = at1(io, IO_SINK_H, np.uint64)
    sink_ps = at1(io, IO_SINK_PS, np.int64)
    sink_sizes = at1(io, IO_SINK_SIZES, np.uint32)
    sink_data = at1(io, IO_SINK_DATA, np.uint8)
    lat = at1(io, IO_LAT, np.int64)
    lat_n = at1(io, IO_LAT_N, np.int64)
    n_total = 0
    batches = 0
    rejects = 0
    wpos = 0
    while True:
        now = mono_ns()                     # the rings' clock (heartbeats, the deadline)
        n = poll_copy(h, cs, data, priv, out4, now) if copy else poll(h, cs, out4, now)
        if n < 0:
            return n, n_total, batches, seq, wpos, rejects, 0, 0
        if n == 0:
            if now >= deadline_ns:
                return RUN_DEADLINE, n_total, batches, seq, wpos, rejects, 0, 0
            wait_published(h, cs[CS_SEEN_PSEQ], SPINS)
            continue
        for k in range(n):
            a = out4[2 * k]
            b = out4[2 * k + 1]
            view = priv[a:b] if copy else data[a:b]
            resume[RS_PENDING] = 0          # a new batch, not the rest of an interrupted one
            n_sig, wpos, _, stop = process_packed(view, view.shape[0], arena, lay, seq, sink_h, sink_ps,
                                                  sink_sizes, sink_data, True)
            seq += n_sig
            n_total += n_sig
            batches += 1
            if n_sig:
                record_latency(out, out_offsets, n_sig, lat, lat_n)
            if stop == STOP_FLUSH:
                return RUN_PENDING, n_total, batches, seq, wpos, rejects, k, n
            if stop != 0:
                rejects += 1
            if resume[RS_SINK] != 0 or resume[RS_PUB] < wpos:
                # the batch is done but a publication after a search (its triangle signals)
                # needs Python: a wake, or the rest on a full ring
                return RUN_PENDING, n_total, batches, seq, wpos, rejects, k, n
        if not release_owned(h, cs):
            return EVICTED, n_total, batches, seq, wpos, rejects, 0, 0
