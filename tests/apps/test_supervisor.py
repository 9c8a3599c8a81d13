"""Supervisor: real spawned processes, crash restarts, clean stop, one log stream."""
import io
import logging
import os
import signal
import time

from alphapulse.apps.supervisor import ComponentSpec, Supervisor


def _wait(pred, timeout=20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def _pids(path):
    return [int(x) for x in open(path).read().split()] if os.path.exists(path) else []


def test_sigkilled_component_is_restarted_and_all_stop_cleanly(tmp_path):
    p = str(tmp_path / "pids")
    stream = io.StringIO()
    sup = Supervisor([ComponentSpec("toy", "tests.apps.toy_components:ticker", {"path": p})],
                     backoff_s=0.05, log_stream=stream)
    with sup:
        assert _wait(lambda: len(_pids(p)) == 1)
        os.kill(_pids(p)[0], signal.SIGKILL)
        assert _wait(lambda: (sup.poll() or True) and len(_pids(p)) == 2)
        assert sup.status()["toy"]["restarts"] == 1
        second = _pids(p)[1]
    assert open(p + ".stopped").read() == str(second)      # stopped via its stop event
    assert not any(r.proc.is_alive() for r in sup.running.values())
    assert sup.failures() == ""                              # one crash, then running: a recovery
    out = stream.getvalue()
    assert "[toy] toy: ticker up" in out                     # child log records reach one stream
    assert "toy died (exit code -9)" in out


def test_oneshot_finishing_ends_the_run():
    sup = Supervisor([ComponentSpec("job", "tests.apps.toy_components:finisher",
                                    {"seconds": 0.2}, oneshot=True)], log_stream=io.StringIO())
    with sup:
        t0 = time.monotonic()
        sup.run(interval=0.02)
        assert time.monotonic() - t0 < 20
    assert sup.finished_reason == "job finished"


def test_crash_backoff_grows():
    stream = io.StringIO()
    sup = Supervisor([ComponentSpec("bad", "tests.apps.toy_components:crasher")],
                     backoff_s=0.05, backoff_max_s=0.2, log_stream=stream)
    with sup:
        assert _wait(lambda: (sup.poll() or True) and sup.status()["bad"]["restarts"] >= 3)
    out = stream.getvalue()
    assert "RuntimeError: boom" in out
    assert "restarting in 0.1 s" in out and "restarting in 0.2 s" in out


def _beat_reader(p):
    def heartbeat_ns(_name):
        try:
            return int(open(p + ".beat").read())
        except (OSError, ValueError):
            return 0
    return heartbeat_ns


def test_a_silent_component_is_killed_and_restarted_like_a_crashed_one(tmp_path):
    p = str(tmp_path / "pids")
    stream = io.StringIO()
    sup = Supervisor([ComponentSpec("toy", "tests.apps.toy_components:beater", {"path": p})],
                     backoff_s=0.05, log_stream=stream, liveness_timeout_s=0.5, heartbeat_ns=_beat_reader(p))
    with sup:
        assert _wait(lambda: (sup.poll() or True) and os.path.exists(p + ".beat"))
        first = _pids(p)[0]
        time.sleep(1.0)
        sup.poll()
        assert sup.status()["toy"]["restarts"] == 0          # beating: left alone
        os.kill(first, signal.SIGSTOP)                       # hung: alive, silent
        assert _wait(lambda: (sup.poll() or True) and len(_pids(p)) == 2)
        st = sup.status()["toy"]
        assert st["restarts"] == 1 and st["hangs"] == 1 and st["alive"]
        assert _wait(lambda: (sup.poll() or True) and not os.path.exists(f"/proc/{first}"))
    assert "toy silent for" in stream.getvalue() and f"killing pid {first}" in stream.getvalue()


def test_a_component_killed_at_shutdown_or_crash_looping_is_a_failure():
    sup = Supervisor([ComponentSpec("toy", "tests.apps.toy_components:stubborn")], shutdown_timeout_s=0.5,
                     log_stream=io.StringIO())
    with sup:
        time.sleep(0.5)
        assert sup.failures() == ""
    assert sup.failures() == "toy killed at shutdown"
    sup = Supervisor([ComponentSpec("toy", "tests.apps.toy_components:crasher")], backoff_s=0.05,
                     log_stream=io.StringIO())
    with sup:
        assert _wait(lambda: (sup.poll() or True) and sup.status()["toy"]["restarts"] >= 2)
    assert sup.failures().startswith("toy crash-looping")



def test_shutdown_ends_when_a_component_holds_its_stop_flag_locked(tmp_path):
    """A component SIGSTOPped (or killed) inside ``stop.is_set()`` keeps the lock of its stop
    flag: telling it to stop must not block the supervisor for good."""
    sup = Supervisor([ComponentSpec("toy", "tests.apps.toy_components:ticker", {"path": str(tmp_path / "t")})],
                     shutdown_timeout_s=1.0, log_stream=io.StringIO())
    with sup:
        assert _wait(lambda: (tmp_path / "t").exists())
        held = sup.running["toy"].stop._cond.acquire(timeout=5)   # what the stopped process holds
        assert held
        os.kill(sup.running["toy"].proc.pid, signal.SIGSTOP)
        t0 = time.monotonic()
    assert time.monotonic() - t0 < 10
    assert sup.failures() == "toy killed at shutdown"


def test_debug_level_keeps_the_compilers_ir_dumps_out():
    """--log-level DEBUG: Numba's DEBUG records (its IR, megabytes per kernel) stay out; ours pass."""
    import numba

    from alphapulse.apps.supervisor import set_log_level
    root = logging.getLogger()
    old = root.level, logging.getLogger("numba").level
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root.addHandler(handler)
    try:
        set_log_level(logging.DEBUG)
        numba.njit(lambda x: x + 1)(1)          # a fresh compile
        logging.getLogger("alphapulse.test").debug("ours")
    finally:
        root.removeHandler(handler)
        root.setLevel(old[0])
        logging.getLogger("numba").setLevel(old[1])
    assert "ours" in stream.getvalue()
    assert "numba" not in stream.getvalue(), stream.getvalue()[:2000]
