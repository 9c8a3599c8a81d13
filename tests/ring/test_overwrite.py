"""Overwrite policy: the producer never waits; a lapped consumer counts exactly what it missed."""
from __future__ import annotations

import numpy as np
import pytest

from alphapulse.jit import alloc_frame_index, new_crc_state
from alphapulse.ring import Ring
from tests.ring import framegen as G
from tests.ring import workers as W

N = 60_000


def test_slow_consumer_process_loss_count_equals_what_it_missed(ring_name, spawn):
    name = ring_name("ow")
    with Ring.create(name, 1 << 16, "overwrite"):
        q = spawn.Queue()
        ready = spawn.Event()
        cons = spawn(W.consume_record, name, "slow", N, ready, q, 0.002)
        assert ready.wait(120)
        prod = spawn(W.produce, name, N, 64, 4096)
        res = W.collect(q, 1, [cons, prod], timeout=300)[0]
        prod.join(60)
        assert prod.exitcode == 0
    seqs, sizes = res["seqs"].astype(np.int64), res["sizes"].astype(np.int64)
    assert res["bad"] == 0                                   # every frame it got is valid (CRC)
    assert len(seqs) > 0 and res["lost_frames"] > 0          # it really was lapped
    assert np.all(np.diff(seqs) > 0)                         # in order, never a duplicate
    missed = np.setdiff1d(np.arange(1, N + 1), seqs)
    assert res["lost_frames"] == len(missed)                 # exact frame count
    lens = np.array([G.frame_len(int(s), 64, 4096) for s in missed], dtype=np.int64)
    assert res["lost_bytes"] == int(lens.sum())              # exact byte count
    assert len(seqs) + res["lost_frames"] == N
    # what it got after each gap is intact: sizes match the generator
    assert np.array_equal(sizes, [G.frame_len(int(s), 64, 4096) for s in seqs])


@pytest.mark.parametrize("copy", [True, False])
def test_lapped_in_process_consumer_resyncs_to_the_oldest_intact_frame(ring_name, copy):
    with Ring.create(ring_name("ow1"), 1 << 12, "overwrite") as ring:
        p = ring.producer()
        c = ring.consumer("c", copy=copy)
        buf = np.empty(1 << 12, np.uint8)
        for seq in range(1, 201):
            n = G.write_frame(buf, 0, seq, 0, 0)
            p.publish(buf[:n])
        views = c.poll()
        got = []
        idx, crc = alloc_frame_index(4096), new_crc_state()
        for v in views:
            k, _, _, _ = G.validate_frames(v, 0, v.shape[0], 1, crc, idx)
            got.extend(int(s) for s in idx.sequence[:k])
            assert not idx.status[:k].any()
        assert c.release() == 0
        assert got == list(range(got[0], 201))               # the newest frames, contiguous
        assert c.lost_frames == got[0] - 1                   # everything before them, exactly
        assert c.lost_bytes == sum(G.frame_len(s, 0, 0) for s in range(1, got[0]))
        # the oldest intact frame: the one before it has been (partly) overwritten
        tail = ring.stats()["producer"]["tail_frames"]
        assert got[0] == tail + 1


def test_zero_copy_views_overwritten_while_held_are_reported_by_release(ring_name):
    with Ring.create(ring_name("ow2"), 1 << 12, "overwrite") as ring:
        p = ring.producer()
        c = ring.consumer("c", copy=False)
        buf = np.empty(1 << 12, np.uint8)
        seq = 1
        for _ in range(10):
            n = G.write_frame(buf, 0, seq, 0, 0)
            p.publish(buf[:n])
            seq += 1
        views = c.poll()
        assert views
        before = c.lost_frames
        for _ in range(60):                                  # the producer laps us meanwhile
            n = G.write_frame(buf, 0, seq, 0, 0)
            p.publish(buf[:n])
            seq += 1
        overwritten = c.release()        # > 9 KB went through a 4 KB ring: all 10 are gone
        assert overwritten == 10
        assert c.lost_frames - before >= overwritten
        # afterwards it continues with intact frames only, no double counting
        got = []
        for v in c.poll():
            idx, crc = alloc_frame_index(4096), new_crc_state()
            k, _, _, _ = G.validate_frames(v, 0, v.shape[0], 1, crc, idx)
            got.extend(int(s) for s in idx.sequence[:k])
        c.release()
        assert got and got[-1] == seq - 1
        assert len(got) + c.lost_frames == seq - 1


def test_overwrite_producer_never_waits_without_consumers_or_with_a_stuck_one(ring_name):
    with Ring.create(ring_name("ow3"), 1 << 12, "overwrite") as ring:
        p = ring.producer(publish_timeout=0.01)
        stuck = ring.consumer("stuck")
        buf = np.empty(1 << 12, np.uint8)
        for seq in range(1, 5001):
            n = G.write_frame(buf, 0, seq, 0, 0)
            p.publish(buf[:n])
        assert ring.stats()["producer"]["waits"] == 0
        stuck.poll()
        stuck.release()
        assert stuck.lost_frames > 4900
