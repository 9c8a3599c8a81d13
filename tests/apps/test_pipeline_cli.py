"""The pipeline command: config errors, --print-config, backtest of a recording."""
import json
import subprocess
import sys

import pytest

from alphapulse.apps.pipeline import BUNDLED_MARKET, BUNDLED_RECORDING
from tests.apps.pipeline_helpers import REPO

POLYGON = str(REPO / "alphapulse" / "config" / "polygon.toml")


def run(*args, env=None, timeout=300):
    import os
    return subprocess.run([sys.executable, "-m", "alphapulse.apps.pipeline", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args,env,key", [
    (["--dashboard-port", "70000"], {}, "dashboard.port"),
    (["--speed", "warp"], {}, "source.speed"),
    (["--replay", "/nonexistent.apj"], {}, "source.replay_file"),
    (["--rpc", "http://not-a-websocket"], {}, "source.rpc_urls[0]"),
    ([], {"ALPHAPULSE__STRATEGY__MAX_INPUT_SHARE_BPS": "0"}, "strategy.max_input_share_bps"),
    ([], {"ALPHAPULSE__RINGS__MARKET_DATA__CAPACITY": "12345"}, "rings.market_data.capacity"),
    ([], {"ALPHAPULSE__EXECUTION__MODE": '"check"'}, "execution.mode"),    # a replay has no node
    (["--source", "local-chain"], {"ALPHAPULSE__EXECUTION__MAX_BACKLOG": "0"}, "execution.max_backlog"),
    (["--source", "local-chain"], {"ALPHAPULSE__EXECUTION__REVM_WARM_CYCLES": "-1"}, "execution.revm_warm_cycles"),
    ([], {"ALPHAPULSE__SUPERVISOR__LIVENESS_TIMEOUT_S": "nan"}, "supervisor.liveness_timeout_s"),
    ([], {"ALPHAPULSE__STRATEGY__MIN_NET_PROFIT_USD": "inf"}, "strategy.min_net_profit_usd"),
    ([], {"ALPHAPULSE__DASHBOARD__RATE_LIMIT_HZ": "1e300"}, "dashboard.rate_limit_hz"),
    (["--speed", "inf"], {}, "source.speed"),
    ([], {"ALPHAPULSE__RINGS__MARKET_DATA__CAPACITY": str(1 << 50)}, "rings.market_data.capacity"),
    ([], {"ALPHAPULSE__RINGS__PREFIX": '"../x y"'}, "rings.prefix"),
    ([], {"ALPHAPULSE__OPS__HOST": '"no-such-host.invalid"'}, "ops.host"),
    ([], {"ALPHAPULSE__SUPERVISOR__LIVENESS_TIMEOUT_S": "-1"}, "supervisor.liveness_timeout_s"),
])
def test_config_errors_exit_2_with_one_line_naming_the_key(args, env, key):
    r = run(*args, env=env, timeout=60)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"config error: {key}: " in lines[0], r.stderr


def _not_journals(tmp_path):
    empty = tmp_path / "empty.apj"
    empty.write_bytes(b"")
    wrong = tmp_path / "wrong.apj"
    wrong.write_bytes(b"NOTAJRNL" + bytes(8) + b"x" * 100)
    version = tmp_path / "version.apj"
    version.write_bytes(b"APJRNL01" + (7).to_bytes(4, "little") + bytes(4))
    nodir = tmp_path / "nothing-here"
    nodir.mkdir()
    return {"empty": empty, "wrong magic": wrong, "wrong version": version, "empty directory": nodir}


@pytest.mark.parametrize("what", ["empty", "wrong magic", "wrong version", "empty directory"])
def test_a_replay_input_that_is_not_a_journal_exits_2_naming_it(tmp_path, what):
    path = _not_journals(tmp_path)[what]
    for speed in ("max", "recorded"):
        r = run("--replay", str(path), "--speed", speed, "--no-dashboard", "--ops-port", "0", timeout=60)
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "config error: source.replay_file: " in lines[0] and str(path) in lines[0], lines


@pytest.mark.parametrize("where", ["missing directory", "under a file", "a directory"])
def test_an_unwritable_report_path_exits_2_before_the_run(tmp_path, where):
    (tmp_path / "f").write_text("")
    report = {"missing directory": tmp_path / "no" / "r.json", "under a file": tmp_path / "f" / "r.json",
              "a directory": tmp_path}[where]
    r = run("--replay", str(BUNDLED_RECORDING), "--speed", "max", "--report", str(report), timeout=60)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--report {report}" in lines[0], lines
    assert "backtest of" not in r.stdout


def test_print_config_shows_effective_values():
    r = run("--print-config", "--dashboard-port", "5111", env={"ALPHAPULSE__LOGGING__LEVEL": '"DEBUG"'},
            timeout=60)
    assert r.returncode == 0, r.stderr
    assert "port = 5111" in r.stdout and 'level = "DEBUG"' in r.stdout
    assert str(BUNDLED_RECORDING) in r.stdout          # the default run replays the bundled recording


def test_print_config_names_where_the_key_is_never_the_key(tmp_path):
    key = "ab" * 32
    (tmp_path / "k").write_text(key)
    r = run("--print-config", env={"ALPHAPULSE_EXECUTION_KEY": "0x" + key,
                                   "ALPHAPULSE__EXECUTION__KEY_FILE": f'"{tmp_path / "k"}"'}, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "[execution]" in r.stdout and 'key_env = "ALPHAPULSE_EXECUTION_KEY"' in r.stdout
    assert key not in r.stdout and key not in r.stderr


def test_unreachable_rpc_exits_4():
    from tests.apps.pipeline_helpers import free_port
    r = run("--config", POLYGON, "--rpc", f"ws://127.0.0.1:{free_port()}", "--no-dashboard", "--ops-port", "0", timeout=120)
    assert r.returncode == 4, r.stderr
    assert "no RPC endpoint is reachable" in r.stderr


def test_a_planted_rpc_key_is_never_printed():
    from tests.apps.pipeline_helpers import free_port
    key = "PLANTEDk3y0123456789"
    url = f"wss://user:{key}@127.0.0.1:{free_port()}/v3/{key}"
    r = run("--config", POLYGON, "--rpc", url, "--no-dashboard", "--ops-port", "0", timeout=120)
    assert r.returncode == 4 and "no RPC endpoint is reachable" in r.stderr, r.stderr
    assert "127.0.0.1" in r.stderr and key not in r.stderr + r.stdout
    r = run("--config", POLYGON, "--rpc", url, "--print-config", timeout=60)
    assert r.returncode == 0 and "wss://***@127.0.0.1" in r.stdout and key not in r.stdout
    r = run("--rpc", f"http://u:{key}@host/{key}", timeout=60)
    assert r.returncode == 2 and "source.rpc_urls[0]" in r.stderr and key not in r.stderr


def test_port_in_use_exits_3():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    try:
        r = run("--dashboard-port", str(s.getsockname()[1]), "--ops-port", "0", timeout=60)
    finally:
        s.close()
    assert r.returncode == 3 and "already in use" in r.stderr, r.stderr


def test_backtest_of_the_bundled_recording_is_deterministic(tmp_path):
    reports = []
    for i, flags in enumerate([(), ("--no-timings",), ("--no-timings",)]):
        path = tmp_path / f"r{i}.json"
        r = run("--config", str(BUNDLED_MARKET), "--replay", str(BUNDLED_RECORDING), "--speed", "max",
                "--report", str(path), *flags)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "opportunities" in r.stdout
        assert "signals not checked against a node" in r.stdout
        reports.append(path.read_bytes())
    assert reports[1] == reports[2]                   # results only: byte for byte
    a, b, c = (json.loads(x) for x in reports)
    assert set(a["timings"]) == {"latency_us", "wall_s", "frames_per_s"} and "timings" not in b
    assert {k: v for k, v in a.items() if k != "timings"} == b
    assert a["summary"]["stale_pools"] == 0
    assert a["frames"] > 10_000 and a["rejected"] == 0
    assert a["signals"] and a["signals"] == b["signals"]
    s = a["signals"][0]
    for field in ("amount_in", "amount_out", "gas_cost_wei", "net_profit_usd_e8", "gross_profit_usd_e8",
                  "gas_cost_usd_e8", "block_number", "trigger_ts_ns", "signal_id", "chain_id",
                  "strategy_id", "hops", "flags", "venues", "fees_pips", "spread_bps", "pools", "tokens"):
        assert field in s
    assert len(s["pools"]) == s["hops"] and len(s["tokens"]) == s["hops"]
    assert all(p.startswith("0x") and len(p) == 42 for p in s["pools"])
    big = [x for x in a["signals"] if isinstance(x["amount_in"], str)]
    assert all(int(x["amount_in"]) >= 2 ** 53 for x in big)
    assert all(int(x["amount_out"]) > int(x["amount_in"]) for x in a["signals"])


def test_the_bundled_recording_named_explicitly_comes_with_its_market(tmp_path):
    from alphapulse.apps import cli
    from alphapulse.apps.pipeline import effective_config
    bundled = effective_config(cli.build_parser().parse_args(["--replay", str(BUNDLED_RECORDING)]), environ={})
    (tmp_path / "x.apj").write_bytes(BUNDLED_RECORDING.read_bytes()[:16])
    other = effective_config(cli.build_parser().parse_args(["--replay", str(tmp_path / "x.apj")]), environ={})
    from alphapulse.apps.config import load_config
    market = load_config(BUNDLED_MARKET, environ={}).chain
    assert bundled.chain.stable_token == market.stable_token and bundled.chain.tokens == market.tokens
    assert other.chain.stable_token != market.stable_token


def _no_pipeline_left(prefix: str) -> None:
    import os
    assert not [n for n in os.listdir("/dev/shm") if prefix in n], "a pipeline started: rings were created"
    out = subprocess.run(["pgrep", "-f", prefix], capture_output=True, text=True).stdout.split()
    assert not out, f"processes left running: {out}"


def _start_error(tmp_path, *args, env=None):
    """Run the pipeline that must refuse to start; returns its one stderr line."""
    import uuid
    prefix = f"apcfg{uuid.uuid4().hex[:10]}"
    r = run(*args, "--no-dashboard", "--ops-port", "0", "--duration", "30",
            env={"ALPHAPULSE__RINGS__PREFIX": f'"{prefix}"', **(env or {})}, timeout=120)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr[-3000:]
    _no_pipeline_left(prefix)
    return lines[0]


def test_a_recorder_directory_under_a_regular_file_is_a_config_error_at_start(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a directory")
    line = _start_error(tmp_path, "--record", str(blocker / "journals"))
    assert line.startswith("alphapulse: config error: recorder.directory: ") and str(blocker) in line, line
    line = _start_error(tmp_path, "--record", str(blocker))
    assert "recorder.directory" in line and "not a directory" in line, line


def test_rpc_mode_with_no_factories_is_a_config_error_at_start(tmp_path):
    from tests.apps.pipeline_helpers import free_port
    line = _start_error(tmp_path, "--rpc", f"ws://127.0.0.1:{free_port()}")
    assert "config error: chain.factories: " in line, line


def test_a_pool_cache_under_a_regular_file_is_a_config_error_at_start(tmp_path):
    from tests.apps.pipeline_helpers import free_port
    blocker = tmp_path / "afile"
    blocker.write_text("")
    line = _start_error(tmp_path, "--config", POLYGON, "--rpc", f"ws://127.0.0.1:{free_port()}",
                        env={"ALPHAPULSE__CHAIN__POOL_CACHE": f'"{blocker}/pools.sqlite"'})
    assert "config error: chain.pool_cache: " in line, line


@pytest.mark.parametrize("rate", ["nan", "inf", "-inf", "0", "-1", "1e-300", "1e9", "1e300"])
def test_an_absurd_dashboard_rate_limit_is_a_config_error_at_start(tmp_path, rate):
    r = run("--ops-port", "0", "--duration", "30", env={"ALPHAPULSE__DASHBOARD__RATE_LIMIT_HZ": rate}, timeout=60)
    assert r.returncode == 2, r.stderr[-3000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "config error: dashboard.rate_limit_hz: " in lines[0], r.stderr[-3000:]


def test_send_mode_without_a_key_is_a_config_error_at_start(tmp_path):
    line = _start_error(tmp_path, "--source", "local-chain",
                        env={"ALPHAPULSE__EXECUTION__MODE": '"send"', "ALPHAPULSE_EXECUTION_KEY": "",
                             "ALPHAPULSE__EXECUTION__KEY_FILE": f'"{tmp_path}/missing.key"'})
    assert "config error: execution.key_file: " in line, line


def test_the_dashboard_key_is_never_printed():
    key = "PLANTEDdashboardKEY-0123456789abcdef"
    r = run("--print-config", env={"ALPHAPULSE__DASHBOARD__SECRET_KEY": f'"{key}"'}, timeout=60)
    assert r.returncode == 0 and 'secret_key = "***"' in r.stdout and key not in r.stdout, r.stdout
    r = run("--print-config", timeout=60)
    assert r.returncode == 0 and 'secret_key = ""' in r.stdout
    r = run("--print-config", env={"ALPHAPULSE__DASHBOARD__SECRET_KEY": '"short"'}, timeout=60)
    assert r.returncode == 2 and "config error: dashboard.secret_key: " in r.stderr and "short" not in r.stderr
