"""Memory ordering: spins re-read shared memory; the position is published after the bytes."""
from __future__ import annotations

import time

import numpy as np
from numba import njit

from alphapulse.ring import Ring
from alphapulse.ring.atomics import load_acquire, spin_until_changed
from alphapulse.ring.layout import W_PSEQ, W_SLOTS
from tests.ring import workers as W


def test_compiled_spin_in_another_process_sees_a_store_to_shared_memory(ring_name, spawn):
    """A hoisted load would spin forever (the bound is 2**62 iterations)."""
    name = ring_name("spin")
    with Ring.create(name, 4096, "lossless", max_consumers=1) as ring:
        word = W_SLOTS + 15            # an unused word of the header
        q, ready = spawn.Queue(), spawn.Event()
        proc = spawn(W.spin_on_word, name, word, ready, q)
        assert ready.wait(60)
        time.sleep(0.3)
        assert proc.is_alive()         # still spinning on 0
        ring._h[word] = 42             # a plain numpy store from this process
        value, waited = q.get(timeout=10)
        assert value == 42 and waited >= 0.25
        proc.join(10)


def test_busy_spinning_consumer_wakes_on_a_publish_from_another_process(ring_name, spawn):
    name = ring_name("spinc")
    with Ring.create(name, 4096, "lossless") as ring:
        p = ring.producer()
        q, ready = spawn.Queue(), spawn.Event()
        spawn(W.poll_spin_once, name, ready, q)
        assert ready.wait(60)
        time.sleep(0.3)
        p.publish(W.G_frame(1))
        nbytes, waited, magic = q.get(timeout=10)
        assert nbytes == len(W.G_frame(1)) and magic == b"\xef\xbe\xad\xde"
        assert 0.25 <= waited < 10


@njit(cache=True)
def _spin_bounded(h, i, old, n):
    k = 0
    while load_acquire(h, i) == old and k < n:
        k += 1
    return k


def test_spin_loop_keeps_the_atomic_load_inside_the_loop():
    """Inspect the machine code: the acquire load is re-issued inside the loop body."""
    h = np.zeros(8, dtype=np.uint64)
    fresh = njit(spin_until_changed.py_func)      # uncached, so the assembly can be inspected
    assert fresh(h, 1, 0, 10) == 0
    asm = fresh.inspect_asm(fresh.signatures[0])
    lines = [ln.strip() for ln in asm.splitlines()]
    # the loop: a pause hint followed by a load of the same word, then a compare
    import platform
    if platform.machine() in ("x86_64", "AMD64"):
        i = next(k for k, ln in enumerate(lines) if ln.startswith("pause"))
        window = " ".join(lines[i:i + 6])
        assert "mov" in window and "(" in window      # a memory operand re-read after pause
    # and behaviourally: a bounded spin counts all its iterations on an unchanged word
    assert _spin_bounded(h, 1, 0, 1000) == 1000
    h[1] = 5
    assert _spin_bounded(h, 1, 0, 1000) == 0


def test_publish_sequence_moves_once_per_publish(ring_name):
    with Ring.create(ring_name("pseq"), 4096, "lossless") as ring:
        p = ring.producer()
        s0 = int(ring._h[W_PSEQ])
        p.publish(W.G_frame(1))
        p.publish_batch(np.concatenate([W.G_frame(2), W.G_frame(3)]))
        assert int(ring._h[W_PSEQ]) == s0 + 4            # even -> odd -> even per publish
        assert int(ring._h[W_PSEQ]) % 2 == 0


def _plain_spin(a):
    n = 0
    while a[0] == 0:
        n += 1
    return n


def test_a_plain_numba_spin_is_hoisted_into_an_endless_loop_which_is_why_atomics_are_used():
    """The hazard is real on this toolchain: LLVM loads ``a[0]`` once and jumps to itself."""
    import platform
    import re
    import pytest
    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("the assembly check is written for x86-64")
    f = njit(_plain_spin)
    a = np.ones(2, dtype=np.uint64)          # a[0] != 0: returns at once
    assert f(a) == 0
    asm = f.inspect_asm(f.signatures[0])
    lines = [ln.strip() for ln in asm.splitlines() if ln.strip()]
    self_loops = [lab for i, lab in enumerate(lines[:-1])
                  if re.fullmatch(r"\.LBB\w+:", lab)
                  and re.fullmatch(rf"jmp\s+{re.escape(lab[:-1])}", lines[i + 1])]
    assert self_loops, "expected LLVM to turn the plain spin into `L: jmp L` (load hoisted)"
    # the ring's spin, compiled the same way, keeps a load in its loop (no self-jump)
    g = njit(spin_until_changed.py_func)
    h = np.zeros(4, dtype=np.uint64)
    g(h, 0, 1, 1)
    gl = [ln.strip() for ln in g.inspect_asm(g.signatures[0]).splitlines() if ln.strip()]
    assert not [lab for i, lab in enumerate(gl[:-1]) if re.fullmatch(r"\.LBB\w+:", lab)
                and re.fullmatch(rf"jmp\s+{re.escape(lab[:-1])}", gl[i + 1])]
