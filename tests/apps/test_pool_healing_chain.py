"""Pool state that heals itself, end to end: the pipeline's local-chain run (anvil, real Uniswap V3
bytecode, the real source and strategy processes on their rings). Positions are minted far outside
the source's snapshot range (``source.tick_range``); one is burnt there; the price then moves into
them. The strategy takes the pool out of trading, asks the source for it with PoolRefresh on the
system ring, trades it again on the answer, and the price gap it shows gives a signal whose
amount_out equals executing that path on chain."""
import time
from fractions import Fraction

from tests.apps.pipeline_helpers import PipelineProcess

TICK_RANGE = 1200


class Reader:
    """A consumer of one of the pipeline's rings that keeps (frame timestamp in ns, record) of each TLV
    (the timestamp is the wall clock when the frame was written)."""

    def __init__(self, ring_name: str, name: str):
        from alphapulse.ring import Ring
        self.ring = Ring.attach(ring_name, timeout=5)
        self.cons = self.ring.consumer(name, wait="sleep")
        self.seen: list[tuple[float, object]] = []

    def pump(self, timeout: float = 0.05) -> None:
        from alphapulse.protocol import codec
        for f in self.cons.frames(timeout=timeout):
            fr = codec.parse_frame(f)
            self.seen += [(fr.header.timestamp_ns, r) for r in fr.tlvs]

    def first(self, pred):
        return next(((t, r) for t, r in self.seen if pred(r)), None)

    def close(self) -> None:
        self.cons.close()
        self.ring.close()


def test_a_pool_out_of_trading_is_refreshed_and_trades_again_within_two_blocks():
    from alphapulse.chain.deploy import Market
    from alphapulse.protocol import codec
    p = PipelineProcess("--source", "local-chain", dashboard=False,
                        env={"ALPHAPULSE__SOURCE__SIMULATE": "false",
                             "ALPHAPULSE__SOURCE__TICK_RANGE": str(TICK_RANGE)})
    readers = []
    try:
        h = p.wait_for(lambda: (lambda h: h if h and h["ready"] else None)(p.health()), 90, "ready")
        p.wait_for(lambda: p.metric("alphapulse_rpc_connected", "source") == 1, 60, "adapter connected")
        chain = h["local_chain"]
        mk = Market.from_dict(chain["http_url"], chain["market"])
        market = Reader(h["rings"]["market_data"], "test_market")
        system = Reader(h["rings"]["system"], "test_system")
        signals = Reader(h["rings"]["signal"], "test_signal")
        readers += [market, system, signals]

        def pump_until(pred, timeout, what):
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                for r in readers:
                    r.pump(0.01)
                v = pred()
                if v:
                    return v
            raise AssertionError(f"timed out waiting for {what}\n" + p.output()[-3000:])

        v3 = mk.v3_pool("WMATIC", "USDC", 3000)
        pool = bytes.fromhex(v3.address[2:])
        sp = v3.tick_spacing
        pair = mk.pools_for("WMATIC", "USDC")
        for q in pair:                              # first sight: the source snapshots each pool
            mk.move_price(q, 1.0005)
        p.wait_for(lambda: p.metric("alphapulse_pools", "strategy") >= len(pair), 120, "pools known")
        _, cov0 = pump_until(lambda: market.first(lambda r: isinstance(r, codec.TickCoverage) and r.pool == pool),
                             10, "the pool's first snapshot")
        tick0 = mk.slot0(v3)[1]
        assert cov0.tick_upper - tick0 <= TICK_RANGE + sp

        # positions far above the covered range; one is burnt there: nothing the strategy prices changed
        a = tick0 // sp * sp
        t1, liq1, _, _ = mk.add_liquidity_v3(v3, a + 2400, a + 3600, 10**21, 10**9)
        t2, _, _, _ = mk.add_liquidity_v3(v3, a + 1800, a + 3000, 10**21, 10**9)
        assert cov0.tick_upper < a + 1800
        mk.remove_liquidity_v3(t2)
        quiet = mk.w3.eth.block_number
        pump_until(lambda: market.first(lambda r: isinstance(r, codec.BlockEnd) and r.block_number == quiet),
                   10, "the burn's block")
        time.sleep(1.2)                             # the strategy's gauges are written every 0.5 s
        assert p.metric("alphapulse_pools_waiting", "strategy") == 0
        assert not system.first(lambda r: isinstance(r, codec.PoolRefresh))

        # the price moves into the positions: the swap leaves the covered range
        t_move = time.time_ns()
        mk.move_price(v3, Fraction(13, 10))
        t_mined = time.time_ns()
        moved = mk.w3.eth.block_number
        assert mk.slot0(v3)[1] > a + 2400
        t_ask, ask = pump_until(lambda: system.first(lambda r: isinstance(r, codec.PoolRefresh)), 10,
                                "the strategy's PoolRefresh")
        assert ask.pool == pool and ask.reason == 1            # UNKNOWN_TICK

        def answer():
            return market.first(lambda r: isinstance(r, codec.PoolState) and r.pool == pool
                                and r.block_number >= moved)
        t_snap, snap = pump_until(answer, 10, "the source's fresh snapshot")
        cov = market.first(lambda r: isinstance(r, codec.TickCoverage) and r.pool == pool
                           and r.block_number == snap.block_number)[1]
        assert cov.tick_lower <= a + 2400 and cov.tick_upper >= a + 3600
        ticks = {r.tick: r.liquidity_net for _, r in market.seen
                 if isinstance(r, codec.PoolTick) and r.pool == pool and r.block_number == snap.block_number}
        assert {a + 2400, a + 3600} <= set(ticks) and not {a + 1800, a + 3000} & set(ticks)

        # tradable again: a signal through the pool, priced on the fresh state
        def through_pool(r):
            return (isinstance(r, codec.ArbitrageSignal) and r.block_number >= moved
                    and pool in [bytes(x) for x in r.pools[:r.hops]])
        extra = 0
        end = time.monotonic() + 10
        while not signals.first(through_pool):
            pump_until(lambda: True, 1, "")
            if signals.first(through_pool) or time.monotonic() > end:
                break
            if time.time_ns() - t_snap > 10**9 and extra < 2:   # the answer waits for a block end?
                mk.w3.provider.make_request("evm_mine", [])
                extra += 1
        found = signals.first(through_pool)
        assert found, "no signal through the refreshed pool\n" + p.output()[-3000:]
        t_sig, sig = found
        assert sig.block_number - moved <= 2
        p.wait_for(lambda: p.metric("alphapulse_pools_waiting", "strategy") == 0, 5, "pools_waiting 0")
        # the healed pool is named nowhere any more: no alphapulse_pool_waiting family at all
        p.wait_for(lambda: "alphapulse_pool_waiting" not in p.get("/metrics")[1], 5, "no pool named waiting")
        assert t_move < t_ask < t_snap < t_sig
        print(f"\nswap out of the covered range (block {moved}) sent and mined in {(t_mined - t_move) / 1e6:.0f} ms; "
              f"from sending it: PoolRefresh on the system ring {(t_ask - t_move) / 1e6:.1f} ms, "
              f"snapshot of block {snap.block_number} on the market ring {(t_snap - t_move) / 1e6:.1f} ms, "
              f"signal through the pool (block {sig.block_number}) {(t_sig - t_move) / 1e6:.1f} ms; "
              f"{extra} empty blocks mined")

        # the price gap the pool shows gives an exact signal: execute exactly that path on chain
        path = [("0x" + bytes(sig.pools[i]).hex(), "0x" + bytes(sig.tokens[i]).hex(),
                 "0x" + bytes(sig.tokens[(i + 1) % sig.hops]).hex()) for i in range(sig.hops)]
        res = mk.execute_cycle(path, sig.amount_in, mode="atomic")
        assert res.amount_out == sig.amount_out, (res, sig)
    finally:
        for r in readers:
            r.close()
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert p.segments() == []
    out = p.log_path.read_text()
    assert "leaves trading" in out and "re-enters trading" in out
