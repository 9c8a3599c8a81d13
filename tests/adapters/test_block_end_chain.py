"""BlockEnd records from the adapter on a real anvil node: one after the last event of every
block (live, backfilled, replaced by a reorg), carrying the chain's own hash and timestamp."""
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED

from .chain_helpers import adapter_config, addr, chain_log_keys, check_block_ends, pool_events


def _block(w3, n):
    b = w3.eth.get_block(n)
    return bytes(b["hash"]), b["timestamp"]


def test_every_block_ends_after_its_last_event(fresh_chain, adapter_run):
    anvil, m = fresh_chain
    w3 = m.w3
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    trader = m.traders[0]
    dec = m.decimals
    # one block of many swaps on pools the adapter has never seen (their events wait for
    # discovery, and so does the BlockEnd), then single-swap blocks, then an empty block
    txs = [m.swap_tx(p, t, 3 * 10 ** dec[t] // 100, trader) for p in m.pools for t in (p.token0, p.token1)]
    m.sender.batch(txs)
    burst = anvil.block_number()
    run.wait_head(burst)              # discoveries done: the blocks below are timed alone
    for p in m.pools[:3] * 4:
        m.swap(p, p.token1, 10 ** dec[p.token1] // 50)
    anvil.mine()
    b1 = anvil.block_number()
    run.wait_block_end(b1)
    run.stop()
    ends = check_block_ends(run.frames, m.chain_id)
    by_block = {e.block_number: e for e in ends}
    assert [e.block_number for e in ends] == sorted(by_block), "one BlockEnd per block, in order"
    assert set(range(b0 + 1, b1 + 1)) <= set(by_block)
    pools = {addr(p.address) for p in m.pools}
    keys = chain_log_keys(w3, b0 + 1, b1, pools)
    for n in range(b0 + 1, b1 + 1):
        e = by_block[n]
        assert (e.block_hash, e.block_ts_ns) == (lambda h, ts: (h, ts * 10**9))(*_block(w3, n))
        assert e.event_count == sum(1 for k in keys if k[0] == n)
    assert by_block[b0 + 1].event_count >= 20                        # a burst block, all of it
    assert by_block[b1].event_count == 0                             # the empty block
    assert run.counters["block_ends"] == len(ends)
    # the BlockEnd follows its block's GasPrice (the head) by one eth_getLogs round trip or so
    head_ts, gaps = {}, []
    for f in run.frames:
        fr = codec.parse_frame(f)
        r = fr.tlvs[0]
        if isinstance(r, codec.GasPrice):
            head_ts[r.block_number] = fr.header.timestamp_ns
        elif isinstance(r, codec.BlockEnd) and r.block_number in head_ts and r.block_number > burst:
            gaps.append(fr.header.timestamp_ns - head_ts[r.block_number])
    gaps.sort()
    print(f"head -> BlockEnd, {len(gaps)} blocks of known pools: median {gaps[len(gaps) // 2] / 1e6:.2f} ms, "
          f"max {gaps[-1] / 1e6:.2f} ms")


def test_backfill_ends_each_block_it_covers(fresh_chain, adapter_run):
    """start_block: the blocks before the first head come from eth_getLogs, ended one by one."""
    anvil, m = fresh_chain
    b0 = anvil.block_number()
    for p in m.pools[:4]:
        m.swap(p, p.token0, 10 ** m.decimals[p.token0] // 20)
    top = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url, start_block=b0 + 1))
    run.wait_block_end(top)
    run.stop()
    ends = check_block_ends(run.frames, m.chain_id)
    assert [e.block_number for e in ends] == list(range(b0 + 1, top + 1))
    assert all(e.event_count >= 1 and e.block_hash == _block(m.w3, e.block_number)[0] for e in ends)
    assert run.counters["backfills"] >= 1


def test_replacement_of_a_reorganised_block_is_ended_again(anvil, market, adapter_run):
    m = market
    run = adapter_run(adapter_config(m, anvil.ws_url))
    run.wait_connected()
    for p in m.pools[:3]:
        m.swap(p, p.token0, 10 ** m.decimals[p.token0] // 20)
    fork = anvil.block_number()
    run.wait_block_end(fork)
    snap = anvil.snapshot()
    for p in m.pools[3:6]:
        m.swap(p, p.token0, 10 ** m.decimals[p.token0] // 20)
    run.wait_block_end(anvil.block_number())
    old = {n: run.client._ended[n] for n in range(fork + 1, anvil.block_number() + 1)}
    anvil.revert(snap)
    m.swap(m.pools[6], m.pools[6].token1, 10 ** m.decimals[m.pools[6].token1] // 20)
    m.swap(m.pools[7], m.pools[7].token1, 10 ** m.decimals[m.pools[7].token1] // 20)
    top = anvil.block_number()
    run.wait_until(lambda: run.counters["reorgs"] >= 1, 10, "reorg")
    run.wait_block_end(top, block_hash=_block(m.w3, top)[0])   # the old chain had a block ``top`` too
    run.stop()
    ends = check_block_ends(run.frames, m.chain_id)
    for n in range(fork + 1, top + 1):
        last = [e for e in ends if e.block_number == n][-1]
        assert last.block_hash == _block(m.w3, n)[0] != old[n]       # the replacement, ended again
        assert last.event_count == len([k for k in chain_log_keys(m.w3, n, n) if k[0] == n])
    assert len([r for r in pool_events(run.records()) if r.flags & EVENT_REMOVED]) >= 3   # undone
    assert run.counters["block_ends"] == len(ends) > top - fork
