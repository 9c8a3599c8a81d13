"""Aggregation: exact formatting, opportunities (order, totals, best of the hour), prices, health."""
from __future__ import annotations

from fractions import Fraction

import pytest

from alphapulse.dashboard.aggregate import (
    HOUR_NS, NS_PER_S, Aggregator, Health, RateMeter, TokenBook, format_fraction, format_units,
    format_usd_e8, price_v2, price_v3,
)
from alphapulse.protocol import codec
from alphapulse.protocol.layout import Domain, Reject, Source

WETH = bytes.fromhex("7ceb23fd6bc0add59e62ac25578270cff1b9f619")
USDC = bytes.fromhex("2791bca1f2de4661ed88a30c99a7a9449aa84174")
WBTC = bytes.fromhex("1bfd67037b42cf73acf2047067bd4f2c47d9bfd6")
UNKNOWN = bytes.fromhex("00000000000000000000000000000000000000aa")
P1, P2, P3 = (bytes([i]) * 20 for i in (1, 2, 3))
TOKENS = {"0x" + WETH.hex(): ("WETH", 18), "0x" + USDC.hex(): ("USDC", 6),
          "0x" + WBTC.hex(): ("WBTC", 8)}


def signal(sid, net_e8, *, amount_in=10 ** 18, profit=12345678901234567, hops=2, flags=0,
           tokens=(WETH, USDC, bytes(20)), venues=(400, 401, 0), block=1000):
    return codec.ArbitrageSignal(
        amount_in=amount_in, amount_out=amount_in + profit, gas_cost_wei=30_000_000_000 * 170_000,
        net_profit_usd_e8=net_e8, gross_profit_usd_e8=net_e8 + 5_000_000, gas_cost_usd_e8=5_000_000,
        block_number=block, trigger_ts_ns=0, signal_id=sid, chain_id=137, strategy_id=1, hops=hops,
        flags=flags, venues=venues, fees_pips=(3000, 3000, 0), spread_bps=42,
        pools=(P1, P2, bytes(20)), tokens=tokens)


def sig_frame(seq, sig, ts):
    return codec.build_frame(Domain.SIGNAL, Source.ARBITRAGE_STRATEGY, seq, [sig], timestamp_ns=ts)


def test_exact_formatting():
    assert format_units(1_500_000, 6) == "1.5"
    assert format_units(10 ** 18, 18) == "1"
    assert format_units(2 ** 128 - 1, 18) == "340282366920938463463.374607431768211455"
    assert format_units(-5, 2) == "-0.05"
    assert format_units(123, None) == "123"
    assert format_usd_e8(1_234_567_890_12) == "$1,234.57"
    assert format_usd_e8(-1) == "$0.00"                # rounds to zero: no minus sign
    assert format_usd_e8(-500_000) == "-$0.01"         # half away from zero
    assert format_usd_e8(2 ** 63 - 1) == "$92,233,720,368.55"
    assert format_usd_e8(12_345, 8) == "$0.00012345"
    assert format_fraction(Fraction(1, 3), 5) == "0.33333"
    assert format_fraction(Fraction(2000), 8) == "2,000"
    assert format_fraction(Fraction(123456789, 1000), 6) == "123,457"
    assert format_fraction(Fraction(99999996, 10 ** 8), 7) == "1"
    assert format_fraction(Fraction(1, 10 ** 12), 3) == "0.000000000001"


def test_exact_prices():
    # 1000 WETH (18) against 2,000,000 USDC (6): 2000 USDC per WETH, exactly
    assert price_v2(1000 * 10 ** 18, 2_000_000 * 10 ** 6, 18, 6) == 2000
    assert price_v2(0, 5, 18, 6) is None
    # sqrtPriceX96 of price 4 (raw) with equal decimals
    assert price_v3(2 << 96, 18, 18) == 4
    # a real-looking USDC(6)/WETH(18) pool: raw price 1/2000 * 1e12 ... exact, not rounded
    sp = 1771595571142957166518320255467520
    assert price_v3(sp, 6, 18) == Fraction(sp * sp * 10 ** 6, 2 ** 192 * 10 ** 18)
    assert price_v3(0, 6, 18) is None


def test_token_book_config_and_fallback():
    tb = TokenBook(TOKENS)
    assert tb.symbol(WETH) == "WETH" and tb.decimals(USDC) == 6
    assert tb.symbol(UNKNOWN) == "0x0000…00aa" and tb.decimals(UNKNOWN) is None
    tb.learn(UNKNOWN, 9)
    tb.learn(USDC, 18)                                 # configured decimals win
    assert tb.decimals(UNKNOWN) == 9 and tb.decimals(USDC) == 6
    tb2 = TokenBook([{"address": "0x" + WBTC.hex().upper(), "symbol": "WBTC", "decimals": 8}])
    assert tb2.symbol(WBTC) == "WBTC"
    with pytest.raises(ValueError, match="decimals"):
        TokenBook({"0x" + WBTC.hex(): ("WBTC", 99)})
    with pytest.raises(ValueError, match="20 bytes"):
        TokenBook({"0x1234": ("X", 1)})


def test_opportunities_rows_totals_and_exact_figures():
    agg = Aggregator(TokenBook(TOKENS), max_rows=3)
    t0 = 1_700_000_000 * NS_PER_S
    nets = [150_00000000, -2_50000000, 999_99000000, 10_00000000]
    for i, net in enumerate(nets):
        assert agg.ingest("signal", sig_frame(i + 1, signal(100 + i, net), t0 + i * NS_PER_S), t0)
    agg.ingest("signal", sig_frame(5, signal(200, 0, flags=1, tokens=(UNKNOWN, USDC, bytes(20))),
                                   t0 + 5 * NS_PER_S), t0)
    o = agg.opportunities
    assert o.count == 5 and o.priced_count == 4 and o.unpriced_count == 1
    assert o.total_net_usd_e8 == sum(nets)
    assert [r.signal_id for r in o.rows] == [102, 103, 200]          # bounded, newest last
    assert [r.signal_id for r in o.rows_after(o.rows[0].seq)] == [103, 200]
    d = o.rows[0].display()
    assert d["path"] == "WETH → USDC → WETH"
    assert d["venues"] == "QuickSwap → SushiSwap"
    assert d["amount_in"] == "1 WETH" and d["amount_in_units"] == "1000000000000000000"
    assert d["gross_token"] == "0.012345678901234567 WETH"
    assert d["net_usd"] == "$999.99" and d["gross_usd"] == "$1,000.04" and d["gas_usd"] == "$0.05"
    assert d["gas_wei"] == "5100000000000000" and d["spread"] == "42 bps"
    assert d["block"] == 1000 and d["ts_ms"] == (t0 + 2 * NS_PER_S) / 1e6
    assert d["time"] == "22:13:22.000"                                 # UTC wall clock of the frame
    u = o.rows[-1].display()
    assert u["net_usd"] == "unpriced" and u["path"].startswith("0x0000…00aa → USDC")
    assert u["amount_in"] == "1000000000000000000 0x0000…00aa"       # unknown decimals: raw units


def test_triangular_path_and_malformed_hops():
    agg = Aggregator(TokenBook(TOKENS))
    tri = signal(1, 1, hops=3, tokens=(USDC, WETH, WBTC), venues=(400, 405, 65000))
    agg.ingest("signal", sig_frame(1, tri, 10), 10)
    r = agg.opportunities.rows[-1].display()
    assert r["path"] == "USDC → WETH → WBTC → USDC"
    assert r["venues"] == "QuickSwap → Uniswap V3 → Test"
    agg.ingest("signal", sig_frame(2, signal(2, 1, hops=4), 10), 10)
    assert agg.opportunities.skipped == 1 and agg.opportunities.count == 1


def test_best_of_the_last_hour_slides():
    agg = Aggregator(TokenBook(TOKENS), max_rows=2)
    o = agg.opportunities
    t = 10 * HOUR_NS
    agg.ingest("signal", sig_frame(1, signal(1, 500), t), t)
    agg.ingest("signal", sig_frame(2, signal(2, 900), t + 10 * NS_PER_S), t)
    agg.ingest("signal", sig_frame(3, signal(3, 700), t + 20 * NS_PER_S), t)
    agg.ingest("signal", sig_frame(4, signal(4, 100), t + 30 * NS_PER_S), t)
    agg.ingest("signal", sig_frame(5, signal(5, 10 ** 12, flags=1), t + 40 * NS_PER_S), t)
    assert o.best(t + 40 * NS_PER_S).signal_id == 2      # not in the 2 displayed rows: still best
    assert o.best(t + HOUR_NS + 10 * NS_PER_S).signal_id == 2
    assert o.best(t + HOUR_NS + 11 * NS_PER_S).signal_id == 3    # signal 2 left the window
    assert o.best(t + HOUR_NS + 31 * NS_PER_S) is None           # unpriced never counts


def pool_sync(pool, r0, r1, venue, block, t0=USDC, t1=WETH, d0=6, d1=18, flags=0):
    return codec.PoolSync(reserve0=r0, reserve1=r1, block_number=block, block_ts_ns=0, log_index=1,
                          venue=venue, token0_decimals=d0, token1_decimals=d1, flags=flags,
                          pool=pool, token0=t0, token1=t1)


def md_frame(seq, rec, ts):
    return codec.build_frame(Domain.MARKET_DATA, Source.POLYGON_COLLECTOR, seq, [rec],
                             timestamp_ns=ts)


def test_prices_per_venue_oriented_and_thinned():
    agg = Aggregator(TokenBook(TOKENS), price_interval_ns=100 * 1_000_000)
    ms = 1_000_000
    # USDC is token0 (lower address); 2000 USDC per WETH -> shown as WETH/USDC = 2000
    agg.ingest("md", md_frame(1, pool_sync(P1, 2_000_000 * 10 ** 6, 1000 * 10 ** 18, 400, 7), 0), 0)
    agg.ingest("md", md_frame(2, pool_sync(P2, 2_010_000 * 10 ** 6, 1000 * 10 ** 18, 401, 7), 0), 0)
    pb = agg.prices
    (pair,) = pb.pairs.values()
    assert pair.label == "WETH/USDC" and pair.base == WETH
    s1, s2 = pair.pools[P1], pair.pools[P2]
    assert s1.last_exact == 2000 and s2.last_exact == 2010
    assert (s1.label, s2.label) == ("QuickSwap", "SushiSwap")
    assert pb.pair_options()[0][1] == "WETH/USDC (2 pools)"
    # three updates within 100 ms: one committed point, the newest pending, flushed later
    for i, r in enumerate((2_001_000, 2_002_000, 2_003_000)):
        agg.ingest("md", md_frame(3 + i, pool_sync(P1, r * 10 ** 6, 1000 * 10 ** 18, 400, 8),
                                  (50 + 10 * i) * ms), 0)
    assert s1.total == 1 and s1.pending is not None
    assert s1.last_exact == Fraction(2003)
    pb.flush(99 * ms)
    assert s1.total == 1
    pb.flush(100 * ms)
    t, p, cur = s1.points_after(0)
    assert cur == 2 and p == [2000.0, 2003.0] and t == [0.0, 100.0]
    # removed (reorged) events and empty reserves are counted, never plotted
    agg.ingest("md", md_frame(6, pool_sync(P1, 1, 1, 400, 9, flags=1), 500 * ms), 0)
    agg.ingest("md", md_frame(7, pool_sync(P1, 0, 1, 400, 9), 600 * ms), 0)
    assert pb.skipped == 2 and s1.total == 2
    assert agg.health.last_block == 9


def test_v3_state_and_swap_prices():
    agg = Aggregator(TokenBook(TOKENS))
    sp = 2 ** 96 * 45                        # raw price 2025 (token1 units per token0 unit)
    st = codec.PoolState(sqrt_price_x96=sp, liquidity=10 ** 20, block_number=5, tick=0,
                         fee_pips=500, venue=405, pool_kind=2, token0_decimals=8,
                         token1_decimals=18, tick_spacing=10, pool=P3, token0=WBTC, token1=WETH)
    agg.ingest("md", md_frame(1, st, 0), 0)
    (pair,) = agg.prices.pairs.values()
    s = pair.pools[P3]
    assert s.label == "Uniswap V3 0.05%"
    # token1 per token0 is 2025e8/1e18 WETH per WBTC (< 1), so the pair is shown inverted
    assert pair.base == WETH and pair.label == "WETH/WBTC"
    assert s.last_exact == 1 / Fraction(2025 * 10 ** 8, 10 ** 18)
    swap = codec.PoolSwap(amount_in=1, amount_out=1, sqrt_price_x96_after=2 ** 96 * 50,
                          liquidity_after=1, block_number=6, venue=405, amount_in_decimals=18,
                          amount_out_decimals=8, flags=0, pool=P3, token_in=WETH, token_out=WBTC)
    agg.ingest("md", md_frame(2, swap, 10 ** 9), 0)
    assert s.last_exact == 1 / Fraction(2500 * 10 ** 8, 10 ** 18)


def test_rejects_are_counted_by_reason():
    agg = Aggregator(TokenBook(TOKENS), market_crc_every=1)
    good = bytearray(sig_frame(1, signal(1, 1), 5))
    good[-1] ^= 0xFF
    assert not agg.ingest("signal", bytes(good), 0)
    assert not agg.ingest("signal", b"\x00" * 40, 0)
    assert not agg.ingest("signal", b"\xef\xbe", 0)
    assert agg.health.rejects == {Reject.BAD_CHECKSUM.name: 1, Reject.BAD_MAGIC.name: 1,
                                  Reject.TRUNCATED_HEADER.name: 1}
    assert agg.opportunities.count == 0


def test_market_checksum_sampling_every_nth():
    agg = Aggregator(TokenBook(TOKENS), market_crc_every=3)
    bad = bytearray(md_frame(1, pool_sync(P1, 10, 10, 400, 1), 0))
    bad[-1] ^= 1
    results = [agg.ingest("md", bytes(bad), 0) for _ in range(6)]
    assert results == [True, True, False, True, True, False]   # verified on the 3rd and 6th


def test_health_rates_from_counters_and_ring_stats():
    h = Health()
    def snap(frames_in, block, buckets):
        return {"components": {"strategy": {
            "counters": {"frames_in": frames_in, "frames_out": 0, "signals": 0},
            "gauges": {"last_block": block}, "latency": {"buckets": buckets}}}}
    h.set_metrics(snap(0, 10, [5, 0, 0]), 0)
    assert h.latency_window("strategy", 10) == [5, 0, 0]          # one sample: since start
    h.set_metrics(snap(5000, 12, [5, 3, 0]), NS_PER_S // 2)
    assert h.component_rate("strategy", "frames_in") == 10_000
    assert h.last_block == 12
    h.set_metrics(snap(5000, 12, [9, 3, 1]), 20 * NS_PER_S)
    assert h.latency_window("strategy", 10) == [4, 0, 1]          # minus the newest >= 10 s old
    assert h.latency_window("nope", 10) == []
    h.set_ring_stats("market", {"capacity": 1 << 20}, 100, 0)
    h.set_ring_stats("market", {"capacity": 1 << 20}, 400, 2 * NS_PER_S)
    assert h.ring_rate("market") == 150
    h.note_frames("signal", 30)
    h.sample(0)
    h.note_frames("signal", 30)
    h.sample(NS_PER_S)
    assert h.read_rates["signal"].rate == 30 and len(h.trend) == 2


def test_rate_meter_window_smooths_sparse_events():
    m = RateMeter(window_ns=5 * NS_PER_S)
    half = NS_PER_S // 2
    rates = [m.sample(v, i * half) for i, v in enumerate([0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4])]
    # one event every 1.5 s reads as ~0.67/s once the window is full, never 0 between events
    assert all(r > 0 for r in rates[2:])
    assert rates[-1] == pytest.approx(4 / 6, rel=0.25)
    assert m.sample(4, 12 * half + 20 * NS_PER_S) == 0.0          # idle for longer than the window


def test_pools_waiting_on_a_snapshot_are_named_until_one_answers():
    from alphapulse.dashboard.app import render_health
    agg = Aggregator(TokenBook(TOKENS))
    state = codec.PoolState(reserve0=10**21, reserve1=2 * 10**9, block_number=5, fee_pips=3000, venue=400,
                            pool_kind=1, token0_decimals=18, token1_decimals=6, pool=P1, token0=WETH, token1=USDC)
    md = codec.build_frame(int(Domain.MARKET_DATA), int(Source.POLYGON_COLLECTOR), 1, [state])
    assert agg.ingest("market", md, 0)
    ask = codec.build_frame(int(Domain.SYSTEM), int(Source.ARBITRAGE_STRATEGY), 1,
                            [codec.PoolRefresh(pool=P1, reason=1, block_number=5)])
    assert agg.ingest("system", ask, 0)
    assert list(agg.health.waiting) == [P1] and "(WETH/USDC)" in agg.health.waiting[P1]
    agg.health.set_metrics({"components": {}, "bounds_ns": [1000]}, 0)
    html = render_health(agg.health, "strategy")["html"]
    assert "Pools waiting on a snapshot (1)" in html and "WETH/USDC" in html
    # the fresh snapshot answers: no longer waiting
    md = codec.build_frame(int(Domain.MARKET_DATA), int(Source.POLYGON_COLLECTOR), 2, [state])
    assert agg.ingest("market", md, 0)
    assert agg.health.waiting == {}
