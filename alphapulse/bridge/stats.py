"""Bridge figures: kept locally and, when configured, published into ``alphapulse.metrics``.

A bridge process writes its own slots of the pipeline's shared metrics block
(component ``bridge_out_<domain>`` / ``bridge_in_<domain>``), so the
pipeline's ``/metrics`` exports them with everything else. Standard slots used:
``frames_in`` (frames read from the ring / received from NATS), ``frames_out``
(frames published to NATS / written to the ring), ``frames_rejected``,
``frames_lost`` (outbound: lapped by an overwrite ring), ``rpc_reconnects``
(NATS reconnects), gauges ``rpc_connected`` (NATS), ``consumer_lag_bytes``
(outbound: bytes of the ring not yet read), ``heartbeat_ns``, ``pid``; the
latency histogram holds, for the inbound side, ring write time minus the
frame's header timestamp (the end-to-end age of bridged frames).

Bridge-specific slots exist when the block was created with
:data:`METRIC_COUNTERS` and :data:`METRIC_GAUGES` added to the defaults::

    MetricsBlock.create(name, components, counters=DEFAULT_COUNTERS + METRIC_COUNTERS,
                        gauges=DEFAULT_GAUGES + METRIC_GAUGES)

Lag (what ``/metrics`` shows for a bridge that falls behind): gauge
``bridge_pending_msgs`` = batches in the stream not yet delivered to the inbound
bridge (JetStream's ``num_pending``), ``bridge_lag_ns`` = age of the newest
frame written; outbound ``consumer_lag_bytes`` = ring bytes not yet bridged.
"""
from __future__ import annotations

import logging
import os
import time

log = logging.getLogger("alphapulse.bridge")

#: Each bridge figure with its meaning (the ``# HELP`` line of ``/metrics``).
METRIC_HELP: dict[str, str] = {
    "bridge_batches": "NATS messages published (outbound) or received (inbound).",
    "bridge_bytes": "Frame bytes published (outbound) or written to the ring (inbound).",
    "bridge_retries": "Publish attempts repeated with the same message id.",
    "bridge_duplicates": "Frames dropped as already written (redelivery).",
    "bridge_gap_frames": "Frames never received (stream limits, lost outbound state).",
    "bridge_bad_batches": "NATS messages that were not valid batches.",
    "bridge_pending_msgs": "Inbound: stream messages not yet delivered to this bridge.",
    "bridge_lag_ns": "Inbound: age of the last frame written (now minus its header timestamp).",
}
METRIC_COUNTERS: tuple[str, ...] = ("bridge_batches", "bridge_bytes", "bridge_retries", "bridge_duplicates",
                                    "bridge_gap_frames", "bridge_bad_batches")
METRIC_GAUGES: tuple[str, ...] = ("bridge_pending_msgs", "bridge_lag_ns")

_STD_COUNTERS = ("frames_in", "frames_out", "frames_rejected", "frames_lost", "rpc_reconnects")
_STD_GAUGES = ("rpc_connected", "consumer_lag_bytes", "heartbeat_ns", "pid")


class BridgeStats:
    """Counters (``add``) and gauges (``set``) of one bridge process.

    Always kept in :attr:`values`; mirrored into the metrics block when one is
    given. A name missing from the block's schema is simply not mirrored.
    """

    def __init__(self, block_name: str = "", component: str = "") -> None:
        self.values: dict[str, int] = {k: 0 for k in _STD_COUNTERS + _STD_GAUGES + METRIC_COUNTERS + METRIC_GAUGES}
        self._block = None
        self._slots: dict[str, object] = {}
        self._hist = None
        if block_name:
            from alphapulse.metrics import MetricsBlock
            try:
                self._block = MetricsBlock.attach(block_name)
            except (FileNotFoundError, ValueError) as e:
                log.warning("%s: metrics block %r not usable (%s); figures stay local", component, block_name, e)
            else:
                for k in self.values:
                    try:
                        if k in _STD_COUNTERS or k in METRIC_COUNTERS:
                            self._slots[k] = self._block.counter(component, k)
                        else:
                            self._slots[k] = self._block.gauge(component, k)
                    except KeyError:
                        pass
                self._block.declare(component, *self._slots)
                try:
                    self._hist = self._block.histogram(component)
                except KeyError:
                    self._hist = None
        self.set("pid", os.getpid())
        self.beat()

    def add(self, key: str, n: int = 1) -> None:
        if n:
            self.values[key] += n
            s = self._slots.get(key)
            if s is not None:
                s.add(n)

    def set(self, key: str, v: int) -> None:
        self.values[key] = v
        s = self._slots.get(key)
        if s is not None:
            s.set(v)

    def beat(self) -> None:
        self.set("heartbeat_ns", time.time_ns())

    def observe_latency_ns(self, ns: int) -> None:
        if self._hist is not None:
            self._hist.observe(max(ns, 0))

    def close(self) -> None:
        if self._block is not None:
            self._slots.clear()
            self._hist = None
            self._block.close()
            self._block = None


def lag(snapshot: dict, component: str) -> dict[str, int]:
    """The lag figures of one bridge component from a ``MetricsBlock.snapshot()``."""
    c = snapshot["components"][component]
    g, k = c["gauges"], c["counters"]
    return {"pending_msgs": g.get("bridge_pending_msgs", -1), "lag_ns": g.get("bridge_lag_ns", -1),
            "ring_lag_bytes": g.get("consumer_lag_bytes", -1), "connected": g.get("rpc_connected", 0),
            "frames_in": k.get("frames_in", 0), "frames_out": k.get("frames_out", 0),
            "gap_frames": k.get("bridge_gap_frames", 0), "duplicates": k.get("bridge_duplicates", 0)}
