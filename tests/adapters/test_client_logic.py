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
