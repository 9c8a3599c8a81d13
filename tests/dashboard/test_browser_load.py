"""A real headless Chromium stays responsive under a flood of signals: at 1,000 signals/s the
page never freezes (a script call answers within half a second even at p99; a page that
re-rendered its table on every push blocked for about 2 s at a time at a quarter of that rate),
and the table shows signals less than a second old.

The measurement is ``perf/bench_browser.py``'s (one definition). Its latency target (p99 under
50 ms) is a speed figure, so it is printed here and reported in docs/performance.md from the
benchmark rather than asserted: on a shared 2-core machine the browser process is simply not
scheduled for tens of milliseconds at a time."""
from __future__ import annotations

from alphapulse.dashboard.options import DashboardOptions
from alphapulse.dashboard.server import Dashboard
from perf.bench_browser import measure_page
from tests.dashboard.conftest import TOKENS

RATE = 1_000          # signals per second


def test_page_stays_responsive_at_1000_signals_per_second(rings, chrome):
    sig_ring, md_ring, sig_p, _ = rings
    dash = Dashboard(DashboardOptions(port=0, signal_ring=sig_ring.name, market_ring=md_ring.name,
                                      tokens=TOKENS, poll_timeout_ms=10)).start()
    try:
        r = measure_page(chrome, dash.url, sig_p, rate=RATE, warmup_s=2.0, seconds=6.0)
    finally:
        dash.stop()
    print(f"\n{r['signals_sent']} signals ({r['signals_per_s']:.0f}/s); script call p50 {r['script_call_p50_ms']} ms, "
          f"p99 {r['script_call_p99_ms']} ms over {r['calls']}; newest row age {r['ages_s']} s; main thread busy "
          f"{100 * r['main_thread_busy_share']:.0f} %, longest task {r['longest_task_ms']} ms")
    assert r["signals_per_s"] > 0.8 * RATE, f"the publisher reached only {r['signals_per_s']:.0f} signals/s"
    assert r["script_call_p99_ms"] < 500, f"script call p99 {r['script_call_p99_ms']} ms: the page froze"
    assert r["ages_s"] and r["newest_row_age_s"] < 1.0, r["ages_s"]
    assert r["signals_shown"] > 0.5 * r["signals_sent"], r
