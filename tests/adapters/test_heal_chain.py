"""The whole healing loop on a real anvil node with real Uniswap V3 bytecode: the adapter's
frames go to the strategy engine, its PoolRefresh frames go back on a system ring to the
adapter, whose fresh snapshot puts the pool back in trading within two blocks."""
import os
import threading
import time
from fractions import Fraction

from alphapulse.apps.components import read_pool_refreshes
from alphapulse.apps.config import ChainConfig, Config
from alphapulse.apps.pipeline import market_chain_config
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.ring import Ring
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

from .chain_helpers import adapter_config, addr


class Loop:
    """The adapter's frames -> the engine, one by one; the engine's refresh requests -> ring."""

    def __init__(self, run, engine, producer):
        self.run, self.engine, self.producer = run, engine, producer
        self.done = 0
        self.ended: list[int] = []           # BlockEnds the engine has applied, in order
        self.waiting_seen: dict[int, bool] = {}   # block -> was the pool waiting after its BlockEnd

    def pump(self, pool: bytes) -> None:
        frames = list(self.run.frames)[self.done:]
        for f in frames:
            self.engine.process([f])
            self.done += 1
            r = codec.parse_frame(f).tlvs[0]
            if isinstance(r, codec.BlockEnd):
                self.ended.append(r.block_number)
                self.waiting_seen[r.block_number] = self.engine.registry.pool(pool).waiting != 0
            for req in self.engine.refresh_requests():
                self.producer.publish(req)

    def until(self, pool, pred, timeout, what):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.pump(pool)
            if pred():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}; adapter {dict(self.run.counters)}")


def test_position_far_outside_the_snapshot_priced_into_then_burnt_trades_within_two_blocks(
        fresh_chain, adapter_run):
    anvil, m = fresh_chain
    v3 = m.v3_pool("WMATIC", "USDC", 3000)
    pool, sp = addr(v3.address), v3.tick_spacing
    cfg = Config(chain=market_chain_config(ChainConfig(), m))
    engine = StrategyEngine(EngineConfig.from_app_config(cfg))
    # compile the engine's kernels before the chain runs (the loop below is timed in blocks)
    engine.process([codec.build_frame(int(L.Domain.MARKET_DATA), int(L.Source.POLYGON_COLLECTOR), 1, [
        codec.GasPrice(base_fee_wei=1, priority_fee_wei=0, block_number=0, block_ts_ns=0, chain_id=m.chain_id)])])
    assert engine.refresh_requests() == []
    ring = Ring.create(f"t_heal_{os.getpid()}_{time.monotonic_ns() % 10**9}", 1 << 16, "overwrite")
    prod = ring.producer()
    stop = threading.Event()
    run = adapter_run(adapter_config(m, anvil.ws_url, tick_snapshot_range=1200))
    reader = threading.Thread(target=read_pool_refreshes, args=(stop, ring.name, [run.client]), daemon=True)
    reader.start()
    try:
        run.wait_connected()
        loop = Loop(run, engine, prod)
        m.swap(v3, v3.token0, 10 ** m.decimals[v3.token0] // 10)
        b = anvil.block_number()
        loop.until(pool, lambda: b in loop.ended, 20, "the pool's first block")
        info = engine.registry.pool(pool)
        assert info.waiting == 0 and not info.stale and info.coverage is not None
        s0 = info.tick // sp * sp
        lo, hi = s0 + 2400, s0 + 3600                    # far outside the covered range
        assert hi > info.coverage[1] + sp and lo > info.coverage[1]
        tid, liq, _, _ = m.add_liquidity_v3(v3, lo, hi, 10**21, 10**9)
        minted = anvil.block_number()
        loop.until(pool, lambda: minted in loop.ended, 20, "the mint's block")
        assert not loop.waiting_seen[minted]        # its ticks lie where nothing is priced
        # the price moves into the far position: out of the covered range, the pool waits ...
        m.move_price(v3, Fraction(13, 10))
        moved = anvil.block_number()
        loop.until(pool, lambda: moved in loop.ended, 20, "the move's block")
        assert loop.waiting_seen[moved], "a price outside the covered range did not stop trading"
        # ... and trades again within two blocks (local-chain pace: 1 s per block)
        for _ in range(2):
            time.sleep(1.0)
            anvil.mine()
        loop.until(pool, lambda: moved + 2 in loop.ended, 20, "two blocks after the move")
        back = min((n for n in loop.waiting_seen if n > moved and not loop.waiting_seen[n]), default=None)
        assert back is not None and back <= moved + 2, (loop.waiting_seen, dict(run.counters))
        assert engine.registry.pool(pool).waiting == 0
        info = engine.registry.pool(pool)
        assert {lo, hi} <= {t for t, _ in info.ticks} and info.coverage[0] <= lo < hi <= info.coverage[1]
        # the far position is burnt: the pool stays in trading, on the chain's state
        m.remove_liquidity_v3(tid)
        burnt = anvil.block_number()
        time.sleep(1.0)
        anvil.mine()
        loop.until(pool, lambda: burnt + 1 in loop.ended, 20, "the block after the burn")
        assert not loop.waiting_seen[burnt] and not loop.waiting_seen[burnt + 1]
        info = engine.registry.pool(pool)
        assert info.waiting == 0 and not info.stale
        assert (info.sqrt_price_x96, info.tick, info.liquidity) == m.slot0(v3)
        c = m.contract("UniswapV3Pool", v3.address)
        for t, net in info.ticks:
            assert net == c.functions.ticks(t).call()[1]
        assert run.counters["refreshes"] >= 1
        print(f"price out of the covered range in block {moved}, trading again after block {back}; "
              f"refreshes {run.counters['refreshes']}, requests {run.counters['refresh_requests']}")
    finally:
        stop.set()
        reader.join(5)
        prod.close()
        ring.close()
    run.stop()
