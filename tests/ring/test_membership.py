"""Consumers joining mid-stream, dying (SIGKILL) or stalling (SIGSTOP) while holding a cursor."""
from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from alphapulse.ring import Ring, RingError, RingFullTimeout
from tests.ring import framegen as G
from tests.ring import workers as W


def publish_seq(p, seq0, n):
    buf = np.empty(1 << 12, np.uint8)
    for s in range(seq0, seq0 + n):
        k = G.write_frame(buf, 0, s, 0, 0)
        p.publish(buf[:k])
    return seq0 + n


def seqs_of(views):
    from alphapulse.jit import alloc_frame_index, new_crc_state
    out = []
    for v in views:
        idx, crc = alloc_frame_index(1 << 14), new_crc_state()
        k, _, _, _ = G.validate_frames(v, 0, v.shape[0], 1, crc, idx)
        assert not idx.status[:k].any()
        out.extend(int(s) for s in idx.sequence[:k])
    return out


@pytest.mark.parametrize("policy", ["lossless", "overwrite"])
def test_consumer_joining_mid_stream_starts_at_the_current_position(ring_name, spawn, policy):
    name = ring_name("join")
    with Ring.create(name, 1 << 20, policy) as ring:
        prod = spawn(W.produce, name, 400_000, 0, 0, None, 1, 0.0005)
        t_end = time.monotonic() + 60
        while ring.stats()["producer"]["frames"] < 2000 and time.monotonic() < t_end:
            time.sleep(0.01)
        c = ring.consumer("late")
        joined_at = c.frames_consumed
        pos_at = c.position
        assert joined_at >= 2000 and pos_at > 0
        views = c.poll(timeout=10)
        got = seqs_of(views)
        c.release()
        # the first frame published after the join (an overwrite ring may have
        # lapped the newcomer before its first poll: then exactly that many later)
        assert got[0] == joined_at + 1 + c.lost_frames
        assert got == list(range(got[0], got[0] + len(got)))
        if policy == "lossless":
            assert c.lost_frames == 0
        prod.kill()
        prod.join(10)


def test_sigkilled_consumer_is_detected_and_no_longer_blocks_the_producer(ring_name, spawn, caplog):
    name = ring_name("kill")
    with Ring.create(name, 1 << 12, "lossless") as ring:
        p = ring.producer(publish_timeout=10.0)
        ready = spawn.Event()
        victim = spawn(W.consume_then_hang, name, "victim", ready)
        assert ready.wait(60)
        alive = ring.consumer("alive")
        seq = publish_seq(p, 1, 10)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)            # reaped: pid gone (an unreaped zombie is detected too)
        got = []
        for _ in range(50):        # 50 x ~1.6 KB through a 4 KB ring: must pass the victim
            seq = publish_seq(p, seq, 10)     # (a RingFullTimeout here fails the test)
            got.extend(seqs_of(alive.poll()))
            alive.release()
        assert got == list(range(1, seq))
        st = ring.stats()
        assert st["producer"]["evictions"] == 1
        dropped = [c for c in st["consumers"] if c["name"] == "victim"]
        assert dropped and dropped[0]["state"] == "evicted"
        assert dropped[0]["evict_reason"] == "dead_pid"
        assert any("dropped consumer 'victim'" in r.getMessage() for r in caplog.records)


def test_unreaped_sigkilled_consumer_zombie_counts_as_dead(ring_name, spawn):
    name = ring_name("zombie")
    with Ring.create(name, 1 << 12, "lossless") as ring:
        p = ring.producer(publish_timeout=5.0)
        ready = spawn.Event()
        victim = spawn(W.consume_then_hang, name, "zombie", ready)
        assert ready.wait(60)
        os.kill(victim.pid, signal.SIGKILL)
        time.sleep(0.2)            # not joined: the child is a zombie, its pid still "exists"
        publish_seq(p, 1, 200)     # would time out if the zombie still gated the producer
        assert ring.stats()["producer"]["evictions"] == 1
        victim.join(10)


def test_stalled_consumer_is_evicted_after_the_timeout_and_told_so(ring_name, spawn):
    name = ring_name("stall")
    with Ring.create(name, 1 << 12, "lossless", consumer_timeout_s=0.3) as ring:
        p = ring.producer(publish_timeout=10.0)
        ready, go, q = spawn.Event(), spawn.Event(), spawn.Queue()
        proc = spawn(W.consume_after_stop, name, "stalled", ready, go, q)
        assert ready.wait(60)
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            publish_seq(p, 1, 200)             # blocks until the silent consumer is evicted
            st = ring.stats()
            assert st["producer"]["waits"] >= 1 and st["producer"]["evictions"] == 1
            assert [c["evict_reason"] for c in st["consumers"]] == ["stale_heartbeat"]
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        go.set()
        msg = q.get(timeout=30)
        assert msg.startswith("evicted:") and "stale_heartbeat" in msg


def test_lossless_publish_times_out_with_a_clear_error_when_a_live_consumer_lags(ring_name):
    with Ring.create(ring_name("full"), 1 << 12, "lossless") as ring:
        p = ring.producer(publish_timeout=0.2)
        c = ring.consumer("laggard")
        with pytest.raises(RingFullTimeout, match=r"slowest consumer 'laggard' \(pid \d+\) lags"):
            publish_seq(p, 1, 100)
        assert ring.stats()["producer"]["waits"] >= 1
        n = c.frames_consumed
        assert n == 0
        got = seqs_of(c.poll())        # what was published is intact and complete
        c.release()
        assert got == list(range(1, len(got) + 1)) and len(got) > 10


def test_closed_consumer_frees_its_slot_and_stops_gating(ring_name):
    with Ring.create(ring_name("close"), 1 << 12, "lossless", max_consumers=2) as ring:
        p = ring.producer(publish_timeout=0.2)
        a = ring.consumer("a")
        b = ring.consumer("b")
        with pytest.raises(RingError, match="all 2 consumer slots are taken"):
            ring.consumer("c")
        a.close()
        b.close()
        publish_seq(p, 1, 200)         # no consumer: never blocks
        c = ring.consumer("c")
        assert c.frames_consumed == 200
        with pytest.raises(RingError, match="closed"):
            a.poll()


def test_single_producer_is_enforced_and_a_dead_one_is_taken_over(ring_name, spawn):
    name = ring_name("prod")
    with Ring.create(name, 1 << 12, "lossless") as ring:
        p = ring.producer()
        with pytest.raises(RingError, match="already has a producer in this process"):
            ring.producer()
        p.close()
        ready = spawn.Event()
        proc = spawn(W.produce_then_die_mid_batch, name, 3, ready)
        assert ready.wait(60)
        with pytest.raises(RingError, match=f"live producer \\(pid {proc.pid}\\)"):
            ring.producer()
        proc.kill()
        proc.join(10)
        p2 = ring.producer()           # the dead producer's role is taken over
        c = ring.consumer("c")
        publish_seq(p2, 4, 3)
        assert seqs_of(c.poll()) == [4, 5, 6]
