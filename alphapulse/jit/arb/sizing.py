"""Sizing: the input that maximises a cycle's exact profit, and its certificate.

A float model of the cycle (``mobius_optimum``: the closed form for constant
product pools; ``hop_model`` / ``cycle_model`` / ``cycle_piece``: the
piecewise model of concentrated pools; ``model_optimum``) gives a starting
input; ``_exact_ascent`` then searches the exact integer simulation
(:mod:`.cycles`) around it, and ``certified`` stops it once the profit is
within ``PR_SEARCH_TOL_PPB`` parts per billion of the best possible, allowing
for the model's float rounding (``MODEL_FLOAT_REL``) and the integer rounding
staircase (``rounding_staircase``, ``STAIR_CAP_REL``). ``optimise_input`` is
the entry point: amounts in the first token's base units, capped at
``PR_MAX_INPUT_BPS`` of its pool's reserve. Imports :mod:`.params` and
:mod:`.cycles`.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from alphapulse.jit.amm_v3 import v3_exact_input_f64, v3_piece_f64
from alphapulse.jit.pool_state import (
    C_COV_HI, C_COV_LO, C_FEE, C_KIND, C_LIQ, C_TICK, C_V3ROW, KIND_V2, K_SIMULATIONS,
)
from alphapulse.jit.wideint import U0, u256_add, u256_cmp, u256_from_f64, u256_is_zero, u256_sub, u256_to_f64

from alphapulse.jit.arb.params import PR_ITERS_V2, PR_ITERS_V3, PR_NEIGHBOR_SCAN, PR_SEARCH_TOL_PPB, Q96F
from alphapulse.jit.arb.cycles import (
    _marginal_rate, _sqrt, _u128, simulate_cycle, simulate_cycle_ck, virtual_reserves,
)


@njit(cache=True)
def _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters):
    """(profit as float for the search, out u256, ok) at float input x."""
    counters[K_SIMULATIONS] += 1
    amt = u256_from_f64(x)
    if u256_is_zero(amt):
        return -1.0, amt, False
    out, ok = simulate_cycle(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, amt)
    if not ok:
        return -1e300, out, False
    return u256_to_f64(out) - u256_to_f64(amt), out, True


@njit(cache=True)
def mobius_optimum(pools, cyc_p, cyc_z, hops):
    """Closed-form optimal input of the cycle modelled as constant-product pools.

    Composes out(x) = a x / (b + c x) along the path; the profit a x/(b+cx) - x
    is maximal at x* = (sqrt(a b) - b) / c. Exact for V2 pools (up to float
    rounding), a starting point for V3 pools (virtual reserves at the current
    price). Returns (x*, a/b = marginal rate product, first-hop input reserve,
    curvature |profit''(x*)|, modelled profit at x* in start-token units).
    """
    a = 1.0
    b = 1.0
    c = 0.0
    r_first = 0.0
    for i in range(hops):
        p = cyc_p[i]
        r_in, r_out = virtual_reserves(pools, p, cyc_z[i])
        if i == 0:
            r_first = r_in
        g = (1_000_000 - np.int64(pools[p, C_FEE])) / 1_000_000.0
        # compose (a, b, c) with (g*r_out, r_in, g), normalised by the new b
        a2 = a * g * r_out
        b2 = b * r_in
        c2 = r_in * c + g * a
        if b2 <= 0.0 or not (a2 > 0.0):
            return 0.0, 0.0, r_first, 0.0, 0.0
        a = a2 / b2
        c = c2 / b2
        b = 1.0
    if a <= 1.0 or c <= 0.0:
        return 0.0, a, r_first, 0.0, 0.0
    x = (math.sqrt(a) - 1.0) / c
    return x, a, r_first, 2.0 * a * c / (1.0 + c * x) ** 3, a * x / (1.0 + c * x) - x


@njit(cache=True)
def _golden(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, lo, hi, iters, counters):
    """Golden-section search of the exact profit on [lo, hi] (floats, evaluated exactly).

    Returns (best_x u256, best_out u256, best profit float, found, at_edge) where at_edge
    says the search converged onto one end of the bracket.
    """
    z = (U0, U0, U0, U0)
    best_x = z
    best_out = z
    best_f = 0.0
    found = False
    invphi = 0.6180339887498949
    a = lo
    b = hi
    c = b - invphi * (b - a)
    d = a + invphi * (b - a)
    fc, oc, okc = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, c, counters)
    fd, od, okd = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, d, counters)
    moved_a = False
    moved_b = False
    for _ in range(iters):
        if okc and fc > best_f:
            best_f, best_x, best_out, found = fc, u256_from_f64(c), oc, True
        if okd and fd > best_f:
            best_f, best_x, best_out, found = fd, u256_from_f64(d), od, True
        if b - a < 1.0:
            break
        if fc >= fd:
            b = d
            moved_b = True
            d = c
            fd, od, okd = fc, oc, okc
            c = b - invphi * (b - a)
            fc, oc, okc = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, c, counters)
        else:
            a = c
            moved_a = True
            c = d
            fc, oc, okc = fd, od, okd
            d = a + invphi * (b - a)
            fd, od, okd = _profit_f(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, d, counters)
    if okc and fc > best_f:
        best_f, best_x, best_out, found = fc, u256_from_f64(c), oc, True
    if okd and fd > best_f:
        best_f, best_x, best_out, found = fd, u256_from_f64(d), od, True
    return best_x, best_out, best_f, found, (not moved_a) or (not moved_b)


@njit(cache=True)
def hop_model(pools, tticks, tnets, tn, p, zero_for_one, x):
    """Float model of :func:`hop_out` at input ``x``: (out, d out / d in, ok)."""
    fee = np.int64(pools[p, C_FEE])
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r_in, r_out = virtual_reserves(pools, p, zero_for_one)
        g = (1_000_000 - fee) / 1_000_000.0
        a = g * x
        den = r_in + a
        return a * r_out / den, g * r_out * r_in / (den * den), True
    row = np.int64(pools[p, C_V3ROW])
    return v3_exact_input_f64(x, zero_for_one, u256_to_f64(_sqrt(pools, p)) / Q96F, np.int64(pools[p, C_TICK]),
                              _u128(pools, p, C_LIQ), fee, tticks[row], tnets[row], tn[row],
                              np.int64(pools[p, C_COV_LO]), np.int64(pools[p, C_COV_HI]))


@njit(cache=True)
def cycle_model(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x):
    """(modelled output, d output / d input, ok) of the cycle at float input ``x``."""
    amt = x
    slope = 1.0
    for i in range(hops):
        amt, d, ok = hop_model(pools, tticks, tnets, tn, cyc_p[i], cyc_z[i], amt)
        if not ok:
            return amt, 0.0, False
        slope *= d
    return amt, slope, True


@njit(cache=True)
def hop_piece(pools, tticks, tnets, tn, p, zero_for_one, x):
    """The float model of the hop at input ``x`` (:func:`hop_model`) as a Moebius map
    (a y + b) / (c y + d), exact for the model on the range where ``x`` ends; (a, b, c, d, ok)."""
    fee = np.int64(pools[p, C_FEE])
    if pools[p, C_KIND] == np.uint64(KIND_V2):
        r_in, r_out = virtual_reserves(pools, p, zero_for_one)
        g = (1_000_000 - fee) / 1_000_000.0
        return g * r_out, 0.0, g, r_in, True
    row = np.int64(pools[p, C_V3ROW])
    return v3_piece_f64(x, zero_for_one, u256_to_f64(_sqrt(pools, p)) / Q96F, np.int64(pools[p, C_TICK]),
                        _u128(pools, p, C_LIQ), fee, tticks[row], tnets[row], tn[row],
                        np.int64(pools[p, C_COV_LO]), np.int64(pools[p, C_COV_HI]))


@njit(cache=True)
def cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x):
    """The cycle's float model around input ``x``: the composition of its hops' Moebius maps
    (:func:`hop_piece`, each on the range its input at ``x`` ends in), itself a Moebius map
    out(y) = (a y + b) / (c y + d), exact for the model while no hop changes range.
    Returns (a, b, c, d, ok), scaled so that max |a|, |c| is 1."""
    a, b, c, d = 1.0, 0.0, 0.0, 1.0
    y = x
    for i in range(hops):
        ha, hb, hc, hd, ok = hop_piece(pools, tticks, tnets, tn, cyc_p[i], cyc_z[i], y)
        if not ok:
            return a, b, c, d, False
        a, b, c, d = ha * a + hb * c, ha * b + hb * d, hc * a + hd * c, hc * b + hd * d
        m = abs(a) if abs(a) > abs(c) else abs(c)
        if not (m > 0.0) or m == math.inf:
            return a, b, c, d, False
        a, b, c, d = a / m, b / m, c / m, d / m
        if i + 1 < hops:
            y = (a * x + b) / (c * x + d)
    return a, b, c, d, True


MODEL_ITERS = 40
SLOPE_TOL = 1e-13      # |d profit / d input| below this is the optimum to float precision
# The model's optimum needs to be no closer than the exact search's band: at the default
# 1 ppb of the profit that band is ~3e-5 of the input (search_band), at the rounding band
# (tolerance 0) the exact ascent gallops the rest in O(log) simulations.
MODEL_REL_TOL = 1e-9


@njit(cache=True)
def model_optimum(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, cap):
    """Input that maximises the modelled profit of the cycle, at most ``cap``.

    All-V2 cycles: the closed form (:func:`mobius_optimum`), exact for the model. With V3
    pools on the path the model (V3 hops cross initialised ticks like the swap) is a chain
    of Moebius maps, one per combination of ranges the hops end in (:func:`cycle_piece`),
    and still concave in the input. From the closed form on the current ranges, each step
    takes the optimum of the piece at the current input, (sqrt(ad - bc) - d) / c, which is
    the model's optimum as soon as it lies in that same piece (then no step moves it): one
    step when no tick is crossed, a few more per range crossed. The steps stay inside a
    bracket of the optimum kept from the slope's sign (halving it when a step would leave
    it; an input where the exact swaps would fail, past the known ticks, counts as past
    the optimum), at most MODEL_ITERS of them, to MODEL_REL_TOL.
    Returns (x*, modelled profit at x*, |profit''| at x*, all_v2, converged); x* = 0 when
    nothing pays; converged: x* is the model's optimum on [0, cap] (its profit there the
    model's largest), not merely the last input known to be below it.
    """
    x0, _, _, curv, est = mobius_optimum(pools, cyc_p, cyc_z, hops)
    all_v2 = True
    for i in range(hops):
        if pools[cyc_p[i], C_KIND] != np.uint64(KIND_V2):
            all_v2 = False
    if not (x0 > 0.0) or not (cap > 0.0):
        return 0.0, 0.0, 0.0, all_v2, False
    if all_v2:
        if x0 > cap:
            x0 = cap
            out, _, _ = cycle_model(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x0)
            est = out - x0
        return x0, est, curv, True, True
    lo = 0.0                  # the slope is positive there (the rates' product beats 1) ...
    hi = math.inf             # ... and negative (or the swaps fail) there
    x = x0 if x0 < cap else cap
    good = False              # x holds a piece and its optimum
    a = b = c = d = 0.0
    for _ in range(MODEL_ITERS):
        a, b, c, d, ok = cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x)
        det = a * d - b * c
        q = c * x + d
        if not ok or not (det > 0.0) or not (q > 0.0):
            hi = x            # past the known ticks (or a degenerate piece): the optimum is below
            x = 0.5 * (lo + hi)
            continue
        slope = det / (q * q) - 1.0
        if slope > SLOPE_TOL:
            if x >= cap:
                good = True   # still rising at the cap
                break
            lo = x
        elif slope < -SLOPE_TOL:
            hi = x
        else:
            good = True       # flat to float precision: the optimum
            break
        xn = (math.sqrt(det) - d) / c if c > 0.0 else math.inf
        if xn > cap:
            xn = cap
        if not (lo < xn < hi):
            xn = 0.5 * (lo + hi) if hi < math.inf else 2.0 * lo
        if abs(xn - x) <= MODEL_REL_TOL * x + 0.5:
            good = True       # the piece's optimum is where we are
            break
        x = xn
    if not good:
        x = lo                # not converged: the last input known to be below the optimum
        if not (x > 0.0):
            x = 0.5 * hi
        if not (0.0 < x < math.inf):
            return 0.0, 0.0, 0.0, False, False
        a, b, c, d, ok = cycle_piece(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x)
        if not ok:
            return 0.0, 0.0, 0.0, False, False
    q = c * x + d
    det = a * d - b * c
    curv = 2.0 * c * det / (q * q * q)
    return x, (a * x + b) / q - x, curv if curv > 0.0 else 0.0, False, good


@njit(cache=True)
def _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters, ck, ver):
    """(profit u256, out u256, ok): ok False when the cycle reverts or does not pay at input x
    (simulated with the checkpoints ``ck``: :func:`simulate_cycle_ck`)."""
    counters[K_SIMULATIONS] += 1
    out, ok = simulate_cycle_ck(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, ck, ver)
    if not ok or u256_cmp(out, x) <= 0:
        return x, out, False
    pr, _ = u256_sub(out, x)
    return pr, out, True


GOLDEN_STEP = 0.3819660112501051    # 2 - golden ratio: where a bracket's next probe goes


@njit(cache=True)
def _exact_ascent(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, counters, ck, ver, x0, center, bp, out0, w, cap,
                  iters):
    """Maximise the exact profit from the model's optimum ``x0`` (exact input ``center``,
    profit ``bp`` > 0, output ``out0``), to within ``w``; returns (amount_in, amount_out).

    The exact profit is concave in the input (up to the rounding staircase, about ``hops``
    units wide, which ``w`` spans), so: probe x0 - w, then x0 + w; when neither pays more,
    x0 is the answer (3 simulations: the model was right). Otherwise gallop that way with
    doubling steps while the profit rises, which brackets the optimum after O(log(error / w))
    simulations, then narrow the bracket around the best point by golden sections until it
    is 2 w wide. At most ``iters`` simulations after the first three. Inputs are probed at
    floats (w >= 1e-14 x0: distinct doubles), each simulated exactly as an integer; the
    returned pair is one exact simulation. A probe that reverts counts as lower.
    """
    fb = bp
    ub = center
    ob = out0
    xb = x0
    d = 0.0
    for k in range(2):
        sgn = -1.0 if k == 0 else 1.0
        x = x0 + sgn * w
        if x < 1.0 or x > cap:
            continue
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        if ok and u256_cmp(pr, fb) > 0:
            fb, ub, ob, xb, d = pr, u, out, x, sgn
            break
    if d == 0.0:
        return ub, ob
    lo = x0                          # behind the best point
    hi = xb
    s = w
    n = 0
    while True:
        if n >= iters:
            return ub, ob
        s *= 2.0
        x = xb + d * s
        edge = False
        if x > cap:
            x = cap
            edge = True
        elif x < 1.0:
            x = 1.0
            edge = True
        if (x - xb) * d <= 0.0:      # no room left that way
            return ub, ob
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        n += 1
        if ok and u256_cmp(pr, fb) > 0:
            lo = xb
            fb, ub, ob, xb = pr, u, out, x
            if edge:
                return ub, ob        # still rising at the cap (or at 1)
            continue
        hi = x
        break
    a = lo if lo < hi else hi
    b = hi if lo < hi else lo
    while b - a > 2.0 * w and n < iters:
        if xb - a > b - xb:
            x = xb - GOLDEN_STEP * (xb - a)
        else:
            x = xb + GOLDEN_STEP * (b - xb)
        u = u256_from_f64(x)
        pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, u, counters, ck, ver)
        n += 1
        if ok and u256_cmp(pr, fb) > 0:
            if x < xb:
                b = xb
            else:
                a = xb
            fb, ub, ob, xb = pr, u, out, x
        elif x < xb:
            a = x
        else:
            b = x
    return ub, ob


@njit(cache=True)
def search_band(hops, curv, est, tol_ppb):
    """Half-width of the inputs around the optimum whose exact profit is within the search's
    tolerance of the best: ``hops + 2`` units (the rounding staircase) or ``tol_ppb`` parts per
    billion of the modelled profit ``est``, whichever is larger; from profit(x*) - profit(x) =
    |profit''| (x - x*)^2 / 2."""
    tol = est * tol_ppb * 1e-9
    if tol < hops + 2.0:
        tol = hops + 2.0
    return math.sqrt(2.0 * tol / curv) + 2.0 if curv > 0.0 else 2.0


# A bound of the model's float rounding per hop, relative to the amounts it moves (input plus
# profit): a double's 1e-16 of the pool's (virtual) reserves, which the ranges a concentrated
# swap crosses bring in and which are some 100-1,000 times the input at an optimum. The
# default tolerance, 1 ppb of a profit of 0.5 % of the input, is 5e-12 of the input.
MODEL_FLOAT_REL = 1e-13


# The staircase counts towards the certificate up to this share of the modelled profit (1 ppm:
# a signal of 10 USD may leave up to 0.00001 USD on the table by not chasing the sawtooth).
STAIR_CAP_REL = 1e-6


@njit(cache=True)
def rounding_staircase(pools, cyc_p, cyc_z, hops):
    """How far below the real-valued swaps the exact cycle can land by rounding alone, in
    units of its start token: each hop rounds its output down (and a V3 step its price and
    input up: counted as a second unit) by less than 2 units of its output token, which the
    hops after it turn into at most their marginal rates at zero size (the rates only fall
    with size) units of the start token."""
    s = 0.0
    down = 1.0                      # start-token units one unit of this hop's output becomes
    for i in range(hops - 1, -1, -1):
        s += 2.0 * down
        down *= _marginal_rate(pools, cyc_p[i], cyc_z[i])
    return s


@njit(cache=True)
def certified(hops, x0, est, exact_profit, tol_ppb, stair):
    """Whether the exact profit ``exact_profit`` at the model's optimum ``x0`` is, without
    probing other inputs, as good as the search would make it: within its tolerance
    (:func:`search_band`'s: ``tol_ppb`` of the modelled profit ``est`` or hops + 2 units), or
    within the cycle's rounding staircase ``stair`` (:func:`rounding_staircase`) but at most
    STAIR_CAP_REL of ``est``, of the best exact profit, the model's own rounding
    (MODEL_FLOAT_REL) included. The argument: each pool rounds against the trader
    (UniswapV2Library floors the output; a V3 swap step rounds the price and the amount in
    up and the amount out down), so a cycle's exact output never exceeds the real-valued
    swaps the model computes; at most the model's maximum ``est``
    (plus its rounding) is to be had anywhere, and ``exact_profit`` is that close to it.
    Below the staircase the exact profit is a sawtooth of the intermediate tokens' units,
    which a search only samples (chasing it buys nothing but simulations). An exact profit
    above the model by more than the tolerance means the model is off here: not certified."""
    tol = est * tol_ppb * 1e-9
    if tol < hops + 2.0:
        tol = hops + 2.0
    slack = MODEL_FLOAT_REL * hops * (x0 + est)
    gap = est - exact_profit
    if gap < 0.0:
        return slack - gap <= tol
    lim = stair if stair < STAIR_CAP_REL * est else STAIR_CAP_REL * est
    return gap + slack <= (tol if tol > lim else lim)


@njit(cache=True)
def optimise_input(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, params, counters, x0, curv, all_v2, cap, est,
                   est_max, ck, ver):
    """Optimal input of the cycle on the exact simulation, from the model's optimum ``x0``.

    Every amount is an exact integer simulation; the model only says where to look. Around
    its optimum the exact profit floor(f(x)) - x is a staircase: every x whose smooth profit
    is within ~hops units of the maximum may hold the best integer, a band |x - x0| <= w,
    w = sqrt(2 (hops+2) / |profit''|). The staircase is coarser than that: each hop's output
    is floored in its own token, so one unit of an intermediate token (worth up to ~1e5
    units of an 18-decimal start token) is a sawtooth step of the profit; chasing the
    optimum below that scale buys nothing and costs simulations. So:
    * All-V2 cycles whose band w is at most PR_NEIGHBOR_SCAN each side: every integer of it
      is simulated (the result is the exact integer optimum).
    * Otherwise, when ``est_max`` (``est`` is the model's largest profit on [0, cap]) and
      the exact profit at x0 is within the search's tolerance or the rounding staircase of
      ``est``, x0 is the answer in one simulation (:func:`certified`: the model's maximum
      bounds the exact profit from above, so no other input can pay more than that above it).
    * Otherwise an exact ascent from x0 (:func:`_exact_ascent`: 3 simulations when the
      model is right, O(log) more when it is off), never above ``cap``, to within
      :func:`search_band`: PR_SEARCH_TOL_PPB of the modelled profit ``est``.
    * When the exact simulation reverts at x0 (the model ignores uint112 balances and
      rounding at the edge of the known ticks) a golden-section search of the exact
      profit below x0 (PR_ITERS_V2 steps) takes over.
    The exact simulations keep and resume swap checkpoints in ``ck``, the search's cache, at
    state version ``ver`` (:func:`simulate_cycle_ck`).
    Returns (amount_in u256, amount_out u256, found).
    """
    z = (U0, U0, U0, U0)
    if not (x0 >= 1.0):
        return z, z, False
    w = math.sqrt(2.0 * (hops + 2) / curv) + 2.0 if curv > 0.0 else 2.0
    center = u256_from_f64(x0)
    if all_v2 and w <= params[PR_NEIGHBOR_SCAN]:
        wi = np.int64(w)
        best_x = z
        best_out = z
        bp = z
        found = False
        for sgn in range(2):
            for j in range(sgn, wi + 1):
                if sgn == 0:
                    x, borrow = u256_sub(center, (np.uint64(j), U0, U0, U0))
                    if borrow or u256_is_zero(x):
                        break
                else:
                    x, _ = u256_add(center, (np.uint64(j), U0, U0, U0))
                pr, out, ok = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, x, counters, ck, ver)
                if not ok:
                    continue
                if not found or u256_cmp(pr, bp) > 0 or (u256_cmp(pr, bp) == 0 and u256_cmp(x, best_x) < 0):
                    bp = pr
                    best_x = x
                    best_out = out
                    found = True
        return best_x, best_out, found
    bp, best_out, found = _exact_profit(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, center, counters, ck, ver)
    if found:
        if est_max and certified(hops, x0, est, u256_to_f64(bp), params[PR_SEARCH_TOL_PPB],
                                 rounding_staircase(pools, cyc_p, cyc_z, hops)):
            return center, best_out, True
        wt = search_band(hops, curv, est, params[PR_SEARCH_TOL_PPB])
        best_x, best_out = _exact_ascent(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, counters, ck, ver, x0, center,
                                         bp, best_out, wt if wt > x0 * 1e-14 else x0 * 1e-14, cap,
                                         params[PR_ITERS_V3])
        return best_x, best_out, True
    # the exact swaps revert at the model's optimum: search the exact profit below it
    counters[K_SIMULATIONS] += 1
    _, ok0 = simulate_cycle(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, center)
    if ok0:
        return z, z, False               # it runs but does not pay: nothing to find
    lo = x0 * 0.05
    if lo < 1.0:
        lo = 1.0
    if x0 < lo:
        return z, z, False
    bx, bo, _, bfound, _ = _golden(pools, tticks, tnets, tn, cyc_p, cyc_z, hops, lo, x0, params[PR_ITERS_V2],
                                   counters)
    if bfound and u256_cmp(bo, bx) > 0:
        return bx, bo, True
    return z, z, False
