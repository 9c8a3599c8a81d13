"""Hot reload of a running pipeline: SIGHUP and ``pipeline reload`` re-read the configuration,
apply what can change without a restart through the control block, and name the rest."""
import os
import signal
import subprocess
import sys
import time

from alphapulse.apps.config import load_config
from alphapulse.apps.control import ControlBlock, config_changes, reloadable_settings
from tests.apps.pipeline_helpers import REPO, PipelineProcess


def test_config_changes_split_reloadable_from_restart_keys():
    a = load_config(None, environ={})
    b = load_config(None, environ={"ALPHAPULSE__STRATEGY__MIN_NET_PROFIT_USD": "5",
                                   "ALPHAPULSE__LOGGING__LEVEL": "DEBUG",
                                   "ALPHAPULSE__STRATEGY__MAX_TRIANGLES_PER_POOL": "8"})
    live, restart = config_changes(a, b)
    assert live == ["logging.level", "strategy.min_net_profit_usd"]
    assert restart == ["strategy.max_triangles_per_pool"]


def test_control_block_generations():
    name = f"alphapulse_test_ctl_{os.getpid()}"
    owner = ControlBlock.create(name, {"a": 1})
    reader = ControlBlock.attach(name)
    try:
        assert reader.poll() == {"a": 1}            # a (re)started reader takes what is in force
        assert reader.poll() is None
        g = owner.publish({"a": 2})
        assert g % 2 == 0 and reader.poll() == {"a": 2} and reader.seen == g
    finally:
        reader.close()
        owner.close()
    assert not os.path.exists(f"/dev/shm/{name}")


def _signals(p):
    return p.metric("alphapulse_signals_total", "strategy")


def test_reload_changes_min_profit_without_restart_or_loss(tmp_path):
    cfg = tmp_path / "alphapulse.toml"
    cfg.write_text("[strategy]\nmin_net_profit_usd = 0.0\n")
    p = PipelineProcess("--config", str(cfg), "--speed", "20", dashboard=False)
    try:
        p.wait_for(lambda: _signals(p) > 0, 300, "first signals")
        h0 = p.health()
        pids = {n: c["pid"] for n, c in h0["components"].items()}
        # a threshold no cycle reaches, and a key that needs a restart
        cfg.write_text("[strategy]\nmin_net_profit_usd = 1000000000.0\nmax_triangles_per_pool = 8\n")
        r = subprocess.run([sys.executable, "-m", "alphapulse.apps.pipeline", "reload", "--config", str(cfg),
                            "--ops-port", str(p.ops_port)], cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        p.wait_for(lambda: "strategy settings reloaded" in p.output().split("reload: applied")[-1], 30,
                   "the strategy taking the new threshold")
        out = p.output()
        assert "reload: these keys need a restart and were left as they were: strategy.max_triangles_per_pool" in out
        assert "reload: applied strategy.min_net_profit_usd = 1000000000.0" in out
        time.sleep(1.0)                               # batches in flight at the switch
        frozen = _signals(p)
        frames = p.metric("alphapulse_frames_in_total", "strategy")
        p.wait_for(lambda: p.metric("alphapulse_frames_in_total", "strategy") > frames + 500, 60, "more frames")
        assert _signals(p) == frozen                  # frames keep coming, no cycle pays 1e9 USD
        # back to 0 with a plain SIGHUP: signals again
        cfg.write_text("[strategy]\nmin_net_profit_usd = 0.0\nmax_triangles_per_pool = 8\n")
        os.kill(h0["pid"], signal.SIGHUP)
        p.wait_for(lambda: _signals(p) > frozen, 120, "signals after lowering the threshold")
        h1 = p.health()
        assert {n: c["pid"] for n, c in h1["components"].items()} == pids          # no process restarted
        before = {n: c["restarts"] for n, c in h0["components"].items()}   # a slow first compile may cost one
        assert {n: c["restarts"] for n, c in h1["components"].items()} == before, p.output()[-4000:]
        _, text = p.get("/metrics")
        lost = [ln for ln in text.splitlines()
                if ln.startswith(("alphapulse_ring_lost_frames_total", "alphapulse_frames_lost_total"))]
        assert lost and all(ln.endswith(" 0") for ln in lost), lost
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]


def test_reload_with_no_pipeline_is_a_clear_error(tmp_path):
    from tests.apps.pipeline_helpers import free_port
    r = subprocess.run([sys.executable, "-m", "alphapulse.apps.pipeline", "reload", "--ops-port", str(free_port())],
                       cwd=REPO, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no pipeline answers on http://127.0.0.1:" in r.stderr


def test_reloadable_settings_cover_the_declared_keys():
    s = reloadable_settings(load_config(None, environ={}))
    assert s["strategy"]["min_net_profit_usd"] == 0.0 and s["logging"]["level"] == "INFO"
    assert set(s) == {"logging", "strategy", "dashboard", "execution"}


def test_component_watcher_applies_logging_level_and_handlers():
    import logging
    import threading
    from alphapulse.apps import control
    name = f"alphapulse_test_ctlw_{os.getpid()}"
    owner = ControlBlock.create(name, {"logging": {"level": "INFO"}})
    root = logging.getLogger()
    old = root.level
    seen = []
    control.on_reload(seen.append)
    stop = threading.Event()
    t = threading.Thread(target=control.watch, args=(name, stop, 0.02), daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 10
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert root.level == logging.INFO
        owner.publish({"logging": {"level": "DEBUG"}, "x": 1})
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert root.level == logging.DEBUG and seen[-1]["x"] == 1
    finally:
        stop.set()
        t.join(5)
        control._handlers.remove(seen.append)
        root.setLevel(old)
        owner.close()
