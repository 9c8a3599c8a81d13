"""The arbitrage strategy: market-data frames in, ArbitrageSignal frames out.

:class:`StrategyEngine` owns the state arrays and calls the one batch kernel
(``alphapulse.jit.arb.process_batch``) per batch, so the pipeline can wire it
between a ring consumer and a ring producer::

    signals = engine.process([frame_view, ...])   # list of bytes, one frame each

Everything the kernel skips is counted (``engine.counters()``) and nothing in
a batch can raise on bad input: rejected frames are counted and logged.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import numpy as np

from alphapulse.jit import arb as A
from alphapulse.jit import pool_state as S
from alphapulse.jit import spin as SP
from alphapulse.jit.spin import RUN_DEADLINE
from alphapulse.jit.arena import pack, places
from alphapulse.jit.clock import CAL_SIZE, process_clock
from alphapulse.jit.crc import TABLE as CRC_TABLE
from alphapulse.jit.entry import compiled_entry
from alphapulse.jit.wideint import from_limbs, to_u256
from alphapulse.protocol.layout import Reject
from alphapulse.ring.sequencer import WAKE
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.refresh import RefreshRequester
from alphapulse.strategy.registry import PoolRegistry

log = logging.getLogger(__name__)

SIGNAL_FRAME_SIZE = A.SIG_FRAME


PAGE = 4096


def prefault(arrays) -> None:
    """Write every memory page of ``arrays`` once (each keeps its values).

    ``np.zeros`` maps large arrays lazily: the first write to each 4 KiB page of
    the signal table, the rate cache or the output buffer would otherwise fault
    inside the hot path, a few microseconds each on this VM (measured: about 4 us
    added to a signal's latency while the table's pages were still untouched).
    """
    for a in arrays:
        if isinstance(a, np.ndarray) and a.nbytes and a.flags.c_contiguous and a.flags.writeable:
            flat = a.reshape(-1).view(np.uint8)
            flat[::PAGE] = flat[::PAGE].copy()


class StrategyEngine:
    """Keeps every pool's state and publishes the cycles that pay (Protocol V2 type 32, domain 2, source 20)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = cfg = config or EngineConfig()
        self.state = S.alloc_state(cfg.max_pools, cfg.max_tokens, cfg.max_v3_pools, cfg.max_ticks_per_pool,
                                   cfg.journal_size)
        own = {
            "venue_fee": cfg.venue_fee_array(),
            "params": cfg.params_array(),
            "token_min": cfg.token_min_array(),
            "sig_keys": np.zeros((cfg.signal_table_size, 3), np.int64),
            "sig_vals": np.zeros((cfg.signal_table_size, A.SVCOL), np.float64),
            "touched": np.zeros((cfg.max_pools, 2), np.int64),
            "crc_state": np.zeros(3, np.int64),
            "out": np.zeros(cfg.max_signals_per_batch * A.SIG_FRAME, np.uint8),
            "out_offsets": np.zeros(cfg.max_signals_per_batch, np.int64),
            "rate_cache": np.zeros((cfg.max_pools, A.RCCOL), np.float64),
            "tl": np.zeros(min(cfg.max_pools, A.TL_MAX), np.int64),
            "resume": np.zeros(A.RSCOL, np.int64),
            "crc_t": CRC_TABLE.copy(),
            "swap_ck": np.zeros((A.SWC_N, A.SWCOL), np.uint64),
        }
        # every array of process_batch in one arena (alphapulse.jit.arena): the per-frame call
        # passes it and its layout instead of ~25 arrays; the engine keeps views of it
        arrays = [self.state[name] if name in self.state else own[name] for name, _, _ in A.BATCH_ARRAYS]
        self._arena, self._lay, views = pack(arrays, [(dt, nd) for _, dt, nd in A.BATCH_ARRAYS])
        for (name, _, _), v in zip(A.BATCH_ARRAYS, views):
            if name in self.state:
                self.state[name] = v
            else:
                setattr(self, "_" + name, v)
        # the signals' clock: a copy of this process's TSC calibration, re-anchored by the kernel
        self.state["meta"][S.M_CLOCK:S.M_CLOCK + CAL_SIZE] = process_clock().cal
        self._next_seq = 1
        self.last_count = 0              # signals written by the last kernel call
        self._rejected_logged = 0
        self._bad_logged = 0
        self._mismatch_logged = 0
        self._no_sink = (np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.uint32),
                         np.zeros(0, np.uint8))
        self._sink = None                # the last sink and its kernel state
        self._sink_arrays = self._no_sink
        self._run_entry: dict[bool, Callable] = {}
        self._io_for = None              # run(): (consumer, sink, their arrays) of self._io
        self._io = None
        self._lat = np.zeros(4096, np.int64)     # run(): trigger-to-publication ns, a ring
        self._lat_n = np.zeros(1, np.int64)
        self._lat_seen = 0
        self._entry: dict[tuple[bool, bool], Callable] = {}
        self.registry = PoolRegistry(self.state)
        self.refresh = RefreshRequester(self.state, self.registry, timeout_s=cfg.refresh_timeout_s,
                                        symbols=cfg.symbols_by_address())
        prefault([self._arena, self._lat])

    # ---------------------------------------------------------------- hot path
    def process(self, frames_views: Sequence[np.ndarray | bytes]) -> list[bytes]:
        """Apply a batch of market-data frames; return the signal frames it produced (bytes each)."""
        n, _ = self.process_raw(frames_views)
        out, offs = self._out, self._out_offsets
        return [out[o:o + A.SIG_FRAME].tobytes() for o in offs[:n]]

    def run(self, consumer, sink, seconds: float,
            latency: Callable[[np.ndarray], object] | None = None) -> int:
        """Busy-poll ``consumer`` (of the market ring) for ``seconds`` and process every batch as it
        arrives, all in compiled code (:mod:`alphapulse.jit.spin`): the signals go out on ``sink``
        (a ring ``Producer``) from the kernel, each 2-pool signal as soon as it is sized. Returns
        the signals published. Takes a core for the whole time: the ``wait = "spin"`` mode.

        Back here only at the deadline and for what the kernel cannot do: a futex wake for a
        sleeping signal reader, a full lossless signal ring (then this waits as
        ``publish_batch`` does), a ring error (raised as ``Consumer.poll`` raises it).
        ``latency``, when given, receives the trigger-to-publication times (ns, int64 array) of
        the signals published since the last call that asked for them (the newest 4096 at most).
        """
        deadline = time.monotonic_ns() + int(seconds * 1e9)
        io_for = self._io_for
        if io_for is None or io_for[0] is not consumer or io_for[1] is not sink:
            self._io_places(consumer, sink)
        io, copy, priv, data = self._io
        entry = self._run_entry.get(copy)
        arena, lay = self._arena, self._lay
        total = 0
        while True:
            if entry is None:
                entry = self._run_entry[copy] = compiled_entry(SP.run_until, deadline, io, copy, arena, lay,
                                                               self._next_seq)
            status, n, _batches, seq, wpos, rejects, k, n_views = entry(deadline, io, copy, arena, lay,
                                                                        self._next_seq)
            self._next_seq = seq
            total += n
            if rejects:
                self._log_rejects(rejects)
            if status == RUN_DEADLINE:
                # the common return (the rest of this loop is for what the kernel handed back)
                if latency is not None:
                    self._drain_latency(latency)
                return total
            resume = self._resume
            if status == SP.RUN_PENDING:
                # finish the publication the kernel handed over, then the rest of that poll
                self._finish_sink(sink, wpos)
                src = priv if copy else data
                out4 = self._io_for[2][SP.IO_OUT4]
                views = [src[out4[2 * i]:out4[2 * i + 1]] for i in range(n_views)]
                if resume[A.RS_PENDING]:     # the search was interrupted: go on (else view k is done)
                    total += self.process_raw([views[k]], sink=sink, resume=True, latency=latency)[0]
                for v in views[k + 1:]:
                    total += self.process_raw([v], sink=sink, latency=latency)[0]
                consumer.release()
            elif status < 0:
                consumer.raise_for_status(status)
            if latency is not None:
                self._drain_latency(latency)

    def _io_places(self, consumer, sink) -> None:
        """The places table (``alphapulse.jit.arena.places``) of run_until's IO_ARRAYS for this
        consumer and sink; the engine holds the objects and their arrays while it keeps it."""
        h, cs, data, priv, out4, copy = consumer.kernel_state()
        arrays = (h, cs, data, priv, out4, *sink.kernel_state(), self._lat, self._lat_n)
        io = places(arrays, [(dt, nd) for _, dt, nd in SP.IO_ARRAYS])
        self._io_for = (consumer, sink, arrays)
        self._io = (io, bool(copy), priv, data)

    def _sink_state(self, sink) -> tuple:
        if sink is None:
            return self._no_sink
        if sink is not self._sink:
            self._sink, self._sink_arrays = sink, sink.kernel_state()
        return self._sink_arrays

    def _drain_latency(self, latency) -> None:
        """Hand ``latency`` the trigger-to-publication times recorded since the last call."""
        n_lat = int(self._lat_n[0])
        if latency is not None and n_lat > self._lat_seen:
            size = self._lat.shape[0]            # a ring: the newest ``size`` at most
            latency(self._lat[np.arange(max(self._lat_seen, n_lat - size), n_lat) % size])
        self._lat_seen = n_lat

    def _finish_sink(self, sink, wpos: int) -> None:
        """What the kernel left of its publication on ``sink``: the futex wake, and the frames of
        ``out[:wpos]`` past ``resume[RS_PUB]`` (``publish_batch`` waits on a full ring or raises)."""
        if self._resume[A.RS_SINK] >= WAKE:
            sink.wake()
        pub = int(self._resume[A.RS_PUB])
        if wpos > pub:
            sink.publish_batch(self._out[pub:wpos])

    def _log_rejects(self, n: int = 1, reason: str = "") -> None:
        self._rejected_logged += n
        if self._rejected_logged <= 10 or self._rejected_logged % 1000 < n:
            log.warning("strategy: corrupt frame header in batch%s; rest of the batch skipped",
                        f" ({reason})" if reason else "")

    def log_bad_events(self) -> int:
        """Log the records refused since the last call for fields the contracts cannot produce
        (``pool_state.valid_*``; counted in ``bad_event``); returns how many. Called between
        batches (heartbeat, end of a backtest), never per frame."""
        n = int(self.state["counters"][S.K_BAD_EVENT])
        new = n - self._bad_logged
        if new > 0:
            log.warning("strategy: %d market-data record(s) refused for fields outside the contracts' "
                        "limits (tick spacing, tick, sqrt price, decimals, fee); %d in all", new, n)
            self._bad_logged = n
        return max(new, 0)

    def process_raw(self, frames_views: Sequence[np.ndarray | bytes],
                    publish: Callable[[np.ndarray, int], object] | None = None,
                    sink=None, observe: Callable[[np.ndarray, int], object] | None = None,
                    resume: bool = False,
                    latency: Callable[[np.ndarray], object] | None = None) -> tuple[int, int]:
        """Like :meth:`process` but leaves the frames in ``self.out_buffer[:bytes]``; returns (n, bytes).

        With ``publish`` every signal frame is handed over as soon as it is written:
        ``publish(out_buffer, nbytes)`` is called with the frames in ``out_buffer[:nbytes]``:
        each 2-pool signal alone, as soon as it is sized (its latency includes neither the
        frame's other cycles sized after it nor the triangle search), the triangle signals
        of a search together.

        With ``sink`` (an :class:`alphapulse.ring.Producer`) the kernel publishes them on
        that ring itself, in the same order, without coming back to Python for each one;
        it returns early only when the ring needs a futex wake (a consumer sleeps), is full
        (lossless) or refuses, and this method finishes that publication (waking, waiting
        or raising as ``Producer.publish_batch`` does). ``observe(out_buffer, nbytes)`` is
        then called after each kernel call with the frames it wrote, all on the ring.

        With either, the return value counts every signal of the batch, while
        ``out_buffer`` holds only the last kernel call's frames. With ``sink``, ``latency``
        (as in :meth:`run`) receives the trigger-to-publication times (ns) of the batch's signals.
        """
        if not frames_views:
            return 0, 0
        if len(frames_views) == 1:
            buf = frames_views[0]
            if not isinstance(buf, np.ndarray):
                buf = np.frombuffer(buf, np.uint8)
        else:
            buf = np.concatenate([v if isinstance(v, np.ndarray) else np.frombuffer(v, np.uint8)
                                  for v in frames_views])
        if buf.dtype != np.uint8:
            buf = buf.view(np.uint8)
        if not buf.flags.writeable:
            # one compiled kernel for every input: ring views are writable; a read-only batch
            # (bytes, as the backtest feeds it) is copied, which costs less than its dispatch
            buf = buf.copy()
        total_n = total_bytes = 0
        if not resume:
            self._resume[A.RS_PENDING] = 0
        flush = publish is not None or sink is not None
        sink_arrays = self._sink_state(sink)
        flags = buf.flags
        kernel = self._entry.get((buf.ndim, flags.c_contiguous, flags.writeable))
        arena, lay = self._arena, self._lay
        while True:
            if kernel is None:
                args = (buf, buf.shape[0], arena, lay, self._next_seq, *sink_arrays, flush)
                n_sig, wpos, _n_frames, stop = A.process_packed(*args)
                kernel = self._bind(args)
            else:
                n_sig, wpos, _n_frames, stop = kernel(buf, buf.shape[0], arena, lay, self._next_seq,
                                                      *sink_arrays, flush)
            self._next_seq += n_sig
            total_n += n_sig
            total_bytes += wpos
            self.last_count = n_sig          # frames in out_buffer[:wpos] (out_offsets[:n])
            if sink is not None:
                self._finish_sink(sink, wpos)
                if n_sig and latency is not None:
                    SP.record_latency(self._out, self._out_offsets, n_sig, self._lat, self._lat_n)
                if observe is not None and n_sig:
                    observe(self._out, wpos)
            elif publish is not None and n_sig:
                publish(self._out, wpos)
            if stop != A.STOP_FLUSH:
                break
        if stop:
            self._log_rejects(1, Reject(stop).name)
        if latency is not None:
            self._drain_latency(latency)
        return int(total_n), int(total_bytes if flush else wpos)

    def end_input(self, publish: Callable[[np.ndarray, int], object] | None = None, sink=None,
                  observe: Callable[[np.ndarray, int], object] | None = None) -> tuple[int, int]:
        """The input ends here (the end of a recording): the block in progress is complete, so
        search it now (``evaluate = "block"``). Same arguments and return value as
        :meth:`process_raw`; a no-op when no block is in progress."""
        self._resume[A.RS_CLOSE] = 1
        return self.process_raw([np.zeros(0, np.uint8)], publish=publish, sink=sink, observe=observe)

    def end_input_frames(self) -> list[bytes]:
        """:meth:`end_input`, returning the signal frames (as :meth:`process`)."""
        n, _ = self.end_input()
        out, offs = self._out, self._out_offsets
        return [out[o:o + A.SIG_FRAME].tobytes() for o in offs[:n]]

    def report_chain_mismatch(self) -> int:
        """Log the GasPrice records whose chain id disagreed with the configured one since the
        last call (counted by the kernel as ``chain_mismatch``; the signals carry the frames'
        chain id); returns the total."""
        n = int(self.state["counters"][S.K_CHAIN_MISMATCH])
        if n > self._mismatch_logged:
            log.warning("strategy: %d GasPrice record(s) carry a chain id other than the configured %d; "
                        "the signals carry the frames' chain id %d", n - self._mismatch_logged,
                        self.config.chain_id, int(self.state["meta"][S.M_CHAIN_ID]))
            self._mismatch_logged = n
        return n

    @property
    def last_block(self) -> int:
        """The last block the engine completed (searched on its end state, or ended empty)."""
        return int(self._resume[A.RS_LAST_BLOCK])

    def _bind(self, args: tuple) -> Callable:
        """The compiled process_packed for these argument types, called without the dispatcher.

        The dispatcher types every argument on each call; the engine's own arrays never change
        type, only ``buf``'s shape, layout and writeability can (a ring view, a bytes object),
        so the compiled entry point is cached per those.
        """
        buf = args[0]
        entry = compiled_entry(A.process_packed, *args)
        if entry is not A.process_packed:
            self._entry[(buf.ndim, buf.flags.c_contiguous, buf.flags.writeable)] = entry
        return entry

    @property
    def out_buffer(self) -> np.ndarray:
        return self._out

    @property
    def out_offsets(self) -> np.ndarray:
        return self._out_offsets

    # ---------------------------------------------------------------- pools waiting on a refresh
    def refresh_requests(self, now_ns: int | None = None) -> list[bytes]:
        """PoolRefresh frames (system domain) due now for the pools waiting on a fresh snapshot
        (:class:`alphapulse.strategy.refresh.RefreshRequester`); send them to the source."""
        return self.refresh.poll(now_ns)

    # ---------------------------------------------------------------- inspection
    def reconfigure(self, config: EngineConfig) -> None:
        """Take over the hot-reloadable settings of ``config`` (``EngineConfig.RELOADABLE_PARAMS``)
        into the running engine's parameter array, in place; call between batches (the kernels
        read the array on their next call). Nothing else of the engine changes."""
        new = config.params_array()
        for i in EngineConfig.RELOADABLE_PARAMS:
            self._params[i] = new[i]
        self.config = config

    def counters(self) -> dict[str, int]:
        c = self.state["counters"]
        return {name: int(c[k]) for k, name in S.COUNTER_NAMES.items()}

    def snapshot(self) -> dict[str, np.ndarray]:
        """Deep copy of the pool state (for exact before/after comparisons)."""
        return {k: self.state[k].copy() for k in ("pools", "tticks", "tnets", "tgross", "tn")}

    def simulate(self, path: Sequence[tuple[str | bytes, str | bytes]], amount_in: int) -> int:
        """Exact output of swapping ``amount_in`` along [(pool, token_in), ...] on the current state.

        Raises ValueError when a pool is unknown or a hop would revert.
        """
        amt = to_u256(amount_in)
        pools = self.state["pools"]
        for pool, token_in in path:
            p = self.registry.index(pool)
            if p < 0:
                raise ValueError(f"unknown pool {pool!r}")
            t = self.registry.token_index(token_in)
            zfo = int(pools[p, S.C_TOKEN0]) == t
            if not zfo and int(pools[p, S.C_TOKEN1]) != t:
                raise ValueError(f"pool {pool!r} does not trade token {token_in!r}")
            out, ok = A.hop_out(pools, self.state["tticks"], self.state["tnets"], self.state["tn"], p, zfo, amt)
            amt = to_u256(from_limbs(out))  # boxed limbs come back as Python ints
            if not ok:
                raise ValueError(f"swap on {pool!r} reverts for this amount")
        return from_limbs(amt)
