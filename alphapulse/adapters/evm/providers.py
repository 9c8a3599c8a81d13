"""Pools and tokens: discovery by batched eth_call, PoolState snapshots, V3 ticks.

An event from an unknown pool triggers :meth:`PoolProvider.discover`: token0,
token1, factory (and for V3 fee, tickSpacing) in one JSON-RPC batch; then the
tokens' decimals and the factory's own ``getPair``/``getPool`` (Algebra:
``poolByPair``, one pool per pair) in a second one. Algebra v1.0 pools
(QuickSwap V3, pool_kind 3) emit Uniswap V3's Swap/Mint/Burn topics: the
configured kind of the pool's factory decides which of the two a pool is. Their
snapshot reads ``globalState()`` (price, tick and the fee in force), ``liquidity()``
and the tick table (``tickTable(int16)``, Uniswap's bitmap layout at spacing 60),
then ``ticks(t)`` (liquidityDelta is its second word, as Uniswap's liquidityNet).
The factory must be configured (it gives the venue) and must name the pool back
(a contract that merely *claims* a factory is not followed). Tokens whose
``decimals()`` does not answer like an ERC-20 are blacklisted with the reason.
At most ``discovery_concurrency`` pools are discovered at once.
"""
from __future__ import annotations

import asyncio
import bisect
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.abi import AbiError, call_data, enc_address, enc_int, hex_to_bytes
from alphapulse.adapters.evm.config import EvmDataClientConfig
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import PoolKind

log = logging.getLogger(__name__)

# factory kind (configuration) -> pool kind
KIND_OF_FAMILY = {"v2": int(PoolKind.CONSTANT_PRODUCT), "v3": int(PoolKind.CONCENTRATED),
                  "algebra": int(PoolKind.CONCENTRATED_DYNAMIC_FEE)}
# event family (abi.EventSpec.family) -> the pool kinds that emit its logs
_EVENT_KINDS = {"v2": frozenset({int(PoolKind.CONSTANT_PRODUCT)}),
                "v3": frozenset({int(PoolKind.CONCENTRATED), int(PoolKind.CONCENTRATED_DYNAMIC_FEE)}),
                "algebra": frozenset({int(PoolKind.CONCENTRATED_DYNAMIC_FEE)})}


def event_fits(family: str, kind: int) -> bool:
    """Whether a pool of ``kind`` emits logs of event ``family`` (Algebra pools emit V3's)."""
    return kind in _EVENT_KINDS[family]

# PoolTicks that fit one frame beside their PoolState and TickCoverage (the three travel together)
MAX_TICKS_PER_FRAME = (L.MAX_PAYLOAD - (L.POOL_STATE.size + L.TLV_STD_HEADER)
                       - (L.TICK_COVERAGE.size + L.TLV_STD_HEADER)) // (L.POOL_TICK.size + L.TLV_STD_HEADER)


@dataclass(frozen=True, slots=True)
class PoolInfo:
    """A known pool: everything its records carry besides the event itself."""
    address: bytes
    kind: int              # PoolKind
    venue: int
    factory: bytes
    token0: bytes
    token1: bytes
    decimals0: int
    decimals1: int
    fee_pips: int
    tick_spacing: int      # 0 for constant product


# ---------------------------------------------------------------- JSON-RPC
class RpcError(Exception):
    """A JSON-RPC error response (the connection itself is fine)."""

    def __init__(self, method: str, error: Any) -> None:
        err = error if isinstance(error, dict) else {"message": str(error)}
        self.code = err.get("code")
        self.message = str(err.get("message", ""))
        self.data = err.get("data")
        super().__init__(f"{method}: error {self.code}: {self.message}")

    # what nodes say when the *contract* failed (geth, erigon, anvil, hardhat wordings);
    # anything else (rate limits, missing state, timeouts) is the node's problem: retry
    _EVM_FAILURE = ("revert", "evm error", "out of gas", "invalid opcode", "invalid jump",
                    "stack underflow", "stack overflow", "oog", "bad instruction")

    @property
    def is_revert(self) -> bool:
        """The call failed inside the EVM (revert, out of gas, bad opcode): a contract answer."""
        msg = self.message.lower()
        return self.code == 3 or any(w in msg for w in self._EVM_FAILURE)


class Rpc:
    """Raw JSON-RPC over one AsyncWeb3 persistent connection (no web3 result formatting).

    Batches are serialised (web3 matches a batch response by one shared id), so
    one batch is in flight per connection; single requests may interleave.
    """

    def __init__(self, w3: Any, timeout_s: float, batching: bool = True) -> None:
        self.w3 = w3
        self.timeout_s = timeout_s
        self._batch_lock = asyncio.Lock()
        self.requests = 0
        self.batching = batching

    async def request(self, method: str, params: list) -> Any:
        self.requests += 1
        resp = await asyncio.wait_for(self.w3.provider.make_request(method, params), self.timeout_s)
        if "error" in resp and resp["error"] is not None:
            raise RpcError(method, resp["error"])
        return resp.get("result")

    async def _one(self, method: str, params: list) -> Any:
        try:
            return await self.request(method, params)
        except RpcError as e:
            return e

    async def batch(self, calls: list[tuple[str, list]]) -> list[Any]:
        """Results in call order; a failed item is an :class:`RpcError` in its place.

        One JSON-RPC batch; a node that refuses batches gets the calls as concurrent
        single requests from then on (``batching`` turns False, logged once).
        """
        if not calls:
            return []
        if not self.batching:
            return list(await asyncio.gather(*(self._one(m, p) for m, p in calls)))
        async with self._batch_lock:
            self.requests += 1
            resps = await asyncio.wait_for(self.w3.provider.make_batch_request(calls), self.timeout_s)
        if isinstance(resps, dict):     # the whole batch was refused
            self.batching = False
            log.warning("node refuses JSON-RPC batches (%s): single requests from now on",
                        resps.get("error", resps))
            return await self.batch(calls)
        by_id = sorted(resps, key=lambda r: r.get("id", 0))
        if len(by_id) != len(calls):
            raise RpcError("batch", f"{len(calls)} calls, {len(by_id)} responses")
        return [RpcError(calls[i][0], r["error"]) if r.get("error") is not None else r.get("result")
                for i, r in enumerate(by_id)]


def _eth_call(to: bytes, data: str, block: str) -> tuple[str, list]:
    return ("eth_call", [{"to": "0x" + to.hex(), "data": data}, block])


def _ret(res: Any, what: str) -> bytes:
    """Return bytes of an eth_call result, or AbiError naming why it is unusable."""
    if isinstance(res, RpcError):
        raise AbiError("reverted" if res.is_revert else "rpc_error", f"{what}: {res.message}")
    try:
        return hex_to_bytes(res)
    except (TypeError, ValueError):
        raise AbiError("bad_return", f"{what}: result {res!r} is not hex") from None


class RetryLater(Exception):
    """Discovery failed for a reason of the node or the connection, not of the pool."""


class SnapshotUnavailable(Exception):
    """The node cannot answer for that block (pruned state, unknown block)."""


# ---------------------------------------------------------------- provider
class PoolProvider:
    """Known pools, token decimals and ignored addresses; discovers the rest."""

    def __init__(self, config: EvmDataClientConfig, cache: Any, counters: Counter) -> None:
        self.config = config
        self.cache = cache
        self.counters = counters
        self.factories = config.factory_map()
        self.token_filter = config.token_set()
        self.pools: dict[bytes, PoolInfo] = cache.load_pools()
        self.decimals: dict[bytes, int] = cache.load_tokens()
        self.decimals.update(config.known_decimals_bytes())
        fingerprint = self._filter_fingerprint()
        if cache.get_meta("filter_fingerprint") != fingerprint:
            n = cache.clear_ignored("unfollowed")
            if n:
                log.info("pool filter changed: %d unfollowed pools will be looked at again", n)
            cache.set_meta("filter_fingerprint", fingerprint)
        self.ignored: dict[bytes, tuple[str, str]] = cache.load_ignored()
        self._sem = asyncio.Semaphore(config.discovery_concurrency)

    def check_genesis(self, genesis_hash: str) -> bool:
        """Tie the cache to one chain: a different genesis (same chain id, another network
        or a fresh dev chain) empties it. Returns True when it was reset."""
        key = "genesis"
        stored = self.cache.get_meta(f"{key}_{self.config.chain_id}")
        if stored == genesis_hash:
            return False
        reset = stored is not None
        if reset:
            log.warning("chain %d: genesis %s, the pool cache was filled on genesis %s: emptying it",
                        self.config.chain_id, genesis_hash, stored)
            self.cache.clear_chain()
            self.pools.clear()
            self.decimals.clear()
            self.decimals.update(self.config.known_decimals_bytes())
            self.ignored.clear()
            self.counters["cache_reset_genesis"] += 1
        self.cache.set_meta(f"{key}_{self.config.chain_id}", genesis_hash)
        return reset

    def _filter_fingerprint(self) -> str:
        facs = sorted(f"{f.address.lower()}:{f.venue}:{f.kind}:{f.fee_pips}" for f in self.config.factories)
        toks = sorted(t.lower() for t in self.config.tokens)
        return "|".join(facs) + "#" + ",".join(toks) + "#" + self.config.token_match

    def _ignore(self, address: bytes, what: str, reason: str) -> None:
        self.ignored[address] = (what, reason)
        self.cache.upsert_ignored(address, what, reason)
        self.counters[f"ignored_{what}"] += 1
        level = logging.WARNING if what in ("token", "pool_bad_token", "not_a_pool") else logging.INFO
        log.log(level, "ignoring %s 0x%s: %s", what, address.hex(), reason)

    def _followed_tokens(self, t0: bytes, t1: bytes) -> bool:
        if not self.token_filter:
            return True
        a, b = t0 in self.token_filter, t1 in self.token_filter
        return (a and b) if self.config.token_match == "both" else (a or b)

    async def discover(self, rpc: Rpc, pool: bytes, family: str) -> PoolInfo | None:
        """PoolInfo of ``pool`` (cached and persisted), or None when it is ignored.

        Connection errors propagate (the caller retries on the next connection);
        everything the contracts answer wrongly ends in a logged, persisted ignore.
        """
        async with self._sem:
            try:
                return await self._discover(rpc, pool, family)
            except AbiError as e:
                if e.reason == "rpc_error":
                    raise RetryLater(str(e)) from None
                self._ignore(pool, "not_a_pool", str(e))
                return None

    async def _discover(self, rpc: Rpc, pool: bytes, family: str) -> PoolInfo | None:
        self.counters["discoveries"] += 1
        latest = "latest"
        calls = [_eth_call(pool, call_data(abi.TOKEN0), latest),
                 _eth_call(pool, call_data(abi.TOKEN1), latest),
                 _eth_call(pool, call_data(abi.FACTORY), latest)]
        if family != "v2":
            # an Algebra pool has no fee(): its answer is read only for a Uniswap V3 factory
            calls += [_eth_call(pool, call_data(abi.TICK_SPACING), latest),
                      _eth_call(pool, call_data(abi.FEE), latest)]
        res = await rpc.batch(calls)
        words = []
        for r, what in zip(res[:4], ("token0()", "token1()", "factory()", "tickSpacing()")):
            b = _ret(r, what)
            abi.need_words(b, 1, what)
            words.append(b)
        token0 = abi.word_address(words[0], 0, "token0()")
        token1 = abi.word_address(words[1], 0, "token1()")
        factory = abi.word_address(words[2], 0, "factory()")
        fc = self.factories.get(factory)
        if fc is None:
            self._ignore(pool, "unfollowed", f"factory 0x{factory.hex()} is not configured")
            return None
        if not event_fits(family, KIND_OF_FAMILY[fc.kind]):
            self._ignore(pool, "unfollowed", f"{family} event but factory 0x{factory.hex()} is {fc.kind}")
            return None
        if not self._followed_tokens(token0, token1):
            self._ignore(pool, "unfollowed", f"tokens 0x{token0.hex()}/0x{token1.hex()} outside the token filter")
            return None
        for t in (token0, token1):
            if self.ignored.get(t, ("", ""))[0] == "token":
                self._ignore(pool, "pool_bad_token", f"token 0x{t.hex()} is blacklisted: {self.ignored[t][1]}")
                return None
        if fc.kind != "v2":
            spacing = abi.word_int(words[3], 0, 24, "tickSpacing()")
            if spacing <= 0:
                raise AbiError("value_out_of_range", f"tickSpacing() = {spacing}")
        if fc.kind == "v3":
            b = _ret(res[4], "fee()")
            abi.need_words(b, 1, "fee()")
            fee = abi.word_uint(b, 0, 24, "fee()")
            verify = _eth_call(factory, call_data(abi.GET_POOL, enc_address(token0), enc_address(token1),
                                                  enc_int(fee)), latest)
        elif fc.kind == "algebra":
            fee = 0   # dynamic: every snapshot reads the fee in force from globalState()
            verify = _eth_call(factory, call_data(abi.POOL_BY_PAIR, enc_address(token0), enc_address(token1)),
                               latest)
        else:
            fee, spacing = fc.fee_pips, 0
            verify = _eth_call(factory, call_data(abi.GET_PAIR, enc_address(token0), enc_address(token1)),
                               latest)
        need = [t for t in dict.fromkeys((token0, token1)) if t not in self.decimals]
        res = await rpc.batch([verify] + [_eth_call(t, call_data(abi.DECIMALS), latest) for t in need])
        vb = _ret(res[0], "factory.getPair/getPool")
        abi.need_words(vb, 1, "factory.getPair/getPool")
        if abi.word_address(vb, 0, "getPair/getPool") != pool:
            self._ignore(pool, "not_a_pool", f"factory 0x{factory.hex()} does not list this pool")
            return None
        for t, r in zip(need, res[1:]):
            try:
                b = _ret(r, "decimals()")
                abi.need_words(b, 1, "decimals()")
                d = abi.word_uint(b, 0, 8, "decimals()")
            except AbiError as e:
                if e.reason == "rpc_error":
                    raise
                self._ignore(t, "token", f"not an ERC-20: {e}")
                self._ignore(pool, "pool_bad_token", f"token 0x{t.hex()}: {e}")
                return None
            self.decimals[t] = d
            self.cache.upsert_token(t, d)
        info = PoolInfo(pool, KIND_OF_FAMILY[fc.kind], fc.venue, factory, token0, token1,
                        self.decimals[token0], self.decimals[token1], fee, spacing)
        return info

    def remember(self, info: PoolInfo, block: int) -> None:
        self.pools[info.address] = info
        self.cache.upsert_pool(info, block)

    # -------------------------------------------------------------- snapshots
    async def snapshot(self, rpc: Rpc, info: PoolInfo, block: int) -> list[Any]:
        """The records of one frame: [PoolState] of a constant-product pool, [PoolState,
        TickCoverage, PoolTick...] of a concentrated-liquidity one, as of the end of ``block``.

        A pool without code at that block (created later) has the zero state.
        Raises SnapshotUnavailable when the node cannot serve that block.
        """
        async with self._sem:
            try:
                return await self._snapshot(rpc, info, block)
            except RpcError as e:
                raise SnapshotUnavailable(str(e)) from None

    async def _snapshot(self, rpc: Rpc, info: PoolInfo, block: int) -> list[Any]:
        tag = hex(block)
        blk = ("eth_getBlockByNumber", [tag, False])
        r0 = r1 = sqrt_p = liq = tick = 0
        fee = info.fee_pips
        ticks: list[Any] = []
        # no price yet (or no code yet): no position can exist, no tick is initialised anywhere
        cover = (abi.MIN_TICK, abi.MAX_TICK)
        if info.kind == PoolKind.CONSTANT_PRODUCT:
            res = await rpc.batch([blk, _eth_call(info.address, call_data(abi.GET_RESERVES), tag)])
            header = self._header(res[0], block)
            b = self._state_ret(res[1], "getReserves()")
            if b:
                abi.need_words(b, 2, "getReserves()")
                r0 = abi.word_uint(b, 0, 112, "reserve0")
                r1 = abi.word_uint(b, 1, 112, "reserve1")
        else:
            algebra = info.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE
            head, what = (abi.GLOBAL_STATE, "globalState()") if algebra else (abi.SLOT0, "slot0()")
            res = await rpc.batch([blk, _eth_call(info.address, call_data(head), tag),
                                   _eth_call(info.address, call_data(abi.LIQUIDITY), tag)])
            header = self._header(res[0], block)
            b0 = self._state_ret(res[1], what)
            b1 = self._state_ret(res[2], "liquidity()")
            if b0:
                abi.need_words(b0, 3 if algebra else 2, what)
                abi.need_words(b1, 1, "liquidity()")
                sqrt_p = abi.word_uint(b0, 0, 160, "sqrtPriceX96")
                tick = abi.word_int(b0, 1, 24, "tick")
                liq = abi.word_uint(b1, 0, 128, "liquidity")
                if algebra:
                    fee = abi.word_uint(b0, 2, 16, "globalState().fee")
                if sqrt_p:
                    ticks, cover = await self._ticks(rpc, info, tick, tag, block)
        ts_ns = int(header["timestamp"], 16) * 1_000_000_000
        state = codec.PoolState(reserve0=r0, reserve1=r1, sqrt_price_x96=sqrt_p, liquidity=liq,
                                block_number=block, block_ts_ns=ts_ns, tick=tick, fee_pips=fee,
                                venue=info.venue, pool_kind=info.kind, token0_decimals=info.decimals0,
                                token1_decimals=info.decimals1, flags=0, tick_spacing=info.tick_spacing,
                                pool=info.address, token0=info.token0, token1=info.token1)
        self.counters["snapshots"] += 1
        if info.kind == PoolKind.CONSTANT_PRODUCT:
            return [state]
        coverage = codec.TickCoverage(block_number=block, tick_lower=cover[0], tick_upper=cover[1],
                                      pool=info.address)
        return [state, coverage] + ticks

    @staticmethod
    def _header(res: Any, block: int) -> dict:
        if isinstance(res, RpcError):
            raise res
        if not res:
            raise SnapshotUnavailable(f"block {block} unknown to the node")
        return res

    @staticmethod
    def _state_ret(res: Any, what: str) -> bytes:
        if isinstance(res, RpcError) and not res.is_revert:
            raise res   # pruned state and the like: the caller picks another block
        return _ret(res, what)

    async def _ticks(self, rpc: Rpc, info: PoolInfo, tick: int, tag: str,
                     block: int) -> tuple[list[Any], tuple[int, int]]:
        """PoolTick of every initialised tick within tick_snapshot_range of ``tick``, and the
        covered range (ticks, inclusive): every initialised tick in it is listed.

        The tick bitmap is read word by word in batched ``eth_call``s (one word spans 256 x
        tick_spacing ticks); then ``ticks(t)`` of each set bit. When more ticks are set than
        one frame holds (MAX_TICKS_PER_FRAME), the range narrows to the ones nearest the price.
        """
        sp = info.tick_spacing
        bitmap, bm_what = ((abi.TICK_TABLE, "tickTable()") if info.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE
                           else (abi.TICK_BITMAP, "tickBitmap()"))
        rng = self.config.tick_snapshot_range
        lo_c = max(tick - rng, abi.MIN_TICK) // sp
        hi_c = min(tick + rng, abi.MAX_TICK) // sp
        cover = (max(lo_c * sp, abi.MIN_TICK), min(hi_c * sp, abi.MAX_TICK))
        words = list(range(lo_c >> 8, (hi_c >> 8) + 1))
        bs = self.config.rpc_batch_size
        set_ticks: list[int] = []
        for i in range(0, len(words), bs):
            chunk = words[i:i + bs]
            res = await rpc.batch([_eth_call(info.address, call_data(bitmap, enc_int(w)), tag)
                                   for w in chunk])
            for w, r in zip(chunk, res):
                b = self._state_ret(r, bm_what)
                abi.need_words(b, 1, bm_what)
                bits = int.from_bytes(b[:32], "big")
                while bits:
                    low = bits & -bits
                    bit = low.bit_length() - 1
                    bits ^= low
                    t = ((w << 8) + bit) * sp
                    if lo_c * sp <= t <= hi_c * sp:
                        set_ticks.append(t)
        set_ticks.sort()
        if len(set_ticks) > MAX_TICKS_PER_FRAME:
            set_ticks, cover = _nearest(set_ticks, tick, MAX_TICKS_PER_FRAME, cover)
            self.counters["tick_coverage_narrowed"] += 1
            log.info("pool 0x%s: %d initialised ticks in range, coverage narrowed to %d..%d",
                     info.address.hex(), len(set_ticks), cover[0], cover[1])
        out = []
        for i in range(0, len(set_ticks), bs):
            chunk = set_ticks[i:i + bs]
            res = await rpc.batch([_eth_call(info.address, call_data(abi.TICKS, enc_int(t)), tag)
                                   for t in chunk])
            for t, r in zip(chunk, res):
                b = self._state_ret(r, "ticks()")
                abi.need_words(b, 2, "ticks()")
                net = abi.word_int(b, 1, 128, "liquidityNet")
                out.append(codec.PoolTick(liquidity_net=net, block_number=block, tick=t,
                                          venue=info.venue, flags=0, pool=info.address))
        self.counters["ticks_snapshotted"] += len(out)
        return out, cover


def _nearest(ticks: list[int], tick: int, n: int, cover: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
    """The ``n`` sorted ``ticks`` nearest ``tick`` (a contiguous run) and the range they cover
    completely: up to, not including, the nearest left-out tick on each side."""
    i = bisect.bisect_left(ticks, tick)
    lo = max(0, min(i - n // 2, len(ticks) - n))
    hi = lo + n
    c_lo = ticks[lo - 1] + 1 if lo > 0 else cover[0]
    c_hi = ticks[hi] - 1 if hi < len(ticks) else cover[1]
    return ticks[lo:hi], (c_lo, c_hi)
