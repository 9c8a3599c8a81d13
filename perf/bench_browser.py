"""A real headless Chromium on the dashboard page under a flood of signals.

A publisher thread writes ``--rate`` signals/s (in batches every 10 ms) into a real signal
ring read by a real dashboard; a headless Chromium (Selenium) shows the page. While the flood
runs, this process calls a trivial script on the page every 20 ms and times the round trip (what
a click or a scroll waits for when the page's main thread is busy), and every 20th call reads
the table's newest row.

Figures (``--json``: one object on the last line):

* ``script_call_p50_ms`` / ``script_call_p99_ms``: round trip of ``return 1`` on the page
  (target: p99 under 50 ms at 1,000 signals/s);
* ``newest_row_age_s``: the oldest "newest row" seen (the table shows signals less than a
  second old);
* ``signals_per_s``: the rate the publisher reached; ``signals_shown``: the header's count;
* ``main_thread_busy_share``, ``script_share``, ``layout_share``, ``style_share``: share of
  the window the page's main thread spent on tasks, script, layout and style recalculation
  (Chrome DevTools ``Performance.getMetrics`` deltas), ``longest_task_ms`` / ``long_tasks``:
  tasks over 50 ms seen by a ``PerformanceObserver`` in the page;
* ``load_avg``: the 1-minute load average at the end (the host is shared: compare ratios
  measured in one run, state the load beside a figure).

Run: ``python -m perf.bench_browser [--quick] [--json] [--rate 1000] [--seconds 6]``; needs
Debian's ``chromium`` and ``chromium-driver`` (``scripts/install.sh --test``).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any, Callable

from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, Source

WETH = bytes.fromhex("7ceb23fd6bc0add59e62ac25578270cff1b9f619")
USDC = bytes.fromhex("2791bca1f2de4661ed88a30c99a7a9449aa84174")
WBTC = bytes.fromhex("1bfd67037b42cf73acf2047067bd4f2c47d9bfd6")
TOKENS = (("0x" + WETH.hex(), "WETH", 18), ("0x" + USDC.hex(), "USDC", 6),
          ("0x" + WBTC.hex(), "WBTC", 8))
POOLS = [bytes([0x10 + i]) * 20 for i in range(2)]
BATCH = 10                       # signals published together, every BATCH / rate seconds

CHROME_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1800,1100")

#: Rows of the signal table as rendered (inside Bokeh's shadow DOM), newest first: cell texts.
TABLE_ROWS_JS = """
const found = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.classList && el.classList.contains('ap-row') && !el.hidden) found.push(el);
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return found.map((r) => [...r.querySelectorAll('.ap-cell')].map((c) => c.textContent));
"""

#: The header's signal count (inside a shadow root) or null.
SIGNALS_SHOWN_JS = """
let out = null;
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.id === 'ap-signals') out = el.textContent;
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return out;
"""

#: True once the page shows its header figures and the table's body (both in shadow roots).
READY_JS = """
let ids = 0;
(function walk(root) {
  for (const el of root.querySelectorAll('*')) {
    if (el.id === 'ap-signals' || el.id === 'ap-rows') ids++;
    if (el.shadowRoot) walk(el.shadowRoot);
  }
})(document);
return ids == 2;
"""

#: Records the page's long tasks (over 50 ms) from now on into window.__apLong.
LONG_TASKS_JS = """
window.__apLong = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__apLong.push(e.duration);
}).observe({type: 'longtask', buffered: false});
"""


def signal_frame(seq: int, ts_ns: int) -> bytes:
    sig = codec.ArbitrageSignal(
        amount_in=10**18, amount_out=10**18 + 10**15, gas_cost_wei=10**15,
        net_profit_usd_e8=100_000_000 + seq, gross_profit_usd_e8=150_000_000, gas_cost_usd_e8=50_000_000,
        block_number=61_000_000 + seq // 50, trigger_ts_ns=ts_ns, signal_id=seq, chain_id=137,
        strategy_id=1, hops=2, flags=0, venues=(400, 401, 0), fees_pips=(3000, 3000, 0),
        spread_bps=12, pools=(POOLS[0], POOLS[1], bytes(20)), tokens=(WETH, USDC, bytes(20)))
    return codec.build_frame(Domain.SIGNAL, Source.ARBITRAGE_STRATEGY, seq, [sig], timestamp_ns=ts_ns)


def publish(producer: Any, rate: float, stop: threading.Event, sent: list[int],
            frame: Callable[[int, int], bytes] = signal_frame) -> None:
    """Publish ``rate`` signals/s in batches of BATCH until ``stop``; ``sent[0]``: how many."""
    if rate <= 0:                     # an idle page: the reference the flood is compared with
        stop.wait()
        return
    seq = 0
    t0 = time.monotonic()
    while not stop.is_set():
        for _ in range(BATCH):
            seq += 1
            producer.publish(frame(seq, time.time_ns()))
        sent[0] = seq
        delay = t0 + seq / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def newest_row_age_s(driver: Any) -> float:
    """Age of the table's newest row ("time (UTC)" cell, HH:MM:SS.mmm); inf if the table is empty."""
    rows = driver.execute_script(TABLE_ROWS_JS)
    if not rows:
        return float("inf")
    now = datetime.now(timezone.utc)
    t = datetime.strptime(rows[0][1], "%H:%M:%S.%f").replace(year=now.year, month=now.month, day=now.day,
                                                             tzinfo=timezone.utc)
    return (now - t).total_seconds() % 86_400


def _page_metrics(driver: Any) -> dict[str, float]:
    return {m["name"]: m["value"] for m in driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]}


def _pct(sorted_vals: list[float], q: float) -> float:
    return sorted_vals[min(len(sorted_vals) - 1, int(q * (len(sorted_vals) - 1)))]


def _profile_top(profile: dict, n: int = 25) -> list[tuple[str, float]]:
    """The ``n`` functions (name and url:line) with the most self time in a CDP CPU profile, in ms."""
    nodes = {nd["id"]: nd for nd in profile["nodes"]}
    dt = {}
    samples, deltas = profile.get("samples", []), profile.get("timeDeltas", [])
    for i, sid in enumerate(samples[:-1]):
        dt[sid] = dt.get(sid, 0) + deltas[i + 1]
    self_ms: dict[str, float] = {}
    for sid, us in dt.items():
        cf = nodes[sid]["callFrame"]
        url = cf.get("url", "").rsplit("/", 1)[-1]
        key = f"{cf.get('functionName') or '(anonymous)'} {url}:{cf.get('lineNumber', -1) + 1}"
        self_ms[key] = self_ms.get(key, 0.0) + us / 1e3
    return sorted(self_ms.items(), key=lambda kv: -kv[1])[:n]


def measure_page(driver: Any, url: str, producer: Any, *, rate: float = 1_000.0, warmup_s: float = 2.0,
                 seconds: float = 6.0, profile: bool = False) -> dict[str, Any]:
    """Open ``url`` in ``driver``, flood ``producer`` at ``rate`` signals/s, measure (see module
    docstring); returns the figures plus ``calls_ms`` and ``ages_s`` (every sample)."""
    driver.get(url)
    deadline = time.monotonic() + 60
    while not driver.execute_script(READY_JS):
        if time.monotonic() > deadline:
            raise RuntimeError("the dashboard page did not render within 60 s")
        time.sleep(0.05)
    driver.execute_cdp_cmd("Performance.enable", {})
    stop = threading.Event()
    sent = [0]
    pub = threading.Thread(target=publish, args=(producer, rate, stop, sent), name="publisher", daemon=True)
    t_start = time.monotonic()
    pub.start()
    try:
        time.sleep(warmup_s)                          # the flood is on
        shown_by = time.monotonic() + 30
        while driver.execute_script(TABLE_ROWS_JS) == [] and time.monotonic() < shown_by:
            time.sleep(0.05)                          # and the table shows it (a loaded host is slow)
        driver.execute_script(LONG_TASKS_JS)
        if profile:
            driver.execute_cdp_cmd("Profiler.enable", {})
            driver.execute_cdp_cmd("Profiler.start", {})
        m0, w0 = _page_metrics(driver), time.monotonic()
        calls, ages = [], []
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            t = time.perf_counter()
            driver.execute_script("return 1")
            calls.append((time.perf_counter() - t) * 1e3)
            if len(calls) % 20 == 0:
                ages.append(newest_row_age_s(driver))
            time.sleep(0.02)
        m1, w1 = _page_metrics(driver), time.monotonic()
        top = _profile_top(driver.execute_cdp_cmd("Profiler.stop", {})["profile"]) if profile else None
        long_tasks = driver.execute_script("return window.__apLong || []")
        shown = driver.execute_script(SIGNALS_SHOWN_JS)
        signals_per_s = sent[0] / (time.monotonic() - t_start)
    finally:
        stop.set()
        pub.join(5)
    window = w1 - w0

    def share(key: str) -> float:
        return round((m1.get(key, 0.0) - m0.get(key, 0.0)) / window, 4)
    ordered = sorted(calls)
    return {
        "script_call_p50_ms": round(_pct(ordered, 0.5), 2),
        "script_call_p99_ms": round(_pct(ordered, 0.99), 2),
        "script_call_max_ms": round(ordered[-1], 2),
        "calls": len(calls),
        "newest_row_age_s": round(max(ages), 3) if ages else float("inf"),
        "signals_per_s": round(signals_per_s, 1),
        "signals_sent": sent[0],
        "signals_shown": int(shown.replace(",", "")) if shown and shown.replace(",", "").isdigit() else 0,
        "main_thread_busy_share": share("TaskDuration"),
        "script_share": share("ScriptDuration"),
        "layout_share": share("LayoutDuration"),
        "style_share": share("RecalcStyleDuration"),
        "layouts_per_s": round((m1.get("LayoutCount", 0) - m0.get("LayoutCount", 0)) / window, 1),
        "style_recalcs_per_s": round((m1.get("RecalcStyleCount", 0) - m0.get("RecalcStyleCount", 0)) / window, 1),
        "long_tasks": len(long_tasks),
        "longest_task_ms": round(max(long_tasks), 1) if long_tasks else 0.0,
        **({"profile_self_ms": [[k, round(v, 1)] for k, v in top]} if top is not None else {}),
        "calls_ms": [round(c, 2) for c in calls],
        "ages_s": [round(a, 3) for a in ages],
    }


def chrome_driver() -> Any:
    """Headless system Chromium through Selenium; raises RuntimeError if it is not installed."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        raise RuntimeError("chromium and chromedriver are required (Debian packages chromium, chromium-driver; "
                           "scripts/install.sh --test installs them)")
    profile = tempfile.mkdtemp(prefix="alphapulse-chrome-")
    opts = Options()
    opts.binary_location = binary
    for f in CHROME_FLAGS + (f"--user-data-dir={profile}",):
        opts.add_argument(f)
    d = webdriver.Chrome(options=opts, service=Service(driver))
    d._ap_profile = profile
    return d


def run(rate: float, seconds: float, warmup_s: float, profile: bool = False) -> dict[str, Any]:
    from alphapulse.dashboard.options import DashboardOptions
    from alphapulse.dashboard.server import Dashboard
    from alphapulse.ring import Ring
    tag = uuid.uuid4().hex[:8]
    sig = Ring.create(f"bench_browser_{tag}_signal", 1 << 20, "lossless")
    md = Ring.create(f"bench_browser_{tag}_market", 1 << 22, "overwrite")
    dash = driver = None
    try:
        dash = Dashboard(DashboardOptions(port=0, signal_ring=sig.name, market_ring=md.name, tokens=TOKENS,
                                          poll_timeout_ms=10)).start()
        driver = chrome_driver()
        out = measure_page(driver, dash.url, sig.producer(), rate=rate, seconds=seconds, warmup_s=warmup_s,
                           profile=profile)
    finally:
        if driver is not None:
            driver.quit()
            shutil.rmtree(driver._ap_profile, ignore_errors=True)
        if dash is not None:
            dash.stop()
        sig.close()
        md.close()
    out["rate_target"] = rate
    out["load_avg"] = round(os.getloadavg()[0], 2)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.bench_browser", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, default=1_000.0, help="signals per second (default 1000)")
    ap.add_argument("--seconds", type=float, default=None, help="measured window (default 12; 6 with --quick)")
    ap.add_argument("--repeat", type=int, default=None, help="runs, each with a fresh page (default 3; 1 with --quick)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also record a CPU profile of the page (DevTools Profiler) and print its top self times")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    a = ap.parse_args(argv)
    seconds = a.seconds if a.seconds is not None else (6.0 if a.quick else 12.0)
    repeat = a.repeat if a.repeat is not None else (1 if a.quick else 3)
    runs = []
    for i in range(repeat):
        r = run(a.rate, seconds, 2.0, a.profile)
        runs.append(r)
        samples = {k: r.pop(k) for k in ("calls_ms", "ages_s")}
        print(json.dumps({"run": i + 1, **r, "ages_s": samples["ages_s"]}), flush=True)
    # the figures: over all runs' samples is not possible after popping, so: median of the runs
    # for p50, worst run for p99 and row age (each run's p99 is over its own calls)
    p99s = sorted(r["script_call_p99_ms"] for r in runs)
    result = {
        "script_call_p50_ms": sorted(r["script_call_p50_ms"] for r in runs)[len(runs) // 2],
        "script_call_p99_ms": p99s[len(p99s) // 2],
        "script_call_p99_ms_worst": p99s[-1],
        "script_call_p99_ms_runs": [r["script_call_p99_ms"] for r in runs],
        "newest_row_age_s": max(r["newest_row_age_s"] for r in runs),
        "signals_per_s": round(min(r["signals_per_s"] for r in runs), 1),
        "main_thread_busy_share": sorted(r["main_thread_busy_share"] for r in runs)[len(runs) // 2],
        "longest_task_ms": max(r["longest_task_ms"] for r in runs),
        "runs": len(runs),
        "load_avg": round(os.getloadavg()[0], 2),
    }
    if not a.json:
        print(f"script call p50 {result['script_call_p50_ms']} ms, p99 {result['script_call_p99_ms']} ms "
              f"(runs: {result['script_call_p99_ms_runs']}); newest row age <= {result['newest_row_age_s']} s; "
              f"{result['signals_per_s']} signals/s; load {result['load_avg']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
