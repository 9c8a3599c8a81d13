"""USD valuation of signals: gas that cannot be valued is never free, gas is valued through
another token when the native token has no pool to the stable coin, and a token whose routes to
the stable coin are too thin stays unpriced."""
from __future__ import annotations

from alphapulse.protocol import layout as L

from tests.strategy.feed import Feed, addr, signals
from tests.strategy.test_engine import E18, P1, P2, P4, USDC, WETH, engine

WMATIC = addr(0xD0)


def _cycle(f: Feed, *extra):
    """A WETH/USDC opportunity (P2 5 % dearer) and a gas price."""
    return f.frame(f.gas(base=100 * 10**9, prio=0),
                   f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),
                   f.v2_state(P2, WETH, USDC, 1000 * E18, 2_100_000 * 10**6, venue=302, d1=6), *extra)


def _engine(**kw):
    return engine(stable_token="0x" + USDC.hex(), native_token="0x" + WMATIC.hex(), gas_units_base=0,
                  gas_units_v2_hop=100_000, **kw)


def test_gas_that_cannot_be_valued_is_never_free():
    """The native token trades nowhere: the gas costs something unknown, so the signal is flagged
    unpriced and carries no net profit (it used to show gas 0 and net = gross)."""
    e, f = _engine(), Feed()
    (s,) = signals(e.process([_cycle(f)]))
    assert s.gas_cost_wei == 200_000 * 100 * 10**9
    assert s.flags & L.SIGNAL_UNPRICED
    assert s.net_profit_usd_e8 == 0 and s.gross_profit_usd_e8 == 0 and s.gas_cost_usd_e8 == 0
    assert s.amount_out > s.amount_in


def test_gas_is_valued_through_a_pool_of_the_native_token_to_a_priced_token():
    e, f = _engine(), Feed()
    r_wm, r_we = 4_000_000 * E18, 1000 * E18          # 4,000 WMATIC per WETH
    (s,) = signals(e.process([_cycle(f, f.v2_state(P4, WMATIC, WETH, r_wm, r_we, venue=302))]))
    assert not s.flags & L.SIGNAL_UNPRICED
    # WMATIC -> WETH at P4's mid price, then WETH -> USD at the deepest WETH/USDC pool's (P2)
    in_weth = s.gas_cost_wei * r_we // r_wm
    assert s.gas_cost_usd_e8 == in_weth * (2_100_000 * 10**6) // (1000 * E18) * 10**8 // 10**6
    assert s.gas_cost_usd_e8 > 0
    assert s.net_profit_usd_e8 == s.gross_profit_usd_e8 - s.gas_cost_usd_e8


def test_gas_through_another_token_follows_its_pools():
    e, f = _engine(), Feed()
    (s1,) = signals(e.process([_cycle(f, f.v2_state(P4, WMATIC, WETH, 4_000_000 * E18, 1000 * E18, venue=302))]))
    f.block += 1
    # WMATIC halves against WETH; the opportunity moves so that it is published again
    (s2,) = signals(e.process([f.frame(f.v2_sync(P4, WMATIC, WETH, 8_000_000 * E18, 1000 * E18, venue=302),
                                       f.v2_sync(P2, WETH, USDC, 1000 * E18, 2_200_000 * 10**6, venue=302, d1=6))]))
    in_weth = s2.gas_cost_wei * (1000 * E18) // (8_000_000 * E18)
    assert s2.gas_cost_usd_e8 == in_weth * (2_200_000 * 10**6) // (1000 * E18) * 10**8 // 10**6
    assert s2.gas_cost_usd_e8 < s1.gas_cost_usd_e8


def test_a_route_thinner_than_the_minimum_depth_prices_nothing():
    """WETH's pools to USDC hold $2.0M and $2.1M of USDC: priced at the default minimum depth,
    unpriced when routes must hold $3M (start token and gas alike)."""
    f = Feed()
    e = engine(stable_token="0x" + USDC.hex(), native_token="0x" + WETH.hex())
    (s,) = signals(e.process([_cycle(f)]))
    assert not s.flags & L.SIGNAL_UNPRICED and s.gas_cost_usd_e8 > 0
    f = Feed()
    e = engine(stable_token="0x" + USDC.hex(), native_token="0x" + WETH.hex(), min_price_depth_usd=3_000_000)
    (s,) = signals(e.process([_cycle(f)]))
    assert bytes(s.tokens[0]) == USDC          # the stable coin itself needs no route
    assert s.flags & L.SIGNAL_UNPRICED          # but the gas, in WETH, has none deep enough


def test_the_deepest_route_prices_the_start_token():
    """Two WETH/USDC pools at different prices; a WETH/WBTC opportunity starts at WETH: its USD
    figures use the pool holding more USDC, whichever was seen first."""
    from tests.strategy.test_engine import P3, WBTC
    P5, P6 = addr(0x1005), addr(0x1006)
    f = Feed()
    e = engine(stable_token="0x" + USDC.hex())
    (s,) = signals(e.process([f.frame(
        f.v2_state(P5, WETH, USDC, 10 * E18, 20_020 * 10**6, d1=6, venue=302),        # thin, seen first
        f.v2_state(P6, WETH, USDC, 1000 * E18, 2_000_000 * 10**6, d1=6),              # deep
        f.v2_state(P3, WBTC, WETH, 100 * 10**8, 2000 * E18, d0=8),
        f.v2_state(P4, WBTC, WETH, 100 * 10**8, 2100 * E18, d0=8, venue=302))]))
    assert bytes(s.tokens[0]) == WETH and not s.flags & L.SIGNAL_UNPRICED
    gross = s.amount_out - s.amount_in
    assert s.gross_profit_usd_e8 == gross * (2_000_000 * 10**6) // (1000 * E18) * 10**8 // 10**6
