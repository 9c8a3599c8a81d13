"""Dashboard and metrics-block benchmarks (JSON lines; ``--json``: last line one object).

Figures:

* ``metrics_add_ns``, ``metrics_observe_ns``, ``metrics_snapshot_us``: the shared
  metrics block from Python; ``mp_value_add_ns``: the same counter increment on a
  ``multiprocessing.Value`` (with its lock), what a Python user would otherwise
  pick; ``metrics_add_vs_mp_value_speedup`` is their ratio (gates in perf.compare).
* ``ingest_fps``: frames/s the dashboard's aggregator validates and applies (pure
  Python codec), a mix of 90 % PoolSync and 10 % ArbitrageSignal.
* ``push_ms_p50`` / ``push_ms_p99``: one session's push (copy under the lock +
  document updates, without the websocket) with 25 new signals and price points.
* end to end (``--sessions N``, default 20; 5 with ``--quick``): the dashboard in
  its own process, N Bokeh client sessions in another, this process floods the
  rings: ``e2e_pushes_per_session_per_s`` actually delivered (the cap is
  ``--rate``), ``e2e_producer_waits`` (must be 0: the lossless signal producer
  never waits on the dashboard), ``e2e_dashboard_rss_mb``.

Run: ``python -m perf.bench_dashboard [--quick] [--json]``.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

from bokeh.document import Document

from alphapulse.dashboard.aggregate import Aggregator, TokenBook
from alphapulse.dashboard.app import Hub
from alphapulse.dashboard.server import wait_listening
from alphapulse.metrics import MetricsBlock
from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, Source

REPO = Path(__file__).resolve().parents[1]
WETH = bytes.fromhex("7ceb23fd6bc0add59e62ac25578270cff1b9f619")
USDC = bytes.fromhex("2791bca1f2de4661ed88a30c99a7a9449aa84174")
TOKENS = (("0x" + WETH.hex(), "WETH", 18), ("0x" + USDC.hex(), "USDC", 6))
POOLS = [bytes([0x10 + i]) * 20 for i in range(4)]


def signal_frame(seq: int, ts: int) -> bytes:
    sig = codec.ArbitrageSignal(
        amount_in=10 ** 18, amount_out=10 ** 18 + seq, gas_cost_wei=10 ** 15, net_profit_usd_e8=seq,
        gross_profit_usd_e8=seq, gas_cost_usd_e8=0, block_number=seq, trigger_ts_ns=ts,
        signal_id=seq, chain_id=137, strategy_id=1, hops=2, flags=0, venues=(400, 401, 0),
        fees_pips=(3000, 3000, 0), spread_bps=10, pools=(POOLS[0], POOLS[1], bytes(20)),
        tokens=(WETH, USDC, bytes(20)))
    return codec.build_frame(Domain.SIGNAL, Source.ARBITRAGE_STRATEGY, seq, [sig], timestamp_ns=ts)


def sync_frame(seq: int, ts: int) -> bytes:
    rec = codec.PoolSync(reserve0=(2_000_000 + seq % 1000) * 10 ** 6, reserve1=1000 * 10 ** 18,
                         block_number=seq, block_ts_ns=ts, log_index=1, venue=400 + seq % 2,
                         token0_decimals=6, token1_decimals=18, flags=0, pool=POOLS[seq % 4],
                         token0=USDC, token1=WETH)
    return codec.build_frame(Domain.MARKET_DATA, Source.POLYGON_COLLECTOR, seq, [rec],
                             timestamp_ns=ts)


def bench_metrics(n: int) -> dict:
    name = f"alphapulse_bench_{uuid.uuid4().hex[:8]}"
    with MetricsBlock.create(name, ["a"]) as m:
        c, h = m.counter("a", "frames_in"), m.histogram("a")
        t = time.perf_counter_ns()
        for _ in range(n):
            c.add(1)
        add_ns = (time.perf_counter_ns() - t) / n
        t = time.perf_counter_ns()
        for i in range(n):
            h.observe(1000 + i)
        obs_ns = (time.perf_counter_ns() - t) / n
        t = time.perf_counter_ns()
        for _ in range(1000):
            m.snapshot()
        snap_us = (time.perf_counter_ns() - t) / 1000 / 1e3
    v = mp.Value("Q", 0)
    t = time.perf_counter_ns()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    mpv_ns = (time.perf_counter_ns() - t) / n
    return {"metrics_add_ns": round(add_ns, 1), "metrics_observe_ns": round(obs_ns, 1),
            "metrics_snapshot_us": round(snap_us, 2), "mp_value_add_ns": round(mpv_ns, 1),
            "metrics_add_vs_mp_value_speedup": round(mpv_ns / add_ns, 2)}


def bench_ingest(n: int) -> dict:
    agg = Aggregator(TokenBook(TOKENS))
    now = time.time_ns()
    frames = [("signal", signal_frame(i, now)) if i % 10 == 0 else ("market", sync_frame(i, now))
              for i in range(1, n + 1)]
    t = time.perf_counter()
    for ring, f in frames:
        agg.ingest(ring, f, now)
    return {"ingest_fps": round(n / (time.perf_counter() - t))}


def bench_push(pushes: int) -> dict:
    agg = Aggregator(TokenBook(TOKENS))
    hub = Hub(agg)
    doc = Document()
    hub.make_document(doc)
    (sv,) = hub.sessions
    seq = 0
    costs = []
    for k in range(pushes + 5):
        now = time.time_ns()
        for _ in range(25):
            seq += 1
            agg.ingest("signal", signal_frame(seq, now), now)
            agg.ingest("market", sync_frame(seq, now + seq * 200_000_000), now)
        agg.prices.flush(now + seq * 200_000_000)
        t = time.perf_counter_ns()
        sv._push(k)
        if k >= 5:                                   # the first pushes build the page state
            costs.append((time.perf_counter_ns() - t) / 1e6)
    costs.sort()
    return {"push_ms_p50": round(statistics.median(costs), 3),
            "push_ms_p99": round(costs[min(len(costs) - 1, int(len(costs) * 0.99))], 3)}


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bench_e2e(sessions: int, rate: float, flood_s: float, signals_per_s: int) -> dict:
    from alphapulse.ring import Ring
    tag = uuid.uuid4().hex[:8]
    sig = Ring.create(f"bench_dash_{tag}_signal", 1 << 22, "lossless")
    md = Ring.create(f"bench_dash_{tag}_market", 1 << 24, "overwrite")
    sp, mpd = sig.producer(), md.producer()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dash = subprocess.Popen([sys.executable, "-m", "alphapulse.dashboard", "--port", str(port),
                             "--signal-ring", sig.name, "--market-ring", md.name,
                             "--rate-limit", str(rate), "--log-level", "ERROR"], cwd=REPO)
    probe = None
    try:
        wait_listening("127.0.0.1", port, 60)
        while not all(any(c["name"] == "dashboard" and c["state"] == "active"
                          for c in r.stats()["consumers"]) for r in (sig, md)):
            time.sleep(0.05)
        probe = subprocess.Popen([sys.executable, "-m", "tests.dashboard.session_probe",
                                  f"http://127.0.0.1:{port}/", str(sessions)], cwd=REPO,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if probe.stdout.readline().strip() != "ready":
            raise RuntimeError("client sessions failed to open")
        t0 = time.monotonic()
        seq = 0
        while (el := time.monotonic() - t0) < flood_s:
            while seq < int(el * signals_per_s):
                seq += 1
                now = time.time_ns()
                sp.publish(signal_frame(seq, now))
                mpd.publish(sync_frame(seq, now))
            time.sleep(0.003)
        t1 = time.monotonic()
        rss = _rss_mb(dash.pid)
        out, _ = probe.communicate(f"{seq}\n", timeout=120)
        res = json.loads(out.strip().splitlines()[-1])
        during = [sum(1 for a, _, _ in r["pushes"] if t0 <= a <= t1) for r in res]
        converged = sum(r["last"] == str(seq) for r in res)
        st = sig.stats()
        return {"e2e_sessions": sessions, "e2e_rate_cap": rate, "e2e_signals_per_s": signals_per_s,
                "e2e_pushes_per_session_per_s": round(statistics.mean(during) / (t1 - t0), 2),
                "e2e_total_pushes_per_s": round(sum(during) / (t1 - t0), 1),
                "e2e_sessions_converged": converged,
                "e2e_producer_waits": st["producer"]["waits"],
                "e2e_dashboard_rss_mb": round(rss, 1)}
    finally:
        if probe is not None and probe.poll() is None:
            probe.kill()
        dash.terminate()
        dash.wait(30)
        sig.close()
        md.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--rate", type=float, default=100.0, help="per-session cap (default 100)")
    ap.add_argument("--no-e2e", action="store_true")
    a = ap.parse_args()
    q = a.quick
    result: dict = {"machine_cpus": os.cpu_count()}
    for part in (lambda: bench_metrics(200_000 if q else 1_000_000),
                 lambda: bench_ingest(5_000 if q else 50_000),
                 lambda: bench_push(50 if q else 300)):
        r = part()
        print(json.dumps(r), flush=True)
        result.update(r)
    if not a.no_e2e:
        r = bench_e2e(a.sessions or (5 if q else 20), a.rate, 4.0 if q else 10.0, 300)
        print(json.dumps(r), flush=True)
        result.update(r)
    if a.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:36s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
