"""The adapter against a real anvil node with real Uniswap V2/V3 contracts: frames == chain truth."""
from collections import defaultdict

import pytest

from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_TOKEN0_IN, PoolKind

from .chain_helpers import (adapter_config, addr, chain_log_keys, check_block_ends, kinds, net_event_keys,
                            pool_events)


@pytest.mark.parametrize("tuning", [
    {},
    # tiny JSON-RPC batches, one discovery at a time, a wide tick window (many bitmap words)
    {"rpc_batch_size": 2, "discovery_concurrency": 1, "tick_snapshot_range": 120_000},
    # a node without JSON-RPC batches: concurrent single requests
    {"rpc_batching": False},
], ids=["default", "small-batches", "no-batches"])
def test_frames_equal_chain_truth(fresh_chain, adapter_run, tuning):
    anvil, m = fresh_chain
    w3 = m.w3
    b0 = anvil.block_number()
    run = adapter_run(adapter_config(m, anvil.ws_url, **tuning))
    run.wait_connected()
    dec = m.decimals
    results = []
    # every pool, both directions, sizes in each token's own units (18/6/8 decimals)
    for p in m.pools:
        for t in (p.token0, p.token1):
            results.append(m.swap(p, t, 37 * 10 ** dec[t] // 100))
    v2 = m.v2_pool("WBTC", "USDC", 400)
    lp = m.add_liquidity_v2(v2, 10**7, 6 * 10**9)
    m.remove_liquidity_v2(v2, lp // 2)
    v3 = m.v3_pool("WMATIC", "USDC", 3000)
    s0 = m.slot0(v3)
    tid, liq, _, _ = m.add_liquidity_v3(v3, (s0[1] // 60 - 5) * 60, (s0[1] // 60 + 7) * 60, 10**21, 10**9)
    m.remove_liquidity_v3(tid, liq // 3)
    b1 = anvil.block_number()
    run.wait_head(b1)
    run.wait_block_end(b1)
    run.stop()
    recs = run.records()
    ends = check_block_ends(run.frames, m.chain_id)
    assert {e.block_number for e in ends} == set(range(b0 + 1, b1 + 1))
    pools = {addr(p.address): p for p in m.pools}
    k = kinds(recs)
    assert k["PoolSwap"] == len(results) and k["PoolState"] == len(m.pools)
    # NPM.collect pokes the position with a zero Burn: 3 burns on chain
    assert k["PoolMint"] == 2 and k["PoolBurn"] == 3 and k["GasPrice"] >= b1 - b0

    # completeness: exactly the chain's events of these pools after b0, no gap, no duplicate
    assert net_event_keys(recs) == chain_log_keys(w3, b0 + 1, b1, set(pools))

    # real addresses and decimals on every pool record
    for r in pool_events(recs) + [r for r in recs if isinstance(r, codec.PoolState)]:
        p = pools[r.pool]
        if isinstance(r, codec.PoolSwap):
            assert {r.token_in, r.token_out} == {addr(p.token0), addr(p.token1)}
            assert r.amount_in_decimals == dec[m.token(r.token_in.hex()).address]
            assert r.amount_out_decimals == dec[m.token(r.token_out.hex()).address]
            assert r.venue == p.venue
        else:
            assert (r.token0, r.token1) == (addr(p.token0), addr(p.token1))
            assert (r.token0_decimals, r.token1_decimals) == (dec[p.token0], dec[p.token1])
            assert r.venue == p.venue

    # swap amounts and direction equal what the trader's transaction did
    swaps = [r for r in recs if isinstance(r, codec.PoolSwap)]
    by_block_pool = {(r.block_number, r.pool): r for r in swaps}
    for res in results:
        r = by_block_pool[(res.block_number, addr(res.pool))]
        assert (r.amount_in, r.amount_out) == (res.amount_in, res.amount_out)
        assert r.token_in == addr(res.token_in)
        assert bool(r.flags & EVENT_TOKEN0_IN) == (res.token_in == pools[r.pool].token0)

    # state after each block == the contract's state at that block
    last = {}
    for r in pool_events(recs):
        if isinstance(r, (codec.PoolSync, codec.PoolSwap)):
            last[(r.block_number, r.pool, type(r))] = r
    n_v2 = n_v3 = 0
    for (blk, pool, typ), r in last.items():
        p = pools[pool]
        if typ is codec.PoolSync:
            assert (r.reserve0, r.reserve1) == m.reserves(p, blk)
            n_v2 += 1
        elif p.kind == PoolKind.CONCENTRATED:
            assert (r.sqrt_price_x96_after, r.tick_after, r.liquidity_after) == m.slot0(p, blk)
            n_v3 += 1
    assert n_v2 >= 8 and n_v3 >= 6

    # snapshots: PoolState at its block, and every initialised tick's liquidityNet
    ticks = defaultdict(dict)
    for r in recs:
        if isinstance(r, codec.PoolTick):
            ticks[r.pool][r.tick] = r
    coverage = {}
    for f in run.frames:            # a concentrated-liquidity snapshot is one frame
        tlvs = codec.parse_frame(f).tlvs
        if tlvs and isinstance(tlvs[0], codec.PoolState):
            assert len({getattr(t, "pool") for t in tlvs}) == 1
            if tlvs[0].pool_kind == PoolKind.CONCENTRATED:
                assert isinstance(tlvs[1], codec.TickCoverage)
                assert all(isinstance(t, codec.PoolTick) for t in tlvs[2:])
                coverage[tlvs[0].pool] = tlvs[1]
            else:
                assert len(tlvs) == 1
        else:
            assert not any(isinstance(t, (codec.PoolTick, codec.TickCoverage)) for t in tlvs)
    for st in (r for r in recs if isinstance(r, codec.PoolState)):
        p = pools[st.pool]
        assert st.pool_kind == p.kind and st.fee_pips == p.fee_pips and st.tick_spacing == p.tick_spacing
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            assert (st.reserve0, st.reserve1) == m.reserves(p, st.block_number) != (0, 0)
        else:
            assert (st.sqrt_price_x96, st.tick, st.liquidity) == m.slot0(p, st.block_number)
            c = m.contract("UniswapV3Pool", p.address)
            assert len(ticks[st.pool]) >= 2
            for t, tr in ticks[st.pool].items():
                info = c.functions.ticks(t).call(block_identifier=st.block_number)
                assert info[7] and tr.liquidity_net == info[1] and tr.block_number == st.block_number
            # its TickCoverage, in its frame: the scanned range, and no initialised tick in it missed
            cov = coverage[st.pool]
            rng = run.config.tick_snapshot_range
            assert (cov.block_number, cov.pool) == (st.block_number, st.pool)
            assert cov.tick_lower <= st.tick - rng + p.tick_spacing and cov.tick_upper >= st.tick + rng - p.tick_spacing
            sp = p.tick_spacing
            lo, hi = -(-cov.tick_lower // sp), cov.tick_upper // sp
            bitmap_ticks = set()
            for w in range(lo >> 8, (hi >> 8) + 1):
                bits = c.functions.tickBitmap(w).call(block_identifier=st.block_number)
                for b in range(256):
                    if bits >> b & 1 and lo <= (w << 8) + b <= hi:
                        bitmap_ticks.add(((w << 8) + b) * sp)
            assert set(ticks[st.pool]) == bitmap_ticks

    # frames: one source/domain stream, sequence 1..n without gaps, checksums valid
    hdrs = [codec.parse_frame(f).header for f in run.frames]
    assert [h.sequence for h in hdrs] == list(range(1, len(hdrs) + 1))
    assert {(h.relay_domain, h.source, h.flags) for h in hdrs} == {(1, 4, 0)}
    assert all(h.checksum != 0 for h in hdrs)
    # gas frames carry the chain's base fee
    gas = [r for r in recs if isinstance(r, codec.GasPrice)]
    for g in gas[-3:]:
        assert g.base_fee_wei == w3.eth.get_block(g.block_number)["baseFeePerGas"] and g.chain_id == 137


def test_filter_by_factory_and_tokens(anvil, market, adapter_run):
    """Only configured factories, and with a token filter only pools of listed tokens."""
    m = market
    quick = m.v2_factories[400]
    cfg = adapter_config(m, anvil.ws_url)
    cfg = cfg.replace(factories=tuple(f for f in cfg.factories if f.address != m.v3_factory.lower()),
                      tokens=(m.token("WMATIC").address, m.token("USDC").address, m.token("WBTC").address),
                      token_match="both")
    b0 = anvil.block_number()
    run = adapter_run(cfg)
    run.wait_connected()
    for p in m.pools:
        m.swap(p, p.token0, 10 ** m.decimals[p.token0] // 100)
    b1 = anvil.block_number()
    run.wait_head(b1)
    run.stop()
    syms = {t.address: s for s, t in m.tokens.items()}
    followed = {addr(p.address) for p in m.pools if p.factory != m.v3_factory
                and {syms[p.token0], syms[p.token1]} <= {"WMATIC", "USDC", "WBTC"}}
    assert followed and any(addr(p.address) not in followed for p in m.pools if p.factory == quick)
    recs = run.records()
    assert {r.pool for r in pool_events(recs)} == followed
    assert net_event_keys(recs) == chain_log_keys(m.w3, b0 + 1, b1, followed)
    ign = run.client.provider.ignored
    assert len(ign) == len(m.pools) - len(followed)
    assert all(what == "unfollowed" for what, _ in ign.values())
    assert any("is not configured" in why for _, why in ign.values())     # the V3 factory
    assert any("token filter" in why for _, why in ign.values())


def test_adapter_process_into_a_ring(anvil, market, tmp_path):
    """run_adapter in a spawned process (config pickled), frames through a shared-memory ring."""
    import multiprocessing as mp
    import os
    import time

    from alphapulse.ring import Ring

    from .chain_helpers import adapter_process
    m = market
    ring = Ring.create(f"t_adapter_{os.getpid()}", capacity=1 << 22, policy="lossless")
    cons = ring.consumer("test")
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    cfg = adapter_config(m, anvil.ws_url, cache_path=str(tmp_path / "p.sqlite"), heartbeat_s=None)
    proc = ctx.Process(target=adapter_process, args=(cfg, ring.name, stop))
    proc.start()
    try:
        frames = []
        deadline = time.monotonic() + 30
        while not frames and time.monotonic() < deadline:   # its first GasPrice: subscribed
            frames += list(cons.frames(timeout=0.1))
        assert frames, "adapter process published nothing"
        b0 = codec.parse_frame(frames[0]).tlvs[0].block_number
        for p in m.pools[:5]:
            m.swap(p, p.token1, 10 ** m.decimals[p.token1] // 10)
        b1 = anvil.block_number()
        want = chain_log_keys(m.w3, b0 + 1, b1, {addr(p.address) for p in m.pools})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            frames += list(cons.frames(timeout=0.1))
            if len(pool_events([t for f in frames for t in codec.parse_frame(f).tlvs])) >= len(want):
                break
    finally:
        stop.set()
        proc.join(20)
        cons.close()
        ring.close()
    assert proc.exitcode == 0
    recs = [t for f in frames for t in codec.parse_frame(f).tlvs]
    assert net_event_keys(recs) == want
    seqs = [codec.parse_frame(f).header.sequence for f in frames]
    assert seqs == list(range(1, len(seqs) + 1))
