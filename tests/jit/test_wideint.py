"""Wide-integer kernels against Python ints (hypothesis)."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphapulse.jit import wideint as W

M256 = (1 << 256) - 1


def _shaped(bits: int):
    """Integers that stress limb boundaries: random widths, all-ones runs, powers of two."""
    return st.one_of(
        st.integers(0, (1 << bits) - 1),
        st.integers(0, bits - 1).map(lambda k: 1 << k),
        st.integers(1, bits).map(lambda k: (1 << k) - 1),
        st.integers(0, 64).map(lambda k: ((1 << bits) - 1) >> k),
        st.tuples(st.integers(1, bits), st.integers(0, 200)).map(
            lambda t: max(0, (1 << t[0]) - 1 - t[1])),
        st.integers(0, 2**64 - 1),
    )


u256s = _shaped(256)
nonzero = u256s.filter(lambda x: x > 0)
SETTINGS = settings(max_examples=400, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def py(t) -> int:
    return W.from_limbs(t)


def test_roundtrip_and_range_errors():
    for x in (0, 1, 2**64 - 1, 2**64, 2**128 + 5, M256):
        assert py(W.to_u256(x)) == x
    for bad in (-1, 1 << 256):
        try:
            W.to_u256(bad)
        except ValueError:
            continue
        raise AssertionError(f"to_u256({bad}) accepted")


@SETTINGS
@given(u256s, u256s)
def test_add_sub_cmp(a, b):
    A, B = W.to_u256(a), W.to_u256(b)
    s, c = W.u256_add(A, B)
    assert py(s) == (a + b) & M256 and c == (a + b > M256)
    d, br = W.u256_sub(A, B)
    assert py(d) == (a - b) & M256 and br == (a < b)
    assert W.u256_cmp(A, B) == (a > b) - (a < b)
    assert W.u256_lt(A, B) == (a < b)
    assert W.u256_le(A, B) == (a <= b)
    assert W.u256_eq(A, B) == (a == b)
    assert W.u256_is_zero(A) == (a == 0)
    assert W.u256_bitlen(A) == a.bit_length()


@SETTINGS
@given(u256s, u256s)
def test_mul(a, b):
    A, B = W.to_u256(a), W.to_u256(b)
    assert py(W.u256_mul_full(A, B)) == a * b
    lo, ovf = W.u256_mul(A, B)
    assert py(lo) == (a * b) & M256 and ovf == (a * b > M256)


@SETTINGS
@given(u256s, st.integers(0, 2**64 - 1))
def test_mul_u64_and_add_u64(a, x):
    r, ovf = W.u256_mul_u64(W.to_u256(a), np.uint64(x))
    assert py(r) == (a * x) & M256 and ovf == (a * x > M256)
    s, c = W.u256_add_u64(W.to_u256(a), np.uint64(x))
    assert py(s) == (a + x) & M256 and c == (a + x > M256)


@SETTINGS
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1))
def test_mul64_and_clz(a, b):
    hi, lo = W.mul64(np.uint64(a), np.uint64(b))
    assert (int(hi) << 64) | int(lo) == a * b
    assert W.clz64(np.uint64(a)) == 64 - a.bit_length()


@SETTINGS
@given(u256s, st.integers(0, 300))
def test_shifts(a, n):
    A = W.to_u256(a)
    assert py(W.u256_shl(A, n)) == (a << n) & M256
    assert py(W.u256_shr(A, n)) == a >> n


@SETTINGS
@given(u256s, nonzero)
def test_divmod_256(a, b):
    q, r = W.u256_divmod(W.to_u256(a), W.to_u256(b))
    assert (py(q), py(r)) == divmod(a, b)
    assert py(W.div_rounding_up(W.to_u256(a), W.to_u256(b))) == -(-a // b)


@SETTINGS
@given(_shaped(512), nonzero)
def test_divmod_512_by_256(n, d):
    q, r = W.u512_divmod_u256(W.to_u512(n), W.to_u256(d))
    assert (py(q), py(r)) == divmod(n, d)


def test_divmod_knuth_add_back_cases():
    # Classic inputs where qhat overestimates by 2 and the add-back step runs.
    cases = [
        ((1 << 255) | ((1 << 192) - 1), (1 << 191) + 1),
        ((1 << 512) - 1, (1 << 256) - 1),
        ((1 << 511), (1 << 255) + (1 << 128) + 1),
        (0x7FFFFFFFFFFFFFFF_8000000000000000_0000000000000000 << 64, 0x8000000000000000_0000000000000001),
        (((1 << 64) - 1) << 192 | ((1 << 128) - 1), ((1 << 64) - 1) << 64 | 1),
    ]
    for n, d in cases:
        q, r = W.u512_divmod_u256(W.to_u512(n), W.to_u256(d))
        assert (py(q), py(r)) == divmod(n, d)


@SETTINGS
@given(u256s, u256s, u256s)
def test_mul_div(a, b, d):
    A, B, D = W.to_u256(a), W.to_u256(b), W.to_u256(d)
    r, ok = W.mul_div(A, B, D)
    if d == 0 or a * b // d > M256:
        assert not ok
    else:
        assert ok and py(r) == a * b // d
    r, ok = W.mul_div_rounding_up(A, B, D)
    if d == 0 or -(-a * b // d) > M256:
        assert not ok
    else:
        assert ok and py(r) == -(-a * b // d)


def test_mul_div_revert_at_max():
    # result == 2**256-1 with a remainder: mulDivRoundingUp reverts, mulDiv does not
    d = 2
    a = M256
    b = 2 * 1 + 1  # a*3//2 > M256 -> revert in both
    assert not W.mul_div(W.to_u256(a), W.to_u256(b), W.to_u256(d))[1]
    r, ok = W.mul_div(W.to_u256(M256), W.to_u256(M256), W.to_u256(M256))
    assert ok and py(r) == M256
    r, ok = W.mul_div_rounding_up(W.to_u256(M256), W.to_u256(M256 - 1), W.to_u256(M256 - 1))
    assert ok and py(r) == M256


@SETTINGS
@given(st.integers(0, 2**200))
def test_float_conversion_close(a):
    f = W.u256_to_f64(W.to_u256(a))
    assert abs(f - float(a)) <= float(a) * 1e-15 + 1
    back = py(W.u256_from_f64(float(a)))
    assert abs(back - int(float(a))) <= int(float(a)) >> 50


def _near(*bits):
    """Values at and just around 2**k (and 0 / max) for the given k: the fast paths' boundaries."""
    edges = sorted({max(0, (1 << k) + e) for k in bits for e in (-2, -1, 0, 1)} | {0, 1})
    return st.one_of(st.sampled_from(edges), st.integers(0, max(edges)))


@SETTINGS
@given(st.one_of(u256s, _near(64, 128, 160, 192, 255).filter(lambda x: x <= M256)),
       st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 100, 500, 3000, 10000, 999_999, 10**6,
                                                              2**32 - 1, 2**32, 2**64 - 1])),
       st.one_of(st.integers(1, 2**32 - 1), st.integers(1, 2**64 - 1),
                 st.sampled_from([1, 2, 10**6 - 3000, 10**6, 2**31, 2**32 - 1, 2**32, 2**63, 2**64 - 1])),
       st.booleans())
def test_mul_div_small(a, c, d, up):
    """mul_div_small (u64 factor, u64 divisor) is mulDiv / mulDivRoundingUp."""
    r, ok = W.mul_div_small(W.to_u256(a), np.uint64(c), np.uint64(d), up)
    q = -(-a * c // d) if up else a * c // d
    if q > M256:
        assert not ok
    else:
        assert ok and py(r) == q
    r2, ok2 = (W.mul_div_rounding_up if up else W.mul_div)(W.to_u256(a), W.to_u256(c), W.to_u256(d))
    assert ok2 == ok and (not ok or py(r2) == py(r))


def test_mul_div_small_edges():
    for a in (0, 1, 2**64 - 1, 2**64, 2**128 - 1, 2**128, 2**192, M256 - 1, M256):
        for c in (0, 1, 3, 997_000, 2**32 - 1, 2**64 - 1):
            for d in (1, 3, 10**6, 2**32 - 1, 2**32, 2**63 + 1, 2**64 - 1):
                for up in (False, True):
                    r, ok = W.mul_div_small(W.to_u256(a), np.uint64(c), np.uint64(d), up)
                    q = -(-a * c // d) if up else a * c // d
                    assert ok == (q <= M256) and (not ok or py(r) == q), (a, c, d, up)


_DIV_EDGES = [1, 2, 3, 2**32 - 1, 2**32, 2**32 + 1, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


@SETTINGS
@given(st.one_of(st.integers(1, 2**64 - 1), st.sampled_from(_DIV_EDGES), st.integers(1, 2**32)),
       st.integers(0, 2**128 - 1), st.integers(0, 2**64 - 1))
def test_div128by64_hardware_and_software(d, hi_seed, lo):
    """Both 128/64 divisions (x86-64 ``div``, where the machine has it, and the software one
    every other machine uses) are divmod on Python ints, for any u1 < d."""
    u1 = hi_seed % d
    q, r = divmod((u1 << 64) | lo, d)
    for div in (W.div128by64, W.div128by64_soft):
        got = div(np.uint64(u1), np.uint64(lo), np.uint64(d))
        assert (int(got[0]), int(got[1])) == (q, r), (div, u1, lo, d)


def test_div128by64_edges():
    for d in _DIV_EDGES:
        for u1 in {0, 1, d // 2, d - 1} - {d}:
            if u1 >= d:
                continue
            for lo in (0, 1, 2**63, 2**64 - 1, d - 1, (d * 7) % 2**64):
                q, r = divmod((u1 << 64) | lo, d)
                for div in (W.div128by64, W.div128by64_soft):
                    got = div(np.uint64(u1), np.uint64(lo), np.uint64(d))
                    assert (int(got[0]), int(got[1])) == (q, r), (div, u1, lo, d)
