"""On the local chain: a simulated market's logs, dumped with eth_getLogs and imported with the
state read at the start block, backtest to the same signals as the live adapter on the same blocks.

Both runs are evaluated on block ends (each block's frames are one batch for the engine), the
state a searcher can act on; signals are compared field for field, header timestamps aside.
"""
from __future__ import annotations


import dataclasses
import json
import threading
import time
from fractions import Fraction

from alphapulse.adapters.evm.abi import ALL_TOPIC0_HEX
from alphapulse.adapters.evm.config import EvmDataClientConfig
from alphapulse.adapters.evm.data import run_adapter
from alphapulse.apps import import_logs
from alphapulse.apps.config import ChainConfig
from alphapulse.apps.make_recording import canonical_order, market_toml, restamp
from alphapulse.apps.pipeline import market_chain_config
from alphapulse.chain.simulator import MarketSimulator, SimulatorConfig
from alphapulse.journal import JournalReader
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.strategy.config import EngineConfig
from alphapulse.strategy.engine import StrategyEngine

from tests.conftest import own_node_fixtures
from tests.strategy.feed import signals


anvil, _deployed_market = own_node_fixtures()      # a node of its own: see tests/conftest.py

BLOCKS = 24
POOL_EVENT_TYPES = (L.POOL_SWAP.type_id, L.POOL_SYNC.type_id, L.POOL_MINT.type_id, L.POOL_BURN.type_id)
BLOCK_KEYED = POOL_EVENT_TYPES + (L.GAS_PRICE.type_id,)


def block_batches(frames: list[bytes]) -> list[list[bytes]]:
    """Frames cut into one batch per block: a BlockEnd closes its block, and without BlockEnd a
    pool event or GasPrice of another block starts the next; state frames join the current one."""
    out: list[list[bytes]] = []
    cur: list[bytes] = []
    block = None
    for f in frames:
        t = codec.parse_frame(f).tlvs[0]
        if t.TYPE == L.HEARTBEAT.type_id:
            continue
        if t.TYPE in BLOCK_KEYED:
            if block is not None and t.block_number != block and cur:
                out.append(cur)
                cur = []
            block = t.block_number
        cur.append(f)
        if t.TYPE == L.BLOCK_END.type_id:
            out.append(cur)
            cur, block = [], None
    if cur:
        out.append(cur)
    return out


def backtest(market, frames: list[bytes]) -> tuple[list, dict]:
    engine = StrategyEngine(EngineConfig(
        stable_token=market.tokens["USDC"].address, native_token=market.tokens["WMATIC"].address,
        v2_venue_fees={v: 3000 for v in market.v2_factories},
        max_pools=256, max_tokens=64, max_v3_pools=64, max_ticks_per_pool=256, journal_size=1024,
        signal_table_size=1024, max_signals_per_batch=512))
    out = []
    for batch in block_batches(frames):
        out += signals(engine.process(batch))
    out += signals(engine.end_input_frames())
    return out, engine.counters()


def touch_every_pool(market, lock, events_seen, anvil) -> int:
    """A small swap on every pool, one block each, each published by the live adapter before the
    next: the adapter then knows every pool, met in the order the logs name them (as the import
    lists them), before the simulated blocks. Returns the first of these blocks."""
    first = None
    for p in market.pools:
        tok = market.token(p.token0)
        amount = int(Fraction(25) / market.usd_prices[tok.symbol] * 10 ** tok.decimals)
        (rc,) = market.sender.batch([market.swap_tx(p, p.token0, amount, market.traders[0])])
        b = rc["blockNumber"]
        wait_published(events_seen, lock, anvil, [p.address], b, b)
        first = b if first is None else first
    return first


def wait_published(events_seen, lock, anvil, pools, lo, hi) -> dict[int, int]:
    """Pool events per block of the chain in [lo, hi], once the adapter has published them all."""
    logs = anvil.rpc("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi), "address": pools,
                                      "topics": [ALL_TOPIC0_HEX]}])
    want: dict[int, int] = {}
    for lg in logs:
        b = int(lg["blockNumber"], 16)
        want[b] = want.get(b, 0) + 1
    deadline = time.monotonic() + 60
    while True:
        with lock:
            if all(events_seen.get(b, 0) >= n for b, n in want.items()):
                return want
        assert time.monotonic() < deadline, f"adapter published {events_seen}, chain has {want}"
        time.sleep(0.01)


def test_imported_logs_backtest_like_the_live_run(market, anvil, tmp_path):
    chain = market_chain_config(ChainConfig(chain_id=anvil.chain_id), market)
    toml = tmp_path / "market.toml"
    toml.write_text(market_toml(chain))
    frames: list[bytes] = []
    events_seen: dict[int, int] = {}
    ended: set[int] = set()                                 # blocks whose BlockEnd went out
    lock = threading.Lock()

    def sink(batch: list[bytes]) -> None:
        with lock:
            for f in batch:
                frames.append(f)
                for rec in codec.parse_frame(f).tlvs:
                    if rec.TYPE in POOL_EVENT_TYPES:
                        events_seen[rec.block_number] = events_seen.get(rec.block_number, 0) + 1
                    elif rec.TYPE == L.BLOCK_END.type_id:
                        ended.add(rec.block_number)

    def wait_block_end(block: int) -> None:
        """The adapter has sent ``block``'s BlockEnd, so that block's GasPrice and events too."""
        deadline = time.monotonic() + 60
        while True:
            with lock:
                if block in ended:
                    return
            assert time.monotonic() < deadline, f"no BlockEnd for block {block}: {sorted(ended)[-5:]}"
            time.sleep(0.01)

    cfg = EvmDataClientConfig(endpoints=(anvil.ws_url,), factories=chain.factories, chain_id=anvil.chain_id,
                              fetch_priority_fee=False, heartbeat_s=None)
    stop = threading.Event()
    t = threading.Thread(target=run_adapter, args=(cfg, sink, stop), name="adapter", daemon=True)
    t.start()
    try:
        deadline = time.monotonic() + 60                    # empty blocks until one's BlockEnd shows
        while not ended:                                    # that the adapter is subscribed
            assert time.monotonic() < deadline, "the adapter never reported a block"
            anvil.mine()
            time.sleep(0.2)
        start = anvil.block_number()
        touched = touch_every_pool(market, lock, events_seen, anvil)
        pools = [p.address for p in market.pools]
        sim = MarketSimulator(market, SimulatorConfig(seed=11, txs_per_block=6))
        last = max(sim.step().block_number for _ in range(BLOCKS))
        want = wait_published(events_seen, lock, anvil, pools, touched, last)
        logs = anvil.rpc("eth_getLogs", [{"fromBlock": hex(start + 1), "toBlock": hex(last),
                                          "address": pools, "topics": [ALL_TOPIC0_HEX]}])
        wait_block_end(last)                                # the last heads' GasPrice frames
    finally:
        stop.set()
        t.join(10)
    assert not t.is_alive()
    assert start < touched and len(want) > BLOCKS // 2 and sum(want.values()) == len(logs)

    dump = tmp_path / "logs.json"
    dump.write_text(json.dumps(logs))
    out = tmp_path / "imported.apj"
    rc = import_logs.main([str(dump), "--rpc", anvil.ws_url, "--state-block", str(touched - 1),
                           "--market", str(toml), "--out", str(out), "--report", str(tmp_path / "r.json")])
    assert rc == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["skipped"] == {} and sum(rep["events_written"].values()) == len(logs), rep
    assert rep["gas_prices"] == rep["blocks"] == len(want)
    imported = [f for _, f in JournalReader(out).frames()]
    ends = [r for f in imported for r in codec.parse_frame(f).tlvs if r.TYPE == L.BLOCK_END.type_id]
    assert [e.block_number for e in ends] == sorted(want)
    assert [e.event_count for e in ends] == [want[b] for b in sorted(want)]

    with lock:
        live_frames = restamp(canonical_order(list(frames)), 0, 1_000_000_000)   # sequences in order again
    live, live_counters = backtest(market, live_frames)
    replayed, counters = backtest(market, imported)
    assert counters["frames_rejected"] == counters["frames_duplicate"] == counters["seq_gaps"] == 0, counters
    assert live_counters["applied"] == counters["applied"], (live_counters, counters)

    def fields(s):
        return dataclasses.replace(s, trigger_ts_ns=0)

    assert [fields(s) for s in replayed] == [fields(s) for s in live]
    assert len(live) >= 3, "the simulated run should open some opportunities"
