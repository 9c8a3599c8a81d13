"""The whole pipeline as a user runs it: real processes, rings, dashboard, ops endpoints."""
import os
import signal
import time
import urllib.request

from tests.apps.pipeline_helpers import PipelineProcess


def test_default_run_serves_dashboard_and_signals_then_survives_a_killed_component():
    key = "PLANTEDdashKEY-0123456789abcdefghijkl"
    p = PipelineProcess("--speed", "20",          # the bundled recording, 20x its recorded pace
                        env={"ALPHAPULSE__DASHBOARD__SECRET_KEY": f'"{key}"'})
    try:
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > 0, 30, "first signals")
        def page():
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{p.dash_port}/", timeout=10) as r:
                    return r.status, r.read()
            except OSError:
                return None
        status, body = p.wait_for(page, 30, "the dashboard page")
        assert status == 200 and b"bokeh" in body.lower()
        h = p.wait_for(lambda: (lambda h: h if h and h["ready"] else None)(p.health()), 20, "ready")
        assert set(h["components"]) >= {"source", "strategy", "dashboard"}
        # SIGKILL the strategy: the supervisor restarts it and signals keep coming
        pid = h["components"]["strategy"]["pid"]
        os.kill(pid, signal.SIGKILL)
        p.wait_for(lambda: (p.health() or {}).get("components", {}).get("strategy", {}).get("restarts") == 1,
                   20, "strategy restart")
        before = p.metric("alphapulse_signals_total", "strategy")
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > before, 30,
                   "signals after the restart")
        assert "strategy died (exit code -9)" in p.output()
        assert key not in p.get("/health")[1] + p.get("/metrics")[1]
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert key not in p.output()
    assert p.segments() == []


def test_local_chain_swap_gives_exact_signal_on_the_ring_within_2_s():
    from alphapulse.chain.deploy import Market
    from alphapulse.protocol import codec
    from alphapulse.ring import Ring
    p = PipelineProcess("--source", "local-chain", env={"ALPHAPULSE__SOURCE__SIMULATE": "false"})
    try:
        h = p.wait_for(lambda: (lambda h: h if h and h["ready"] else None)(p.health()), 90, "ready")
        p.wait_for(lambda: p.metric("alphapulse_rpc_connected", "source") == 1, 60, "adapter connected")
        chain = h["local_chain"]
        mk = Market.from_dict(chain["http_url"], chain["market"])
        ring = Ring.attach(h["rings"]["signal"], timeout=5)
        cons = ring.consumer("test", wait="sleep")
        try:
            # let the adapter discover the pools (it snapshots on first sight), then drain
            from alphapulse.protocol.layout import Venue
            a = mk.v2_pool("WMATIC", "USDC", Venue.QUICKSWAP)
            b = mk.v2_pool("WMATIC", "USDC", Venue.SUSHISWAP_POLYGON)
            pair = mk.pools_for("WMATIC", "USDC")
            for pool in pair:                          # first sight of each pool: the adapter discovers it
                mk.move_price(pool, 1.0005)
            p.wait_for(lambda: p.metric("alphapulse_pools", "strategy") >= len(pair), 30, "pools known")
            mk.move_price(a, 1.015)                    # +1.5 % on one V2 venue: opens a cycle
            deadline = time.monotonic() + 30
            sig = None
            while sig is None and time.monotonic() < deadline:
                for f in cons.frames(timeout=0.2):
                    rec = codec.parse_frame(f).tlvs[0]
                    if bytes.fromhex(a.address[2:]) in rec.pools[:rec.hops]:
                        sig = rec
            assert sig is not None, "no signal through the moved pool\n" + p.output()[-3000:]
            # the first swap after discovery proves < 2 s end to end
            t0 = time.time()
            mk.move_price(a, 1.012)
            fresh = None
            while fresh is None and time.time() - t0 < 2.0:
                for f in cons.frames(timeout=0.05):
                    rec = codec.parse_frame(f).tlvs[0]
                    if rec.block_number > sig.block_number and bytes.fromhex(a.address[2:]) in rec.pools[:rec.hops]:
                        fresh = rec
            assert fresh is not None, "no signal within 2 s of the swap"
            latency = time.time() - t0

            def dashboard_caught_up():
                st = ring.stats()
                dash = [c for c in st["consumers"] if c["name"] == "dashboard"]
                return dash and dash[0]["lag_bytes"] == 0 and dash[0]["cursor"] >= cons.position
            while not dashboard_caught_up() and time.time() - t0 < 2.0:
                time.sleep(0.01)
            assert dashboard_caught_up(), f"the dashboard had not read the signal 2 s after the swap: {ring.stats()}"
            # execute exactly that path on chain: the tokens received equal amount_out to the wei
            path = [("0x" + fresh.pools[i].hex(), "0x" + fresh.tokens[i].hex(),
                     "0x" + fresh.tokens[(i + 1) % fresh.hops].hex()) for i in range(fresh.hops)]
            res = mk.execute_cycle(path, fresh.amount_in, mode="atomic")
            assert res.amount_out == fresh.amount_out, (res, fresh)
            print(f"swap -> signal on the ring in {latency * 1000:.0f} ms; executed to the wei")
        finally:
            cons.close()
            ring.close()
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert p.segments() == []


def test_replay_of_a_live_recording_gives_the_live_signals(tmp_path):
    import json
    import subprocess
    import sys

    from alphapulse.protocol import codec
    from alphapulse.ring import Ring
    from tests.apps.pipeline_helpers import REPO
    rec_dir = tmp_path / "rec"
    p = PipelineProcess("--source", "local-chain", "--record", str(rec_dir), dashboard=False,
                        env={"ALPHAPULSE__SOURCE__SIM_BLOCK_INTERVAL_S": "0.3"})
    live = []
    try:
        h = p.wait_for(lambda: (lambda h: h if h and h.get("rings") else None)(p.health()), 90, "rings")
        ring = Ring.attach(h["rings"]["signal"], timeout=5)
        cons = ring.consumer("test", wait="sleep")
        try:
            deadline = time.monotonic() + 120
            while len(live) < 40 and time.monotonic() < deadline:
                live += [codec.parse_frame(f).tlvs[0] for f in cons.frames(timeout=0.2)]
        finally:
            cons.close()
            ring.close()
        # the market description the live run used, for the backtest's config
        from alphapulse.apps.config import ChainConfig
        from alphapulse.apps.make_recording import market_toml
        from alphapulse.apps.pipeline import market_chain_config
        from alphapulse.chain.deploy import Market
        chain = h["local_chain"]
        mk_chain = market_chain_config(ChainConfig(), Market.from_dict(chain["http_url"], chain["market"]))
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert len(live) >= 40, "the live run found too few opportunities\n" + p.output()[-3000:]
    cfg = tmp_path / "market.toml"
    cfg.write_text(market_toml(mk_chain))
    report = tmp_path / "report.json"
    r = subprocess.run([sys.executable, "-m", "alphapulse.apps.pipeline", "--config", str(cfg),
                        "--replay", str(rec_dir), "--speed", "max", "--report", str(report)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    replayed = json.loads(report.read_text())["signals"]
    from alphapulse.apps.backtest import signal_to_json
    by_id = {s["signal_id"]: s for s in replayed}
    for sig in live:
        assert signal_to_json(sig) == by_id.get(sig.signal_id), sig.signal_id


def _ready(p, timeout=480):
    """Health ready (a cold strategy compiles first: minutes on a loaded host)."""
    return p.wait_for(lambda: (lambda h: h if h and h["ready"] else None)(p.health()), timeout, "ready")


def test_a_component_crash_looping_at_the_end_makes_the_run_fail(tmp_path):
    import shutil
    rec = tmp_path / "journals"
    p = PipelineProcess("--speed", "1", "--record", str(rec), dashboard=False)
    try:
        h = _ready(p)
        # the recorder's directory turns into a file under it: every restart fails
        shutil.rmtree(rec)
        rec.write_text("not a directory any more")
        os.kill(h["components"]["recorder"]["pid"], signal.SIGKILL)
        p.wait_for(lambda: (p.health() or {}).get("components", {}).get("recorder", {}).get("restarts", 0) >= 3,
                   60, "recorder restarts")
    finally:
        code = p.stop()
    assert code == 1, p.output()[-3000:]
    # restarting when the stop came (a start takes seconds on a loaded host), or dead
    last = p.output().strip().splitlines()[-1]
    assert last in ("alphapulse: recorder killed at shutdown", ) or last.startswith("alphapulse: recorder crash-looping"), last
    assert p.segments() == []


def test_a_component_killed_at_shutdown_makes_the_run_fail():
    p = PipelineProcess("--speed", "1", dashboard=False, env={"ALPHAPULSE__SUPERVISOR__SHUTDOWN_TIMEOUT_S": "2"})
    try:
        h = _ready(p)
        os.kill(h["components"]["source"]["pid"], signal.SIGSTOP)      # it can no longer stop by itself
    finally:
        code = p.stop()
    assert code == 1, p.output()[-3000:]
    assert "source did not stop in 2 s; killing it" in p.output()
    assert "alphapulse: source killed at shutdown" in p.output()
    assert p.segments() == []
