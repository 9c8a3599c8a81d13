"""Reconnects, node restarts from a state dump, silent subscriptions and reorgs, on a real node."""
import asyncio
import time

import pytest

from alphapulse.chain.deploy import deploy_market
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED

from .chain_helpers import adapter_config, addr, chain_log_keys, check_block_ends, net_event_keys, pool_events


def _burst(m, n, start=0):
    """n swaps spread over V2 (both venues) and V3 pools, alternating directions."""
    pools = [m.v2_pool("WMATIC", "USDC", 400), m.v2_pool("WMATIC", "USDC", 401),
             m.v3_pool("WMATIC", "USDC", 3000), m.v2_pool("WBTC", "USDC", 400)]
    dec = m.decimals
    for i in range(start, start + n):
        p = pools[i % len(pools)]
        t = p.token0 if i % 3 else p.token1
        m.swap(p, t, (i + 1) * 10 ** dec[t] // 50)


def test_node_restart_from_state_dump_mid_burst_no_gap_no_duplicate(anvil_factory, adapter_run, tmp_path):
    node = anvil_factory()
    m = deploy_market(node.http_url)
    b0 = node.block_number()
    # a long first backoff: the node is back and trading before the adapter reconnects
    run = adapter_run(adapter_config(m, node.ws_url, backoff_initial_s=1.0, backoff_max_s=2.0,
                                     cache_path=str(tmp_path / "pools.sqlite")))
    run.wait_connected()
    _burst(m, 12)
    run.wait_head(node.block_number())
    node.dump_state(tmp_path / "state.json")
    node.restart(load_state=tmp_path / "state.json")     # the WebSocket dies with the process
    _burst(m, 12, start=12)                              # while the adapter is away
    run.wait_connected(2, timeout=20)
    _burst(m, 8, start=24)
    b1 = node.block_number()
    run.wait_head(b1)
    run.stop()
    recs = run.records()
    c = run.counters
    assert c["disconnects"] >= 1 and c["backfill_logs"] > 0 and c["reorgs"] == 0
    assert not any(r.flags & EVENT_REMOVED for r in pool_events(recs))
    assert net_event_keys(recs) == chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})
    seqs = [codec.parse_frame(f).header.sequence for f in run.frames]
    assert seqs == list(range(1, len(seqs) + 1))
    # a restart of the adapter reuses the pool cache: no rediscovery, but a fresh snapshot
    run2 = adapter_run(adapter_config(m, node.ws_url, cache_path=str(tmp_path / "pools.sqlite")))
    run2.wait_connected()
    _burst(m, 4, start=40)
    run2.wait_head(node.block_number())
    run2.stop()
    assert run2.counters["discoveries"] == 0 and run2.counters["pools_from_cache"] == 4
    assert sum(isinstance(r, codec.PoolState) for r in run2.records()) == 4


@pytest.mark.parametrize("silenced", ["both", "heads"])
def test_silent_subscription_detected_by_watchdog(anvil, market, adapter_run, silenced):
    m = market
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url, watchdog_s=0.5))
    run.wait_connected()
    _burst(m, 3)
    run.wait_head(anvil.block_number())
    client = run.client
    # the node stops sending on this connection (as a stuck provider would), chain moves on
    subs = client.subscriptions if silenced == "both" else client.subscriptions[:1]
    for sid in subs:
        asyncio.run_coroutine_threadsafe(client._rpc.request("eth_unsubscribe", [sid]), client.loop).result(5)
    for i in range(5):     # the chain moves on (slowly enough for a 0.5 s watchdog)
        _burst(m, 1, start=3 + i)
        time.sleep(0.15)
    run.wait_connected(2, timeout=10)
    _burst(m, 2, start=8)
    b1 = anvil.block_number()
    run.wait_head(b1)
    run.stop()
    assert run.counters["watchdog_stale"] >= 1
    assert net_event_keys(run.records()) == chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})


def test_reorg_republishes_dropped_events_removed_then_replacements(anvil, market, adapter_run):
    m = market
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    _burst(m, 4)
    fork_point = anvil.block_number()
    run.wait_head(fork_point)
    snap = anvil.snapshot()
    _burst(m, 6, start=4)                        # blocks fork_point+1 .. +6, to be dropped
    run.wait_head(anvil.block_number())
    n_before = len(run.records())
    dropped = [(r.block_number, r.log_index) for r in pool_events(run.records())
               if r.block_number > fork_point]
    assert len(dropped) >= 6
    anvil.revert(snap)                           # the chain we followed is replaced ...
    _burst(m, 3, start=20)                       # ... by a shorter one with other swaps
    b1 = anvil.block_number()
    run.wait_until(lambda: run.counters["reorgs"] >= 1, 10, "reorg")
    run.wait_head(b1)
    run.wait_block_end(b1)
    run.stop()
    check_block_ends(run.frames, m.chain_id)
    recs = run.records()
    after = pool_events(recs[n_before:])
    removed = [r for r in after if r.flags & EVENT_REMOVED]
    # every dropped event undone, newest first, before any replacement event
    assert [(r.block_number, r.log_index) for r in removed] == sorted(dropped, reverse=True)
    first_new = next(i for i, r in enumerate(after) if not r.flags & EVENT_REMOVED)
    assert all(r.flags & EVENT_REMOVED for r in after[:first_new])
    assert not any(r.flags & EVENT_REMOVED for r in after[first_new:])
    # net result: exactly the chain's events now
    assert net_event_keys(recs) == chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})
    assert run.counters["removed_published"] == len(dropped)


def test_removed_true_logs_are_honoured(anvil, market, adapter_run):
    """Real nodes send a dropped log again with removed: true; feed the node's own log that way."""
    m = market
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    _burst(m, 2)
    run.wait_head(anvil.block_number())
    client = run.client
    lg = m.w3.eth.get_logs({"fromBlock": anvil.block_number(), "toBlock": anvil.block_number()})
    raw = [dict(x) for x in lg if bytes(x["topics"][0]) in _our_topics()][-1]
    raw["removed"] = True
    n = len(run.records())
    asyncio.run_coroutine_threadsafe(_feed(client, raw), client.loop).result(5)
    run.wait_until(lambda: len(run.records()) > n, 5, "removed frame")
    r = run.records()[n]
    assert r.flags & EVENT_REMOVED and (r.block_number, r.log_index) == (raw["blockNumber"], raw["logIndex"])
    # the same removal again is unknown by then: counted, not republished
    asyncio.run_coroutine_threadsafe(_feed(client, raw), client.loop).result(5)
    run.wait_until(lambda: run.counters["removed_unknown"] == 1, 5, "removed_unknown")
    run.stop()


def _our_topics():
    from alphapulse.adapters.evm import abi
    return {e.topic0 for e in abi.EVENTS}


async def _feed(client, raw):
    await client._handle(client._rpc, ("log", raw))
    client.publisher.flush()


def test_heartbeats_while_idle_and_cache_tied_to_genesis(anvil_factory, adapter_run, tmp_path):
    """An idle adapter sends Heartbeat frames in its sequence; a cache filled on another chain
    with the same chain id (a fresh dev chain here) is emptied, not trusted."""
    cache = str(tmp_path / "pools.sqlite")
    for round_ in range(2):
        node = anvil_factory()
        m = deploy_market(node.http_url)
        run = adapter_run(adapter_config(m, node.ws_url, cache_path=cache, heartbeat_s=0.1))
        run.wait_connected()
        _burst(m, 4)
        run.wait_head(node.block_number())
        time.sleep(0.5)
        run.stop()
        c = run.counters
        assert c["pools_discovered"] == 4 and c["heartbeats"] >= 3
        assert c["cache_reset_genesis"] == round_        # 2nd node: other genesis, same chain id
        hdrs = [codec.parse_frame(f) for f in run.frames]
        assert [h.header.sequence for h in hdrs] == list(range(1, len(hdrs) + 1))
        beats = [fr.tlvs[0] for fr in hdrs if isinstance(fr.tlvs[0], codec.Heartbeat)]
        assert len(beats) == c["heartbeats"]
        assert all(b.frames_published > 0 for b in beats[1:])
        node.stop()


def test_anvil_reorg_same_heights_new_hashes(anvil, market, adapter_run):
    """anvil_reorg re-mines the last blocks (here without their swaps): same numbers, new hashes."""
    m = market
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    _burst(m, 6)
    top = anvil.block_number()
    run.wait_head(top)
    dropped = sorted(((r.block_number, r.log_index) for r in pool_events(run.records())
                      if r.block_number > top - 3), reverse=True)
    assert dropped
    anvil.rpc("anvil_reorg", [3, []])
    assert anvil.block_number() == top
    run.wait_until(lambda: run.counters["removed_published"] >= len(dropped), 10, "undo")
    _burst(m, 1, start=50)
    run.wait_head(anvil.block_number())
    run.stop()
    recs = run.records()
    removed = [(r.block_number, r.log_index) for r in pool_events(recs) if r.flags & EVENT_REMOVED]
    assert removed == dropped
    assert net_event_keys(recs) == chain_log_keys(m.w3, b0 + 1, anvil.block_number(),
                                                  {addr(p.address) for p in m.pools})


def test_backfill_from_start_block_beyond_node_history(anvil_factory, adapter_run):
    """start_block backfill on a node that keeps only 5 states: snapshots cannot be taken
    before the first events, so they are taken at the head; no event is dropped, the held
    ones go out before the snapshot, which then equals the chain at its block."""
    node = anvil_factory(prune_history=5)
    m = deploy_market(node.http_url)
    b0 = node.block_number()
    _burst(m, 24)                                   # 24 blocks before the adapter starts
    run = adapter_run(adapter_config(m, node.ws_url, start_block=b0 + 1))
    run.wait_connected()
    b1 = node.block_number()
    run.wait_head(b1)
    _burst(m, 4, start=24)
    b2 = node.block_number()
    run.wait_head(b2)
    run.stop()
    recs = run.records()
    c = run.counters
    assert c["snapshot_fallback_latest"] == 4 and c["published_before_snapshot"] > 0
    assert net_event_keys(recs) == chain_log_keys(m.w3, b0 + 1, b2, {addr(p.address) for p in m.pools})
    for st in (r for r in recs if isinstance(r, codec.PoolState)):
        p = m.pool("0x" + st.pool.hex())
        assert st.block_number >= b1
        if st.pool_kind == 1:
            assert (st.reserve0, st.reserve1) == m.reserves(p, st.block_number)
        else:
            assert (st.sqrt_price_x96, st.tick, st.liquidity) == m.slot0(p, st.block_number)
        # every event of the pool up to the snapshot precedes it in the stream
        i = recs.index(st)
        assert all(r.block_number > st.block_number for r in pool_events(recs[i:]) if r.pool == st.pool)


def test_websocket_killed_mid_burst(anvil, market, adapter_run):
    """The adapter's socket is closed under it while another thread keeps trading."""
    import threading
    m = market
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url, backoff_initial_s=0.3, backoff_max_s=1.0))
    run.wait_connected()
    done = threading.Event()
    t = threading.Thread(target=lambda: (_burst(m, 30), done.set()))
    t.start()
    run.wait_until(lambda: run.counters["logs_received"] >= 8, 20, "first swaps")
    client = run.client
    assert client.connected and client.head > b0
    asyncio.run_coroutine_threadsafe(client._rpc.w3.provider.disconnect(), client.loop).result(5)
    t.join(60)
    assert done.is_set()
    run.wait_connected(2, timeout=20)
    b1 = anvil.block_number()
    run.wait_head(b1)
    assert client.connected and client.head == b1
    run.stop()
    c = run.counters
    assert c["disconnects"] >= 1 and c["backfills"] >= 1
    assert net_event_keys(run.records()) == chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})


def test_backfill_reply_over_the_message_limit_shrinks_the_range(anvil_factory, adapter_run):
    """A node's eth_getLogs reply above the WebSocket message limit closes the connection
    (1009); the adapter asks for smaller ranges after reconnecting instead of looping."""
    node = anvil_factory()
    m = deploy_market(node.http_url)
    b0 = node.block_number()
    _burst(m, 60)                                     # ~110 logs, ~80 KB of JSON in one reply
    run = adapter_run(adapter_config(m, node.ws_url, start_block=b0 + 1, ws_max_message_bytes=1 << 16,
                                     getlogs_chunk_blocks=128))
    b1 = node.block_number()
    run.wait_head(b1, timeout=60)
    run.stop()
    c = run.counters
    assert c["getlogs_shrunk_after_disconnect"] >= 1
    assert net_event_keys(run.records()) == chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})
