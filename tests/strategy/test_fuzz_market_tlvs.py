"""Fuzzing the engine with checksum-valid market-data records: every field of every market-data
TLV type takes edge and random values, in frames that pass every frame check. The engine must
neither raise nor hang (the thread timeout ends a hung run), and what it holds must stay within
the limits its kernels assume.

The examples are derandomized (the same corpus on every run): ``test_kernels_under_boundscheck``
runs them again in a subprocess with ``NUMBA_BOUNDSCHECK=1`` (its own cache directory), where
an index outside an array raises instead of reading memory.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alphapulse.jit import amm_v3 as V3
from alphapulse.jit import pool_state as S
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from tests.strategy.feed import Feed, addr
from tests.strategy.test_engine import P1, P2, P3, USDC, WETH, _v3_setup, engine

pytestmark = pytest.mark.timeout(1800, method="thread")

MARKET_TYPES = sorted(t for t, lay in L.LAYOUTS.items() if lay.domain == L.Domain.MARKET_DATA)
ADDRESSES = [P1, P2, P3, USDC, WETH, addr(0xDEAD)]
_EDGE_TICKS = [V3.MIN_TICK - 1, V3.MIN_TICK, -60, 0, 60, V3.MAX_TICK, V3.MAX_TICK + 1]
_EDGE_SQRT = [0, 1, 4295128738, 4295128739, 2**96, 1461446703485210103287273052203988822378723970341,
              1461446703485210103287273052203988822378723970342]


def _bounds(kind: str) -> tuple[int, int]:
    bits = L.KINDS[kind][0] * 8
    if kind in L.SIGNED_KINDS:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _values(f: L.Field) -> st.SearchStrategy:
    if f.kind == "address":
        return st.sampled_from(ADDRESSES)
    if f.kind == "bytes32":
        return st.binary(min_size=32, max_size=32)
    lo, hi = _bounds(f.kind)
    edges = [lo, hi, 0, 1] + ([-1] if lo < 0 else [])
    if "tick" in f.name:
        edges += [t for t in _EDGE_TICKS if lo <= t <= hi]
    if "sqrt" in f.name:
        edges += _EDGE_SQRT
    if f.name.endswith("decimals"):
        edges += [0, 6, 18, 77, 78]
    if f.name == "fee_pips":
        edges += [0, 500, 3000, 999_999, 1_000_000]
    if f.name == "pool_kind":
        edges += [1, 2, 3]
    if f.name == "flags":
        edges += [L.EVENT_REMOVED]
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi))


@st.composite
def market_record(draw, base: list):
    """A record of a market-data type: a base record of that type with some fields replaced, or
    one with every field drawn."""
    t = draw(st.sampled_from(MARKET_TYPES))
    lay = L.LAYOUTS[t]
    cls = C.decode_value(t, bytes(lay.size)).__class__
    same = [r for r in base if isinstance(r, cls)]
    names = [f for f in lay.data_fields]
    if same and draw(st.booleans()):
        rec = draw(st.sampled_from(same))
        chosen = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique_by=lambda f: f.name))
    else:
        rec = cls()
        chosen = names
    kw = {}
    for f in chosen:
        if f.count > 1:
            kw[f.name] = tuple(draw(_values(f)) for _ in range(f.count))
        else:
            kw[f.name] = draw(_values(f))
    return dataclasses.replace(rec, **kw)


def _base_records(f: Feed) -> list:
    v3_frames, _ = _v3_setup(f)
    return [f.gas(), f.v2_state(P1, WETH, USDC, 10**24, 103 * 10**22),
            f.v2_sync(P2, WETH, USDC, 10**24, 101 * 10**22, venue=302), *v3_frames,
            f.v3_mint(P3, WETH, USDC, -180, 240, 7 * 10**19),
            f.v3_swap(P3, WETH, USDC, v3_frames[0].sqrt_price_x96 - 10**21, v3_frames[0].liquidity, -1),
            C.TickCoverage(block_number=f.block, tick_lower=-887220, tick_upper=887220, pool=P3),
            C.PoolFee(block_number=f.block, block_ts_ns=0, log_index=1, fee_pips=3000, venue=406, flags=0,
                      pool=P3)]


def _check_state(e) -> None:
    """What the kernels assume of every pool they may search."""
    pools, tticks, tn = e.state["pools"], e.state["tticks"], e.state["tn"]
    for p in range(int(e.state["meta"][S.M_NPOOLS])):
        row = pools[p]
        if row[S.C_KIND] == S.KIND_V3 and row[S.C_HAS_STATE]:
            assert 1 <= np.int64(row[S.C_SPACING]) <= S.MAX_TICK_SPACING
            assert V3.MIN_TICK <= np.int64(row[S.C_TICK]) <= V3.MAX_TICK
            r = np.int64(row[S.C_V3ROW])
            ticks = tticks[r, :tn[r]]
            assert np.all(np.diff(ticks) > 0)
            assert ticks.size == 0 or (V3.MIN_TICK <= ticks[0] and ticks[-1] <= V3.MAX_TICK)
            lo, hi = np.int64(row[S.C_COV_LO]), np.int64(row[S.C_COV_HI])
            assert V3.MIN_TICK <= lo <= hi <= V3.MAX_TICK     # (MIN_TICK, MAX_TICK): none sent
        if row[S.C_HAS_STATE]:
            assert row[S.C_FEE] < 1_000_000


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_checksum_valid_field_mutations_of_market_tlvs_never_crash_or_hang(data):
    f = Feed()
    base = _base_records(f)
    frames = [f.frame(*base)]
    for _ in range(data.draw(st.integers(1, 4))):
        recs = data.draw(st.lists(market_record(base), min_size=1, max_size=4))
        f.block += data.draw(st.integers(0, 2))
        frames.append(f.frame(*recs))
    frames.append(f.frame(*_base_records(f)))        # valid records after the mutated ones
    e = engine(market_checksum_every=1)
    for fr in frames:
        e.process([fr])
        _check_state(e)
    c = e.counters()
    assert c["frames_rejected"] == 0 and c["frames"] == len(frames)


@pytest.mark.skipif(os.environ.get("NUMBA_BOUNDSCHECK") == "1", reason="this is the bounds-checked run")
def test_kernels_under_boundscheck(tmp_path):
    """The fuzz corpus through the kernels compiled with bounds checks (a fresh compile: minutes)."""
    import subprocess
    import sys
    env = {**os.environ, "NUMBA_BOUNDSCHECK": "1", "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x",
                        f"{__file__}::test_checksum_valid_field_mutations_of_market_tlvs_never_crash_or_hang"],
                       env=env, capture_output=True, text=True, timeout=1700)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
