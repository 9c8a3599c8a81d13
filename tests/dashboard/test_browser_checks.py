"""A real browser on a real dashboard fed by real signal and execution rings: each signal's row
shows its check (result, checked output, latency) and then its transaction's state, and the
check latency histogram is drawn from the execution component's histogram."""
from __future__ import annotations

import time
import uuid

from alphapulse.dashboard.options import DashboardOptions
from alphapulse.dashboard.server import Dashboard
from alphapulse.execution.component import COUNTERS
from alphapulse.metrics import DEFAULT_COUNTERS, MetricsBlock
from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, ExecutionStatus, Source
from alphapulse.ring import Ring
from tests.dashboard.conftest import KPI_JS, PAGE_TEXT_JS, TABLE_ROWS_JS, TOKENS, signal_frame


def _report(seq, sid, status, out, trigger, done):
    return codec.build_frame(Domain.EXECUTION, Source.EXECUTION_ENGINE, seq, [codec.ExecutionReport(
        signal_id=sid, strategy_id=1, checked_block=70_000_000 + sid, signal_block=70_000_000 + sid,
        trigger_ts_ns=trigger, done_ts_ns=done, amount_in=10 ** 18, amount_out_signal=10 ** 18 + 5 * 10 ** 15,
        amount_out_checked=out, status=int(status), method=1)])


def _rows_until(chrome, pred, what, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        rows = [r["cells"] for r in chrome.execute_script(TABLE_ROWS_JS)]
        if pred(rows):
            return rows
        assert time.monotonic() < deadline, f"{what}: {rows}"
        time.sleep(0.05)


def test_rows_show_the_check_and_the_transaction_state_and_the_check_latency_chart(chrome):
    tag = uuid.uuid4().hex[:8]
    sig_ring = Ring.create(f"test_dashx_{tag}_signal", 1 << 20, "lossless")
    ex_ring = Ring.create(f"test_dashx_{tag}_exec", 1 << 20, "lossless")
    metrics = MetricsBlock.create(f"alphapulse_test_dashx_{tag}", ["strategy", "execution"],
                                  counters=DEFAULT_COUNTERS + COUNTERS)
    sig_p, ex_p = sig_ring.producer(), ex_ring.producer()
    dash = Dashboard(DashboardOptions(port=0, signal_ring=sig_ring.name, execution_ring=ex_ring.name,
                                      metrics_block=metrics.name, tokens=TOKENS, poll_timeout_ms=10,
                                      max_rows=5, stats_interval_ms=100)).start()
    try:
        chrome.get(dash.url)
        deadline = time.monotonic() + 30
        while not chrome.execute_script(PAGE_TEXT_JS).count("checked output"):
            assert time.monotonic() < deadline, "dashboard page did not render"
            time.sleep(0.05)
        t0 = time.time_ns()
        for sid in (1, 2):
            sig_p.publish(signal_frame(sid, signal_id=sid, amount_in=10 ** 18, amount_out=10 ** 18 + 5 * 10 ** 15,
                                       net_e8=100_000_000, gross_e8=150_000_000, gas_e8=50_000_000, gas_wei=10 ** 15,
                                       block=70_000_000 + sid, spread_bps=50, ts_ns=t0))
        _rows_until(chrome, lambda rows: len(rows) == 2, "two signal rows")
        # signal 2 confirmed 4.25 ms after its trigger, signal 1 changed (a smaller output)
        ex_p.publish(_report(1, 2, ExecutionStatus.CONFIRMED, 10 ** 18 + 5 * 10 ** 15, t0, t0 + 4_250_000))
        ex_p.publish(_report(2, 1, ExecutionStatus.CHANGED, 10 ** 18 + 3 * 10 ** 15, t0, t0 + 17_000_000))
        rows = _rows_until(chrome, lambda rows: len(rows) == 2 and "confirmed" in rows[0] and "changed" in rows[1],
                           "check results in the rows")
        assert "1.005 WETH" in rows[0] and "4.2 ms" in rows[0], rows[0]    # newest first: signal 2
        assert "1.003 WETH" in rows[1] and "17.0 ms" in rows[1], rows[1]
        # send mode: signal 2's transaction is sent, then included
        ex_p.publish(_report(3, 2, ExecutionStatus.SENT, 10 ** 18 + 5 * 10 ** 15, t0, t0 + 5_000_000))
        _rows_until(chrome, lambda rows: "sent" in rows[0], "the sent state")
        ex_p.publish(_report(4, 2, ExecutionStatus.INCLUDED, 10 ** 18 + 5 * 10 ** 15, t0, t0 + 2_000_000_000))
        rows = _rows_until(chrome, lambda rows: "included" in rows[0], "the included state")
        assert "confirmed" in rows[0] and "–" in rows[1]                   # signal 1: no transaction
        # the confirmation rate and the check latency histogram from the metrics block
        for key, n in (("checks", 2), ("confirmed", 1), ("changed", 1)):
            metrics.counter("execution", key).add(n)
        for ns in (900_000, 1_600_000):
            metrics.observe_latency_ns("execution", ns)
        deadline = time.monotonic() + 10
        while "ap-checks" not in (kpi := chrome.execute_script(KPI_JS)):
            assert time.monotonic() < deadline, f"no check figures: {kpi}"
            time.sleep(0.05)
        assert "confirmed 50.0 % (1)" in kpi["ap-checks"], kpi["ap-checks"]
        deadline = time.monotonic() + 10
        while True:     # the chart's data in every session's document (what the page draws)
            (sv,) = dash.hub.sessions
            if sv.chk_fig.visible and sum(sv.chk_src.data["count"]) == 2:
                break
            assert time.monotonic() < deadline, sv.chk_src.data
            time.sleep(0.05)
        assert sv.chk_src.data["bucket"] == ["≤500µs", "≤1ms", "≤2ms", "≤5ms"]
        assert sv.chk_src.data["count"] == [0, 1, 1, 0]
        # the page's own document holds the chart, shown, with those bars
        deadline = time.monotonic() + 10
        while True:
            got = chrome.execute_script("""
                const doc = Bokeh.documents[0];
                const fig = doc.get_model_by_name('check_latency_chart');
                const src = doc.get_model_by_name('check_latency');
                const d = src.data, get = (k) => [...(d instanceof Map ? d.get(k) : d[k])];
                return [fig.visible, get('bucket'), get('count')]""")
            if got[0] and sum(got[2]) == 2:
                break
            assert time.monotonic() < deadline, got
            time.sleep(0.05)
        assert got == [True, ["≤500µs", "≤1ms", "≤2ms", "≤5ms"], [0, 1, 1, 0]], got
    finally:
        dash.stop()
        metrics.close()
        sig_ring.close()
        ex_ring.close()
