"""Exact Uniswap V3 kernels: ns per call of the swap and of FullMath.mulDiv.

Cases, all timed in one run (each a compiled loop over a fixed set of inputs,
the best of ``--repeat`` timings; the set-up is that of ``bench_v3_speedup`` in
``perf/bench_strategy.py``: tick spacing 60, twelve positions of 1e21, the
price just above tick 0):

* ``v3_0tick_ns``    ``v3_exact_input`` (the engine's call), amounts that cross
                     no initialised tick (1e9 .. 3e19, both directions)
* ``v3_12tick_ns``   the same, amounts that cross 1 or 2 initialised ticks
* ``v3_10tick_ns``   ``v3_exact_input`` on the ``bench_v3_speedup`` amounts
                     (~10.6 crossings on average)
* ``v3_swap_10tick_ns``  ``v3_swap`` (computes the final tick too) on the same
                     amounts: the figure of ``bench_v3_speedup``
* ``v3_10tick_resumed_ns``  the same amounts, each resumed from the checkpoint of a
                     swap of 1 ppm less (``v3_exact_input_from``: the exact
                     search's probes next to a simulated input; needs a checkout
                     that has it), with the checkpoint's step range where the
                     checkout has ``v3_exact_input_at`` (as the engine resumes;
                     ``v3_resumed_with_step_range`` says which)
* ``v3_usdc_0tick_ns``  ``v3_exact_input`` on a USDC/WETH-like pool (tick
                     about 200,000 below 0, spacing 10, L ~ 2e18 .. 2e19), no crossing
* ``algebra_0tick_ns`` / ``algebra_12tick_ns`` / ``algebra_10tick_ns``  the Algebra v1.0
                     (QuickSwap V3) swap, ``amm_algebra.algebra_exact_input`` at a fee of
                     3000 pips, on the same pool and amounts as the three ``v3_*`` cases above
                     (Algebra's spacing is 60); each with ``*_py_ratio``: the time of the
                     pure-Python integer swap (``reference.v3_swap``, the same math) over the
                     kernel's (skipped at a ``--root`` without amm_algebra)
* ``mul_div_128_ns`` / ``mul_div_256_ns``  ``mul_div`` with all three operands
                     random full-width 128-bit (resp. 256-bit) values
* ``mul_div_up_fee_ns``  ``mul_div_rounding_up(amount, fee, 1e6 - fee)``

Every result is checked against ``alphapulse.strategy.reference`` before timing.

Usage: python perf/bench_v3_kernels.py [--quick] [--json] [--root DIR]
(``--root`` imports ``alphapulse`` from DIR, e.g. a copy of an older commit,
to compare). The last line with ``--json`` is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer inputs and repeats")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--repeat", type=int, default=0, help="timings per case (best is kept)")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="directory to import alphapulse from (a checkout that has "
                         "reference.pool_from_positions and wideint.i128_rows)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = _args(argv)
    sys.path.insert(0, os.path.abspath(args.root))
    # an editable install maps ``alphapulse`` to its checkout ahead of sys.path: drop that
    # mapping so that --root decides
    sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
    import numpy as np
    from numba import njit

    from alphapulse.jit import amm_v3, wideint
    from alphapulse.jit.wideint import i128_rows, to_u256
    from alphapulse.strategy import reference as R

    n = 500 if args.quick else 2000
    repeat = args.repeat or (5 if args.quick else 9)
    rng = np.random.default_rng(4)
    res: dict = {"alphapulse": os.path.dirname(amm_v3.__file__)}

    def pool(spacing, positions, sp):
        tick, liq, ticks, nets = R.pool_from_positions(positions, sp)
        ta = np.array(ticks, np.int32)
        na = i128_rows(nets)
        return dict(sp=sp, tick=tick, liq=liq, spacing=spacing, ticks=ticks, nets=nets, ta=ta, na=na)

    @njit(cache=False)
    def run_exact(sp, tick, liq, fee, spacing, ta, na, AM, Z, out):
        for i in range(AM.shape[0]):
            a_out, ok = amm_v3.v3_exact_input((AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3]), Z[i], sp, tick, liq,
                                              fee, spacing, ta, na, ta.shape[0])
            out[i, 0] = a_out[0]
            out[i, 1] = a_out[1]
            out[i, 2] = a_out[2]
            out[i, 3] = np.uint64(ok)

    @njit(cache=False)
    def run_swap(sp, tick, liq, fee, spacing, ta, na, AM, Z, out):
        crossed = 0
        for i in range(AM.shape[0]):
            st, a_in, a_out, s2, l2, t2, c = amm_v3.v3_swap(
                sp, tick, liq, fee, spacing, ta, na, ta.shape[0], Z[i], True,
                (AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3]), amm_v3.default_limit(Z[i]))
            out[i, 0] = a_out[0]
            out[i, 1] = a_out[1]
            out[i, 2] = a_out[2]
            out[i, 3] = np.uint64(t2 - tick + 2**40)
            crossed += c
        return crossed

    @njit(cache=False)
    def run_checkpoint(sp, tick, liq, fee, spacing, ta, na, AM, Z, CK):
        z = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))
        for i in range(AM.shape[0]):
            _, ok, c = amm_v3.v3_exact_input_from((AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3]), Z[i], sp, tick, liq,
                                                  z, z, fee, spacing, ta, na, ta.shape[0])
            for k in range(4):
                CK[i, k] = c[0][k]
                CK[i, 4 + k] = c[2][k]
                CK[i, 8 + k] = c[3][k]
                CK[i, 12 + k] = c[4][k]
            CK[i, 16] = np.uint64(c[1])
            CK[i, 17] = np.uint64(ok)

    hinted = hasattr(amm_v3, "v3_exact_input_at")   # checkpoints that hold their step's range

    if hinted:
        @njit(cache=False)
        def resume(a, zfo, fee, spacing, ta, na, CK, i):
            hint = (np.int64(CK[i, 18]), CK[i, 19] != 0, np.int64(CK[i, 20]),
                    (CK[i, 21], CK[i, 22], CK[i, 23], CK[i, 24]), (CK[i, 25], CK[i, 26], CK[i, 27], CK[i, 28]),
                    CK[i, 29] != 0)
            out, ok, _ = amm_v3.v3_exact_input_at(
                a, zfo, (CK[i, 0], CK[i, 1], CK[i, 2], CK[i, 3]), np.int64(CK[i, 16]),
                (CK[i, 4], CK[i, 5], CK[i, 6], CK[i, 7]), (CK[i, 8], CK[i, 9], CK[i, 10], CK[i, 11]),
                (CK[i, 12], CK[i, 13], CK[i, 14], CK[i, 15]), fee, spacing, ta, na, ta.shape[0], hint)
            return out, ok
    else:
        @njit(cache=False)
        def resume(a, zfo, fee, spacing, ta, na, CK, i):
            out, ok, _ = amm_v3.v3_exact_input_from(
                a, zfo, (CK[i, 0], CK[i, 1], CK[i, 2], CK[i, 3]), np.int64(CK[i, 16]),
                (CK[i, 4], CK[i, 5], CK[i, 6], CK[i, 7]), (CK[i, 8], CK[i, 9], CK[i, 10], CK[i, 11]),
                (CK[i, 12], CK[i, 13], CK[i, 14], CK[i, 15]), fee, spacing, ta, na, ta.shape[0])
            return out, ok

    @njit(cache=False)
    def run_resumed(sp, tick, liq, fee, spacing, ta, na, AM, Z, out, CK):
        for i in range(AM.shape[0]):
            a = (AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3])
            used = (CK[i, 8], CK[i, 9], CK[i, 10], CK[i, 11])
            if CK[i, 17] != 0 and wideint.u256_cmp(a, used) >= 0:
                a_out, ok = resume(a, Z[i], fee, spacing, ta, na, CK, i)
            else:
                a_out, ok = amm_v3.v3_exact_input(a, Z[i], sp, tick, liq, fee, spacing, ta, na, ta.shape[0])
            out[i, 0] = a_out[0]
            out[i, 1] = a_out[1]
            out[i, 2] = a_out[2]
            out[i, 3] = np.uint64(ok)

    if hinted:
        @njit(cache=False)
        def run_checkpoint_h(sp, tick, liq, fee, spacing, ta, na, AM, Z, CK):
            run_checkpoint(sp, tick, liq, fee, spacing, ta, na, AM, Z, CK)
            z = (np.uint64(0), np.uint64(0), np.uint64(0), np.uint64(0))
            for i in range(AM.shape[0]):
                _, _, c = amm_v3.v3_exact_input_from((AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3]), Z[i], sp, tick,
                                                     liq, z, z, fee, spacing, ta, na, ta.shape[0])
                h = c[5]
                CK[i, 18] = np.uint64(h[0])
                CK[i, 19] = np.uint64(h[1])
                CK[i, 20] = np.uint64(h[2])
                for k in range(4):
                    CK[i, 21 + k] = h[3][k]
                    CK[i, 25 + k] = h[4][k]
                CK[i, 29] = np.uint64(h[5])

    try:
        from alphapulse.jit import amm_algebra
    except ImportError:
        amm_algebra = None

    @njit(cache=False)
    def run_algebra(sp, tick, liq, fee, ta, na, AM, Z, out):
        for i in range(AM.shape[0]):
            a_out, ok = amm_algebra.algebra_exact_input((AM[i, 0], AM[i, 1], AM[i, 2], AM[i, 3]), Z[i], sp, tick,
                                                        liq, fee, ta, na, ta.shape[0])
            out[i, 0] = a_out[0]
            out[i, 1] = a_out[1]
            out[i, 2] = a_out[2]
            out[i, 3] = np.uint64(ok)

    def algebra_case(name, p, fee, amounts, zfos):
        AM, Z = limbs(amounts), np.array(zfos, np.bool_)
        out = np.zeros((len(amounts), 4), np.uint64)
        args_ = (to_u256(p["sp"]), p["tick"], to_u256(p["liq"]), fee, p["ta"], p["na"], AM, Z, out)
        run_algebra(*args_)

        def python_swaps():
            return [R.v3_swap(p["sp"], p["tick"], p["liq"], fee, 60, p["ticks"], p["nets"], z, a)
                    for a, z in zip(amounts, zfos)]
        for i, r in enumerate(python_swaps()):
            got = int(out[i, 0]) | int(out[i, 1]) << 64 | int(out[i, 2]) << 128
            assert out[i, 3] == 1 and got == -(r.amount1 if zfos[i] else r.amount0), (name, amounts[i], zfos[i])
        t_kernel = timed(run_algebra, *args_)
        t_py = timed(python_swaps)
        res[name] = round(t_kernel / len(amounts) * 1e9, 1)
        res[name.replace("_ns", "_py_ratio")] = round(t_py / t_kernel, 1)

    @njit(cache=False)
    def run_mul_div(A, B, D, out, up):
        for i in range(A.shape[0]):
            a = (A[i, 0], A[i, 1], A[i, 2], A[i, 3])
            b = (B[i, 0], B[i, 1], B[i, 2], B[i, 3])
            d = (D[i, 0], D[i, 1], D[i, 2], D[i, 3])
            if up:
                r, ok = wideint.mul_div_rounding_up(a, b, d)
            else:
                r, ok = wideint.mul_div(a, b, d)
            out[i, 0] = r[0] ^ r[1] ^ r[2] ^ r[3]
            out[i, 1] = np.uint64(ok)

    def limbs(xs):
        return np.array([[(x >> (64 * k)) & (2**64 - 1) for k in range(4)] for x in xs], np.uint64)

    def timed(fn, *a):
        best = float("inf")
        for _ in range(repeat):
            t = time.perf_counter()
            fn(*a)
            best = min(best, time.perf_counter() - t)
        return best

    def swap_case(name, p, fee, amounts, zfos, kind="exact"):
        AM, Z = limbs(amounts), np.array(zfos, np.bool_)
        out = np.zeros((len(amounts), 4), np.uint64)
        args_ = (to_u256(p["sp"]), p["tick"], to_u256(p["liq"]), fee, p["spacing"], p["ta"], p["na"], AM, Z, out)
        fn = run_exact if kind == "exact" else run_swap
        if kind == "resumed":
            # the exact search's next probe: each amount 1 ppm above one already simulated,
            # resumed from that simulation's checkpoint (amm_v3.swap_steps)
            first = limbs([a - a // 10**6 for a in amounts])
            ck = np.zeros((len(amounts), 30), np.uint64)
            (run_checkpoint_h if hinted else run_checkpoint)(*args_[:7], first, Z, ck)
            fn = run_resumed
            args_ = args_ + (ck,)
            res["v3_resumed_with_step_range"] = hinted
        crossed = fn(*args_)
        for i, (a, z) in enumerate(zip(amounts, zfos)):
            r = R.v3_swap(p["sp"], p["tick"], p["liq"], fee, p["spacing"], p["ticks"], p["nets"], z, a)
            got = int(out[i, 0]) | int(out[i, 1]) << 64 | int(out[i, 2]) << 128
            assert got == -(r.amount1 if z else r.amount0), (name, a, z)
            if kind == "swap":
                assert int(out[i, 3]) - 2**40 + p["tick"] == r.tick, (name, a, z)
        res[name] = round(timed(fn, *args_) / len(amounts) * 1e9, 1)
        if kind == "swap":
            res[name.replace("_ns", "_crossed_avg")] = round(crossed / len(amounts), 2)

    # -- the bench_v3_speedup pool
    positions = [(-887220, 887220, 10**21)] + [(-60 * k, 60 * k, 10**21) for k in range(1, 12)]
    p = pool(60, positions, R.get_sqrt_ratio_at_tick(0) + 12345)

    def crossings(a, z):
        return R.v3_swap(p["sp"], p["tick"], p["liq"], 3000, 60, p["ticks"], p["nets"], z, a).ticks_crossed

    z0, a0, z12, a12 = [], [], [], []
    while len(a0) < n or len(a12) < n:
        z = bool(rng.integers(0, 2))
        e = rng.uniform(9.0, 20.3)
        a = int(10 ** e)
        c = crossings(a, z)
        if c == 0 and len(a0) < n:
            a0.append(a)
            z0.append(z)
        elif c in (1, 2) and len(a12) < n:
            a12.append(a)
            z12.append(z)
        if len(a12) < n and c == 0 and e > 18:
            # amounts just past the first tick are rarer in a log-uniform draw: add some directly
            a = int(a * rng.uniform(1.5, 4.0))
            if crossings(a, z) in (1, 2):
                a12.append(a)
                z12.append(z)
    swap_case("v3_0tick_ns", p, 3000, a0, z0)
    swap_case("v3_12tick_ns", p, 3000, a12, z12)
    rng10 = np.random.default_rng(4)
    a10 = [int(x) * 10**12 for x in rng10.integers(10**6, 4 * 10**9, n)]
    z10 = [bool(x) for x in rng10.integers(0, 2, n)]
    swap_case("v3_10tick_ns", p, 3000, a10, z10)
    swap_case("v3_swap_10tick_ns", p, 3000, a10, z10, kind="swap")
    if hasattr(amm_v3, "v3_exact_input_from"):      # --root at a checkout from before it: skipped
        swap_case("v3_10tick_resumed_ns", p, 3000, a10, z10, kind="resumed")

    if amm_algebra is not None:
        algebra_case("algebra_0tick_ns", p, 3000, a0, z0)
        algebra_case("algebra_12tick_ns", p, 3000, a12, z12)
        algebra_case("algebra_10tick_ns", p, 3000, a10, z10)

    # -- a USDC/WETH-like pool: token0 6 decimals, token1 18, ETH at ~3000 USD
    t_c = -196_250
    pu = pool(10, [(-887270, 887270, 2 * 10**18)] + [(t_c - 10 * k * 30, t_c + 10 * k * 30, 3 * 10**18)
                                                     for k in range(1, 4)],
              R.get_sqrt_ratio_at_tick(t_c) + 10**20)
    au, zu = [], []
    while len(au) < n:
        z = bool(rng.integers(0, 2))
        a = int(10 ** rng.uniform(4.0, 10.0)) if z else int(10 ** rng.uniform(12.0, 18.5))
        r = R.v3_swap(pu["sp"], pu["tick"], pu["liq"], 500, 10, pu["ticks"], pu["nets"], z, a)
        if r.ticks_crossed == 0:
            au.append(a)
            zu.append(z)
    swap_case("v3_usdc_0tick_ns", pu, 500, au, zu)

    # -- mulDiv
    def md_case(name, A, B, D, up=False):
        out = np.zeros((len(A), 2), np.uint64)
        args_ = (limbs(A), limbs(B), limbs(D), out, up)
        run_mul_div(*args_)
        for i, (a, b, d) in enumerate(zip(A, B, D)):
            q = -(-a * b // d) if up else a * b // d
            ok = q < 2**256
            assert bool(out[i, 1]) == ok, (name, a, b, d)
            if ok:
                assert int(out[i, 0]) == (q ^ (q >> 64) ^ (q >> 128) ^ (q >> 192)) & (2**64 - 1), (name, a, b, d)
        res[name] = round(timed(run_mul_div, *args_) / len(A) * 1e9, 1)

    def rnd(bits, k):
        return [int.from_bytes(rng.bytes(bits // 8), "little") | 1 << (bits - 1) for _ in range(k)]

    md_case("mul_div_128_ns", rnd(128, n), rnd(128, n), rnd(128, n))
    md_case("mul_div_256_ns", rnd(256, n), rnd(256, n), rnd(256, n))
    fees = [int(x) for x in rng.choice([100, 500, 3000, 10000], n)]
    md_case("mul_div_up_fee_ns", rnd(80, n), fees, [10**6 - f for f in fees], up=True)

    res["n"] = n
    res["repeat"] = repeat
    for k, v in res.items():
        if k.endswith("_ns"):
            print(f"{k:24s} {v:10.1f} ns")
        elif k.endswith("_py_ratio"):
            print(f"{k:24s} {v:10.1f} x")
    if args.json:
        print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
