"""Distributed tracing with OpenTelemetry, built after the fact from what the frames carry.

Nothing on the hot path: the ``tracing`` component is one more reader of the signal ring and of
the execution ring. For every ``sample_every``-th signal it makes one trace:

- ``arbitrage signal`` (the root): from the triggering market frame's header timestamp
  (``ArbitrageSignal.trigger_ts_ns``) to the last stamp known of the signal;
- ``strategy.detect``: trigger to publication (the signal frame's header timestamp);
- ``execution.check``: publication to the check's result (``ExecutionReport.done_ts_ns``), with
  its status, method and checked block, when an execution component runs (the report is
  awaited ``report_wait_s``; without one the trace ends at publication).

Spans are exported over OTLP/HTTP (protobuf) to ``[tracing] otlp_endpoint`` in batches, from the
exporter's own thread. ``[tracing] enabled`` is off by default.
"""
from __future__ import annotations

import logging
import time
from collections import OrderedDict
from typing import Any

from alphapulse.protocol import codec
from alphapulse.protocol import layout as L

log = logging.getLogger("alphapulse.tracing")

COMPONENT = "tracing"


def _hex(b: Any) -> str:
    return "0x" + bytes(b).hex()


class SignalTracer:
    """Pairs sampled signals with their execution reports and turns them into spans on
    ``tracer`` (an OpenTelemetry ``Tracer``). Pure bookkeeping: the caller feeds frames."""

    def __init__(self, tracer: Any, *, sample_every: int = 100, expect_reports: bool = False,
                 report_wait_s: float = 10.0, max_pending: int = 4096) -> None:
        if sample_every < 1:
            raise ValueError(f"sample_every must be >= 1, got {sample_every}")
        self.tracer = tracer
        self.sample_every = sample_every
        self.expect_reports = expect_reports
        self.report_wait_ns = int(report_wait_s * 1e9)
        self.max_pending = max_pending
        self.pending: OrderedDict[int, tuple[int, int, Any]] = OrderedDict()  # id -> (seen ns, published ns, signal)
        self.signals = 0
        self.traces = 0
        self.bad_frames = 0

    def on_signal_frame(self, frame: bytes | memoryview, now_ns: int) -> None:
        try:
            f = codec.parse_frame(frame)
        except codec.FrameError as e:           # counted and logged, never a crash
            self.bad_frames += 1
            log.warning("tracing: signal frame rejected: %s", e)
            return
        for t in f.tlvs:
            if not isinstance(t, codec.ArbitrageSignal):
                continue
            self.signals += 1
            if (self.signals - 1) % self.sample_every:
                continue
            if self.expect_reports:
                self.pending[int(t.signal_id)] = (now_ns, f.header.timestamp_ns, t)
                while len(self.pending) > self.max_pending:
                    _, (_, pub, sig) = self.pending.popitem(last=False)
                    self.emit(sig, pub, None)
            else:
                self.emit(t, f.header.timestamp_ns, None)

    def on_execution_frame(self, frame: bytes | memoryview) -> None:
        try:
            f = codec.parse_frame(frame)
        except codec.FrameError as e:
            self.bad_frames += 1
            log.warning("tracing: execution frame rejected: %s", e)
            return
        for t in f.tlvs:
            if isinstance(t, codec.ExecutionReport):
                got = self.pending.pop(int(t.signal_id), None)
                if got is not None:
                    self.emit(got[2], got[1], t)

    def expire(self, now_ns: int) -> None:
        """Signals whose report did not come within ``report_wait_s``: traced without it."""
        while self.pending:
            sid, (seen, pub, sig) = next(iter(self.pending.items()))
            if now_ns - seen < self.report_wait_ns:
                break
            del self.pending[sid]
            self.emit(sig, pub, None)

    def flush(self) -> None:
        while self.pending:
            _, (_, pub, sig) = self.pending.popitem(last=False)
            self.emit(sig, pub, None)

    def emit(self, sig: Any, published_ns: int, report: Any) -> None:
        """One trace of a signal (and its check, when ``report`` is given)."""
        from opentelemetry import trace
        trigger = int(sig.trigger_ts_ns)
        published = max(int(published_ns), trigger)
        end = published
        attrs = {"alphapulse.signal_id": int(sig.signal_id), "alphapulse.block_number": int(sig.block_number),
                 "alphapulse.chain_id": int(sig.chain_id), "alphapulse.strategy_id": int(sig.strategy_id),
                 "alphapulse.hops": int(sig.hops),
                 "alphapulse.net_profit_usd": int(sig.net_profit_usd_e8) / 1e8,
                 "alphapulse.pools": [_hex(p) for p in list(sig.pools)[:int(sig.hops)]]}
        if report is not None:
            end = max(end, int(report.done_ts_ns))
        root = self.tracer.start_span("arbitrage signal", start_time=trigger, attributes=attrs)
        ctx = trace.set_span_in_context(root)
        det = self.tracer.start_span("strategy.detect", context=ctx, start_time=trigger,
                                     attributes={"alphapulse.latency_ns": published - trigger})
        det.end(end_time=published)
        if report is not None:
            status = L.ExecutionStatus(int(report.status)).name if int(report.status) in \
                set(int(s) for s in L.ExecutionStatus) else str(int(report.status))
            ex = self.tracer.start_span("execution.check", context=ctx, start_time=published, attributes={
                "alphapulse.status": status, "alphapulse.method": int(report.method),
                "alphapulse.checked_block": int(report.checked_block),
                "alphapulse.checked_net_profit_usd": int(report.net_profit_usd_e8) / 1e8,
                "alphapulse.gas_used": int(report.gas_used)})
            ex.end(end_time=max(int(report.done_ts_ns), published))
        root.end(end_time=end)
        self.traces += 1


def make_provider(endpoint: str | None = None, exporter: Any = None, *, batch: bool = True) -> Any:
    """An OpenTelemetry ``TracerProvider`` (service.name ``alphapulse``) exporting to ``exporter``,
    or over OTLP/HTTP to ``endpoint``."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    if exporter is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        exporter = OTLPSpanExporter(endpoint=endpoint, timeout=5)
    provider = TracerProvider(resource=Resource.create({"service.name": "alphapulse"}))
    provider.add_span_processor(BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter))
    return provider


def run(stop: Any, *, signal_ring: str, execution_ring: str | None, otlp_endpoint: str,
        sample_every: int, metrics: str | None = None, poll_timeout_s: float = 0.1) -> None:
    """Pipeline component (``[tracing] enabled = true``): reads the signal ring (and the execution
    ring when an execution component runs) and exports sampled traces."""
    import os
    from alphapulse.metrics import MetricsBlock
    from alphapulse.ring import Ring
    m = MetricsBlock.attach(metrics) if metrics else None
    if m is not None:
        m.declare(COMPONENT, "frames_in", "frames_rejected", "heartbeat_ns", "pid")
    provider = make_provider(otlp_endpoint)
    st = SignalTracer(provider.get_tracer("alphapulse"), sample_every=sample_every,
                      expect_reports=execution_ring is not None)
    rsig = Ring.attach(signal_ring, timeout=10.0)
    csig = rsig.consumer(COMPONENT)
    rex = Ring.attach(execution_ring, timeout=10.0) if execution_ring else None
    cex = rex.consumer(COMPONENT) if rex is not None else None
    log.info("tracing every %d%s signal to %s", sample_every, "th" if sample_every > 1 else "st", otlp_endpoint)
    last_beat, seen_bad = 0.0, 0
    try:
        while not stop.is_set():
            n = 0
            for f in csig.frames(timeout=poll_timeout_s):
                st.on_signal_frame(f, time.time_ns())
                n += 1
            if cex is not None:
                for f in cex.frames(timeout=0):
                    st.on_execution_frame(f)
                    n += 1
            st.expire(time.time_ns())
            now = time.monotonic()
            if m is not None:
                if n:
                    m.counter(COMPONENT, "frames_in").add(n)
                if st.bad_frames != seen_bad:
                    m.counter(COMPONENT, "frames_rejected").add(st.bad_frames - seen_bad)
                    seen_bad = st.bad_frames
                if now - last_beat > 0.5:
                    last_beat = now
                    m.gauge(COMPONENT, "heartbeat_ns").set(time.time_ns())
                    m.gauge(COMPONENT, "pid").set(os.getpid())
        st.flush()
        log.info("tracing: %d signals seen, %d traced", st.signals, st.traces)
    finally:
        provider.shutdown()                     # exports what is still batched
        csig.close()
        rsig.close()
        if rex is not None:
            cex.close()
            rex.close()
        if m is not None:
            m.close()
