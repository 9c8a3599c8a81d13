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
