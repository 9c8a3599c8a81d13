"""The EVM market-data client: WebSocket subscriptions -> Protocol V2 frames -> sink.

One coroutine (the consumer) applies every input in order: subscription logs
and heads, backfilled logs, finished pool discoveries. That single order is
what makes dedup, hold-while-discovering and reorg undo simple to reason about.

Resilience, in the order it happens:

- connect: endpoints are tried in turn; each connection is a FRESH
  ``AsyncWeb3(WebSocketProvider)`` (web3 v8's own reconnect iterator reuses a
  subscription manager that cannot resubscribe); failures back off
  exponentially with jitter.
- resync: subscribe first (live messages queue up), then compare the chain with
  what we followed (a node restarted from an older state is a reorg), then
  ``eth_getLogs`` from the last fully processed block to the head; dedup by
  (block_number, log_index) removes the overlap.
- reorgs: every head's parentHash (and every log's blockHash) is checked
  against the hashes we followed; on a mismatch the common ancestor is found,
  the dropped blocks' published events are sent again with the removed flag
  (newest first, so a reader can undo in order) and the replacement blocks'
  events follow. Logs that arrive with ``removed: true`` are honoured the same way.
- block ends: every followed head's logs are fetched once more by its hash
  (``eth_getLogs``; dedup drops what the subscription already delivered), so the
  adapter knows the block's last event and then publishes a BlockEnd record (its
  own frame). A backfill ends each block it covers whose header or events it
  knows. A BlockEnd waits for the held events of its block (pool discovery);
  while it waits, events of later blocks wait too, so a BlockEnd always
  separates one block's events from the next one's. The replacement of a
  reorganised block gets its own BlockEnd (a different hash).
- refreshes: a reader that finds a pool's state incomplete asks for it again
  (PoolRefresh, :meth:`EvmDataClient.refresh`); the pool's snapshot is read
  at the latest followed block and published in the stream's order, unless an
  event of a later block of that pool went out meanwhile (then it is read
  again). Requests for a pool already being refreshed are merged; a pool is
  refreshed at most every ``refresh_min_interval_s`` and all pools at most
  ``refresh_max_per_s`` times a second; a failing read is counted, logged and
  retried with backoff.
- watchdog: when nothing arrives for ``watchdog_s`` (or logs arrive but heads
  stopped), the node is asked for its head; if the chain moved on without us the
  connection is replaced.

Pools: the first event of an unknown pool starts its discovery (providers.py);
its events are held, in order, until the pool is known, then published after a
PoolState snapshot (and PoolTicks) taken at the block before the first held
event, so every published event applies on top of the snapshot. A node without
that block's state gets a snapshot at its head instead, and the held events up to
it go out *before* it (the absolute snapshot then sets the state they led to):
no event is dropped either way. Pools known from the cache get the snapshot only.
An idle adapter publishes Heartbeat frames (``heartbeat_s``) in the same sequence.

Every skip and error is counted in :attr:`EvmDataClient.counters` (and logged).
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.cache import PoolCache
from alphapulse.adapters.evm.config import EvmDataClientConfig
from alphapulse.adapters.evm.frames import EncodeError, build_frame
from alphapulse.adapters.evm.decode import (DecodeError, EvmEvent, as_removed, decode_log,
                                            to_record)
from alphapulse.adapters.evm.providers import (PoolInfo, event_fits, PoolProvider, RetryLater,
                                               Rpc, RpcError, SnapshotUnavailable)
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L

log = logging.getLogger(__name__)

Sink = Callable[[list[bytes]], None]
NS_PER_S = 1_000_000_000


def _really_cancelled() -> bool:
    """Is the current task being cancelled (as opposed to a CancelledError that leaked
    from a future web3 cancelled when its connection closed)?"""
    t = asyncio.current_task()
    return t is None or t.cancelling() > 0


def _connected(rpc: Any) -> bool:
    """Is this connection's socket still open (no I/O)?"""
    prov = rpc.w3.provider
    try:
        return getattr(prov, "_ws", None) is not None and bool(prov.is_open())
    except Exception:
        return False


def _q(v: Any) -> int:
    """JSON-RPC quantity (hex str) or an already formatted int."""
    return v if isinstance(v, int) else int(v, 16)


def _b(v: Any) -> bytes:
    return abi.hex_to_bytes(v) if v is not None else b""


@dataclass(slots=True)
class _Head:
    hash: bytes
    parent: bytes
    ts: int


@dataclass(slots=True)
class _Block:
    """What we published (record) or hold (EvmEvent) for one block, by log index."""
    hash: bytes
    events: dict[int, Any] = field(default_factory=dict)
    ts: int = 0                      # seconds, from the logs when they carry it

    def published(self) -> int:
        """Pool events of this block sent (not skipped, not held, not undone)."""
        return sum(1 for v in self.events.values() if v is not None and not isinstance(v, EvmEvent))


class _Reconnect(Exception):
    """The current connection is unusable; the run loop picks the next endpoint."""


class FramePublisher:
    """Records -> complete frames (domain 1, source 4, sequence from 1) -> sink in batches."""

    def __init__(self, sink: Sink, *, checksum: bool = True,
                 source: int = L.Source.POLYGON_COLLECTOR, domain: int = L.Domain.MARKET_DATA) -> None:
        self.sink = sink
        self.checksum = checksum
        self.source = source
        self.domain = domain
        self.sequence = 0
        self.frames_published = 0
        self.last_flush = time.monotonic()
        self._out: list[bytes] = []

    def add(self, records: list[Any]) -> None:
        """One frame holding ``records`` (the caller keeps them under the payload limit)."""
        self.sequence += 1
        self._out.append(build_frame(self.domain, self.source, self.sequence, records,
                                     checksum=self.checksum))

    def add_packed(self, records: list[Any]) -> None:
        """As many frames as needed, each filled up to the 64 KiB payload limit."""
        batch: list[Any] = []
        size = 0
        for r in records:
            n = r.LAYOUT.size + (L.TLV_STD_HEADER if r.LAYOUT.size <= L.TLV_STD_MAX else L.TLV_EXT_HEADER)
            if batch and size + n > L.MAX_PAYLOAD:
                self.add(batch)
                batch, size = [], 0
            batch.append(r)
            size += n
        if batch:
            self.add(batch)

    @property
    def pending(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        if self._out:
            out, self._out = self._out, []
            self.frames_published += len(out)
            self.last_flush = time.monotonic()
            self.sink(out)

    def heartbeat(self) -> None:
        """A Heartbeat frame on this stream (PROTOCOL.md: sent when idle), published at once."""
        self.add([codec.Heartbeat(timestamp_ns=time.time_ns(), frames_published=self.frames_published)])
        self.flush()


class EvmDataClient:
    """Follows one EVM chain's Uniswap V2/V3 pool events and publishes them as frames."""

    def __init__(self, config: EvmDataClientConfig, sink: Sink, *, cache: PoolCache | None = None) -> None:
        self.config = config
        self.counters: Counter = Counter()
        self.cache = cache if cache is not None else PoolCache(config.cache_path, config.chain_id)
        self.provider = PoolProvider(config, self.cache, self.counters)
        self.publisher = FramePublisher(sink, checksum=config.checksum)
        self._blocks: dict[int, _Block] = {}
        self._heads: dict[int, _Head] = {}
        self._head = -1                      # highest head followed
        self._checkpoint: int | None = None  # logs of blocks <= this are all processed
        self._pending: dict[bytes, list[EvmEvent]] = {}     # pool -> held events (discovery running)
        self._barred: list[EvmEvent] = []   # events of blocks after one whose BlockEnd waits
        self._bar: int | None = None        # lowest block of a held event (see _barrier)
        self._bar_valid = True
        self._due: set[int] = set()         # blocks complete on the chain, BlockEnd not yet sent
        self._ended: dict[int, bytes] = {}  # block -> hash its BlockEnd was sent for
        self.completed_block = -1           # highest head whose logs are all handled
        self._last_pub: dict[bytes, int] = {}            # pool -> block of its newest published event
        self._refreshing: dict[bytes, asyncio.Task] = {}  # pool -> its refresh (requests merge into it)
        self._refreshed: list[tuple[bytes, int, bytes | None, list[Any]]] = []   # read, not yet published
        self._refresh_last: dict[bytes, float] = {}      # pool -> monotonic time of its last read
        self._refresh_slot = 0.0                         # monotonic time the next read may start
        self._discovering: dict[bytes, asyncio.Task] = {}
        self._ready: list[tuple[bytes, Any]] = []
        self._snap_block: dict[bytes, int] = {}
        self._priority_fee = 0
        self._rpc: Rpc | None = None
        self._rpc_ready = asyncio.Event()
        self._queue: asyncio.Queue | None = None
        self._bg: set[asyncio.Task] = set()
        self.endpoint: str | None = None
        self.connections = 0
        self.subscriptions: tuple[str, str] = ("", "")
        self.loop: asyncio.AbstractEventLoop | None = None
        self._last_head_t = time.monotonic()
        self._chunk = config.getlogs_chunk_blocks   # eth_getLogs range, shrinks and regrows
        self._backfilling = False

    @property
    def connected(self) -> bool:
        """True while subscribed to a node and following its heads (read from any thread)."""
        return self._rpc_ready.is_set()

    @property
    def head(self) -> int:
        """The highest block followed so far; -1 before the first."""
        return self._head

    # ================================================================ run loop
    async def run(self, stop: asyncio.Event) -> None:
        """Follow the chain until ``stop`` is set; never returns early on a node failure."""
        cfg = self.config
        self.loop = asyncio.get_running_loop()
        failures = 0
        idx = 0
        if cfg.heartbeat_s is not None:
            self._bg.add(asyncio.create_task(self._heartbeats(cfg.heartbeat_s)))
        try:
            while not stop.is_set():
                url = cfg.endpoints[idx % len(cfg.endpoints)]
                started = time.monotonic()
                try:
                    await self._connection(url, stop)
                except asyncio.CancelledError as e:
                    if _really_cancelled():
                        raise
                    self._note_disconnect(url, e)   # a future of the closed connection
                except (_Reconnect, RpcError, OSError, asyncio.TimeoutError, ConnectionError) as e:
                    self._note_disconnect(url, e)
                except Exception as e:
                    # web3/websockets raise many types (some builtins) for a dying socket; a
                    # bug of ours would show here too: logged with its traceback, counted, and
                    # the connection is replaced rather than the process lost
                    self.counters["connection_errors_unexpected"] += 1
                    log.exception("endpoint %s: unexpected %s", url, type(e).__name__)
                    self._note_disconnect(url, e)
                finally:
                    self._rpc_ready.clear()
                    self._rpc = None
                if stop.is_set():
                    break
                failures = 0 if time.monotonic() - started > cfg.backoff_max_s else failures + 1
                idx += 1
                delay = min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** max(0, failures - 1))
                delay *= 1 + cfg.backoff_jitter * (2 * random.random() - 1)
                self.counters["reconnect_waits"] += 1
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
        finally:
            for t in list(self._discovering.values()) + list(self._bg):
                t.cancel()
            self.publisher.flush()

    async def _heartbeats(self, every_s: float) -> None:
        """Readers tell an idle adapter from a dead one by these (also while disconnected)."""
        pub = self.publisher
        while True:
            idle = time.monotonic() - pub.last_flush
            if idle >= every_s and not pub.pending:
                pub.heartbeat()
                self.counters["heartbeats"] += 1
                idle = 0.0
            await asyncio.sleep(max(every_s - idle, 0.01))

    def _note_disconnect(self, url: str, e: BaseException) -> None:
        self.counters["disconnects"] += 1
        if self._backfilling:
            # e.g. a reply over the message size limit closes the socket: ask for less
            self._backfilling = False
            self._chunk = max(1, self._chunk // 2)
            self.counters["getlogs_shrunk_after_disconnect"] += 1
            log.warning("connection lost during eth_getLogs: next ranges of %d blocks", self._chunk)
        log.warning("endpoint %s: %s: %s", url, type(e).__name__, e)

    async def _connect(self, url: str) -> Any:
        from web3 import AsyncWeb3, WebSocketProvider
        # web3 logs one INFO line per queued subscription message during a burst ("Processing
        # as FIFO"); our own log says what matters. An explicitly configured level is kept.
        wl = logging.getLogger("web3.providers.WebSocketProvider")
        if wl.level == logging.NOTSET:
            wl.setLevel(logging.WARNING)
        # websockets' default 1 MiB message limit closes the connection (1009) on a large
        # eth_getLogs reply, and the same backfill would then fail forever
        provider = WebSocketProvider(url, max_connection_retries=1,
                                     request_timeout=self.config.request_timeout_s,
                                     websocket_kwargs={"max_size": self.config.ws_max_message_bytes})
        w3 = AsyncWeb3(provider)
        try:
            await asyncio.wait_for(provider.connect(), self.config.connect_timeout_s)
        except BaseException:
            self.counters["connect_failures"] += 1
            try:
                await provider.disconnect()
            except Exception:
                pass
            raise
        return w3

    async def _connection(self, url: str, stop: asyncio.Event) -> None:
        w3 = await self._connect(url)
        reader = None
        try:
            rpc = Rpc(w3, self.config.request_timeout_s, self.config.rpc_batching)
            chain_id = _q(await rpc.request("eth_chainId", []))
            if chain_id != self.config.chain_id:
                self.counters["wrong_chain"] += 1
                raise _Reconnect(f"chain id {chain_id}, configured {self.config.chain_id}")
            genesis = await rpc.request("eth_getBlockByNumber", ["0x0", False])
            if genesis and self.provider.check_genesis(str(genesis["hash"]).lower()):
                self._snap_block.clear()
            q: asyncio.Queue = asyncio.Queue()
            head_sub = await w3.eth.subscribe("newHeads")
            logs_sub = await w3.eth.subscribe("logs", {"topics": [abi.ALL_TOPIC0_HEX]})
            kinds = {str(head_sub): "head", str(logs_sub): "log"}
            self.subscriptions = (str(head_sub), str(logs_sub))
            reader = asyncio.create_task(self._read(w3, q, kinds))
            self.connections += 1
            self.endpoint = url
            log.info("connected to %s (chain %d), connection %d", url, chain_id, self.connections)
            self._queue = q
            self._rpc = rpc
            self._rpc_ready.set()
            await self._resync(rpc)
            await self._consume(rpc, q, stop)
        finally:
            if reader is not None:
                reader.cancel()
            try:
                await asyncio.wait_for(w3.provider.disconnect(), 2.0)
            except Exception:
                pass

    async def _read(self, w3: Any, q: asyncio.Queue, kinds: dict[str, str]) -> None:
        try:
            async for msg in w3.socket.process_subscriptions():
                kind = kinds.get(str(msg.get("subscription")))
                if kind is None:
                    self.counters["unknown_subscription"] += 1
                    continue
                q.put_nowait((kind, msg["result"]))
            q.put_nowait(("closed", "subscription stream ended"))
        except asyncio.CancelledError:
            if _really_cancelled():
                raise
            q.put_nowait(("closed", "subscription stream cancelled by the provider"))
        except Exception as e:
            q.put_nowait(("closed", f"{type(e).__name__}: {e}"))

    async def _consume(self, rpc: Rpc, q: asyncio.Queue, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                get = asyncio.ensure_future(q.get())
                done, _ = await asyncio.wait({get, stop_wait}, timeout=self.config.watchdog_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    if stop.is_set():
                        return
                    await self._watchdog(rpc)
                    continue
                item = get.result()
                while True:   # everything already queued, then one sink call
                    await self._handle(rpc, item)
                    if self.publisher.pending >= self.config.max_frames_per_batch:
                        self.publisher.flush()
                    try:
                        item = q.get_nowait()
                    except asyncio.QueueEmpty:
                        break
                self.publisher.flush()
                if time.monotonic() - self._last_head_t > self.config.watchdog_s:
                    # logs flow but heads stopped? (one block ahead is a head still in transit)
                    await self._watchdog(rpc, ahead=2)
                    self._last_head_t = time.monotonic()
        finally:
            stop_wait.cancel()

    async def _handle(self, rpc: Rpc, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "log":
            self.counters["logs_received"] += 1
            await self._on_log(rpc, payload)
        elif kind == "head":
            n = await self._on_head(rpc, payload)
            if n is not None:
                await self._complete_block(rpc, n)
        elif kind == "ready":
            await self._flush_ready(rpc)
        elif kind == "refreshed":
            self._flush_refreshed()
        elif kind == "closed":
            raise _Reconnect(payload)

    async def _watchdog(self, rpc: Rpc, ahead: int = 1) -> None:
        """The subscription is stale when the node is ``ahead`` blocks past our last head."""
        try:
            n = _q(await rpc.request("eth_blockNumber", []))
        except (RpcError, asyncio.TimeoutError) as e:
            self.counters["watchdog_dead"] += 1
            raise _Reconnect(f"watchdog: node does not answer: {e}") from None
        if n >= self._head + ahead:
            self.counters["watchdog_stale"] += 1
            raise _Reconnect(f"watchdog: no head for {self.config.watchdog_s}s but the chain is at "
                             f"{n}, we followed {self._head}")
        self.counters["watchdog_idle"] += 1

    # ================================================================ resync / backfill
    def _known_hash(self, n: int) -> bytes | None:
        h = self._heads.get(n)
        if h is not None:
            return h.hash
        b = self._blocks.get(n)
        return b.hash if b is not None and b.hash else None

    async def _resync(self, rpc: Rpc) -> None:
        head = await rpc.request("eth_getBlockByNumber", ["latest", False])
        top = _q(head["number"])
        if self._head >= 0:
            ours = self._known_hash(self._head)
            theirs = None
            if top >= self._head:
                blk = await rpc.request("eth_getBlockByNumber", [hex(self._head), False])
                theirs = _b(blk["hash"]) if blk else None
            if ours is not None and theirs != ours:
                await self._reorg(rpc, f"chain changed while disconnected (head {top}, ours {self._head})")
            else:
                start = self._checkpoint if self._checkpoint is not None else self._head
                await self._backfill(rpc, start, top)
            backfilled = True
        else:
            backfilled = self.config.start_block is not None
            if backfilled:
                await self._backfill(rpc, self.config.start_block, top)
            self._checkpoint = top
        if await self._on_head(rpc, head, publish_gas=True) is not None and backfilled:
            self._end_blocks(top, top)   # the backfill covered it (a fresh start follows from the next)
        self.completed_block = max(self.completed_block, top)
        for pool, held in self._pending.items():
            if pool not in self._discovering and held:
                self._start_discovery(pool, held[0])
        await self._flush_ready(rpc)
        self._flush_refreshed()
        self.publisher.flush()

    async def _get_logs(self, rpc: Rpc, lo: int, hi: int) -> list[Any]:
        """Logs of our topics in [lo, hi]; a range the node refuses is split in halves."""
        try:
            res = await rpc.request("eth_getLogs", [{"fromBlock": hex(lo), "toBlock": hex(hi),
                                                     "topics": [abi.ALL_TOPIC0_HEX]}])
        except RpcError as e:
            if hi <= lo:
                raise
            self.counters["getlogs_split"] += 1
            log.info("eth_getLogs %d..%d refused (%s), splitting", lo, hi, e)
            mid = (lo + hi) // 2
            return await self._get_logs(rpc, lo, mid) + await self._get_logs(rpc, mid + 1, hi)
        return res or []

    async def _backfill(self, rpc: Rpc, lo: int, hi: int) -> None:
        lo = max(lo, 0)
        a = lo
        while a <= hi:
            b = min(hi, a + self._chunk - 1)
            self._backfilling = True       # a connection lost now halves the range (too big?)
            logs = await self._get_logs(rpc, a, b)
            self._backfilling = False
            self._chunk = min(self._chunk * 2, self.config.getlogs_chunk_blocks)
            logs.sort(key=lambda x: (_q(x["blockNumber"]), _q(x["logIndex"])))
            self.counters["backfill_logs"] += len(logs)
            done = a     # blocks before this one are ended
            for raw in logs:
                n = _q(raw["blockNumber"])
                if n > done:
                    self._end_blocks(done, n - 1)
                    done = n
                await self._on_log(rpc, raw)
                if self.publisher.pending >= self.config.max_frames_per_batch:
                    self.publisher.flush()
            self._end_blocks(done, b)
            a = b + 1
        if hi >= lo:
            self.counters["backfills"] += 1
            log.info("backfilled blocks %d..%d", lo, hi)
        if self._checkpoint is None or hi > self._checkpoint:
            self._checkpoint = hi
        self.completed_block = max(self.completed_block, hi)
        self.publisher.flush()

    async def _load_headers(self, rpc: Rpc, lo: int, hi: int) -> None:
        nums = list(range(max(lo, 0), hi + 1))
        for i in range(0, len(nums), self.config.rpc_batch_size):
            chunk = nums[i:i + self.config.rpc_batch_size]
            res = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for n, r in zip(chunk, res):
                if isinstance(r, RpcError):
                    raise r
                if r:
                    self._heads[n] = _Head(_b(r["hash"]), _b(r["parentHash"]), _q(r["timestamp"]))

    # ================================================================ reorgs
    async def _reorg(self, rpc: Rpc, why: str) -> None:
        self.counters["reorgs"] += 1
        known = sorted(set(self._heads) | set(self._blocks), reverse=True)
        chain_top = _q(await rpc.request("eth_blockNumber", []))
        cands = [n for n in known if n <= chain_top and self._known_hash(n) is not None]
        ancestor = None
        bs = self.config.rpc_batch_size
        for i in range(0, len(cands), bs):
            chunk = cands[i:i + bs]
            res = await rpc.batch([("eth_getBlockByNumber", [hex(n), False]) for n in chunk])
            for n, r in zip(chunk, res):
                if isinstance(r, RpcError):
                    raise r
                if r and _b(r["hash"]) == self._known_hash(n):
                    ancestor = n
                    break
            if ancestor is not None:
                break
        if ancestor is None:
            ancestor = (known[-1] - 1) if known else chain_top
        dropped = [n for n in known if n > ancestor]
        n_removed = 0
        for n in dropped:   # newest first
            self._heads.pop(n, None)
            self._ended.pop(n, None)
            self._due.discard(n)
            blk = self._blocks.pop(n, None)
            if blk is None:
                continue
            for li in sorted(blk.events, reverse=True):
                v = blk.events[li]
                if isinstance(v, EvmEvent):
                    self._unhold(v)
                elif v is not None:
                    self.publisher.add([as_removed(v)])
                    n_removed += 1
        self.counters["reorg_blocks_dropped"] += len(dropped)
        self.counters["removed_published"] += n_removed
        log.warning("reorg (%s): common ancestor %d, %d blocks dropped, %d events undone",
                    why, ancestor, len(dropped), n_removed)
        self._head = ancestor
        self._checkpoint = ancestor
        self.completed_block = min(self.completed_block, ancestor)
        # pools snapshotted on the dropped branch get a fresh snapshot at the ancestor
        for pool, sb in list(self._snap_block.items()):
            if sb > ancestor:
                info = self.provider.pools[pool]
                try:
                    self.publisher.add(await self.provider.snapshot(rpc, info, ancestor))
                    self._snap_block[pool] = ancestor
                except SnapshotUnavailable as e:
                    self.counters["resnapshot_failed"] += 1
                    log.warning("pool 0x%s: no snapshot at %d after reorg: %s", pool.hex(), ancestor, e)
        self.publisher.flush()
        await self._load_headers(rpc, max(ancestor + 1, chain_top - self.config.reorg_depth), chain_top)
        await self._backfill(rpc, ancestor + 1, chain_top)
        self._head = max(self._head, chain_top)

    def _unhold(self, ev: EvmEvent) -> None:
        held = self._pending.get(ev.pool)
        if held:
            held[:] = [h for h in held if h.key != ev.key]
            self.counters["held_dropped_by_reorg"] += 1
            self._bar_valid = False
        if self._barred:
            n = len(self._barred)
            self._barred = [h for h in self._barred if h.key != ev.key]
            self.counters["held_dropped_by_reorg"] += n - len(self._barred)

    # ================================================================ logs
    async def _on_log(self, rpc: Rpc, raw: Any) -> None:
        try:
            ev = decode_log(raw)
        except DecodeError as e:
            if self._seen_undecodable(raw):
                self.counters["duplicates"] += 1   # the same log again (subscription and block fetch)
                return
            self.counters[f"decode_error_{e.reason}"] += 1
            log.warning("undecodable log skipped: %s", e)
            return
        if ev.removed:
            self._on_removed(ev)
            return
        kh = self._known_hash(ev.block_number)
        if kh is not None and ev.block_hash and kh != ev.block_hash:
            await self._reorg(rpc, f"log of block {ev.block_number} with an unknown hash")
            kh = self._known_hash(ev.block_number)
            if kh is not None and kh != ev.block_hash:
                self.counters["stale_logs"] += 1
                return
        blk = self._blocks.get(ev.block_number)
        if blk is not None and ev.log_index in blk.events:
            self.counters["duplicates"] += 1
            return
        if ev.block_number <= self._head - self.config.reorg_depth:
            self.counters["too_old"] += 1   # outside the dedup window: cannot prove it is new
            return
        self._accept(ev)

    def _seen_undecodable(self, raw: Any) -> bool:
        """Was this undecodable log met before? (Marks it when its position can be read.)"""
        try:
            n, li = _q(raw["blockNumber"]), _q(raw["logIndex"])
            bh = _b(raw.get("blockHash"))
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        if raw.get("removed") or n <= self._head - self.config.reorg_depth:
            return False
        blk = self._blocks.get(n)
        if blk is not None and li in blk.events and (not bh or not blk.hash or blk.hash == bh):
            return True
        if blk is None:
            blk = self._blocks[n] = _Block(bh)
        blk.events[li] = None
        return False

    def _accept(self, ev: EvmEvent) -> None:
        pool = ev.pool
        if pool in self.provider.ignored:
            self.counters["skipped_ignored_pool"] += 1
            self._mark(ev, None)
            return
        bar = self._barrier()
        if bar is not None and ev.block_number > bar:
            # an earlier block's BlockEnd waits for a discovery: this block's events wait behind it
            self._barred.append(ev)
            self._mark(ev, ev)
            self.counters["held_behind_block_end"] += 1
            return
        info = self.provider.pools.get(pool)
        if info is None or pool not in self._snap_block:
            # unknown pool: discover it; known (cache) but not yet snapshotted in this
            # session: snapshot it, so readers get its state before its first event
            held = self._pending.get(pool)
            if held is None:
                held = self._pending[pool] = []
            held.append(ev)
            if self._bar_valid and (self._bar is None or ev.block_number < self._bar):
                self._bar = ev.block_number
            self._mark(ev, ev)
            self.counters["held"] += 1
            if pool not in self._discovering:
                self._start_discovery(pool, ev)
            return
        self._publish(ev, info)

    def _mark(self, ev: EvmEvent, value: Any) -> None:
        blk = self._blocks.get(ev.block_number)
        if blk is None:
            blk = self._blocks[ev.block_number] = _Block(ev.block_hash)
        elif not blk.hash:
            blk.hash = ev.block_hash
        if ev.block_ts:
            blk.ts = ev.block_ts
        blk.events[ev.log_index] = value

    # ================================================================ block ends
    def _barrier(self) -> int | None:
        """The lowest block with a held event (its BlockEnd must wait), None when nothing is held.
        Kept up to date as events are held, recomputed after events leave the held lists."""
        if not self._bar_valid:
            low = None
            for held in self._pending.values():
                for ev in held:
                    if low is None or ev.block_number < low:
                        low = ev.block_number
            self._bar = low
            self._bar_valid = True
        return self._bar

    async def _complete_block(self, rpc: Rpc, number: int) -> None:
        """The block of a new head: fetch its logs (by hash), publish what the subscription has
        not delivered yet, then end it. A node that refuses a block-hash filter is asked by number
        (a log of another branch then shows up as a reorg in ``_on_log``)."""
        h = self._heads.get(number)
        if h is None:
            return
        flt: dict[str, Any] = {"blockHash": "0x" + h.hash.hex(), "topics": [abi.ALL_TOPIC0_HEX]}
        try:
            logs = await rpc.request("eth_getLogs", [flt])
        except RpcError as e:
            self.counters["block_logs_by_number"] += 1
            log.info("eth_getLogs by hash of block %d refused (%s): asking by number", number, e)
            logs = await rpc.request("eth_getLogs", [{"fromBlock": hex(number), "toBlock": hex(number),
                                                      "topics": [abi.ALL_TOPIC0_HEX]}])
        logs = sorted(logs or [], key=lambda x: _q(x["logIndex"]))
        for raw in logs:
            await self._on_log(rpc, raw)
        if self._known_hash(number) == h.hash:
            self._end_blocks(number, number)
        self.completed_block = max(self.completed_block, number)

    def _end_blocks(self, lo: int, hi: int) -> None:
        """Blocks ``lo..hi`` are complete on the chain: their BlockEnds go out as soon as none of
        their events is held. Blocks we know nothing of (no header, no event) are passed over."""
        for n in range(max(lo, 0), hi + 1):
            if n in self._heads or n in self._blocks:
                self._due.add(n)
        self._advance()

    def _advance(self) -> None:
        """Send every due BlockEnd that no held event blocks, in block order; events that waited
        behind one are published just before it."""
        while self._due:
            n = min(self._due)
            bar = self._barrier()
            if bar is not None and bar <= n:
                return
            if self._barred and min(e.block_number for e in self._barred) <= n:
                self._release(n)
                continue    # a released event may have started a discovery: check again
            self._due.discard(n)
            self._send_block_end(n)
        if self._barred and self._barrier() is None:
            self._release(None)

    def _release(self, upto: int | None) -> None:
        """Events that waited behind a BlockEnd, up to block ``upto`` (all with None), in chain order."""
        self._barred.sort(key=lambda e: e.key)
        if upto is None:
            go, self._barred = self._barred, []
        else:
            go = [e for e in self._barred if e.block_number <= upto]
            self._barred = [e for e in self._barred if e.block_number > upto]
        for ev in go:
            self._accept(ev)

    def _send_block_end(self, n: int) -> None:
        h = self._heads.get(n)
        blk = self._blocks.get(n)
        bh = h.hash if h is not None else (blk.hash if blk is not None else b"")
        if self._ended.get(n) == bh:
            return   # already sent for this very block (a backfill over a followed block)
        ts = h.ts if h is not None else (blk.ts if blk is not None else 0)
        rec = codec.BlockEnd(block_number=n, block_ts_ns=ts * NS_PER_S,
                             event_count=blk.published() if blk is not None else 0,
                             chain_id=self.config.chain_id, block_hash=bh.rjust(32, b"\0")[-32:])
        self.publisher.add([rec])
        self._ended[n] = bh
        self.counters["block_ends"] += 1

    def _publish(self, ev: EvmEvent, info: PoolInfo) -> None:
        if not event_fits(ev.spec.family, info.kind):
            self.counters["skipped_kind_mismatch"] += 1
            self._mark(ev, None)
            return
        sb = self._snap_block.get(ev.pool)
        if sb is not None and ev.block_number <= sb:
            self.counters["skipped_in_snapshot"] += 1   # already part of the published snapshot
            self._mark(ev, None)
            return
        h = self._heads.get(ev.block_number)
        try:
            rec = to_record(ev, info, h.ts if h is not None else 0)
        except DecodeError as e:
            self.counters[f"decode_error_{e.reason}"] += 1
            log.warning("pool 0x%s block %d log %d skipped: %s", ev.pool.hex(), ev.block_number,
                        ev.log_index, e)
            self._mark(ev, None)
            return
        try:
            self.publisher.add([rec])
        except EncodeError as e:    # a value the wire cannot carry (e.g. decimals > 255)
            self.counters["encode_errors"] += 1
            log.warning("pool 0x%s block %d log %d skipped: %s", ev.pool.hex(), ev.block_number,
                        ev.log_index, e)
            self._mark(ev, None)
            return
        self._mark(ev, rec)
        if ev.block_number > self._last_pub.get(ev.pool, -1):
            self._last_pub[ev.pool] = ev.block_number
        self.counters[ev.spec.counter] += 1

    def _on_removed(self, ev: EvmEvent) -> None:
        self.counters["removed_logs_received"] += 1
        blk = self._blocks.get(ev.block_number)
        v = blk.events.get(ev.log_index) if blk is not None else None
        if blk is None or ev.log_index not in blk.events or (ev.block_hash and blk.hash != ev.block_hash):
            self.counters["removed_unknown"] += 1
            return
        del blk.events[ev.log_index]
        if isinstance(v, EvmEvent):
            self._unhold(v)
        elif v is not None:
            self.publisher.add([as_removed(v)])
            self.counters["removed_published"] += 1

    # ================================================================ discovery
    def _start_discovery(self, pool: bytes, first: EvmEvent) -> None:
        t = asyncio.create_task(self._discover(pool, first.spec.family))
        self._discovering[pool] = t

    async def _discover(self, pool: bytes, family: str) -> None:
        attempt = 0
        result: Any = None
        while True:
            await self._rpc_ready.wait()
            rpc = self._rpc
            try:
                info = self.provider.pools.get(pool)
                if info is None:
                    info = await self.provider.discover(rpc, pool, family)
                if info is not None:
                    held = self._pending.get(pool) or []
                    first = min((e.block_number for e in held), default=self._head + 1)
                    sb = max(first - 1, 0)
                    try:
                        recs = await self.provider.snapshot(rpc, info, sb)
                    except SnapshotUnavailable as e:
                        self.counters["snapshot_fallback_latest"] += 1
                        sb = _q(await rpc.request("eth_blockNumber", []))
                        log.info("pool 0x%s: no state at %d (%s); snapshot at %d instead",
                                 pool.hex(), first - 1, e, sb)
                        recs = await self.provider.snapshot(rpc, info, sb)
                    result = (info, sb, recs)
                break
            except asyncio.CancelledError as e:
                if _really_cancelled():
                    raise
                err = e   # web3 cancels the futures of a connection it closes: not ours
            except Exception as e:   # never let the task die: its pool's events are held
                err: BaseException = e
            if self._rpc is not rpc or not self._rpc_ready.is_set() or not _connected(rpc):
                self.counters["discovery_interrupted"] += 1
                await asyncio.sleep(self.config.backoff_initial_s)
                continue   # the connection went away: not the pool's fault, wait for the next one
            if not isinstance(err, (RetryLater, RpcError, SnapshotUnavailable, asyncio.TimeoutError,
                                    OSError, ConnectionError)) and \
                    type(err).__module__.split(".")[0] not in ("web3", "websockets", "aiohttp"):
                log.error("pool 0x%s: discovery failed unexpectedly", pool.hex(), exc_info=err)
            attempt += 1
            self.counters["discovery_retries"] += 1
            log.warning("pool 0x%s: discovery attempt %d failed: %s", pool.hex(), attempt, err)
            if attempt >= self.config.discovery_max_attempts:
                # not persisted: the node may answer after a restart of the adapter
                self.provider.ignored[pool] = ("discovery_failed", str(err))
                self.counters["ignored_discovery_failed"] += 1
                log.error("pool 0x%s: given up after %d attempts, its events are skipped: %s",
                          pool.hex(), attempt, err)
                break
            await asyncio.sleep(min(self.config.backoff_max_s, self.config.backoff_initial_s * 2 ** attempt))
        self._ready.append((pool, result))
        if self._queue is not None:
            self._queue.put_nowait(("ready", None))

    async def _flush_ready(self, rpc: Rpc) -> None:
        ready, self._ready = self._ready, []
        for pool, result in ready:
            self._discovering.pop(pool, None)
            held = sorted(self._pending.pop(pool, []), key=lambda e: e.key)
            self._bar_valid = False
            if result is None:
                for ev in held:
                    self._mark(ev, None)
                self.counters["skipped_ignored_pool"] += len(held)
                continue
            info, sb, recs = result
            # its events waiting behind a BlockEnd that the snapshot (taken at the head) includes
            # go out before it too: published after it, they would be skipped as in the snapshot
            early = [e for e in self._barred if e.pool == pool and e.block_number <= sb]
            if early:
                self._barred = [e for e in self._barred if not (e.pool == pool and e.block_number <= sb)]
                held = sorted(held + early, key=lambda e: e.key)
            if pool not in self.provider.pools:
                self.provider.remember(info, sb)
                self.counters["pools_discovered"] += 1
            else:
                self.counters["pools_from_cache"] += 1
            # Held events up to the snapshot's block go out before it (nothing is dropped,
            # and the snapshot, being absolute, then sets the state they led to); that only
            # happens when the node had no state before the first event (snapshot at the head).
            for ev in held:
                if ev.block_number <= sb:
                    self._publish(ev, info)
                    self.counters["published_before_snapshot"] += 1
            self._snap_block[pool] = sb
            self.publisher.add(recs)   # one frame: PoolState, TickCoverage, PoolTicks
            log.info("pool 0x%s: venue %d kind %d tokens 0x%s(%d)/0x%s(%d) fee %d, snapshot at %d "
                     "with %d ticks, %d held events", pool.hex(), info.venue, info.kind,
                     info.token0.hex(), info.decimals0, info.token1.hex(), info.decimals1,
                     info.fee_pips, sb, sum(isinstance(r, codec.PoolTick) for r in recs), len(held))
            bar = self._barrier()   # other pools' held events: later blocks wait behind them
            for ev in held:
                if ev.block_number <= sb:
                    continue
                if bar is not None and ev.block_number > bar:
                    self._barred.append(ev)
                    self.counters["held_behind_block_end"] += 1
                else:
                    self._publish(ev, info)
        self._advance()

    # ================================================================ refreshes
    def refresh(self, pool: bytes, reason: int = 0, block: int = 0) -> None:
        """A reader asks for ``pool``'s full state (PoolRefresh). Call on the adapter's loop
        (:meth:`refresh_threadsafe` from other threads)."""
        self.counters["refresh_requests"] += 1
        if pool in self._refreshing:
            self.counters["refresh_merged"] += 1
            return
        if pool not in self.provider.pools or pool not in self._snap_block:
            # never published (or discovery still running: its snapshot is on its way)
            self.counters["refresh_unknown_pool"] += 1
            log.info("PoolRefresh for 0x%s (reason %d, block %d): not a pool we publish",
                     pool.hex(), reason, block)
            return
        log.info("PoolRefresh for 0x%s (reason %d, reader at block %d)", pool.hex(), reason, block)
        t = asyncio.create_task(self._refresh(pool))
        self._refreshing[pool] = t
        self._bg.add(t)
        t.add_done_callback(self._bg.discard)

    def refresh_threadsafe(self, pool: bytes, reason: int = 0, block: int = 0) -> bool:
        """:meth:`refresh` from any thread; False when the adapter's loop is not running."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return False
        loop.call_soon_threadsafe(self.refresh, pool, reason, block)
        return True

    async def _refresh(self, pool: bytes, *, wait_interval: bool = True) -> None:
        """Read ``pool``'s snapshot at the latest followed block and hand it to the consumer."""
        cfg = self.config
        info = self.provider.pools[pool]
        attempt = 0
        try:
            if wait_interval:
                since = time.monotonic() - self._refresh_last.get(pool, -1e18)
                if since < cfg.refresh_min_interval_s:
                    self.counters["refresh_delayed"] += 1
                    await asyncio.sleep(cfg.refresh_min_interval_s - since)
            while True:
                now = time.monotonic()
                start = max(now, self._refresh_slot)
                self._refresh_slot = start + 1.0 / cfg.refresh_max_per_s
                if start > now:
                    await asyncio.sleep(start - now)
                await self._rpc_ready.wait()
                rpc = self._rpc
                block = max(self._head, 0)
                bh = self._known_hash(block)
                try:
                    recs = await self.provider.snapshot(rpc, info, block)
                    break
                except asyncio.CancelledError:
                    if _really_cancelled():
                        raise
                    err: BaseException = ConnectionError("connection closed during the read")
                except Exception as e:   # never lost: counted, logged, read again
                    err = e
                attempt += 1
                self.counters["refresh_errors"] += 1
                log.warning("pool 0x%s: refresh read %d at block %d failed: %s: %s", pool.hex(), attempt,
                            block, type(err).__name__, err)
                await asyncio.sleep(min(cfg.backoff_max_s, cfg.backoff_initial_s * 2 ** attempt))
        except BaseException:
            self._refreshing.pop(pool, None)
            raise
        self._refresh_last[pool] = time.monotonic()
        self._refreshed.append((pool, block, bh, recs))
        if self._queue is not None:
            self._queue.put_nowait(("refreshed", None))

    def _flush_refreshed(self) -> None:
        """Publish the snapshots read, in the stream's order (the consumer's coroutine)."""
        done, self._refreshed = self._refreshed, []
        for pool, block, bh, recs in done:
            if self._last_pub.get(pool, -1) > block or self._snap_block.get(pool, -1) > block \
                    or self._known_hash(block) != bh:
                # an event of a later block went out while it was read (the snapshot would undo
                # it), or a reorg replaced the block it was read at
                self.counters["refresh_outdated"] += 1
                t = asyncio.create_task(self._refresh(pool, wait_interval=False))
                self._refreshing[pool] = t
                self._bg.add(t)
                t.add_done_callback(self._bg.discard)
                continue
            self._refreshing.pop(pool, None)
            self._snap_block[pool] = block     # its events up to ``block`` are in the snapshot
            self.publisher.add(recs)
            self.counters["refreshes"] += 1
            log.info("pool 0x%s: refreshed at block %d with %d ticks", pool.hex(), block,
                     sum(isinstance(r, codec.PoolTick) for r in recs))

    # ================================================================ heads
    async def _on_head(self, rpc: Rpc, head: Any, publish_gas: bool = True) -> int | None:
        """Follow one head; its number, or None for a duplicate or stale head."""
        number = _q(head["number"])
        h = _b(head["hash"])
        parent = _b(head["parentHash"])
        ts = _q(head["timestamp"])
        kh = self._known_hash(number)
        if kh == h and number in self._heads:
            self.counters["duplicate_heads"] += 1
            return None
        pk = self._known_hash(number - 1)
        if (kh is not None and kh != h) or (pk is not None and pk != parent) or \
                (number <= self._head and kh is None):
            await self._reorg(rpc, f"head {number} does not extend the chain we followed")
            if self._known_hash(number) != h:
                self.counters["stale_heads"] += 1
                return None
        elif self._head >= 0 and number > self._head + 1 and self._checkpoint is not None:
            # heads were skipped: make sure their logs are in (dedup drops what we had)
            self.counters["head_gaps"] += 1
            await self._backfill(rpc, self._checkpoint, number - 1)
        self._heads[number] = _Head(h, parent, ts)
        if number > self._head:
            self._head = number
        if self._checkpoint is None or number - 1 > self._checkpoint:
            self._checkpoint = number - 1
        self.counters["heads"] += 1
        self._last_head_t = time.monotonic()
        if publish_gas:
            base = head.get("baseFeePerGas")
            self.publisher.add([codec.GasPrice(
                base_fee_wei=_q(base) if base is not None else 0,
                priority_fee_wei=self._priority_fee, block_number=number, block_ts_ns=ts * NS_PER_S,
                chain_id=self.config.chain_id)])
            if self.config.fetch_priority_fee:
                t = asyncio.create_task(self._refresh_priority_fee(rpc))
                self._bg.add(t)
                t.add_done_callback(self._bg.discard)
        low = self._head - self.config.reorg_depth
        if low > 0:
            for d in (self._heads, self._blocks, self._ended):
                if d and min(d) < low:
                    for n in [n for n in d if n < low]:
                        del d[n]
        return number

    async def _refresh_priority_fee(self, rpc: Rpc) -> None:
        try:
            self._priority_fee = min(_q(await rpc.request("eth_maxPriorityFeePerGas", [])), (1 << 64) - 1)
        except Exception as e:   # a missing method must not stop the data
            self.counters["priority_fee_errors"] += 1
            log.debug("eth_maxPriorityFeePerGas: %s", e)


# ==================================================================== entry points
async def run_adapter_async(config: EvmDataClientConfig, sink: Sink, stop: Any,
                            *, client_ready: Callable[[EvmDataClient], None] | None = None) -> EvmDataClient:
    """Run the adapter until ``stop`` (an asyncio.Event, or any object with ``is_set()``) is set."""
    client = EvmDataClient(config, sink)
    if client_ready is not None:
        client_ready(client)
    if isinstance(stop, asyncio.Event):
        astop = stop
        poll = None
    else:
        astop = asyncio.Event()

        async def _poll() -> None:
            while not stop.is_set():
                await asyncio.sleep(0.05)
            astop.set()
        poll = asyncio.create_task(_poll())
    try:
        await client.run(astop)
    finally:
        if poll is not None:
            poll.cancel()
        client.cache.close()
        log.info("adapter stopped: %s", dict(client.counters))
    return client


def run_adapter(config: EvmDataClientConfig, sink: Sink, stop_event: Any) -> Counter:
    """Process entry point: blocks until ``stop_event`` (threading/multiprocessing Event) is set.

    Returns the counters of the run.
    """
    client = asyncio.run(run_adapter_async(config, sink, stop_event))
    return client.counters


def ring_sink(producer: Any) -> Sink:
    """A sink that publishes each batch into a ring (:class:`alphapulse.ring.Producer`) at once."""
    def sink(frames: list[bytes]) -> None:
        if len(frames) == 1:
            producer.publish(frames[0])
        elif frames:
            producer.publish_batch(b"".join(frames))
    return sink
