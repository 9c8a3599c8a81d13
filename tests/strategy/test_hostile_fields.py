"""Records whose fields the contracts cannot produce are counted bad events, never applied: the
engine neither hangs, nor raises, nor takes them into its state."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from alphapulse.jit import amm_v3 as V3
from alphapulse.strategy import reference as R
from tests.strategy.feed import Feed, signals
from tests.strategy.test_engine import E18, P1, P3, USDC, WETH, _v3_setup, engine

# a hang in compiled code ignores signals: the thread method ends the run instead
pytestmark = pytest.mark.timeout(1800, method="thread")


def _cycle(f):
    """A V2 pool 3 % dearer than a V3 pool of the same pair: one signal when both are valid."""
    v3_frames, _ = _v3_setup(f)
    return [f.v2_state(P1, WETH, USDC, 10**24, 103 * 10**22), *v3_frames]


def _with(rec, **kw):
    return dataclasses.replace(rec, **kw)


BAD_STATE_FIELDS = [
    {"tick_spacing": -1}, {"tick_spacing": 0}, {"tick_spacing": 16384}, {"tick_spacing": -32768},
    {"tick": V3.MAX_TICK + 1}, {"tick": -2**31}, {"tick": 2**31 - 1},
    {"sqrt_price_x96": 0}, {"sqrt_price_x96": 4295128738}, {"sqrt_price_x96": 2**256 - 1},
    {"sqrt_price_x96": 1461446703485210103287273052203988822378723970342},
    {"token0_decimals": 78}, {"token1_decimals": 255},
    {"fee_pips": 1_000_000}, {"fee_pips": 2**32 - 1},
]


@pytest.mark.parametrize("bad", BAD_STATE_FIELDS, ids=[next(iter(b)) + "=" + str(next(iter(b.values())))
                                                        for b in BAD_STATE_FIELDS])
def test_a_v3_state_outside_the_contracts_limits_is_a_bad_event_not_applied(bad):
    e, f = engine(), Feed()
    recs = _cycle(f)
    v3 = recs[1]
    out = e.process([f.frame(recs[0], _with(v3, **bad), *recs[2:])])
    c = e.counters()
    assert c["bad_event"] == 1, c
    assert len(e.registry) == 1      # the V2 pool only
    assert signals(out) == []
    # the same pool with valid fields then trades normally
    f.block += 1
    assert len(signals(e.process([f.frame(*_cycle(f))]))) == 1


def test_a_snapshot_of_a_known_pool_with_a_bad_field_leaves_its_state_untouched():
    e, f = engine(), Feed()
    recs = _cycle(f)
    assert len(signals(e.process([f.frame(*recs)]))) == 1
    before = e.snapshot()
    f.block += 1
    for bad in BAD_STATE_FIELDS:
        e.process([f.frame(_with(recs[1], block_number=f.block, **bad))])
    after = e.snapshot()
    for k in ("pools", "tticks", "tnets", "tn"):
        assert np.array_equal(before[k], after[k]), k
    assert e.counters()["bad_event"] == len(BAD_STATE_FIELDS)


@pytest.mark.parametrize("lower,upper", [(-887280, 600), (-600, 887280), (-2**31, 0), (0, 2**31 - 1),
                                         (-601, 600), (-600, 601), (600, 600), (600, -600)])
def test_a_position_outside_the_bounds_or_off_the_spacing_is_a_bad_event(lower, upper):
    e, f = engine(), Feed()
    e.process([f.frame(*_cycle(f))])
    before = e.snapshot()
    f.block += 1
    e.process([f.frame(f.v3_mint(P3, WETH, USDC, lower, upper, 10**20))])
    assert e.counters()["bad_event"] == 1
    for k in ("pools", "tticks", "tnets", "tn"):
        assert np.array_equal(before[k], e.snapshot()[k]), k


@pytest.mark.parametrize("tick", [V3.MIN_TICK - 60, V3.MAX_TICK + 60, -2**31, 2**31 - 1, 61])
def test_a_pool_tick_outside_the_bounds_or_off_the_spacing_is_a_bad_event(tick):
    e, f = engine(), Feed()
    e.process([f.frame(*_cycle(f))])
    before = e.snapshot()
    e.process([f.frame(*f.v3_ticks(P3, [tick], [10**18]))])
    assert e.counters()["bad_event"] == 1
    for k in ("tticks", "tnets", "tn"):
        assert np.array_equal(before[k], e.snapshot()[k]), k


@pytest.mark.parametrize("sqrt,tick", [(0, 0), (2**200, 0), (R.get_sqrt_ratio_at_tick(0), V3.MAX_TICK + 1),
                                       (R.get_sqrt_ratio_at_tick(0), -2**31)])
def test_a_swap_to_an_impossible_price_or_tick_is_a_bad_event(sqrt, tick):
    e, f = engine(), Feed()
    e.process([f.frame(*_cycle(f))])
    before = e.snapshot()
    f.block += 1
    e.process([f.frame(f.v3_swap(P3, WETH, USDC, sqrt, 10**20, tick))])
    assert e.counters()["bad_event"] == 1
    assert np.array_equal(before["pools"], e.snapshot()["pools"])


def test_a_sync_with_impossible_decimals_is_a_bad_event_and_logged(caplog):
    e, f = engine(), Feed()
    e.process([f.frame(f.v2_sync(P1, WETH, USDC, E18, E18, d0=78))])
    assert e.counters()["bad_event"] == 1 and len(e.registry) == 0
    with caplog.at_level("WARNING"):
        assert e.log_bad_events() == 1 and e.log_bad_events() == 0
    assert [r.message for r in caplog.records if "outside the contracts' limits" in r.message]


@pytest.mark.parametrize("lower,upper", [(V3.MIN_TICK - 1, 0), (0, V3.MAX_TICK + 1), (-2**31, 2**31 - 1),
                                         (-2**31, 0), (600, -600)])
def test_a_tick_coverage_outside_the_bounds_or_inverted_is_a_bad_event(lower, upper):
    from alphapulse.jit import pool_state as S
    from alphapulse.protocol import codec as C
    e, f = engine(), Feed()
    e.process([f.frame(*_cycle(f))])                    # the snapshot of block f.block: its range applies
    before = e.snapshot()
    e.process([f.frame(C.TickCoverage(block_number=f.block, tick_lower=lower, tick_upper=upper, pool=P3))])
    assert e.counters()["bad_event"] == 1
    assert np.array_equal(before["pools"], e.snapshot()["pools"])
    # the widest valid range of the same snapshot is applied
    e.process([f.frame(C.TickCoverage(block_number=f.block, tick_lower=V3.MIN_TICK, tick_upper=V3.MAX_TICK,
                                      pool=P3))])
    row = e.state["pools"][e.registry.index(P3)]
    assert e.counters()["bad_event"] == 1
    assert np.int64(row[S.C_COV_LO]) == V3.MIN_TICK and np.int64(row[S.C_COV_HI]) == V3.MAX_TICK


@pytest.mark.parametrize("fee", [1_000_000, 2**32 - 1])
def test_a_pool_fee_of_100_percent_or_more_is_a_bad_event_and_logged(fee, caplog):
    from alphapulse.protocol import codec as C
    e, f = engine(), Feed()
    e.process([f.frame(*_cycle(f))])
    before = e.snapshot()

    def pool_fee(fee_pips):
        return C.PoolFee(block_number=f.block, block_ts_ns=0, log_index=7, fee_pips=fee_pips, venue=406,
                         flags=0, pool=P3)
    e.process([f.frame(pool_fee(fee))])
    assert e.counters()["bad_event"] == 1
    with caplog.at_level("WARNING"):
        assert e.log_bad_events() == 1
    assert [r.message for r in caplog.records if "outside the contracts' limits" in r.message]
    e.process([f.frame(pool_fee(3_000))])                 # a possible fee, but P3 has a fixed fee tier
    assert e.counters()["bad_event"] == 2
    for k in ("pools", "tticks", "tnets", "tn"):
        assert np.array_equal(before[k], e.snapshot()[k]), k
