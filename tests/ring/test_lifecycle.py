"""Life cycle: nothing left in /dev/shm, clear attach errors, no false tracker warnings."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from alphapulse.ring import NotARingError, Ring
from alphapulse.ring.layout import LAYOUT_VERSION, W_LAYOUT, segment_name
from alphapulse.ring.segment import Segment, shm_exists, shm_unlink
from tests.ring import workers as W

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_py(code: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO)


def wait_gone(seg: str, timeout: float = 10.0) -> bool:
    t_end = time.monotonic() + timeout
    while shm_exists(seg) and time.monotonic() < t_end:
        time.sleep(0.02)
    return not shm_exists(seg)


def test_owner_close_unlinks_and_context_manager_does_too(ring_name):
    name = ring_name("close")
    seg = segment_name(name)
    r = Ring.create(name, 4096, "lossless")
    assert shm_exists(seg)
    r.close()
    assert not shm_exists(seg)
    with Ring.create(name, 4096, "overwrite"):
        assert shm_exists(seg)
    assert not shm_exists(seg)


def test_owner_exiting_without_close_unlinks_at_exit(ring_name, spawn):
    name = ring_name("atexit")
    ready = spawn.Event()
    proc = spawn(W.own_ring_and_wait, name, 4096, ready, "exit")
    assert ready.wait(60)
    proc.join(30)
    assert proc.exitcode == 0
    assert wait_gone(segment_name(name), 2.0)


def test_sigkilled_owner_rings_are_unlinked_by_its_watchdog_and_reported(ring_name):
    name = ring_name("wd")
    seg = segment_name(name)
    code = f"""
        import sys, time
        sys.path.insert(0, {REPO!r})
        from alphapulse.ring import Ring
        r = Ring.create({name!r}, 4096, "lossless")
        print("ready", flush=True)
        time.sleep(120)
    """
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert shm_exists(seg)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert wait_gone(seg, 10.0)
        err = proc.stderr.read()     # the watchdog inherited stderr: the leak is reported
        assert f"exited without unlinking 1 ring segment(s), unlinked now: {seg}" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        shm_unlink(seg)


def test_sigkilled_consumer_and_producer_leave_nothing_after_the_owner_closes(ring_name, spawn):
    name = ring_name("kills")
    with Ring.create(name, 1 << 12, "lossless"):
        r1, r2 = spawn.Event(), spawn.Event()
        cons = spawn(W.consume_then_hang, name, "c", r1)
        prod = spawn(W.produce_then_die_mid_batch, name, 3, r2)
        assert r1.wait(60) and r2.wait(60)
        cons.kill()
        prod.kill()
        cons.join(10)
        prod.join(10)
        assert shm_exists(segment_name(name))     # the owner still serves the ring
    assert not shm_exists(segment_name(name))


def test_attach_from_an_unrelated_process_prints_no_tracker_warning_and_keeps_the_ring(ring_name):
    name = ring_name("tracker")
    with Ring.create(name, 4096, "lossless") as ring:
        ring.producer().publish(W.G_frame(1))
        res = run_py(f"""
            import sys, warnings
            sys.path.insert(0, {REPO!r})
            warnings.simplefilter("always")
            from alphapulse.ring import Ring
            r = Ring.attach({name!r})
            c = r.consumer("outsider")
            print(r.stats()["producer"]["frames"])
            c.close(); r.close()
        """)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == "1"
        assert "leaked" not in res.stderr and "resource_tracker" not in res.stderr, res.stderr
        assert shm_exists(segment_name(name))     # the reader's exit did not unlink it
        assert ring.stats()["producer"]["frames"] == 1


def test_attaching_a_missing_ring_a_non_ring_segment_or_another_layout_fails_clearly(ring_name):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Ring.attach(ring_name("missing"))
    name = ring_name("foreign")
    seg = Segment.create(segment_name(name), 8192)
    try:
        seg.buf[:64] = os.urandom(64)
        with pytest.raises(NotARingError, match="not an initialised ring segment|not a ring"):
            Ring.attach(name, timeout=0.05)
    finally:
        seg.close()
        shm_unlink(segment_name(name))
    name = ring_name("tiny")
    seg = Segment.create(segment_name(name), 100)
    try:
        with pytest.raises(NotARingError, match="is not a ring segment"):
            Ring.attach(name)
    finally:
        seg.close()
        shm_unlink(segment_name(name))
    name = ring_name("version")
    with Ring.create(name, 4096, "lossless") as ring:
        ring._h[W_LAYOUT] = LAYOUT_VERSION + 1
        with pytest.raises(NotARingError, match=f"layout version {LAYOUT_VERSION + 1}; this code "
                                                f"reads version {LAYOUT_VERSION}"):
            Ring.attach(name)


def test_create_refuses_a_live_ring_and_replaces_a_dead_creators_one(ring_name, spawn):
    name = ring_name("exists")
    with Ring.create(name, 4096, "lossless"):
        with pytest.raises(FileExistsError, match="already created by this process"):
            Ring.create(name, 4096, "lossless")
        # another live process tries the same name: refused, and its watchdog
        # must not take the name over (it would unlink our ring when it exits)
        res = run_py(f"""
            import sys
            sys.path.insert(0, {REPO!r})
            from alphapulse.ring import Ring, registry
            try:
                Ring.create({name!r}, 4096, "lossless")
            except FileExistsError as e:
                print("refused:", e)
            print("owned:", registry.owned())
        """)
        assert "refused: ring" in res.stdout and "already exists" in res.stdout, res.stderr
        assert "owned: []" in res.stdout
        time.sleep(0.5)                            # its watchdog has seen EOF by now
        assert shm_exists(segment_name(name))      # still there after that process exited
    # a stale segment whose creator is gone (simulated: creator pid rewritten)
    seg = segment_name(name)
    r = Ring.create(name, 4096, "lossless")
    from alphapulse.ring.layout import W_CREATOR_PID
    from alphapulse.ring import registry
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    r._h[W_CREATOR_PID] = int(dead)
    registry.registry().owned.discard(seg)        # as if another (dead) process owned it
    r2 = Ring.create(name, 8192, "overwrite")
    assert r2.capacity == 8192
    r2.close()
    r._closed = True                               # its segment is gone already
    assert not shm_exists(seg)


def test_invalid_arguments_are_clear_errors(ring_name):
    with pytest.raises(ValueError, match="policy must be"):
        Ring.create(ring_name("x"), 4096, "sometimes")
    with pytest.raises(ValueError, match="multiple of 8"):
        Ring.create(ring_name("x"), 1001, "lossless")
    with pytest.raises(ValueError, match="no '/'"):
        Ring.create("a/b", 4096, "lossless")


def test_stat_cli_lists_rings_consumers_lag_and_loss(ring_name):
    name = ring_name("cli")
    with Ring.create(name, 4096, "overwrite") as ring:
        p = ring.producer()
        c = ring.consumer("dash")
        for s in range(1, 80):
            p.publish(W.G_frame(s))
        c.poll()
        c.release()
        res = subprocess.run([sys.executable, "-m", "alphapulse.ring", "stat", name],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert res.returncode == 0, res.stderr
        assert f"ring {name}" in res.stdout and "overwrite" in res.stdout
        assert "consumer 'dash'" in res.stdout and f"lost {c.lost_frames} frames" in res.stdout
        res = subprocess.run([sys.executable, "-m", "alphapulse.ring", "stat", "--json", name],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        st = json.loads(res.stdout.strip().splitlines()[-1])[0]
        assert st["producer"]["frames"] == 79
        assert st["consumers"][0]["lost_frames"] == c.lost_frames > 0
        assert st["consumers"][0]["lag_frames"] == 0
        assert np.isclose(st["capacity"], 4096)


def test_clean_cli_unlinks_a_ring_whose_creator_is_gone_and_keeps_live_ones(ring_name):
    from alphapulse.ring import registry
    from alphapulse.ring.layout import W_CREATOR_PID
    live, orphan = ring_name("live"), ring_name("orphan")
    with Ring.create(live, 4096, "lossless"):
        r = Ring.create(orphan, 4096, "lossless")
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True).stdout.strip()
        r._h[W_CREATOR_PID] = int(dead)          # as if its creator and watchdog were killed
        registry.registry().owned.discard(segment_name(orphan))
        res = subprocess.run([sys.executable, "-m", "alphapulse.ring", "clean", live, orphan],
                             capture_output=True, text=True, timeout=120, cwd=REPO)
        assert res.returncode == 0, res.stderr
        assert f"keep {segment_name(live)}: creator pid {os.getpid()} alive" in res.stdout
        assert f"unlink {segment_name(orphan)}: creator pid {dead} gone" in res.stdout
        assert shm_exists(segment_name(live)) and not shm_exists(segment_name(orphan))
        r._closed = True
        r._seg.close()
