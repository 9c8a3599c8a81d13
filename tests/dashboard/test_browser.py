"""A real browser on a real dashboard fed by a real ring: the table shows what was written."""
from __future__ import annotations

import time
import uuid

from alphapulse.dashboard.options import DashboardOptions
from alphapulse.dashboard.server import Dashboard
from alphapulse.metrics import MetricsBlock
from tests.dashboard.conftest import (
    ARTIFACTS, KPI_JS, PAGE_TEXT_JS, POOLS, TABLE_ROWS_JS, WATCH_ROWS_JS, TOKENS, USDC, WBTC, WETH, signal_frame,
    sync_frame,
)

# What the test writes, and what a trader must read (computed by hand, not by the app):
# (signal_id, amount_in wei, amount_out wei, net e8, gross e8, gas e8, gas wei, block, spread)
SIGNALS = [
    (9001, 1_234_567_890_123_456_789_012, 1_234_570_000_000_000_000_000, 3_141_592_653,
     3_641_592_653, 500_000_000, 7_300_000_000_000_000, 61_000_001, 17),
    (9002, 2 * 10 ** 18, 2 * 10 ** 18 + 31_415_926_535_897_932, 12_345_678_901_234,
     12_345_778_901_234, 100_000_000, 12_000_000_000_000_000, 61_000_002, 905),
    (9003, 2 ** 128 - 1 - 10 ** 20, 2 ** 128 - 1, 150_000_000, 250_000_000, 100_000_000,
     2 ** 100, 61_000_003, 3),
]
EXPECTED = {   # signal_id -> cells that must appear exactly
    9001: ["WETH → USDC → WETH", "QuickSwap → SushiSwap", "1234.567890123456789012 WETH",
           "1234567890123456789012", "0.002109876543210988 WETH", "$36.42", "$31.42", "$5.00",
           "7300000000000000", "17 bps", "61000001"],
    9002: ["2 WETH", "2000000000000000000", "0.031415926535897932 WETH", "$123,457.79",
           "$123,456.79", "$1.00", "12000000000000000", "905 bps", "61000002"],
    # starts in USDC (6 decimals); input is u128 max - 1e20 units, gross 1e20 units
    9003: ["USDC → WBTC → WETH → USDC", "QuickSwap → Uniswap V3 → SushiSwap",
           "340282366920938463363374607431768.211455 USDC",
           "340282366920938463363374607431768211455", "100000000000000 USDC",
           "$2.50", "$1.50", "$1.00", "1267650600228229401496703205376", "3 bps", "61000003"],
}


def test_table_shows_written_signals_exactly_within_a_second(rings, chrome):
    sig_ring, md_ring, sig_p, md_p = rings
    # what the other processes publish: an RPC source and a strategy with its latencies
    metrics = MetricsBlock.create(f"alphapulse_test_dash_{uuid.uuid4().hex[:8]}",
                                  ["source", "strategy"])
    metrics.gauge("source", "rpc_connected").set(1)
    metrics.gauge("source", "pools").set(4)
    metrics.gauge("source", "last_block").set(61_000_060)
    metrics.counter("source", "frames_out").add(120)
    metrics.counter("strategy", "frames_in").add(120)
    metrics.counter("strategy", "signals").add(3)
    for ns, n in ((15_000, 600), (40_000, 300), (150_000, 100)):
        for _ in range(n):
            metrics.observe_latency_ns("strategy", ns)
    dash = Dashboard(DashboardOptions(port=0, signal_ring=sig_ring.name, market_ring=md_ring.name,
                                      metrics_block=metrics.name, tokens=TOKENS,
                                      poll_timeout_ms=10, max_rows=3)).start()
    try:
        chrome.get(dash.url)
        deadline = time.monotonic() + 30
        while not chrome.execute_script(PAGE_TEXT_JS).count("gross (start token)"):
            assert time.monotonic() < deadline, "dashboard page did not render"
            time.sleep(0.05)
        # a market to look at in the screenshot: two venues drifting apart
        now = time.time_ns()
        seq = 0
        for k in range(60):
            for pool, venue, usdc in ((POOLS[0], 400, 2_000_000 + 900 * k),
                                      (POOLS[1], 401, 2_001_000 - 400 * k)):
                seq += 1
                md_p.publish(sync_frame(seq, pool, venue, usdc * 10 ** 6, 1000 * 10 ** 18,
                                        61_000_000 + k, now - (60 - k) * 200_000_000))
        # the market is read before the signals come (two rings, two readers: no order between them)
        deadline = time.monotonic() + 20
        while dash.agg.book.current_block != 61_000_059:
            assert time.monotonic() < deadline, dash.agg.book.current_block
            time.sleep(0.05)
        # the browser itself notes when all three rows are on screen (polling every 5 ms
        # inside the page, so the WebDriver round trips do not count as latency)
        keys = [EXPECTED[sid][3] for sid in (9003, 9002, 9001)]     # each row's input (units)
        chrome.execute_script(WATCH_ROWS_JS, keys)
        t0_ms = time.time() * 1000
        for i, (sid, a_in, a_out, net, gross, gas, gas_wei, block, spread) in enumerate(SIGNALS):
            kw = {}
            if sid == 9003:
                kw = dict(tokens=(USDC, WBTC, WETH), venues=(400, 405, 401), hops=3)
            sig_p.publish(signal_frame(i + 1, signal_id=sid, amount_in=a_in, amount_out=a_out,
                                       net_e8=net, gross_e8=gross, gas_e8=gas, gas_wei=gas_wei,
                                       block=block, spread_bps=spread, ts_ns=time.time_ns(), **kw))
        deadline = time.monotonic() + 20
        while (seen_ms := chrome.execute_script("return window.__apSeen")) is None:
            assert time.monotonic() < deadline, \
                f"rows never showed: {[r['cells'] for r in chrome.execute_script(TABLE_ROWS_JS)]}"
            time.sleep(0.05)
        elapsed = (seen_ms - t0_ms) / 1000
        rows = chrome.execute_script(TABLE_ROWS_JS)
        got = [r["cells"] for r in rows]
        assert len(rows) == 3, f"table rows: {got}"
        assert all(r["width"] > 300 for r in rows), f"rows not visible: widths {[r['width'] for r in rows]}"
        for r, sid in zip(rows, (9003, 9002, 9001)):      # newest first
            missing = [c for c in EXPECTED[sid] if c not in r["cells"]]
            assert not missing, f"signal {sid}: missing {missing} in {r['cells']}"
        print(f"\nsignals on screen {elapsed * 1000:.0f} ms after they were written")
        assert elapsed < 1.0, f"signals took {elapsed:.2f}s to show"
        # the best of the hour (9002, net $123,456.79) is the highlighted row
        bgs = [r["bg"] for r in rows]
        assert bgs[1] != bgs[0] and bgs[0] == bgs[2], bgs
        # the table is full (max_rows=3): two more signals roll the oldest out, newest first
        chrome.execute_script(WATCH_ROWS_JS, ["61000005", "61000004", "61000003"])  # blocks
        t1_ms = time.time() * 1000
        for i, sid in enumerate((9004, 9005)):
            sig_p.publish(signal_frame(4 + i, signal_id=sid, amount_in=10 ** 18,
                                       amount_out=10 ** 18 + 1, net_e8=1, gross_e8=1, gas_e8=0,
                                       gas_wei=1, block=61_000_004 + i, spread_bps=1,
                                       ts_ns=time.time_ns()))
        deadline = time.monotonic() + 20
        while (seen_ms := chrome.execute_script("return window.__apSeen")) is None:
            assert time.monotonic() < deadline, \
                f"rollover rows: {[r['cells'] for r in chrome.execute_script(TABLE_ROWS_JS)]}"
            time.sleep(0.05)
        assert (seen_ms - t1_ms) / 1000 < 1.0, f"rolled rows took {seen_ms - t1_ms:.0f} ms"
        # five signals of two cycles (9001, 9002, 9004 and 9005 trade WETH -> USDC on pool 0,
        # 9003 starts in USDC on the same pools), all while the chain is at block 61,000,059, where
        # the market keeps the first cycle open: one trade per pool, the best is 9003's $1.50
        kpi = chrome.execute_script(KPI_JS)
        assert kpi["ap-signals"] == "5" and kpi["ap-opps"] == "2" and kpi["ap-total"] == "$1.50", kpi
        assert kpi["ap-best"] == "$123,456.79 · WETH → USDC → WETH", kpi
        # health from the metrics block: RPC state, and the strategy's latency percentiles,
        # interpolated inside the 1-2-5 buckets: p50 = 10 + 10 * 500/600 us, p90 = 50 us,
        # p99 = 100 + 100 * 90/100 us, p99.9 = 100 + 100 * 99/100 us
        deadline = time.monotonic() + 5
        while "ap-latency" not in (kpi := chrome.execute_script(KPI_JS)):
            assert time.monotonic() < deadline, f"no latency figures: {kpi}"
            time.sleep(0.05)
        assert kpi["ap-rpc"] == "● connected"
        assert kpi["ap-block"] == "61,000,060"
        lat = kpi["ap-latency"]
        assert "p50 18.3 µs · p90 50.0 µs · p99 190.0 µs · p99.9 199.0 µs · n=1,000" in lat, lat
        time.sleep(1.0)                                   # let the price plot settle
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard_browser_test.png"
        chrome.save_screenshot(str(shot))
        print(f"\nscreenshot: {shot}")
        assert shot.stat().st_size > 10_000
    finally:
        dash.stop()
        metrics.close()
