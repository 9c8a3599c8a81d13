"""perf/bench_pipeline.py's plumbing: real source, strategy and reader processes over a short recording."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_mode_reports_both_evaluations_on_one_json_line():
    r = subprocess.run([sys.executable, "perf/bench_pipeline.py", "--quick", "--blocks", "3", "--json"], cwd=REPO,
                       capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["blocks"] == 3 and res["quick"] is True
    for sfx in ("", "_frame"):
        assert res["frames_per_s" + sfx] > 0
        assert res["frames_lost_max" + sfx] == 0 and res["frames_lost_paced" + sfx] == 0
        for k in ("block_latency_p50_us", "block_latency_p99_us"):
            assert k + sfx in res
    # every block's swaps reached the strategy; frame mode prices every intra-block state
    assert res["signals_frame"] >= res["signals"]
    assert set(res["targets"]) == {"block100_p99_under_500us", "frames_per_s_over_200k"}


def test_full_speed_breakdown_and_realtime_run():
    """Where the strategy's wall time goes at full speed (CPU, run queue, futex sleeps), the
    source's publishes, and with ``--realtime`` the same run with the strategy under SCHED_FIFO."""
    r = subprocess.run([sys.executable, "perf/bench_pipeline.py", "--quick", "--blocks", "3", "--json",
                        "--realtime", "1"], cwd=REPO, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    for sfx in ("", "_frame"):
        assert 0 < res["strategy_cpu_share_max" + sfx] and 0 <= res["strategy_runqueue_share_max" + sfx] <= 1
        assert res["strategy_sleeps_max" + sfx] >= 0 and res["market_ring_wakes_max" + sfx] >= 0
        assert res["source_publishes_max" + sfx] >= 1 and res["reader_cpu_share_max" + sfx] > 0
    assert res["frames_per_s_rt"] > 0 and res["frames_lost_max_rt"] == 0
    assert set(res["targets"]) == {"block100_p99_under_500us", "frames_per_s_over_200k", "frames_per_s_rt_over_200k"}
    # SCHED_FIFO is granted with CAP_SYS_NICE only; the figure says whether it was
    assert isinstance(res["strategy_sched_fifo_rt"], bool)
