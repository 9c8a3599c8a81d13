"""Numba V2 getAmountOut vs the Python reference (which is pinned to the contract on anvil)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alphapulse.jit import amm_v2
from alphapulse.jit.wideint import from_limbs, to_u256
from alphapulse.strategy import reference as R

reserves = st.one_of(st.integers(1, 10**6), st.integers(10**6, 10**24), st.integers(1, 2**112 - 1))
amounts = st.one_of(st.integers(0, 10**6), st.integers(1, 10**30), st.integers(1, 2**140))
fees = st.sampled_from([3000, 2500, 2000, 1000, 500, 0, 10000, 999_999])


def test_uniswap_v2_fee_is_997_over_1000():
    # 3000 pips must reproduce the contract's literal 997/1000 formula
    for a, r_in, r_out in [(10**18, 5 * 10**20, 10**9), (1, 3, 7), (123456789, 10**6, 10**30)]:
        literal = a * 997 * r_out // (r_in * 1000 + a * 997)
        assert R.v2_get_amount_out(a, r_in, r_out, 3000) == literal


@settings(max_examples=1500, deadline=None)
@given(amounts, reserves, reserves, fees)
def test_get_amount_out_matches_reference(a, r_in, r_out, fee):
    out, ok = amm_v2.v2_get_amount_out(to_u256(a), to_u256(r_in), to_u256(r_out), fee)
    try:
        expected = R.v2_get_amount_out(a, r_in, r_out, fee)
    except R.Revert:
        assert not ok
        return
    assert ok and from_limbs(out) == expected


def test_reverts_are_reported():
    z = to_u256(0)
    assert not amm_v2.v2_get_amount_out(z, to_u256(10), to_u256(10), 3000)[1]
    assert not amm_v2.v2_get_amount_out(to_u256(1), to_u256(10**6), to_u256(10), 3000)[1]  # out == 0
    assert not amm_v2.v2_get_amount_out(to_u256(2**112), to_u256(10), to_u256(10), 3000)[1]  # uint112
