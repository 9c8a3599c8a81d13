"""Pool state that heals itself: a snapshot replaces the whole state, swaps are never priced past
the covered tick range, and a pool whose tick set an event showed incomplete (or that has no tick
data) leaves trading, is asked for with a PoolRefresh frame and trades again on the answer."""
from __future__ import annotations

import logging

import pytest

from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L
from alphapulse.strategy import reference as R

from tests.strategy.feed import Feed, signals
from tests.strategy.test_engine import E18, P1, P3, USDC, WETH, engine, ref_path

REASON = L.RefreshReason


def coverage(f: Feed, pool: bytes, lower: int, upper: int, block: int | None = None):
    return C.TickCoverage(block_number=f.block if block is None else block, tick_lower=lower, tick_upper=upper,
                          pool=pool)


def v3_pool(f: Feed, positions, tick0: int = 0, window: tuple[int, int] | None = None):
    """Records of a V3 snapshot of ``positions`` at ``tick0``: PoolState, the PoolTicks (those in
    ``window`` only, and then the TickCoverage of it)."""
    sp = R.get_sqrt_ratio_at_tick(tick0) + 10**20
    tick, liq, ticks, nets = R.pool_from_positions(positions, sp)
    recs = [f.v3_state(P3, WETH, USDC, sp, liq, tick)]
    if window is None:
        recs += f.v3_ticks(P3, ticks, nets)
    else:
        inside = [(t, n) for t, n in zip(ticks, nets) if window[0] <= t <= window[1]]
        recs += f.v3_ticks(P3, [t for t, _ in inside], [n for _, n in inside])
        recs.append(coverage(f, P3, *window))
    return recs, (sp, tick, liq)


POSITIONS = [(-887220, 887220, 10**20), (-600, 600, 5 * 10**20)]


def test_a_snapshot_replaces_the_tick_set():
    e, f = engine(), Feed()
    e.process([f.frame(*v3_pool(f, POSITIONS + [(-1200, -120, 3 * 10**20)])[0])])
    assert len(e.registry.pool(P3).ticks) == 6
    f.block += 5
    # the pool now holds one full-range position: its ticks lie outside the snapshot's window
    recs, _ = v3_pool(f, [(-887220, 887220, 10**20)], window=(-3000, 3000))
    e.process([f.frame(*recs)])
    info = e.registry.pool(P3)
    assert info.ticks == () and info.coverage == (-3000, 3000)
    # a covered range without initialised ticks is a known state: the pool trades
    assert not info.stale and info.waiting == 0


def test_a_swap_is_never_priced_past_the_covered_range():
    """The V2 pool is 30 % dearer: the best cycle would push the V3 price to ~tick 2,600, but its
    ticks are known only up to 1,200. The signal's V3 swap ends inside that range, close to its
    edge (the cap binds), and its figures are exact."""
    e, f = engine(), Feed()
    recs, (sp, tick, liq) = v3_pool(f, POSITIONS, window=(-1200, 1200))
    (s,) = signals(e.process([f.frame(f.v2_state(P1, WETH, USDC, 10**24, 13 * 10**23), *recs)]))
    assert s.amount_out == ref_path(e, s)
    # the V3 hop takes USDC (token1) in and moves the price up
    amt = s.amount_in
    for i in range(s.hops):
        if bytes(s.pools[i]) == P3:
            break
        info = e.registry.pool(bytes(s.pools[i]))
        zfo = bytes(s.tokens[i]) == info.token0
        r_in, r_out = (info.reserve0, info.reserve1) if zfo else (info.reserve1, info.reserve0)
        amt = R.v2_get_amount_out(amt, r_in, r_out, info.fee_pips)
    assert bytes(s.tokens[i]) == USDC
    info = e.registry.pool(P3)
    ticks = [t for t, _ in info.ticks]
    nets = [n for _, n in info.ticks]
    edge = R.get_sqrt_ratio_at_tick(1200)
    to_edge = R.v3_swap(sp, tick, liq, 3000, 60, ticks, nets, False, 10**30, edge).amount1
    after = R.v3_swap(sp, tick, liq, 3000, 60, ticks, nets, False, amt)
    assert after.sqrt_price_x96 <= edge
    assert amt >= to_edge * 99 // 100


def test_a_burn_at_an_unknown_tick_takes_the_pool_out_until_a_refresh_answers(caplog):
    caplog.set_level(logging.INFO, "alphapulse.strategy.refresh")
    e, f = engine(refresh_timeout_s=1.0), Feed()
    recs, (sp, tick, liq) = v3_pool(f, POSITIONS)
    assert signals(e.process([f.frame(f.v2_state(P1, WETH, USDC, 10**24, 101 * 10**22), *recs)]))
    assert e.refresh_requests(now_ns=0) == []
    f.block += 1
    # a position the engine never saw is burnt: its ticks are not in the tick set
    out = e.process([f.frame(f.v3_mint(P3, WETH, USDC, -300, 300, 10**19, burn=True),
                             f.v2_sync(P1, WETH, USDC, 10**24, 104 * 10**22))])
    assert signals(out) == []
    info = e.registry.pool(P3)
    assert info.stale and info.waiting == REASON.UNKNOWN_TICK
    c = e.counters()
    assert c["tick_set_incomplete"] == 1 and c["refresh_wanted"] == 1 and "ticks_full" not in c
    (req,) = e.refresh_requests(now_ns=10**9)
    fr = C.parse_frame(req)
    assert fr.header.relay_domain == int(L.Domain.SYSTEM)
    assert fr.header.source == int(L.Source.ARBITRAGE_STRATEGY) and fr.header.sequence == 1
    (r,) = fr.tlvs
    assert bytes(r.pool) == P3 and r.reason == REASON.UNKNOWN_TICK and r.block_number == f.block
    assert "leaves trading" in caplog.text and "0x" + P3.hex() in caplog.text
    # one outstanding request per pool, sent again after the timeout
    assert e.refresh_requests(now_ns=10**9 + 5 * 10**8) == []
    (again,) = e.refresh_requests(now_ns=2 * 10**9 + 1)
    assert C.parse_frame(again).header.sequence == 2
    # the source answers with a fresh snapshot: the pool trades again
    f.block += 1
    recs, _ = v3_pool(f, POSITIONS)
    (s,) = signals(e.process([f.frame(*recs)]))
    assert P3 in {bytes(p) for p in s.pools[:s.hops]} and s.amount_out == ref_path(e, s)
    assert not e.registry.pool(P3).stale and e.registry.pool(P3).waiting == 0
    assert e.refresh_requests(now_ns=3 * 10**9) == [] and e.refresh.waiting == {}
    assert "re-enters trading" in caplog.text


def test_a_burn_of_more_than_the_active_liquidity_asks_for_a_refresh():
    e, f = engine(), Feed()
    recs, (sp, tick, liq) = v3_pool(f, POSITIONS)
    e.process([f.frame(*recs)])
    f.block += 1
    e.process([f.frame(f.v3_mint(P3, WETH, USDC, -600, 600, liq + 1, burn=True))])
    assert e.registry.pool(P3).waiting == REASON.NEGATIVE_LIQUIDITY
    (req,) = e.refresh_requests(now_ns=1)
    assert C.parse_frame(req).tlvs[0].reason == REASON.NEGATIVE_LIQUIDITY


def test_events_outside_the_covered_range_keep_or_end_trading():
    """A position minted or burnt outside the covered range changes nothing known (the pool
    trades on); a swap that takes the price out of it leaves the ticks around the price unknown."""
    e, f = engine(), Feed()
    recs, (sp, tick, liq) = v3_pool(f, POSITIONS, window=(-1200, 1200))
    e.process([f.frame(*recs)])
    f.block += 1
    e.process([f.frame(f.v3_mint(P3, WETH, USDC, -60000, -30000, 10**18, burn=True),
                       f.v3_mint(P3, WETH, USDC, -60000, 60, 10**18))])
    info = e.registry.pool(P3)
    assert info.waiting == 0 and not info.stale
    assert dict(info.ticks)[60] == -10**18 and -60000 not in dict(info.ticks)
    f.block += 1
    e.process([f.frame(f.v3_swap(P3, WETH, USDC, R.get_sqrt_ratio_at_tick(-1500), liq, -1500))])
    assert e.registry.pool(P3).waiting == REASON.UNKNOWN_TICK


def test_a_v3_pool_without_tick_data_is_asked_for_and_said_so_once(caplog):
    caplog.set_level(logging.INFO, "alphapulse.strategy.refresh")
    e, f = engine(), Feed()
    recs, _ = v3_pool(f, POSITIONS)
    e.process([f.frame(recs[0])])        # the state without its ticks
    (req,) = e.refresh_requests(now_ns=1)
    assert C.parse_frame(req).tlvs[0].reason == REASON.NO_TICK_DATA
    assert e.refresh.waiting == {e.registry.index(P3): REASON.NO_TICK_DATA}
    e.refresh_requests(now_ns=10**10)
    assert caplog.text.count("has no tick data") == 1
    # its ticks arrive: it stops waiting
    e.process([f.frame(*recs)])
    assert e.refresh_requests(now_ns=2 * 10**10) == [] and e.refresh.waiting == {}


def test_pool_names_use_token_symbols():
    e, f = engine(token_symbols={"0x" + WETH.hex(): "WETH", "0x" + USDC.hex(): "USDC"}), Feed()
    e.process([f.frame(v3_pool(f, POSITIONS)[0][0])])
    e.refresh_requests(now_ns=1)
    assert e.refresh.names() == [f"0x{P3.hex()} (WETH/USDC)"]


@pytest.mark.parametrize("bad", ["refresh_timeout_s"])
def test_refresh_timeout_must_be_positive(bad):
    from alphapulse.strategy.config import EngineConfigError
    with pytest.raises(EngineConfigError, match=bad):
        engine(**{bad: 0})
