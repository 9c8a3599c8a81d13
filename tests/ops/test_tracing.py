"""Traces built after the fact from the stamps of signal and execution frames: the SDK's
in-memory exporter, and one export over OTLP/HTTP to a loopback receiver that decodes the
payload with opentelemetry-proto."""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from alphapulse.apps.config import load_config
from alphapulse.apps.tracing import SignalTracer, make_provider
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L

T0 = 1_700_000_000_000_000_000
POOL = bytes.fromhex("11" * 20)


def signal_frame(seq: int, signal_id: int, trigger: int, published: int) -> bytes:
    sig = codec.ArbitrageSignal(signal_id=signal_id, trigger_ts_ns=trigger, block_number=100 + seq, hops=2,
                                chain_id=137, strategy_id=1, net_profit_usd_e8=250_000_000,
                                pools=(POOL, POOL, bytes(20)))
    return codec.build_frame(int(L.Domain.SIGNAL), int(L.Source.ARBITRAGE_STRATEGY), seq, [sig],
                             timestamp_ns=published)


def report_frame(seq: int, signal_id: int, trigger: int, done: int) -> bytes:
    rep = codec.ExecutionReport(signal_id=signal_id, trigger_ts_ns=trigger, done_ts_ns=done, checked_block=101,
                                status=int(L.ExecutionStatus.CONFIRMED), net_profit_usd_e8=240_000_000,
                                gas_used=150_000)
    return codec.build_frame(int(L.Domain.EXECUTION), int(L.Source.EXECUTION_ENGINE), seq, [rep], timestamp_ns=done)


def test_sampled_signal_and_its_check_become_one_trace():
    exp = InMemorySpanExporter()
    provider = make_provider(exporter=exp, batch=False)
    st = SignalTracer(provider.get_tracer("t"), sample_every=2, expect_reports=True, report_wait_s=1.0)
    for i in range(4):                                      # signals 0 and 2 are sampled
        st.on_signal_frame(signal_frame(i, 1000 + i, T0 + i * 10**6, T0 + i * 10**6 + 40_000), now_ns=T0)
    assert set(st.pending) == {1000, 1002}
    st.on_execution_frame(report_frame(1, 1000, T0, T0 + 2_000_000))
    st.on_execution_frame(report_frame(2, 1001, T0, T0 + 2_000_000))      # not sampled: ignored
    st.expire(T0 + 2 * 10**9)                                             # 1002: no report in time
    st.on_signal_frame(b"\x00" * 40, now_ns=T0)                           # garbage: counted
    provider.shutdown()
    spans = exp.get_finished_spans()
    assert st.traces == 2 and st.bad_frames == 1 and not st.pending
    by_trace = {}
    for s in spans:
        by_trace.setdefault(s.context.trace_id, []).append(s)
    assert len(by_trace) == 2
    full = next(v for v in by_trace.values() if len(v) == 3)
    names = {s.name: s for s in full}
    root, det, ex = names["arbitrage signal"], names["strategy.detect"], names["execution.check"]
    assert root.start_time == det.start_time == T0                        # the market frame's stamp
    assert det.end_time == T0 + 40_000 == ex.start_time                   # the signal's publication
    assert ex.end_time == root.end_time == T0 + 2_000_000                 # the check's result
    assert det.parent.span_id == ex.parent.span_id == root.context.span_id
    assert root.attributes["alphapulse.signal_id"] == 1000 and ex.attributes["alphapulse.status"] == "CONFIRMED"
    assert root.attributes["alphapulse.pools"] == ("0x" + "11" * 20,) * 2
    short = next(v for v in by_trace.values() if len(v) == 2)
    assert {s.name for s in short} == {"arbitrage signal", "strategy.detect"}


def test_one_export_over_otlp_http_decodes_with_opentelemetry_proto():
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)
    got = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            req = ExportTraceServiceRequest()
            req.ParseFromString(body)
            got.append((self.path, self.headers.get("Content-Type"), req))
            out = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        endpoint = f"http://127.0.0.1:{srv.server_address[1]}/v1/traces"
        provider = make_provider(endpoint)
        st = SignalTracer(provider.get_tracer("t"), sample_every=1)
        st.on_signal_frame(signal_frame(0, 7, T0, T0 + 55_000), now_ns=T0)
        provider.shutdown()                                   # flushes the batch: one export
    finally:
        srv.shutdown()
        srv.server_close()
    assert len(got) == 1
    path, ctype, req = got[0]
    assert path == "/v1/traces" and ctype == "application/x-protobuf"
    rs = req.resource_spans[0]
    assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "alphapulse"
    spans = {s.name: s for ss in rs.scope_spans for s in ss.spans}
    assert set(spans) == {"arbitrage signal", "strategy.detect"}
    det = spans["strategy.detect"]
    assert det.start_time_unix_nano == T0 and det.end_time_unix_nano == T0 + 55_000
    assert det.parent_span_id == spans["arbitrage signal"].span_id


def test_tracing_is_off_by_default():
    c = load_config(None, environ={})
    assert c.tracing.enabled is False and c.tracing.sample_every >= 1


def test_a_running_pipeline_exports_traces_of_its_signals():
    """The tracing component of a real pipeline (bundled replay) sends OTLP/HTTP exports whose
    spans carry the signals' stamps."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest, ExportTraceServiceResponse)
    from tests.apps.pipeline_helpers import PipelineProcess
    spans = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            req = ExportTraceServiceRequest()
            req.ParseFromString(self.rfile.read(int(self.headers["Content-Length"])))
            spans.extend(s for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans)
            out = ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *a):
            pass
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    p = PipelineProcess("--speed", "20", dashboard=False, env={
        "ALPHAPULSE__TRACING__ENABLED": "true", "ALPHAPULSE__TRACING__SAMPLE_EVERY": "5",
        "ALPHAPULSE__TRACING__OTLP_ENDPOINT": f"http://127.0.0.1:{srv.server_address[1]}/v1/traces"})
    try:
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > 0, 300, "first signals")
        p.wait_for(lambda: p.metric("alphapulse_frames_in_total", "tracing") > 0, 60, "the tracer reading")
        assert p.wait_for(lambda: (p.health() or {}).get("ready"), 60, "ready")
    finally:
        code = p.stop()
        srv.shutdown()
        srv.server_close()
    assert code == 0, p.output()[-3000:]
    names = [s.name for s in spans]
    assert names.count("arbitrage signal") >= 1 and names.count("strategy.detect") == names.count("arbitrage signal")
    det = next(s for s in spans if s.name == "strategy.detect")
    assert 0 < det.start_time_unix_nano <= det.end_time_unix_nano
    assert "traced" in p.output()
