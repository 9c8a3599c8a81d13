"""A producer killed mid-batch: no partial frame is ever visible; its death is detected."""
from __future__ import annotations

import os
import signal
import time

from alphapulse.ring import Ring
from tests.ring import workers as W
from tests.ring.test_membership import seqs_of


def test_producer_sigkilled_mid_batch_leaves_only_whole_frames_and_is_seen_dead(ring_name, spawn):
    name = ring_name("pdeath")
    with Ring.create(name, 1 << 16, "lossless") as ring:
        c = ring.consumer("reader")
        ready = spawn.Event()
        proc = spawn(W.produce_then_die_mid_batch, name, 300, ready)
        assert ready.wait(60)
        # the producer has claimed a region and written a torn batch into it
        assert ring.stats()["producer"]["claim"] > ring.stats()["producer"]["position"]
        assert c.producer_alive()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        got = []
        while True:
            views = c.poll(timeout=0.2)
            if not views:
                break
            got.extend(seqs_of(views))     # validate_frames: every frame whole, CRC verified
            c.release()
        assert got == list(range(1, 301))  # exactly the committed frames, nothing of the torn batch
        assert ring.producer_state() == "dead"
        assert not c.producer_alive()
        assert ring.stats()["producer"]["state"] == "dead"


def test_silent_producer_is_reported_stale_by_heartbeat(ring_name, spawn):
    name = ring_name("pstale")
    with Ring.create(name, 1 << 16, "lossless") as ring:
        c = ring.consumer("reader")
        ready = spawn.Event()
        proc = spawn(W.produce_then_die_mid_batch, name, 10, ready)
        assert ready.wait(60)
        os.kill(proc.pid, signal.SIGSTOP)          # alive, but publishes nothing, no heartbeat
        try:
            time.sleep(0.35)
            assert ring.producer_state(stale_after_s=0.3) == "stale"
            assert not c.producer_alive(stale_after_s=0.3)
            assert c.producer_alive(stale_after_s=60)
            assert ring.stats()["producer"]["heartbeat_age_s"] > 0.3
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            os.kill(proc.pid, signal.SIGCONT)
        proc.join(10)


def test_idle_producer_heartbeat_keeps_it_alive(ring_name):
    with Ring.create(ring_name("phb"), 1 << 12, "overwrite") as ring:
        p = ring.producer()
        c = ring.consumer("r")
        time.sleep(0.25)
        assert ring.producer_state(stale_after_s=0.2) == "stale"
        before = ring.stats()["producer"]["heartbeat_age_s"]
        p.heartbeat()
        assert ring.stats()["producer"]["heartbeat_age_s"] < before     # refreshed
        assert ring.producer_state(stale_after_s=before) == "alive"
        assert c.producer_alive(stale_after_s=before)
        p.close()
        assert ring.producer_state() == "closed"
