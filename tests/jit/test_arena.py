"""alphapulse.jit.arena: arrays packed in one buffer, re-derived in kernels without copies."""
import mmap

import numpy as np
import pytest
from numba import njit

from alphapulse.jit import arena as AR

SPEC = [(np.uint64, 2), (np.int64, 1), (np.int32, 2), (np.uint64, 3), (np.float64, 2), (np.uint8, 1),
        (np.int64, 2)]


def _arrays():
    rng = np.random.default_rng(7)
    return [rng.integers(0, 2**63, (5, 3)).astype(np.uint64), np.arange(7, dtype=np.int64) - 3,
            rng.integers(-2**31, 2**31, (4, 9)).astype(np.int32),
            rng.integers(0, 2**63, (2, 3, 2)).astype(np.uint64), rng.standard_normal((3, 3)),
            np.arange(13, dtype=np.uint8), np.zeros((0, 3), np.int64)]


@njit(cache=True)
def _touch(arena, lay):
    """Read each view through the kernel helpers and write one element of each."""
    a = AR.view2(arena, lay, 0, np.uint64)
    b = AR.view1(arena, lay, 1, np.int64)
    c = AR.view2(arena, lay, 2, np.int32)
    d = AR.view3(arena, lay, 3, np.uint64)
    e = AR.view2(arena, lay, 4, np.float64)
    f = AR.view1(arena, lay, 5, np.uint8)
    g = AR.view2(arena, lay, 6, np.int64)
    total = float(a[4, 2] % np.uint64(1000)) + b[6] + c[3, 8] + float(d[1, 2, 1] % np.uint64(1000)) + e[2, 2] + f[12]
    a[0, 0] = np.uint64(11)
    b[0] = 12
    c[0, 0] = 13
    d[0, 0, 0] = np.uint64(14)
    e[0, 0] = 15.5
    f[0] = 16
    return total, a.shape[0] * a.shape[1] + d.shape[2] + g.shape[0]


def test_views_keep_values_and_kernel_sees_the_same_memory():
    arrays = _arrays()
    arena, lay, views = AR.pack(arrays, SPEC)
    for a, v in zip(arrays, views):
        assert v.dtype == a.dtype and v.shape == a.shape and np.array_equal(v, a)
        assert not v.size or (v.ctypes.data % AR.ALIGN == 0 and np.shares_memory(v, arena))
    total, shapes = _touch(arena, lay)
    a, b, c, d, e, f, _ = arrays
    assert total == pytest.approx(float(a[4, 2] % 1000) + b[6] + c[3, 8] + float(d[1, 2, 1] % 1000) + e[2, 2] + f[12])
    assert shapes == 15 + 2 + 0
    assert [views[0][0, 0], views[1][0], views[2][0, 0], views[3][0, 0, 0], views[4][0, 0], views[5][0]] == \
        [11, 12, 13, 14, 15.5, 16]
    # nothing else moved: each view's other elements are as packed
    assert np.array_equal(views[1][1:], b[1:]) and np.array_equal(views[5][1:], f[1:])


@pytest.mark.parametrize("bad", [(np.int64, 2), (np.uint64, 1)])
def test_a_dtype_or_rank_the_kernel_does_not_expect_is_refused(bad):
    arrays = _arrays()
    spec = list(SPEC)
    spec[0] = bad
    with pytest.raises(TypeError, match="array 0"):
        AR.pack(arrays, spec)
    with pytest.raises(ValueError):
        AR.pack(arrays[:-1], SPEC)


def test_engine_arrays_live_in_its_arena():
    from alphapulse.jit import arb as A
    from alphapulse.strategy.config import EngineConfig
    from alphapulse.strategy.engine import StrategyEngine
    eng = StrategyEngine(EngineConfig(max_pools=64, max_tokens=64, max_v3_pools=8, max_ticks_per_pool=4,
                                      journal_size=64, signal_table_size=64, max_signals_per_batch=8))
    for name, dtype, ndim in A.BATCH_ARRAYS:
        v = eng.state[name] if name in eng.state else getattr(eng, "_" + name)
        assert v.dtype == np.dtype(dtype) and v.ndim == ndim and np.shares_memory(v, eng._arena)  # noqa: SLF001


@njit(cache=True)
def _bump(places_):
    """Through at1: add 1 to every element of array 0 (int64) and store array 1's sum (uint8) in it."""
    a = AR.at1(places_, 0, np.int64)
    b = AR.at1(places_, 1, np.uint8)
    s = 0
    for x in b:
        s += x
    for i in range(a.shape[0]):
        a[i] += 1
    a[0] = s
    return a.shape[0] + b.shape[0]


def test_places_give_kernels_the_callers_own_memory():
    a = np.arange(5, dtype=np.int64)
    b = np.arange(7, dtype=np.uint8)
    tab = AR.places([a, b], [(np.int64, 1), (np.uint8, 1)])
    assert tab[0, 0] == a.ctypes.data and tab[1, 1] == 7
    assert _bump(tab) == 12
    assert a.tolist() == [21, 2, 3, 4, 5] and b.tolist() == list(range(7))     # in place, no copy
    with pytest.raises(TypeError, match="array 1"):
        AR.places([a, b], [(np.int64, 1), (np.int64, 1)])
    with pytest.raises(TypeError, match="not contiguous"):
        AR.places([a[::2], b], [(np.int64, 1), (np.uint8, 1)])


def _thp_mode():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.index("[") + 1:text.index("]")]


def _vma_fields(addr):
    """The /proc/self/smaps fields of the mapping that holds ``addr``."""
    fields, inside = {}, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                lo, hi = (int(x, 16) for x in head.split("-"))
                inside = lo <= addr < hi
            elif inside and head.endswith(":"):
                fields[head[:-1]] = line.split()[1]
    return fields


@pytest.mark.skipif(_thp_mode() != "madvise", reason="needs Linux transparent huge pages in madvise mode")
def test_the_arena_is_2mib_aligned_and_asks_for_huge_pages():
    arrays = [np.arange(3 << 18, dtype=np.uint64), np.arange(7, dtype=np.int64)]     # 6 MiB and a bit
    arena, _, views = AR.pack(arrays, [(np.uint64, 1), (np.int64, 1)])
    assert arena.ctypes.data % AR.HUGE == 0 and np.array_equal(views[0], arrays[0])
    # in madvise mode only a mapping that asked for them may get huge pages: one that did not
    # ask (the same kind of mapping) is the control
    plain = mmap.mmap(-1, 3 * AR.HUGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    control = np.frombuffer(plain, np.uint8)
    control[::4096] = 1
    assert _vma_fields(arena.ctypes.data).get("THPeligible") == "1"
    assert _vma_fields(control.ctypes.data).get("THPeligible") == "0"
    small, _, _ = AR.pack([np.arange(7, dtype=np.int64)], [(np.int64, 1)])     # ordinary memory
    assert small.ctypes.data % AR.ALIGN == 0 and small[:56].view(np.int64).tolist() == list(range(7))
