"""Ingestion throughput: the adapter's hot path, end to end from a local node, the replayer.

1. hot path: recorded JSON-RPC ``eth_subscription`` notifications (real logs of real Uniswap
   V2/V3 swaps on anvil, replicated with fresh block numbers, one newHeads per block of 50-ish
   logs) -> json.loads -> decode -> dedup/reorg check -> record -> frame -> sink, single
   process, pools already known. Reported as logs/s (head processing and GasPrice frames included).
2. end to end: a local anvil node mines one block holding many swaps; the adapter (WebSocket
   subscription, web3 formatting included) publishes every event into a shared-memory ring.
   events/s from the evm_mine call to the last event in the ring; then a fresh adapter
   backfills the same blocks with eth_getLogs (pool discovery included).
3. replayer: a journal on disk replayed at max speed into a ring (frames/s, GB/s).

Usage: python perf/bench_ingest.py [--quick] [--json]
The last line with --json is one JSON object with every figure.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alphapulse.adapters.evm import abi  # noqa: E402
from alphapulse.adapters.evm.config import EvmDataClientConfig, FactoryConfig  # noqa: E402
from alphapulse.adapters.evm.data import EvmDataClient, run_adapter_async, ring_sink  # noqa: E402
from alphapulse.adapters.evm.providers import PoolInfo  # noqa: E402


def _config(market, url, **kw):
    facs = tuple(FactoryConfig(address=a.lower(), venue=v, kind="v3" if a == market.v3_factory else "v2")
                 for a, v in market.factory_venues.items())
    return EvmDataClientConfig(endpoints=(url,), factories=facs, chain_id=market.chain_id, **kw)


def _pool_infos(market) -> dict[bytes, PoolInfo]:
    dec = market.decimals
    out = {}
    for p in market.pools:
        a = bytes.fromhex(p.address[2:])
        out[a] = PoolInfo(a, int(p.kind), p.venue, bytes.fromhex(p.factory[2:]), bytes.fromhex(p.token0[2:]),
                          bytes.fromhex(p.token1[2:]), dec[p.token0], dec[p.token1], p.fee_pips, p.tick_spacing)
    return out


def _swap_blocks(market, node, n_blocks: int, per_block: int, start: int = 0) -> None:
    """n_blocks blocks of per_block swaps over every pool (automine off, one evm_mine each)."""
    pools = market.pools
    traders = market.traders
    dec = market.decimals
    k = start
    for _ in range(n_blocks):
        txs = []
        for j in range(per_block):
            p = pools[k % len(pools)]
            t = p.token0 if (k // len(pools)) % 2 else p.token1
            txs.append(market.swap_tx(p, t, (1 + k % 7) * 10 ** dec[t] // 1000, traders[j % len(traders)]))
            k += 1
        market.sender.batch(txs)


def record_notifications(market, node, n_blocks: int, per_block: int) -> list[dict]:
    """Real logs of real swaps, as the node's eth_getLogs/eth_subscription delivers them (raw JSON)."""
    b0 = node.block_number()
    _swap_blocks(market, node, n_blocks, per_block)
    return node.rpc("eth_getLogs", [{"fromBlock": hex(b0 + 1), "toBlock": "latest",
                                     "topics": [abi.ALL_TOPIC0_HEX]}])


def bench_hot_path(market, logs: list[dict], n: int) -> dict:
    per_block = 1 + max(_q(lg["logIndex"]) for lg in logs)
    notifs = []     # (is_head, JSON text) as the node sends them: a block's logs, then its head
    for i in range(n):
        b = 1_000_000 + i // per_block
        lg = dict(logs[i % len(logs)])
        lg["blockNumber"] = hex(b)
        lg["blockHash"] = "0x%064x" % b
        lg["logIndex"] = hex(i % per_block)
        notifs.append((False, json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                          "params": {"subscription": "0x1", "result": lg}})))
        if i % per_block == per_block - 1 or i == n - 1:
            head = {"number": hex(b), "hash": "0x%064x" % b, "parentHash": "0x%064x" % (b - 1),
                    "timestamp": hex(1_800_000_000 + 2 * b), "baseFeePerGas": hex(30 * 10**9)}
            notifs.append((True, json.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                                             "params": {"subscription": "0x2", "result": head}})))
    nbytes = [0]

    def sink(frames):
        nbytes[0] += sum(len(f) for f in frames)

    cfg = _config(market, "ws://127.0.0.1:1", cache_path=":memory:", fetch_priority_fee=False)
    client = EvmDataClient(cfg, sink)
    client.provider.pools.update(_pool_infos(market))
    for a in client.provider.pools:
        client._snap_block[a] = 0

    async def go() -> float:
        pub = client.publisher
        on_log = client._on_log
        on_head = client._on_head
        loads = json.loads
        t0 = time.perf_counter()
        for is_head, s in notifs:
            if is_head:
                await on_head(None, loads(s)["params"]["result"])
            else:
                await on_log(None, loads(s)["params"]["result"])
            if pub.pending >= 256:
                pub.flush()
        pub.flush()
        return time.perf_counter() - t0

    dt = asyncio.run(go())
    published = sum(v for k, v in client.counters.items() if k.startswith("published_"))
    assert published == n, (published, dict(client.counters))
    return {"hot_path_logs": n, "hot_path_s": round(dt, 3), "hot_path_logs_per_s": round(n / dt),
            "hot_path_us_per_log": round(dt / n * 1e6, 2), "hot_path_frame_bytes": nbytes[0]}


def _q(v):
    return v if isinstance(v, int) else int(v, 16)


def _txs(market, n: int, start: int = 0) -> list[dict]:
    pools, traders, dec = market.pools, market.traders, market.decimals
    out = []
    for k in range(start, start + n):
        p = pools[k % len(pools)]
        t = p.token0 if (k // len(pools)) % 2 else p.token1
        out.append(market.swap_tx(p, t, (1 + k % 7) * 10 ** dec[t] // 1000, traders[k % len(traders)]))
    return out


def _count_events(frames) -> int:
    return sum(1 for f in frames if f[32] in (11, 12, 13, 16))   # first TLV type: pool events


def bench_end_to_end(market, node, n_swaps: int) -> dict:
    """Live: n_swaps sent with automine off, then mined as ONE block; the node pushes every log
    over the subscription at once. Timed from evm_mine to the last event in the ring.
    Backfill: a second adapter started at that block (eth_getLogs path, incl. discovery)."""
    from alphapulse.ring import Ring
    name = f"bench_ingest_{os.getpid()}"
    ring = Ring.create(name, capacity=1 << 27, policy="overwrite")
    prod = ring.producer()
    publish = ring_sink(prod)
    events = [0]

    def sink(frames):
        publish(frames)
        events[0] += _count_events(frames)

    def start(cfg):
        stop = threading.Event()
        clients = []
        th = threading.Thread(target=lambda: asyncio.run(
            run_adapter_async(cfg, sink, stop, client_ready=clients.append)))
        th.start()
        while not clients or not clients[0]._rpc_ready.is_set():
            time.sleep(0.005)
        return stop, th, clients[0]

    def wait_events(n, client, what):
        deadline = time.monotonic() + 300
        while events[0] < n or client._pending or client._discovering:
            if time.monotonic() > deadline:
                raise SystemExit(f"{what}: {events[0]} of {n} events; {dict(client.counters)}")
            time.sleep(0.0005)

    cfg = _config(market, node.ws_url, cache_path=":memory:", fetch_priority_fee=False)
    stop, th, client = start(cfg)
    # warm up: discover every pool once (discovery is not the steady state)
    b = node.block_number()
    market.sender.batch(_txs(market, len(market.pools)))
    wait_events(len(node.rpc("eth_getLogs", [{"fromBlock": hex(b + 1), "toBlock": "latest",
                                              "topics": [abi.ALL_TOPIC0_HEX]}])), client, "warm-up")
    txs = _txs(market, n_swaps, start=len(market.pools))
    node.set_automine(False)
    t_send = time.perf_counter()
    for tx in txs:
        market.sender.send(tx)
    t_send = time.perf_counter() - t_send
    events[0] = 0
    t0 = time.perf_counter()
    node.mine()
    t_mined = time.perf_counter() - t0
    node.set_automine(True)
    blk = node.block_number()
    want = len(node.rpc("eth_getLogs", [{"fromBlock": hex(blk), "toBlock": hex(blk),
                                         "topics": [abi.ALL_TOPIC0_HEX]}]))
    wait_events(want, client, "live")
    dt = time.perf_counter() - t0
    stop.set()
    th.join(20)
    out = {"e2e_live_block_logs": want, "e2e_live_s": round(dt, 3),
           "e2e_live_events_per_s": round(want / dt), "e2e_live_mine_call_s": round(t_mined, 3),
           "e2e_live_events_per_s_after_mined": round(want / max(dt - t_mined, 1e-9)),
           "e2e_send_s": round(t_send, 3)}
    # backfill of the same range by a fresh adapter (discovers the pools again)
    events[0] = 0
    t0 = time.perf_counter()
    stop, th, client = start(cfg.replace(start_block=b + 1))
    total = len(node.rpc("eth_getLogs", [{"fromBlock": hex(b + 1), "toBlock": hex(blk),
                                          "topics": [abi.ALL_TOPIC0_HEX]}]))
    wait_events(total, client, "backfill")
    dt = time.perf_counter() - t0
    stop.set()
    th.join(20)
    ring.close()
    out.update({"e2e_backfill_events": total, "e2e_backfill_s": round(dt, 3),
                "e2e_backfill_events_per_s": round(total / dt)})
    return out


def bench_replay(frames: list[bytes], n_frames: int, tmpdir: str) -> dict:
    from alphapulse.adapters.recorder import Recorder
    from alphapulse.adapters.replayer import Replayer
    from alphapulse.ring import Ring
    path = Path(tmpdir) / "rec"
    rec = Recorder(path, rotate_bytes=1 << 40)
    k = 0
    while k < n_frames:
        chunk = frames[: min(len(frames), n_frames - k)]
        rec.write_frames(chunk)
        k += len(chunk)
    rec.close()
    files = rec.files
    size = sum(os.path.getsize(f) for f in files)
    name = f"bench_replay_{os.getpid()}"
    ring = Ring.create(name, capacity=1 << 26, policy="overwrite")
    prod = ring.producer()
    # warm up (load the Numba kernels from their cache) on a small journal
    with Recorder(Path(tmpdir) / "warm", rotate_bytes=1 << 40) as w:
        w.write_frames(frames[:100])
    Replayer(w.files, producer=prod, speed="max").run()
    rp = Replayer(files, producer=prod, speed="max")
    t0 = time.perf_counter()
    n = rp.run()
    dt = time.perf_counter() - t0
    ring.close()
    assert n == n_frames, (n, n_frames)
    return {"replay_frames": n, "replay_bytes": size, "replay_s": round(dt, 3),
            "replay_frames_per_s": round(n / dt), "replay_gb_per_s": round(size / dt / 1e9, 3)}


def _progress(out: dict) -> None:
    print(f"... {time.strftime('%H:%M:%S')} {out}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts (seconds)")
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = ap.parse_args()
    from alphapulse.chain.anvil import Anvil
    from alphapulse.chain.deploy import deploy_market
    q = args.quick
    out: dict = {"quick": q}
    with Anvil(gas_limit=2_000_000_000) as node, tempfile.TemporaryDirectory() as tmp:
        market = deploy_market(node.http_url)
        logs = record_notifications(market, node, 4 if q else 10, 50)
        out["recorded_logs"] = len(logs)
        _progress(out)
        out.update(bench_hot_path(market, logs, 20_000 if q else 200_000))
        _progress(out)
        out.update(bench_end_to_end(market, node, 300 if q else 1000))
        _progress(out)
        # frames as the adapter made them (the hot-path sink's frames), replayed from disk
        frames = []
        client = EvmDataClient(_config(market, "ws://127.0.0.1:1", reorg_depth=1 << 30), frames.extend)
        client.provider.pools.update(_pool_infos(market))
        for a in client.provider.pools:
            client._snap_block[a] = 0

        async def mk():
            for lg in logs:
                await client._on_log(None, lg)
            client.publisher.flush()
        asyncio.run(mk())
        out.update(bench_replay(frames, 100_000 if q else 2_000_000, tmp))
    for k, v in out.items():
        print(f"{k:32s} {v}")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
