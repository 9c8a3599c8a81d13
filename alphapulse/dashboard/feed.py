"""The dashboard's reader threads: rings and the metrics block into the aggregator.

One thread per ring polls its consumer in batches, copies the published
region out of shared memory and releases it at once (so a lossless producer
is never held back by the dashboard: the dashboard's cursor trails the
producer by at most one poll of data, and the copy is one ``memcpy``), then
splits and validates the frames and applies them to the aggregator in chunks
(the aggregator lock is held per chunk, never across a whole burst, so a
session's push on the event loop never waits long). A stats thread samples
ring statistics and the metrics block twice a second.

On the market-data ring (overwrite policy) the dashboard bounds its own CPU so a
flood never competes with the pipeline for cores: a burst larger than
``max_market_frames_per_batch`` keeps only its newest frames (prices are
last-writer-wins per pool; the skipped ones are counted), and after each batch
the reader rests in proportion to the time it worked (``max_cpu_share``, 0.25 =
at most a quarter of one core on average). Frames the ring overwrites meanwhile
are counted by the ring as this consumer's loss and shown on the health panel.
"""
from __future__ import annotations

import logging
import os
import struct
import threading
import time
from typing import Any, Callable

from alphapulse.dashboard.aggregate import Aggregator
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Reject

log = logging.getLogger("alphapulse.dashboard.feed")

_MAGIC = struct.pack("<I", L.MAGIC)
_PAYLOAD_SIZE = struct.Struct("<I")
_PAYLOAD_OFFSET = struct.calcsize(L.HEADER_STRUCT[:-2])   # header fields before payload_size
CHUNK = 256


def rest_after(busy_s: float, max_cpu_share: float) -> float:
    """Seconds to rest after ``busy_s`` of work so the average stays at ``max_cpu_share``."""
    if not 0 < max_cpu_share <= 1:
        raise ValueError(f"max_cpu_share must be in (0, 1], got {max_cpu_share}")
    return busy_s * (1 / max_cpu_share - 1)


def split_frames(buf: bytes, on_reject: Callable[[Reject], None]) -> list[memoryview]:
    """Whole frames of a region of back-to-back frames (ring data or a journal body).

    A header that cannot be trusted (bad magic, impossible size) is counted and
    the walk resynchronises on the next magic, as PROTOCOL.md section 6 asks
    of recording readers. Full validation happens in ``Aggregator.ingest``.
    """
    mv = memoryview(buf)
    n, off, out = len(buf), 0, []
    while off < n:
        if n - off < L.HEADER_SIZE:
            on_reject(Reject.TRUNCATED_HEADER)
            break
        if buf[off:off + 4] != _MAGIC:
            on_reject(Reject.BAD_MAGIC)
            nxt = buf.find(_MAGIC, off + 1)
            if nxt < 0:
                break
            off = nxt
            continue
        size = L.HEADER_SIZE + _PAYLOAD_SIZE.unpack_from(buf, off + _PAYLOAD_OFFSET)[0]
        if size > L.MAX_FRAME or off + size > n:
            on_reject(Reject.PAYLOAD_TOO_LARGE if size > L.MAX_FRAME else Reject.TRUNCATED_PAYLOAD)
            nxt = buf.find(_MAGIC, off + 1)
            if nxt < 0:
                break
            off = nxt
            continue
        out.append(mv[off:off + size])
        off += size
    return out


class RingReader(threading.Thread):
    """Polls one ring as consumer ``consumer_name`` and feeds ``agg``; daemon thread."""

    def __init__(self, ring_name: str, label: str, agg: Aggregator, notify: Callable[[], None],
                 stop: threading.Event, *, consumer_name: str = "dashboard",
                 poll_timeout_s: float = 0.02, max_frames_per_batch: int | None = None,
                 max_cpu_share: float = 1.0,
                 attach_retry_s: float = 1.0, clock_ns: Callable[[], int] = time.time_ns) -> None:
        super().__init__(name=f"dashboard-{label}", daemon=True)
        self.ring_name, self.label = ring_name, label
        self.agg, self.notify, self.stop = agg, notify, stop
        self.consumer_name = consumer_name
        self.poll_timeout_s = poll_timeout_s
        self.max_frames = max_frames_per_batch
        rest_after(0.0, max_cpu_share)           # validate
        self.max_cpu_share = max_cpu_share
        self.rested_s = 0.0
        self.failures = 0
        self.attach_retry_s = attach_retry_s
        self.clock_ns = clock_ns
        self.ring: Any = None
        self.consumer: Any = None
        self.frames = 0
        self.skipped = 0                 # over-budget frames of a burst (market data only)
        self.lost_reported = 0

    # the ring API in one place --------------------------------------------------
    def _attach(self) -> bool:
        from alphapulse.ring import Ring
        try:
            self.ring = Ring.attach(self.ring_name)
            # default copy policy of the ring: a private copy on overwrite rings (the
            # ring drops and counts frames overwritten while copying), zero-copy
            # views on lossless ones (copied out below before release)
            self.consumer = self.ring.consumer(self.consumer_name, wait="sleep")
        except (FileNotFoundError, ValueError) as e:
            if self.ring is not None:
                self.ring.close()
                self.ring = None
            with self.agg.lock:
                self.agg.health.errors[self.label] = str(e)
            return False
        with self.agg.lock:
            self.agg.health.errors.pop(self.label, None)
        log.info("dashboard reading ring %s as consumer %s", self.ring_name, self.consumer_name)
        return True

    def _read(self) -> tuple[bytes, int] | None:
        """Everything published since the last read, copied out, and the cursor released
        at once; with the count of leading frames to drop (overwritten while held)."""
        from alphapulse.ring import ConsumerEvicted
        try:
            views = self.consumer.poll(self.poll_timeout_s)
            if not views:
                return None
            data = b"".join(bytes(v) for v in views)
            overwritten = self.consumer.release()
        except ConsumerEvicted as e:     # stalled past the ring's consumer timeout: rejoin
            log.warning("%s", e)
            with self.agg.lock:
                self.agg.health.errors[self.label] = str(e)
            self.close()
            return None
        return data, overwritten

    def close(self) -> None:
        for obj in (self.consumer, self.ring):
            if obj is not None:
                try:
                    obj.close()
                except Exception:        # closing at exit must not mask the real error
                    log.exception("closing %s", obj)
        self.consumer = self.ring = None

    # ----------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    self._step()
                except Exception as e:  # never take the server down: report, rejoin, go on
                    self.failures += 1
                    log.exception("dashboard reader of %s failed; rejoining in %.1fs",
                                  self.ring_name, self.attach_retry_s)
                    with self.agg.lock:
                        self.agg.health.errors[self.label] = f"reader error (rejoining): {e!r}"
                    self.notify()
                    self.close()
                    self.stop.wait(self.attach_retry_s)
        finally:
            self.close()

    def _step(self) -> None:
        if self.consumer is None:
            if not self._attach():
                self.stop.wait(self.attach_retry_s)
            return
        got = self._read()
        if got is not None:
            t0 = time.perf_counter()
            self.process(*got)
            if self.max_cpu_share < 1:
                rest = rest_after(time.perf_counter() - t0, self.max_cpu_share)
                self.rested_s += rest
                self.stop.wait(rest)

    def process(self, data: bytes, drop_first: int = 0) -> int:
        """Split, validate and apply a region of frames; returns frames applied."""
        agg = self.agg
        rejects: list[Reject] = []
        frames = split_frames(data, rejects.append)[drop_first:]
        if self.max_frames is not None and len(frames) > self.max_frames:
            self.skipped += len(frames) - self.max_frames
            frames = frames[-self.max_frames:]
        now = self.clock_ns()
        for i in range(0, len(frames), CHUNK):
            with agg.lock:
                for fr in frames[i:i + CHUNK]:
                    agg.ingest(self.label, fr, now)
        with agg.lock:
            for r in rejects:
                agg.health.note_reject(r)
            agg.health.note_frames(self.label, len(frames))
            lost = getattr(self.consumer, "lost_frames", 0) if self.consumer is not None else 0
            agg.health.lost[self.label] = lost
            agg.health.skipped[self.label] = self.skipped
        self.frames += len(frames)
        self.notify()
        return len(frames)


class StatsPoller(threading.Thread):
    """Samples ring statistics and the metrics block into ``agg.health``, and publishes
    the dashboard's own figures into the block's ``component`` slots when the block
    has that component (frames read, rejects, checksum rejects, frames lost, pid,
    heartbeat): this process is their single writer."""

    def __init__(self, agg: Aggregator, notify: Callable[[], None], stop: threading.Event,
                 readers: list[RingReader], metrics_name: str | None, *,
                 interval_s: float = 0.5, clock_ns: Callable[[], int] = time.time_ns,
                 component: str = "dashboard") -> None:
        super().__init__(name="dashboard-stats", daemon=True)
        self.agg, self.notify, self.stop = agg, notify, stop
        self.readers = readers
        self.metrics_name = metrics_name
        self.interval_s = interval_s
        self.clock_ns = clock_ns
        self.metrics: Any = None
        self.component = component
        self._own: dict[str, Any] | None = None

    def _publish_own(self, now: int) -> None:
        m = self.metrics
        if m is None or self.component not in m.schema.components:
            return
        if self._own is None:
            self._own = {k: m.counter(self.component, k) for k in
                         ("frames_in", "frames_rejected", "checksum_rejects", "frames_lost")}
            self._own.update({k: m.gauge(self.component, k) for k in ("heartbeat_ns", "pid")})
            m.declare(self.component, *self._own)
            self._own["pid"].set(os.getpid())
        h = self.agg.health
        with self.agg.lock:
            frames = sum(h.frames_read.values())
            rejects = sum(h.rejects.values())
            crc = h.rejects.get(Reject.BAD_CHECKSUM.name, 0)
            lost = sum(h.lost.values())
        own = self._own
        own["frames_in"].set(frames)
        own["frames_rejected"].set(rejects)
        own["checksum_rejects"].set(crc)
        own["frames_lost"].set(lost)
        own["heartbeat_ns"].set(now)

    def _metrics_snapshot(self) -> dict | None:
        if not self.metrics_name:
            return None
        if self.metrics is None:
            from alphapulse.metrics import MetricsBlock
            try:
                self.metrics = MetricsBlock.attach(self.metrics_name)
            except (FileNotFoundError, ValueError) as e:
                with self.agg.lock:
                    self.agg.health.errors["metrics"] = str(e)
                return None
            with self.agg.lock:
                self.agg.health.errors.pop("metrics", None)
        return self.metrics.snapshot()

    def sample_once(self) -> None:
        now = self.clock_ns()
        snap = self._metrics_snapshot()
        self._publish_own(now)
        stats = []
        for r in self.readers:
            ring = r.ring
            if ring is None:
                continue
            try:
                stats.append((r.label, ring.stats()))
            except Exception as e:      # a ring being torn down at shutdown
                log.debug("ring stats of %s: %r", r.ring_name, e)
        with self.agg.lock:
            if snap is not None:
                self.agg.health.set_metrics(snap, now)
            for label, st in stats:
                self.agg.health.set_ring_stats(label, st, st["producer"]["frames"], now)
            self.agg.prices.flush(now)
            self.agg.health.sample(now)
        self.notify()

    def run(self) -> None:
        try:
            while not self.stop.wait(self.interval_s):
                try:
                    self.sample_once()
                except Exception:
                    log.exception("dashboard stats sampling failed")
        finally:
            if self.metrics is not None:
                self.metrics.close()
