"""The inbound bridge's crash-safe positions (state.py), against a real ring."""
import os
import time

import numpy as np
import pytest

from alphapulse.bridge.rings import RingSink
from alphapulse.bridge.state import FILE_SIZE, UNCONDITIONAL, InboundState, admit
from alphapulse.ring import Ring
from tests.bridge import framegen

K = ("hosta", 1)


def test_admit_drops_what_was_written_and_reports_jumps():
    pos = {K: (100, 50)}
    assert admit(pos, "hosta", 1, 100, 50, 10).__dict__ == {"skip": 0, "gap": 0}     # next in line
    assert admit(pos, "hosta", 1, 100, 40, 10).__dict__ == {"skip": 10, "gap": 0}    # all seen
    assert admit(pos, "hosta", 1, 100, 45, 10).__dict__ == {"skip": 5, "gap": 0}     # half seen
    assert admit(pos, "hosta", 1, 100, 53, 10).__dict__ == {"skip": 0, "gap": 3}     # 3 missing
    assert admit(pos, "hosta", 1, 99, 0, 10).__dict__ == {"skip": 10, "gap": 0}      # older run
    assert admit(pos, "hosta", 1, 101, 0, 10).__dict__ == {"skip": 0, "gap": 0}      # new run
    assert admit(pos, "hostb", 1, 7, 0, 10).__dict__ == {"skip": 0, "gap": 0}        # new source
    assert admit(pos, "hostb", 1, 7, 4, 10).__dict__ == {"skip": 0, "gap": 4}


@pytest.fixture
def ring():
    r = Ring.create(f"bst_{os.getpid()}_{time.monotonic_ns() % 10**6}", capacity=1 << 16)
    yield r
    r.close()


def _write(sink, state, positions, seq0, n, stream_seq, commit=True):
    fr = framegen.frames(seq0, n)
    state.stage(positions, stream_seq, sink.position(), sink.token())
    if commit:
        assert sink.write(fr, 0, fr.nbytes, 1.0)


def test_recovery_takes_the_slot_the_ring_witnesses(tmp_path, ring):
    path = tmp_path / "in.state"
    sink = RingSink(ring.name)
    st = InboundState(path)
    assert st.recover(sink.position(), sink.token()) == {} and st.recovered_from == "empty"
    _write(sink, st, {K: (1, 10)}, 1, 10, stream_seq=3)
    _write(sink, st, {K: (1, 20)}, 11, 10, stream_seq=4)
    # crash after staging, before the ring commit
    _write(sink, st, {K: (1, 30)}, 21, 10, stream_seq=5, commit=False)
    pos, token = sink.position(), sink.token()
    del st                                       # no close(): as after SIGKILL
    st2 = InboundState(path)
    assert st2.recover(pos, token) == {K: (1, 20)} and st2.stream_seq == 4
    assert "previous slot" in st2.recovered_from
    # crash after the commit, before anything else (e.g. the JetStream ack)
    _write(sink, st2, {K: (1, 30)}, 21, 10, stream_seq=5)
    st3 = InboundState(path)
    assert st3.recover(sink.position(), token) == {K: (1, 30)} and st3.stream_seq == 5
    assert st3.recovered_from == "active slot"
    # and the recovered slot is the base of the next write
    _write(sink, st3, {K: (1, 40)}, 31, 10, stream_seq=6, commit=False)
    st4 = InboundState(path)
    assert st4.recover(sink.position(), token) == {K: (1, 30)}
    for s in (st2, st3, st4):
        s.close()
    sink.close()


def test_a_torn_active_slot_falls_back_and_a_new_ring_takes_the_latest(tmp_path, ring):
    path = tmp_path / "in.state"
    sink = RingSink(ring.name)
    st = InboundState(path)
    st.recover(sink.position(), sink.token())
    _write(sink, st, {K: (1, 10)}, 1, 10, stream_seq=1)
    _write(sink, st, {K: (1, 20)}, 11, 10, stream_seq=2)
    st.close()
    raw = bytearray(path.read_bytes())
    active = raw[12]
    off = 64 + active * 4096 + 48                 # first entry of the active slot
    raw[off] ^= 0xFF
    path.write_bytes(bytes(raw))
    st2 = InboundState(path)
    assert st2.recover(sink.position(), sink.token()) == {K: (1, 10)}
    assert "torn" in st2.recovered_from
    st2.stage({K: (1, 99)}, 9, 10**9, 12345)       # staged for a ring that is then recreated
    st2.close()
    st3 = InboundState(path)
    assert st3.recover(0, 999) == {K: (1, 99)}     # other ring token: no witness, latest slot
    st3.stage({K: (1, 100)}, 10, UNCONDITIONAL, 999)
    st3.close()
    assert InboundState(path).recover(0, 999) == {K: (1, 100)}
    sink.close()


def test_foreign_files_are_refused(tmp_path):
    p = tmp_path / "x.state"
    p.write_bytes(b"hello")
    with pytest.raises(ValueError, match="not a bridge state file"):
        InboundState(p)
    p.write_bytes(b"\0" * FILE_SIZE)
    with pytest.raises(ValueError, match="magic"):
        InboundState(p)


def test_sink_write_is_all_or_nothing_when_the_ring_stays_full(ring):
    sink = RingSink(ring.name)
    c = ring.consumer("slow")                    # never reads: a lossless ring fills up
    fr = framegen.frames(1, 2000)
    written = 0
    while True:
        start = written
        end = min(start + sink.max_write, fr.nbytes)
        # cut at a frame boundary
        offs = np.cumsum([0] + [32 + 2 + framegen.value_len(s, 0) for s in range(1, 2001)])
        end = int(offs[np.searchsorted(offs, end, side="right") - 1])
        before = sink.position()
        if not sink.write(fr, start, end, 0.05):
            assert sink.position() == before     # nothing published
            break
        written = end
    assert 0 < written < fr.nbytes
    c.close()
    sink.close()
