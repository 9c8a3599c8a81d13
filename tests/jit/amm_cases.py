"""Shared generators of consistent V3 pool states for the AMM tests."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from alphapulse.jit.wideint import i128_rows
from alphapulse.strategy import reference as R

SPACINGS = (1, 10, 60, 200)
FEES = {1: 100, 10: 500, 60: 3000, 200: 10000}


nets_array = i128_rows      # (the tests' name)


def ticks_array(ticks) -> np.ndarray:
    out = np.zeros(max(1, len(ticks)), dtype=np.int32)
    out[:len(ticks)] = ticks
    return out


@st.composite
def v3_states(draw, max_positions: int = 6):
    ts = draw(st.sampled_from(SPACINGS))
    fee = draw(st.sampled_from([FEES[ts], 3000, 500]))
    center = draw(st.integers(-200_000, 200_000)) // ts * ts
    n = draw(st.integers(1, max_positions))
    positions = []
    full_lo = R.MIN_TICK // ts * ts + (ts if R.MIN_TICK % ts else 0)
    full_hi = R.MAX_TICK // ts * ts
    for k in range(n):
        if k == 0 and draw(st.booleans()):
            lo, hi = full_lo, full_hi
        else:
            w1 = draw(st.integers(1, 3000 // ts + 3)) * ts
            w2 = draw(st.integers(1, 3000 // ts + 3)) * ts
            off = draw(st.integers(-2000 // ts - 2, 2000 // ts + 2)) * ts
            lo, hi = max(full_lo, center + off - w1), min(full_hi, center + off + w2)
            if lo >= hi:
                continue
        liq = draw(st.one_of(st.integers(1, 10**6), st.integers(10**12, 10**24),
                             st.integers(10**24, 2**100)))
        positions.append((lo, hi, liq))
    if not positions:
        positions.append((full_lo, full_hi, 10**18))
    frac = draw(st.integers(0, 2**32))
    base = R.get_sqrt_ratio_at_tick(center)
    nxt = R.get_sqrt_ratio_at_tick(min(center + ts, R.MAX_TICK))
    sqrt_price = base + (nxt - base) * frac // 2**32
    sqrt_price = min(max(sqrt_price, R.MIN_SQRT_RATIO), R.MAX_SQRT_RATIO - 1)
    tick, liquidity, ticks, nets = R.pool_from_positions(positions, sqrt_price)
    return dict(sqrt_price=sqrt_price, tick=tick, liquidity=liquidity, fee=fee, tick_spacing=ts,
                ticks=ticks, nets=nets)


amounts = st.one_of(st.integers(1, 1000), st.integers(1, 10**18), st.integers(10**18, 10**30),
                    st.integers(1, 2**200))
