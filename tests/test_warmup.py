"""The warm-up leaves Numba's cache complete: a fresh process then running the strategy the way
the pipeline's processes and the backtest do compiles nothing.

On a cold cache the warm-up takes minutes (that is its job); on a warm one, seconds.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A fresh interpreter: the strategy as its processes run it, every compile counted. Written here,
# not taken from alphapulse.warmup, so that it checks the warm-up against the processes' paths.
PROBE = r"""
import itertools, json, os, sys
from numba.core import event as ev

compiled = []

class Count(ev.Listener):
    def on_start(self, e):
        d = e.data["dispatcher"]
        compiled.append(f"{d.py_func.__module__}.{d.py_func.__qualname__}{tuple(map(str, e.data['args']))}")
    def on_end(self, e):
        pass

ev.register("numba:compile", Count())

import numpy as np
from alphapulse.adapters.replayer import Replayer
from alphapulse.apps.config import load_config
from alphapulse.apps.pipeline import BUNDLED_MARKET, BUNDLED_RECORDING
from alphapulse.ring import Ring
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

cfg = EngineConfig.from_app_config(load_config(base=BUNDLED_MARKET, environ={}))
frames = []
Replayer(BUNDLED_RECORDING, sink=frames.extend, speed="max", crc_every=1).run()
signals = 0
backtest = StrategyEngine(cfg)                       # the backtest: one bytes frame at a time
for f in frames[:300]:
    signals += len(backtest.process([f]))
name = f"warmup_probe_{os.getpid()}"
with Ring.create(name, 1 << 22, "overwrite") as md, Ring.create(name + "_sig", 1 << 22, "lossless") as sig:
    for wait in ("sleep", "spin"):                   # the strategy process, both wait strategies
        cons = md.consumer("strategy_" + wait, wait=wait)
        prod, sprod = md.producer(), sig.producer()
        eng = StrategyEngine(cfg)
        lat = []
        for f in frames[:300]:
            prod.publish(f)
            if wait == "spin":
                signals += eng.run(cons, sprod, 0.0, latency=lat.extend)
            else:
                views = cons.poll(timeout=0)
                if views:
                    signals += eng.process_raw(views, sink=sprod, latency=lat.extend)[0]
                    cons.release()
        eng.refresh_requests()                       # on each heartbeat
        for x in (cons, prod, sprod):
            x.close()
print(json.dumps({"compiled": compiled, "signals": signals}))
"""


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("NUMBA_CACHE_DIR", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_after_warmup_the_strategy_compiles_nothing():
    warm = _run(["-m", "alphapulse.warmup"], timeout=1800)
    assert warm.returncode == 0, warm.stderr[-3000:]
    assert "warm-up (Numba cache) done" in warm.stderr
    probe = _run(["-c", PROBE], timeout=600)
    assert probe.returncode == 0, probe.stderr[-3000:]
    out = json.loads(probe.stdout.strip().splitlines()[-1])
    assert out["signals"] > 0            # the probe really ran the search, not just loaded kernels
    assert out["compiled"] == [], "compiled after the warm-up:\n" + "\n".join(out["compiled"])
