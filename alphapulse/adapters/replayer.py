"""Replayer: journal files -> frames marked replayed (header flag 0x20) -> a ring or a sink.

Reads any file in the journal format of PROTOCOL.md section 6, whoever wrote it,
with :class:`alphapulse.journal.JournalReader`: every frame validated (header,
TLVs, the checksum of every ``crc_every``-th frame), a corrupt one counted by
reason and skipped with a resync on the next magic, a partial frame at the end
of a file (a crash of the writer) counted and ignored. The counts of all files
add up in :attr:`Replayer.counters`.

Pace: ``speed="recorded"`` keeps the recorded gaps between header timestamps,
a number ``k`` plays ``k`` times faster, ``"max"`` as fast as the ring takes it.
Output is deterministic: a frame is republished byte for byte except the
replay flag (and its checksum, recomputed when the original had one); header
timestamps are kept unless ``restamp=True`` (then: each frame's own time of copying into
the batch it is published in, read from the process's TSC clock as it is written).
"""
from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
from numba import njit

from alphapulse.adapters.recorder import journal_files
from alphapulse.jit.clock import fast_ns, process_clock
from alphapulse.jit.crc import frame_crc
from alphapulse.jit.frames import OFF_FLAGS, OFF_TIMESTAMP
from alphapulse.jit.memory import ld_u32, st_u32, st_u64
from alphapulse.journal import JournalError, JournalReader
from alphapulse.protocol import layout as L

log = logging.getLogger(__name__)

_HEADER_SIZE = L.HEADER_SIZE
_CHECKSUM_OFFSET = L.CHECKSUM_OFFSET
_OK = 0   # Reject.OK


@njit(cache=True)
def copy_replayed(buf, offsets, lengths, statuses, lo, hi, out, out_pos, flags, restamp, cal, out_offsets,
                  delta_tab, delta_have, scratch):
    """Copy OK frames ``lo..hi-1`` of a FrameIndex from ``buf`` to ``out`` at ``out_pos``.

    Sets ``flags`` in each header, with ``restamp`` stores as its timestamp the time it is
    written (``fast_ns(cal)``, one read per frame), and fixes a non-zero checksum.
    Stops early when ``out`` is full.
    Returns ``(new_out_pos, frames_copied, next_row)``; ``out_offsets[k]`` is the
    k-th copied frame's offset in ``out``.

    CRC-32 is affine: for messages of equal length crc(M ^ D) = crc(M) ^ crc(D) ^ crc(0).
    Setting ``flags`` in a header is such a D, the same for every frame of one payload
    size, so the new checksum is the old one XOR a per-size constant (``delta_tab``,
    filled on first use from ``scratch``, a zeroed buffer of MAX_FRAME bytes; one table
    per ``flags`` value). A new timestamp changes bytes that differ per frame: full CRC.
    """
    k = 0
    i = lo
    while i < hi:
        if statuses[i] != 0:
            i += 1
            continue
        off = offsets[i]
        n = lengths[i]
        if out_pos + n > out.shape[0]:
            break
        out[out_pos:out_pos + n] = buf[off:off + n]
        old = out[out_pos + OFF_FLAGS]
        out[out_pos + OFF_FLAGS] = old | flags
        ck = ld_u32(out, out_pos + _CHECKSUM_OFFSET)
        if restamp:
            st_u64(out, out_pos + OFF_TIMESTAMP, fast_ns(cal))
            if ck != 0:
                st_u32(out, out_pos + _CHECKSUM_OFFSET, frame_crc(out, out_pos, n - _HEADER_SIZE))
        elif ck != 0 and (old & flags) != flags:
            p = n - _HEADER_SIZE
            if (old & flags) != 0:     # some of the bits were already set: no table for that
                st_u32(out, out_pos + _CHECKSUM_OFFSET, frame_crc(out, out_pos, p))
            else:
                if delta_have[p] == 0:
                    scratch[OFF_FLAGS] = flags
                    a = frame_crc(scratch, 0, p)
                    scratch[OFF_FLAGS] = 0
                    delta_tab[p] = a ^ frame_crc(scratch, 0, p)
                    delta_have[p] = 1
                st_u32(out, out_pos + _CHECKSUM_OFFSET, ck ^ delta_tab[p])
        out_offsets[k] = out_pos
        k += 1
        out_pos += n
        i += 1
    return out_pos, k, i


def parse_speed(speed: str | float | int) -> float | None:
    """None for "max", 1.0 for "recorded", else the positive multiple."""
    if speed == "max":
        return None
    if speed == "recorded":
        return 1.0
    try:
        v = float(speed)
    except (TypeError, ValueError):
        v = -1.0
    if not v > 0:
        raise ValueError(f"speed must be 'recorded', 'max' or a positive multiple, got {speed!r}")
    return v


class Replayer:
    """Publishes the frames of journal files (a file, a directory, or a list of files).

    Give either ``producer`` (an :class:`alphapulse.ring.Producer`: contiguous
    batches, no per-frame Python) or ``sink(frames: list[bytes])``.
    """

    def __init__(self, source: str | os.PathLike | Iterable[str | os.PathLike],
                 sink: Callable[[list[bytes]], None] | None = None, *, producer: Any = None,
                 speed: str | float = "recorded", restamp: bool = False, crc_every: int = 1,
                 chunk_bytes: int = 1 << 22, batch_bytes: int = 1 << 20,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if (sink is None) == (producer is None):
            if hasattr(sink, "publish_batch"):
                producer, sink = sink, None
            else:
                raise ValueError("give exactly one of sink or producer")
        if isinstance(source, (str, os.PathLike)):
            p = Path(source)
            self.files = journal_files(p) if p.is_dir() else [p]
        else:
            self.files = [Path(f) for f in source]
        if not self.files:
            raise FileNotFoundError(f"no journal files in {source}")
        self.sink = sink
        self.producer = producer
        self.speed = parse_speed(speed)
        self.restamp = restamp
        self._cal = process_clock().cal if restamp else np.zeros(1, np.int64)
        self.crc_every = crc_every
        self.chunk_bytes = chunk_bytes
        self.out = np.zeros(max(batch_bytes, L.MAX_FRAME), np.uint8)
        self.out_offsets = np.zeros(self.out.shape[0] // _HEADER_SIZE + 1, np.int64)
        self._delta_tab = np.zeros(L.MAX_PAYLOAD + 1, np.uint32)    # checksum delta per payload size
        self._delta_have = np.zeros(L.MAX_PAYLOAD + 1, np.uint8)
        self._scratch = np.zeros(L.MAX_FRAME, np.uint8)
        self.clock = clock
        self.sleep = sleep
        self.counters: Counter = Counter()
        self._stop: Any = None
        self._t0: float | None = None     # wall clock of the first frame
        self._ts0 = 0                     # its recorded timestamp

    # ---------------------------------------------------------------- output
    def _emit(self, nbytes: int, k: int) -> None:
        if k == 0:
            return
        if self.producer is not None:
            self.producer.publish_batch(self.out, nbytes)
        else:
            offs = self.out_offsets[:k].tolist() + [nbytes]
            b = self.out[:nbytes].tobytes()
            self.sink([b[offs[i]:offs[i + 1]] for i in range(k)])
        self.counters["frames"] += k
        self.counters["bytes"] += nbytes
        self.counters["publishes"] += 1

    def _publish_rows(self, buf: np.ndarray, ix: Any, lo: int, hi: int) -> None:
        flags = L.FLAG_REPLAYED
        while lo < hi:
            if self.speed is not None:
                # frames due now, then wait for the next one
                ts = ix.timestamp_ns[lo:hi]
                ok = ix.status[lo:hi] == _OK
                if self._t0 is None:
                    first = np.flatnonzero(ok)
                    if not first.size:
                        return
                    self._t0, self._ts0 = self.clock(), int(ts[first[0]])
                due = (ts.astype(np.int64) - self._ts0) / (1e9 * self.speed)
                now = self.clock() - self._t0 + 1e-6   # 1 us early is on time (float rounding)
                ready = int(np.searchsorted(due, now, side="right")) if ok.all() else \
                    self._ready_count(due, ok, now)
                if ready == 0:
                    self.sleep(min(max(float(due[0]) - now, 0.0) + 1e-6, 0.5))
                    if self._stop is not None and self._stop.is_set():
                        return
                    continue
                stop = lo + ready
            else:
                stop = hi
            pos, k, nxt = copy_replayed(buf, ix.offset, ix.length, ix.status, lo, stop, self.out, 0,
                                        flags, self.restamp, self._cal, self.out_offsets, self._delta_tab,
                                        self._delta_have, self._scratch)
            self._emit(pos, k)
            lo = nxt

    @staticmethod
    def _ready_count(due: np.ndarray, ok: np.ndarray, now: float) -> int:
        n = 0
        for d, good in zip(due, ok):
            if good and d > now:
                break
            n += 1
        return n

    # ---------------------------------------------------------------- input
    def _play_file(self, path: Path, stop: Any) -> None:
        reader = JournalReader(path, crc_every=self.crc_every, chunk_size=self.chunk_bytes)
        try:
            for batch in reader.batches():
                self._publish_rows(batch.buf, batch.frames, 0, batch.n)
                if stop is not None and stop.is_set():
                    break
        except JournalError as e:
            self.counters["bad_journal_header"] += 1
            log.warning("not replayed: %s", e)
            return
        finally:
            st = reader.stats
            for name, k in list(st.frames_rejected.items()) + list(st.corrupt_headers.items()):
                self.counters[f"rejected_{name}"] += k
                self.counters["rejected"] += k
            self.counters["resyncs"] += st.resyncs
            self.counters["resync_skipped_bytes"] += st.bytes_skipped
            self.counters["truncated_tail_bytes"] += st.truncated_tail_bytes

    def rewind(self) -> None:
        """Start the pace over: the next run's first frame is published at once."""
        self._t0 = None

    def run(self, stop: Any = None) -> int:
        """Replay every file once; returns the number of frames published."""
        self._stop = stop
        before = self.counters["frames"]
        for path in self.files:
            if stop is not None and stop.is_set():
                break
            self._play_file(path, stop)
            self.counters["files"] += 1
        return self.counters["frames"] - before


def replay_to_ring(source: str | os.PathLike, ring_name: str, stop_event: Any, *,
                   speed: str | float = "recorded", loop: bool = False, crc_every: int = 1) -> dict:
    """Process entry point: replay ``source`` into ring ``ring_name`` (created elsewhere)."""
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name, timeout=10.0)
    prod = ring.producer()
    rp = Replayer(source, producer=prod, speed=speed, crc_every=crc_every)
    try:
        while True:
            rp.run(stop_event)
            rp.rewind()
            if not loop or stop_event.is_set():
                break
    finally:
        prod.close()
        ring.close()
    return dict(rp.counters)
