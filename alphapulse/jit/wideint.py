"""Exact wide unsigned integers for Numba kernels: u256 (and u512 products).

A u256 is a tuple of four ``np.uint64`` limbs, limb 0 least significant (the
same limb order as ``alphapulse.protocol.layout`` uses for wide TLV fields).
u128 values (reserves, liquidity) are u256 with the upper two limbs zero.
Tuples live in registers or on the stack: no function here allocates, so they
are safe in the innermost loops of the AMM kernels.

The operations mirror what the Uniswap contracts need: wrapping and checked
add/sub/mul, shifts, comparison, 256/256 and 512/256 division (Knuth,
algorithm D, on 64-bit limbs), and FullMath.mulDiv / mulDivRoundingUp with the
same revert conditions (reported as ``ok=False``).

Speed: limbs are only ever indexed with constants (no indexed tuple writes,
which force the tuple through memory); the long division keeps its remainder
window in scalars, one routine per divisor length; 64x64->128 products use
LLVM's i128 multiply (one mul/mulx). A 128/64 division is one ``div``
instruction on x86-64 (inline assembly: LLVM's i128 division would call
``__udivti3``, which Numba's JIT does not resolve); elsewhere the same
function runs in software (Hacker's Delight ``divlu``).
"""
from __future__ import annotations

import platform

import llvmlite.binding as llvm_binding
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

U0 = np.uint64(0)
U1 = np.uint64(1)
UMAX = np.uint64(0xFFFFFFFFFFFFFFFF)
M32 = np.uint64(0xFFFFFFFF)
S32 = np.uint64(32)
S64 = np.uint64(64)
B32 = np.uint64(1 << 32)
# x86-64: 128/64 division by the ``div`` instruction (its assembly needs LLVM's asm parser)
X86_64 = platform.machine().lower() in ("x86_64", "amd64")
if X86_64:
    llvm_binding.initialize_native_asmparser()


# ---------------------------------------------------------------- python side
def to_u256(x: int) -> tuple:
    """Python int in [0, 2**256) -> u256 limb tuple (np.uint64)."""
    if x < 0 or x >> 256:
        raise ValueError(f"value out of u256 range: {x}")
    m = (1 << 64) - 1
    return (np.uint64(x & m), np.uint64((x >> 64) & m),
            np.uint64((x >> 128) & m), np.uint64((x >> 192) & m))


def i128_rows(values) -> np.ndarray:
    """Signed ints (int128, e.g. liquidityNet) -> uint64[max(1, n), 2] two's-complement limbs."""
    out = np.zeros((max(1, len(values)), 2), dtype=np.uint64)
    for i, v in enumerate(values):
        v &= (1 << 128) - 1
        out[i, 0] = v & ((1 << 64) - 1)
        out[i, 1] = v >> 64
    return out


def to_u512(x: int) -> tuple:
    if x < 0 or x >> 512:
        raise ValueError(f"value out of u512 range: {x}")
    m = (1 << 64) - 1
    return tuple(np.uint64((x >> (64 * i)) & m) for i in range(8))


def from_limbs(t) -> int:
    """Limb tuple/array (limb 0 least significant) -> Python int."""
    v = 0
    for i, limb in enumerate(t):
        v |= int(limb) << (64 * i)
    return v


# ---------------------------------------------------------------- constructors
@njit(cache=True)
def u256_zero():
    return (U0, U0, U0, U0)


@njit(cache=True)
def u256_from_u64(x):
    """u64 (any non-negative integer type < 2**64) -> u256."""
    return (np.uint64(x), U0, U0, U0)


@njit(cache=True)
def u256_from_u128(lo, hi):
    return (np.uint64(lo), np.uint64(hi), U0, U0)


@njit(cache=True)
def u256_max():
    return (UMAX, UMAX, UMAX, UMAX)


# ---------------------------------------------------------------- 64-bit helpers
@intrinsic
def _mul64_i128(typingctx, a, b):
    """64x64 -> 128-bit product through LLVM's i128 multiply (one mul/mulx)."""
    if a != types.uint64 or b != types.uint64:
        return None
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        i64 = ir.IntType(64)
        p = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        lo = builder.trunc(p, i64)
        hi = builder.trunc(builder.lshr(p, ir.Constant(i128, 64)), i64)
        return context.make_tuple(builder, signature.return_type, (hi, lo))

    return sig, codegen


@njit(cache=True)
def mul64(a, b):
    """Full 64x64 -> 128-bit product as (hi, lo)."""
    return _mul64_i128(np.uint64(a), np.uint64(b))


@intrinsic
def _ctlz64(typingctx, x):
    """LLVM's ctlz on a u64 (one lzcnt/bsr), defined as 64 for 0."""
    if x != types.uint64:
        return None
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctlz(args[0], ir.Constant(ir.IntType(1), 0))

    return sig, codegen


@njit(cache=True)
def clz64(x):
    """Leading zero bits of a u64 (64 for 0)."""
    return np.int64(_ctlz64(np.uint64(x)))


@njit(cache=True)
def _div128by64_norm(u1, u0, v):
    """(u1*2**64 + u0) // v and remainder, for normalised v (top bit set), u1 < v.

    Hacker's Delight ``divlu`` on 32-bit half digits.
    """
    vn1 = v >> S32
    vn0 = v & M32
    un1 = u0 >> S32
    un0 = u0 & M32
    q1 = u1 // vn1
    rhat = u1 - q1 * vn1
    while q1 >= B32 or q1 * vn0 > ((rhat << S32) | un1):
        q1 -= U1
        rhat += vn1
        if rhat >= B32:
            break
    un21 = (u1 << S32) + un1 - q1 * v
    q0 = un21 // vn1
    rhat = un21 - q0 * vn1
    while q0 >= B32 or q0 * vn0 > ((rhat << S32) | un0):
        q0 -= U1
        rhat += vn1
        if rhat >= B32:
            break
    r = (un21 << S32) + un0 - q0 * v
    return (q1 << S32) | q0, r


@intrinsic
def _divq(typingctx, u1, u0, d):
    """x86-64 ``div``: (u1*2**64 + u0) // d and remainder in one instruction. The caller
    guarantees u1 < d (else the quotient overflows and the CPU raises a divide error)."""
    if u1 != types.uint64 or u0 != types.uint64 or d != types.uint64:
        return None
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(ir.LiteralStructType([i64, i64]), [i64, i64, i64])
        div = ir.InlineAsm(fnty, "divq $4", "={rax},={rdx},{rax},{rdx},r,~{flags}")
        qr = builder.call(div, [args[1], args[0], args[2]])
        return context.make_tuple(builder, signature.return_type,
                                  (builder.extract_value(qr, 0), builder.extract_value(qr, 1)))

    return sig, codegen


@njit(cache=True)
def div128by64_soft(u1, u0, d):
    """:func:`div128by64` in software: normalise d, ``_div128by64_norm``, shift the remainder back."""
    s = clz64(d)
    if s == 0:
        return _div128by64_norm(u1, u0, d)
    bs = np.uint64(s)
    rs = np.uint64(64 - s)
    q, r = _div128by64_norm((u1 << bs) | (u0 >> rs), u0 << bs, d << bs)
    return q, r >> bs


if X86_64:
    @njit(cache=True)
    def div128by64(u1, u0, d):
        """(u1*2**64 + u0) // d and remainder for 0 < d, u1 < d (the quotient fits 64 bits)."""
        return _divq(np.uint64(u1), np.uint64(u0), np.uint64(d))
else:
    div128by64 = div128by64_soft


# ---------------------------------------------------------------- add / sub / compare
@njit(cache=True)
def _addc(a, b, c):
    s = a + b
    c1 = s < a
    s2 = s + c
    c2 = s2 < s
    return s2, (U1 if (c1 or c2) else U0)


@njit(cache=True)
def _subb(a, b, br):
    d = a - b
    b1 = a < b
    d2 = d - br
    b2 = d < br
    return d2, (U1 if (b1 or b2) else U0)


@njit(cache=True)
def u256_add(a, b):
    """Wrapping a + b and the carry out (True when the true sum >= 2**256)."""
    r0, c = _addc(a[0], b[0], U0)
    r1, c = _addc(a[1], b[1], c)
    r2, c = _addc(a[2], b[2], c)
    r3, c = _addc(a[3], b[3], c)
    return (r0, r1, r2, r3), c != U0


@njit(cache=True)
def u256_sub(a, b):
    """Wrapping a - b and the borrow out (True when a < b)."""
    r0, c = _subb(a[0], b[0], U0)
    r1, c = _subb(a[1], b[1], c)
    r2, c = _subb(a[2], b[2], c)
    r3, c = _subb(a[3], b[3], c)
    return (r0, r1, r2, r3), c != U0


@njit(cache=True)
def u256_add_u64(a, x):
    r0, c = _addc(a[0], np.uint64(x), U0)
    r1, c = _addc(a[1], U0, c)
    r2, c = _addc(a[2], U0, c)
    r3, c = _addc(a[3], U0, c)
    return (r0, r1, r2, r3), c != U0


@njit(cache=True)
def u256_cmp(a, b):
    """-1, 0 or 1 as a <, ==, > b."""
    for i in range(3, -1, -1):
        if a[i] != b[i]:
            return -1 if a[i] < b[i] else 1
    return 0


@njit(cache=True)
def u256_lt(a, b):
    return u256_cmp(a, b) < 0


@njit(cache=True)
def u256_le(a, b):
    return u256_cmp(a, b) <= 0


@njit(cache=True)
def u256_eq(a, b):
    return a[0] == b[0] and a[1] == b[1] and a[2] == b[2] and a[3] == b[3]


@njit(cache=True)
def u256_is_zero(a):
    return (a[0] | a[1] | a[2] | a[3]) == U0


@njit(cache=True)
def u256_bitlen(a):
    """Number of significant bits (0 for zero)."""
    for i in range(3, -1, -1):
        if a[i] != U0:
            return 64 * i + 64 - clz64(a[i])
    return 0


@njit(cache=True)
def u256_fits_bits(a, bits):
    return u256_bitlen(a) <= bits


# ---------------------------------------------------------------- shifts
@njit(cache=True)
def u256_shl(a, n):
    """a << n mod 2**256, 0 <= n (n >= 256 gives 0)."""
    if n >= 256:
        return (U0, U0, U0, U0)
    ls = n // 64
    if ls == 0:
        x0, x1, x2, x3 = a[0], a[1], a[2], a[3]
    elif ls == 1:
        x0, x1, x2, x3 = U0, a[0], a[1], a[2]
    elif ls == 2:
        x0, x1, x2, x3 = U0, U0, a[0], a[1]
    else:
        x0, x1, x2, x3 = U0, U0, U0, a[0]
    b = n % 64
    if b == 0:
        return (x0, x1, x2, x3)
    bs = np.uint64(b)
    rs = np.uint64(64 - b)
    return (x0 << bs, (x1 << bs) | (x0 >> rs), (x2 << bs) | (x1 >> rs), (x3 << bs) | (x2 >> rs))


@njit(cache=True)
def u256_shr(a, n):
    """a >> n, 0 <= n (n >= 256 gives 0)."""
    if n >= 256:
        return (U0, U0, U0, U0)
    ls = n // 64
    if ls == 0:
        x0, x1, x2, x3 = a[0], a[1], a[2], a[3]
    elif ls == 1:
        x0, x1, x2, x3 = a[1], a[2], a[3], U0
    elif ls == 2:
        x0, x1, x2, x3 = a[2], a[3], U0, U0
    else:
        x0, x1, x2, x3 = a[3], U0, U0, U0
    b = n % 64
    if b == 0:
        return (x0, x1, x2, x3)
    bs = np.uint64(b)
    rs = np.uint64(64 - b)
    return ((x0 >> bs) | (x1 << rs), (x1 >> bs) | (x2 << rs), (x2 >> bs) | (x3 << rs), x3 >> bs)


# ---------------------------------------------------------------- multiply
@njit(cache=True)
def _mac(a, b, t, c):
    """a*b + t + c as (lo, hi); never overflows 128 bits."""
    hi, lo = mul64(a, b)
    s = lo + t
    if s < lo:
        hi += U1
    s2 = s + c
    if s2 < c:
        hi += U1
    return s2, hi


@njit(cache=True)
def _mac_row(x, b0, b1, b2, b3, r0, r1, r2, r3):
    """(r0..r3) + x*(b0..b3) as five limbs."""
    r0, c = _mac(x, b0, r0, U0)
    r1, c = _mac(x, b1, r1, c)
    r2, c = _mac(x, b2, r2, c)
    r3, c = _mac(x, b3, r3, c)
    return r0, r1, r2, r3, c


@njit(cache=True)
def u256_mul_full(a, b):
    """Exact 512-bit product of two u256, as 8 limbs."""
    b0, b1, b2, b3 = b[0], b[1], b[2], b[3]
    p0 = p1 = p2 = p3 = p4 = p5 = p6 = p7 = U0
    if a[0] != U0:
        p0, p1, p2, p3, p4 = _mac_row(a[0], b0, b1, b2, b3, U0, U0, U0, U0)
    if a[1] != U0:
        p1, p2, p3, p4, p5 = _mac_row(a[1], b0, b1, b2, b3, p1, p2, p3, p4)
    if a[2] != U0:
        p2, p3, p4, p5, p6 = _mac_row(a[2], b0, b1, b2, b3, p2, p3, p4, p5)
    if a[3] != U0:
        p3, p4, p5, p6, p7 = _mac_row(a[3], b0, b1, b2, b3, p3, p4, p5, p6)
    return (p0, p1, p2, p3, p4, p5, p6, p7)


@njit(cache=True)
def u256_mul(a, b):
    """Wrapping a * b mod 2**256 and an overflow flag (true product >= 2**256)."""
    p = u256_mul_full(a, b)
    ovf = (p[4] | p[5] | p[6] | p[7]) != U0
    return (p[0], p[1], p[2], p[3]), ovf


@njit(cache=True)
def u256_mul_u64(a, x):
    """a * x for a u64 multiplier: wrapping result and overflow flag."""
    x = np.uint64(x)
    h0, l0 = mul64(a[0], x)
    h1, l1 = mul64(a[1], x)
    h2, l2 = mul64(a[2], x)
    h3, l3 = mul64(a[3], x)
    r0 = l0
    r1, c = _addc(l1, h0, U0)
    r2, c = _addc(l2, h1, c)
    r3, c = _addc(l3, h2, c)
    return (r0, r1, r2, r3), (h3 + c) != U0


# ---------------------------------------------------------------- divide
@njit(cache=True)
def u512_divmod_u256(u, v):
    """Knuth division of a u512 (8 limbs) by a non-zero u256: (quotient u512, remainder u256).

    The caller guarantees v != 0.
    """
    n = 4
    while n > 0 and v[n - 1] == U0:
        n -= 1
    m_all = 8
    while m_all > 0 and u[m_all - 1] == U0:
        m_all -= 1
    q = (U0, U0, U0, U0, U0, U0, U0, U0)
    if m_all < n:
        return q, (u[0], u[1], u[2], u[3])
    s = clz64(v[n - 1])
    bs = np.uint64(s)
    rs = np.uint64(64 - s)
    # normalised divisor and dividend (one extra limb); limbs at and above
    # n (m_all) are zero, so shifting all of them is exact
    if s != 0:
        vn = (v[0] << bs, (v[1] << bs) | (v[0] >> rs), (v[2] << bs) | (v[1] >> rs),
              (v[3] << bs) | (v[2] >> rs))
        un = (u[0] << bs, (u[1] << bs) | (u[0] >> rs), (u[2] << bs) | (u[1] >> rs),
              (u[3] << bs) | (u[2] >> rs), (u[4] << bs) | (u[3] >> rs),
              (u[5] << bs) | (u[4] >> rs), (u[6] << bs) | (u[5] >> rs),
              (u[7] << bs) | (u[6] >> rs), u[7] >> rs)
    else:
        vn = (v[0], v[1], v[2], v[3])
        un = (u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], U0)

    if n == 1:
        vtop = vn[0]
        r = un[m_all]
        for j in range(m_all - 1, -1, -1):
            qj, r = div128by64(r, un[j], vtop)
            q = (qj, q[0], q[1], q[2], q[3], q[4], q[5], q[6])
        return q, (r >> bs, U0, U0, U0)
    if n == 2:
        qd, w0, w1, w2 = _knuth_n2(un, m_all, vn[0], vn[1])
        w3 = U0
    elif n == 3:
        qd, w0, w1, w2, w3 = _knuth_n3(un, m_all, vn[0], vn[1], vn[2])
    else:
        qd, w0, w1, w2, w3, w4 = _knuth_n4(un, m_all, vn[0], vn[1], vn[2], vn[3])
    # remainder: window (w0..w_n) >> s, only the low n limbs are non-zero
    if s != 0:
        r = ((w0 >> bs) | (w1 << rs), (w1 >> bs) | (w2 << rs),
             (w2 >> bs) | (w3 << rs), w3 >> bs)
    else:
        r = (w0, w1, w2, w3)
    if n == 2:
        r = (r[0], r[1], U0, U0)
    elif n == 3:
        r = (r[0], r[1], r[2], U0)
    return qd, r


@njit(cache=True)
def _qhat(wt, wt1, wt2, vtop, vsec):
    """Knuth D3: quotient digit estimate from the window's top three limbs.

    Exceeds the true digit by at most one (corrected by the add-back).
    """
    check = True
    if wt >= vtop:
        qhat = UMAX
        rhat = wt1 + vtop
        if rhat < wt1:
            check = False
    else:
        qhat, rhat = div128by64(wt, wt1, vtop)
    while check:
        ph, pl = mul64(qhat, vsec)
        if ph > rhat or (ph == rhat and pl > wt2):
            qhat -= U1
            r2 = rhat + vtop
            if r2 < rhat:
                break
            rhat = r2
        else:
            break
    return qhat


@njit(cache=True)
def _msub(t, v, qhat, borrow):
    """t - (qhat*v + borrow) on one limb: (difference, borrow out)."""
    ph, pl = mul64(qhat, v)
    pl2 = pl + borrow
    if pl2 < pl:
        ph += U1
    if t < pl2:
        ph += U1
    return t - pl2, ph


@njit(cache=True)
def _knuth_n2(un, m_all, v0, v1):
    """Algorithm D for a normalised 2-limb divisor; the remainder window is held
    in scalars (no indexed tuple writes). Returns (quotient u512, w0, w1, w2)."""
    q = (U0, U0, U0, U0, U0, U0, U0, U0)
    w2 = un[m_all]
    w1 = un[m_all - 1]
    for j in range(m_all - 2, -1, -1):
        w0 = un[j]
        qhat = _qhat(w2, w1, w0, v1, v0)
        w0, b = _msub(w0, v0, qhat, U0)
        w1, b = _msub(w1, v1, qhat, b)
        if w2 < b:
            qhat -= U1
            w0, c = _addc(w0, v0, U0)
            w1, c = _addc(w1, v1, c)
        q = (qhat, q[0], q[1], q[2], q[3], q[4], q[5], q[6])
        w2 = w1
        w1 = w0
    return q, w1, w2, U0


@njit(cache=True)
def _knuth_n3(un, m_all, v0, v1, v2):
    q = (U0, U0, U0, U0, U0, U0, U0, U0)
    w3 = un[m_all]
    w2 = un[m_all - 1]
    w1 = un[m_all - 2]
    for j in range(m_all - 3, -1, -1):
        w0 = un[j]
        qhat = _qhat(w3, w2, w1, v2, v1)
        w0, b = _msub(w0, v0, qhat, U0)
        w1, b = _msub(w1, v1, qhat, b)
        w2, b = _msub(w2, v2, qhat, b)
        if w3 < b:
            qhat -= U1
            w0, c = _addc(w0, v0, U0)
            w1, c = _addc(w1, v1, c)
            w2, c = _addc(w2, v2, c)
        q = (qhat, q[0], q[1], q[2], q[3], q[4], q[5], q[6])
        w3 = w2
        w2 = w1
        w1 = w0
    return q, w1, w2, w3, U0


@njit(cache=True)
def _knuth_n4(un, m_all, v0, v1, v2, v3):
    q = (U0, U0, U0, U0, U0, U0, U0, U0)
    w4 = un[m_all]
    w3 = un[m_all - 1]
    w2 = un[m_all - 2]
    w1 = un[m_all - 3]
    for j in range(m_all - 4, -1, -1):
        w0 = un[j]
        qhat = _qhat(w4, w3, w2, v3, v2)
        w0, b = _msub(w0, v0, qhat, U0)
        w1, b = _msub(w1, v1, qhat, b)
        w2, b = _msub(w2, v2, qhat, b)
        w3, b = _msub(w3, v3, qhat, b)
        if w4 < b:
            qhat -= U1
            w0, c = _addc(w0, v0, U0)
            w1, c = _addc(w1, v1, c)
            w2, c = _addc(w2, v2, c)
            w3, c = _addc(w3, v3, c)
        q = (qhat, q[0], q[1], q[2], q[3], q[4], q[5], q[6])
        w4 = w3
        w3 = w2
        w2 = w1
        w1 = w0
    return q, w1, w2, w3, w4, U0


@njit(cache=True)
def u256_divmod(a, b):
    """(a // b, a % b) for u256, b != 0 (caller checks)."""
    if a[1] == U0 and a[2] == U0 and a[3] == U0 and b[1] == U0 and b[2] == U0 and b[3] == U0:
        return (a[0] // b[0], U0, U0, U0), (a[0] % b[0], U0, U0, U0)
    q, r = u512_divmod_u256((a[0], a[1], a[2], a[3], U0, U0, U0, U0), b)
    return (q[0], q[1], q[2], q[3]), r


@njit(cache=True)
def u256_div(a, b):
    """a // b; EVM semantics: 0 when b == 0."""
    if u256_is_zero(b):
        return (U0, U0, U0, U0)
    q, _ = u256_divmod(a, b)
    return q


@njit(cache=True)
def div_rounding_up(a, b):
    """UnsafeMath.divRoundingUp: ceil(a / b) (b == 0 gives 0 as in the EVM)."""
    if u256_is_zero(b):
        return (U0, U0, U0, U0)
    q, r = u256_divmod(a, b)
    if not u256_is_zero(r):
        q, _ = u256_add_u64(q, 1)
    return q


@njit(cache=True)
def _pow2_shift(d):
    """k when d == 2**k, else -1 (divisions by Q96 and friends become shifts)."""
    k = -1
    for i in range(4):
        x = d[i]
        if x != U0:
            if k >= 0 or (x & (x - U1)) != U0:
                return -1
            k = 64 * i + 63 - clz64(x)
    return k


@njit(cache=True)
def _u512_shr_parts(p, k):
    """(p >> k as 8 limbs, whether any of the k low bits is set), 0 <= k < 256."""
    ls = k // 64
    if ls == 0:
        x = p
        rem = False
    elif ls == 1:
        x = (p[1], p[2], p[3], p[4], p[5], p[6], p[7], U0)
        rem = p[0] != U0
    elif ls == 2:
        x = (p[2], p[3], p[4], p[5], p[6], p[7], U0, U0)
        rem = (p[0] | p[1]) != U0
    else:
        x = (p[3], p[4], p[5], p[6], p[7], U0, U0, U0)
        rem = (p[0] | p[1] | p[2]) != U0
    b = k % 64
    if b == 0:
        return x, rem
    bs = np.uint64(b)
    rs = np.uint64(64 - b)
    if (x[0] & ((U1 << bs) - U1)) != U0:
        rem = True
    q = ((x[0] >> bs) | (x[1] << rs), (x[1] >> bs) | (x[2] << rs), (x[2] >> bs) | (x[3] << rs),
         (x[3] >> bs) | (x[4] << rs), (x[4] >> bs) | (x[5] << rs), (x[5] >> bs) | (x[6] << rs),
         (x[6] >> bs) | (x[7] << rs), x[7] >> bs)
    return q, rem


@njit(cache=True)
def mul_div(a, b, d):
    """FullMath.mulDiv: floor(a*b/d) with a 512-bit intermediate.

    Returns (result, ok); ok is False where the contract reverts
    (d == 0 or result >= 2**256).
    """
    if u256_is_zero(d):
        return (U0, U0, U0, U0), False
    p = u256_mul_full(a, b)
    k = _pow2_shift(d)
    if k >= 0:
        q, _ = _u512_shr_parts(p, k)
    else:
        q, _ = u512_divmod_u256(p, d)
    ok = (q[4] | q[5] | q[6] | q[7]) == U0
    return (q[0], q[1], q[2], q[3]), ok


@njit(cache=True)
def mul_div_rounding_up(a, b, d):
    """FullMath.mulDivRoundingUp: ceil(a*b/d); ok False where the contract reverts."""
    if u256_is_zero(d):
        return (U0, U0, U0, U0), False
    p = u256_mul_full(a, b)
    k = _pow2_shift(d)
    if k >= 0:
        q, has_rem = _u512_shr_parts(p, k)
    else:
        q, r = u512_divmod_u256(p, d)
        has_rem = not u256_is_zero(r)
    if (q[4] | q[5] | q[6] | q[7]) != U0:
        return (q[0], q[1], q[2], q[3]), False
    res = (q[0], q[1], q[2], q[3])
    if has_rem:
        if u256_eq(res, u256_max()):
            return res, False
        res, _ = u256_add_u64(res, 1)
    return res, True


@njit(cache=True)
def mul_div_small(a, c, d, round_up):
    """FullMath.mulDiv (round_up False) / mulDivRoundingUp (True) of a u256 by a u64
    ``c`` over a u64 divisor ``0 < d`` (both np.uint64): the fee arithmetic of SwapMath
    (amount * (1e6 - fee) / 1e6, amount * fee / (1e6 - fee)). The same (result, ok) as
    :func:`mul_div` / :func:`mul_div_rounding_up` on these operands, without the 512-bit
    Knuth division: a*c has at most five limbs, divided limb by limb (one 128/64 division
    each) from the highest non-zero one."""
    h0, l0 = mul64(a[0], c)
    h1, l1 = mul64(a[1], c)
    h2, l2 = mul64(a[2], c)
    h3, l3 = mul64(a[3], c)
    p1, k = _addc(l1, h0, U0)
    p2, k = _addc(l2, h1, k)
    p3, k = _addc(l3, h2, k)
    p4 = h3 + k
    r = U0
    q4 = q3 = q2 = q1 = U0
    if p4 != U0:
        q4, r = div128by64(r, p4, d)
    if (r | p3) != U0:
        q3, r = div128by64(r, p3, d)
    if (r | p2) != U0:
        q2, r = div128by64(r, p2, d)
    if (r | p1) != U0:
        q1, r = div128by64(r, p1, d)
    q0, r = div128by64(r, l0, d)
    q = (q0, q1, q2, q3)
    if q4 != U0:
        return q, False
    if round_up and r != U0:
        up, carry = u256_add_u64(q, U1)
        if carry:
            return q, False
        return up, True
    return q, True


# ---------------------------------------------------------------- floats (screening only)
@njit(cache=True)
def u256_to_f64(a):
    """Approximate value as float64: for screening candidates, never for money."""
    return (float(a[3]) * 6.277101735386681e57 + float(a[2]) * 3.402823669209385e38
            + float(a[1]) * 1.8446744073709552e19 + float(a[0]))


@njit(cache=True)
def u256_from_f64(x):
    """Non-negative float -> u256 (truncating); saturates at 2**256-1."""
    if not (x > 0.0):
        return (U0, U0, U0, U0)
    if x >= 1.157920892373162e77:
        return u256_max()
    l3 = np.uint64(x / 6.277101735386681e57) if x >= 6.277101735386681e57 else U0
    x -= float(l3) * 6.277101735386681e57
    if x < 0.0:
        x = 0.0
    l2 = np.uint64(x / 3.402823669209385e38) if x >= 3.402823669209385e38 else U0
    x -= float(l2) * 3.402823669209385e38
    if x < 0.0:
        x = 0.0
    l1 = np.uint64(x / 1.8446744073709552e19) if x >= 1.8446744073709552e19 else U0
    x -= float(l1) * 1.8446744073709552e19
    if x < 0.0:
        x = 0.0
    l0 = np.uint64(x) if x < 1.8446744073709552e19 else UMAX
    return (l0, l1, l2, l3)
