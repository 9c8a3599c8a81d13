"""EvmDataClient's ordering logic fed directly (no node needed for these paths): dedup window,
removed:true for published and for held events, stale logs after a head mismatch."""
import asyncio

from eth_abi import encode

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.config import EvmDataClientConfig, FactoryConfig
from alphapulse.adapters.evm.data import EvmDataClient
from alphapulse.adapters.evm.providers import PoolInfo
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED

POOL = b"\x11" * 20
OTHER = b"\x22" * 20
INFO = PoolInfo(POOL, 1, 400, b"\xaa" * 20, b"\x01" * 20, b"\x02" * 20, 18, 6, 3000, 0)


def _client():
    cfg = EvmDataClientConfig(endpoints=("ws://127.0.0.1:1",),
                              factories=(FactoryConfig("0x" + "aa" * 20, 400, "v2"),),
                              reorg_depth=4, heartbeat_s=None, fetch_priority_fee=False)
    out = []
    c = EvmDataClient(cfg, out.extend)
    c.provider.pools[POOL] = INFO
    c._snap_block[POOL] = 0
    return c, out


def _sync(block, index, r0, pool=POOL, removed=False, bhash=None):
    return {"address": "0x" + pool.hex(), "topics": [abi.V2_SYNC.topic0_hex],
            "data": "0x" + encode(["uint112", "uint112"], [r0, 1]).hex(),
            "blockNumber": hex(block), "logIndex": hex(index),
            "blockHash": bhash or "0x%064x" % block, "removed": removed}


def _head(n, parent=None):
    return {"number": hex(n), "hash": "0x%064x" % n, "parentHash": parent or "0x%064x" % (n - 1),
            "timestamp": hex(1_800_000_000 + n), "baseFeePerGas": hex(7)}


def _records(out):
    return [t for f in out for t in codec.parse_frame(f).tlvs]


def test_dedup_removed_and_dedup_window():
    async def go():
        c, out = _client()
        for n in range(1, 4):
            await c._on_log(None, _sync(n, 0, 100 + n))
            await c._on_log(None, _sync(n, 0, 100 + n))          # duplicate
            await c._on_head(None, _head(n))
        await c._on_log(None, _sync(2, 0, 102, removed=True))    # the node undoes block 2's log
        await c._on_log(None, _sync(2, 0, 102, removed=True))    # again: unknown by now
        for n in range(4, 12):
            await c._on_head(None, _head(n))
        await c._on_log(None, _sync(3, 0, 103))                  # far behind the window
        c.publisher.flush()
        return c, out
    c, out = asyncio.run(go())
    syncs = [r for r in _records(out) if isinstance(r, codec.PoolSync)]
    assert [(r.block_number, r.reserve0, r.flags) for r in syncs] == \
        [(1, 101, 0), (2, 102, 0), (3, 103, 0), (2, 102, EVENT_REMOVED)]
    assert syncs[0].block_ts_ns == 0 and syncs[1].block_ts_ns == 0   # log before its head: unknown
    assert c.counters["duplicates"] == 3 and c.counters["removed_unknown"] == 1
    assert c.counters["too_old"] == 1
    assert not c._blocks and sorted(c._heads) == list(range(7, 12))   # windows pruned to 4 blocks
    gas = [r for r in _records(out) if isinstance(r, codec.GasPrice)]
    assert [g.block_number for g in gas] == list(range(1, 12)) and gas[0].base_fee_wei == 7


def test_removed_true_of_a_held_event_unholds_it():
    async def go():
        c, out = _client()
        await c._on_log(None, _sync(5, 0, 1, pool=OTHER))         # unknown pool: held, discovery waits
        await c._on_log(None, _sync(5, 1, 2, pool=OTHER))
        assert [e.log_index for e in c._pending[OTHER]] == [0, 1]
        await c._on_log(None, _sync(5, 0, 1, pool=OTHER, removed=True))
        held = [e.log_index for e in c._pending[OTHER]]
        for t in c._discovering.values():
            t.cancel()
        c.publisher.flush()
        return c, out, held
    c, out, held = asyncio.run(go())
    assert held == [1] and c.counters["held_dropped_by_reorg"] == 1
    assert not [r for r in _records(out) if isinstance(r, codec.PoolSync)]   # nothing of it published


def test_block_end_waits_for_held_events_and_later_blocks_wait_behind_it():
    """A pool in discovery holds its events; its block's BlockEnd waits for them, and events of
    later blocks (of known pools) wait behind that BlockEnd, so blocks never interleave."""
    other = PoolInfo(OTHER, 1, 400, b"\xaa" * 20, b"\x01" * 20, b"\x02" * 20, 18, 6, 3000, 0)

    async def go():
        c, out = _client()
        for n in (4, 5, 6):
            await c._on_head(None, _head(n))
        await c._on_log(None, _sync(4, 0, 40))
        c._end_blocks(4, 4)
        await c._on_log(None, _sync(5, 0, 50, pool=OTHER))        # unknown pool: held
        await c._on_log(None, _sync(5, 1, 51))                    # same block: published
        c._end_blocks(5, 5)
        await c._on_log(None, _sync(6, 0, 60))                    # next block: waits
        await c._on_log(None, _sync(6, 0, 60))                    # its duplicate is still dropped
        c._end_blocks(6, 6)
        c.publisher.flush()
        before = [(type(r).__name__, r.block_number) for r in _records(out) if not isinstance(r, codec.GasPrice)]
        for t in c._discovering.values():
            t.cancel()
        state = codec.PoolState(reserve0=1, reserve1=1, sqrt_price_x96=0, liquidity=0, block_number=4,
                                block_ts_ns=0, tick=0, fee_pips=3000, venue=400, pool_kind=1,
                                token0_decimals=18, token1_decimals=6, flags=0, tick_spacing=0,
                                pool=OTHER, token0=other.token0, token1=other.token1)
        c._ready.append((OTHER, (other, 4, [state])))
        await c._flush_ready(None)
        c.publisher.flush()
        return c, out, before
    c, out, before = asyncio.run(go())
    assert before == [("PoolSync", 4), ("BlockEnd", 4), ("PoolSync", 5)]
    recs = [r for r in _records(out) if not isinstance(r, codec.GasPrice)]
    assert [(type(r).__name__, r.block_number, getattr(r, "pool", None)) for r in recs[3:]] == [
        ("PoolState", 4, OTHER), ("PoolSync", 5, OTHER), ("BlockEnd", 5, None), ("PoolSync", 6, POOL),
        ("BlockEnd", 6, None)]
    ends = [r for r in recs if isinstance(r, codec.BlockEnd)]
    assert [(e.event_count, e.block_hash) for e in ends] == [(1, (4).to_bytes(32, "big")),
                                                            (2, (5).to_bytes(32, "big")),
                                                            (1, (6).to_bytes(32, "big"))]
    assert ends[0].block_ts_ns == (1_800_000_000 + 4) * 10**9 and ends[0].chain_id == 137
    assert c.counters["held_behind_block_end"] == 1 and c.counters["duplicates"] == 1
