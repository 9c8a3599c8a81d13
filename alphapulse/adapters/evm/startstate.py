"""The pools' state an import starts from: a snapshot file, or a node at a given block.

A snapshot file is JSON::

    {"block": 1234,                          # the state as of the end of this block
     "chain_id": 137,                        # optional
     "tokens": {"0xTOKEN": 18, ...},         # optional decimals (also: the market TOML, RPC)
     "pools": [
       {"address": "0x..", "kind": "v2", "venue": 400, "token0": "0x..", "token1": "0x..",
        "decimals0": 18, "decimals1": 6, "fee_pips": 3000,
        "reserve0": "123", "reserve1": "456"},
       {"address": "0x..", "kind": "v3", "factory": "0x..", "token0": "0x..", "token1": "0x..",
        "fee_pips": 500, "sqrt_price_x96": "...", "liquidity": "...", "tick": -201000,
        "tick_spacing": 10, "ticks": [[-201010, "3500"], [-200990, "-3500"]],
        "tick_range": [-221000, -181000]}]}

``venue`` may be replaced by ``factory`` (its venue then comes from the market's
factories); decimals may be left out when the ``tokens`` table, the market TOML or
the node knows them. Integers may be JSON numbers or decimal / 0x-hex strings.
``ticks`` lists every initialised tick in ``tick_range`` (default: the whole tick
range, i.e. every initialised tick of the pool): it becomes the pool's TickCoverage.

From a node, each pool is discovered and snapshotted exactly as the live adapter
does (:class:`~alphapulse.adapters.evm.providers.PoolProvider`), at the given block.
Either way a pool's records fit one frame (PROTOCOL.md: a PoolState travels with its
TickCoverage and PoolTick records).
"""
from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.abi import AbiError
from alphapulse.adapters.evm.providers import (KIND_OF_FAMILY, MAX_TICKS_PER_FRAME, PoolInfo, PoolProvider,
                                               RetryLater, Rpc, RpcError, SnapshotUnavailable)
from alphapulse.protocol import codec
from alphapulse.protocol.layout import PoolKind

log = logging.getLogger(__name__)


class StartStateError(ValueError):
    """A snapshot file or a node that cannot give the starting state; the text names the input."""


@dataclass
class StartState:
    """Pools known at ``block`` and the records that set their state (PoolState first)."""
    block: int
    pools: dict[bytes, PoolInfo] = field(default_factory=dict)
    records: dict[bytes, list[Any]] = field(default_factory=dict)
    ignored: dict[bytes, str] = field(default_factory=dict)   # address -> why it is not followed
    chain_id: int | None = None


# ---------------------------------------------------------------- snapshot file
def _addr(v: Any, where: str) -> bytes:
    s = v.lower() if isinstance(v, str) else ""
    if not (s.startswith("0x") and len(s) == 42 and all(c in "0123456789abcdef" for c in s[2:])):
        raise StartStateError(f"{where}: {v!r} is not a 0x-prefixed 20-byte address")
    return bytes.fromhex(s[2:])


def _int(v: Any, where: str, lo: int, hi: int) -> int:
    if isinstance(v, bool):
        raise StartStateError(f"{where}: {v!r} is not an integer")
    if isinstance(v, str):
        s = v.strip()
        try:
            v = int(s, 16) if s[:2] in ("0x", "0X") else int(s, 10)
        except ValueError:
            raise StartStateError(f"{where}: {s!r} is not an integer") from None
    if not isinstance(v, int):
        raise StartStateError(f"{where}: {v!r} is not an integer")
    if not lo <= v <= hi:
        raise StartStateError(f"{where}: {v} is outside {lo}..{hi}")
    return v


def _get(d: Mapping, key: str, where: str) -> Any:
    if key not in d:
        raise StartStateError(f"{where}: missing {key!r}")
    return d[key]


U128_MAX = (1 << 128) - 1


def load_snapshot(path: Path, venues: Mapping[bytes, int], decimals: Mapping[bytes, int]) -> StartState:
    """The starting state of a snapshot file. ``venues``: factory -> venue (market TOML);
    ``decimals``: token -> decimals known elsewhere (market TOML). Raises StartStateError."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise StartStateError(f"{path}: {e}") from None
    except json.JSONDecodeError as e:
        raise StartStateError(f"{path}: invalid JSON: {e}") from None
    if not isinstance(doc, dict):
        raise StartStateError(f"{path}: expected a JSON object with 'block' and 'pools'")
    st = StartState(block=_int(_get(doc, "block", str(path)), f"{path}: block", 0, (1 << 64) - 1))
    if "chain_id" in doc:
        st.chain_id = _int(doc["chain_id"], f"{path}: chain_id", 1, (1 << 32) - 1)
    dec = dict(decimals)
    toks = doc.get("tokens", {})
    if not isinstance(toks, dict):
        raise StartStateError(f"{path}: tokens: expected an object address -> decimals")
    for a, d in toks.items():
        if isinstance(d, dict):
            d = _get(d, "decimals", f"{path}: tokens[{a}]")
        dec[_addr(a, f"{path}: tokens")] = _int(d, f"{path}: tokens[{a}]", 0, 255)
    pools = _get(doc, "pools", str(path))
    if not isinstance(pools, list):
        raise StartStateError(f"{path}: pools: expected a list")
    for i, p in enumerate(pools):
        where = f"{path}: pools[{i}]"
        if not isinstance(p, dict):
            raise StartStateError(f"{where}: expected an object")
        info, recs = _snapshot_pool(p, where, st.block, venues, dec)
        if info.address in st.pools:
            raise StartStateError(f"{where}: pool 0x{info.address.hex()} listed twice")
        st.pools[info.address] = info
        st.records[info.address] = recs
    return st


def _snapshot_pool(p: dict, where: str, block: int, venues: Mapping[bytes, int],
                   dec: Mapping[bytes, int]) -> tuple[PoolInfo, list[Any]]:
    address = _addr(_get(p, "address", where), f"{where}.address")
    kind_s = _get(p, "kind", where)
    if kind_s not in KIND_OF_FAMILY:
        raise StartStateError(f"{where}.kind: {kind_s!r} is not 'v2', 'v3' or 'algebra'")
    kind = KIND_OF_FAMILY[kind_s]
    factory = _addr(p["factory"], f"{where}.factory") if "factory" in p else bytes(20)
    if "venue" in p:
        venue = _int(p["venue"], f"{where}.venue", 1, 65535)
    elif "factory" in p:
        if factory not in venues:
            raise StartStateError(f"{where}.factory: 0x{factory.hex()} is not among the market's factories "
                                  "(give 'venue', or the factory in --market)")
        venue = venues[factory]
    else:
        raise StartStateError(f"{where}: needs 'venue' or 'factory'")
    t0 = _addr(_get(p, "token0", where), f"{where}.token0")
    t1 = _addr(_get(p, "token1", where), f"{where}.token1")
    ds = []
    for k, t in (("decimals0", t0), ("decimals1", t1)):
        if k in p:
            ds.append(_int(p[k], f"{where}.{k}", 0, 255))
        elif t in dec:
            ds.append(dec[t])
        else:
            raise StartStateError(f"{where}.{k}: decimals of token 0x{t.hex()} unknown "
                                  "(give them here, in 'tokens', or in --market)")
    fee = _int(_get(p, "fee_pips", where), f"{where}.fee_pips", 0, 999_999)
    r0 = r1 = sqrt_p = liq = tick = spacing = 0
    extra: list[Any] = []
    if kind == PoolKind.CONSTANT_PRODUCT:
        r0 = _int(_get(p, "reserve0", where), f"{where}.reserve0", 0, U128_MAX)
        r1 = _int(_get(p, "reserve1", where), f"{where}.reserve1", 0, U128_MAX)
    else:
        sqrt_p = _int(_get(p, "sqrt_price_x96", where), f"{where}.sqrt_price_x96", 0, (1 << 160) - 1)
        liq = _int(_get(p, "liquidity", where), f"{where}.liquidity", 0, U128_MAX)
        tick = _int(_get(p, "tick", where), f"{where}.tick", abi.MIN_TICK, abi.MAX_TICK)
        spacing = _int(_get(p, "tick_spacing", where), f"{where}.tick_spacing", 1, 16383)
        lo, hi = abi.MIN_TICK, abi.MAX_TICK
        if "tick_range" in p:
            tr = p["tick_range"]
            if not (isinstance(tr, list) and len(tr) == 2):
                raise StartStateError(f"{where}.tick_range: expected [lower, upper]")
            lo = _int(tr[0], f"{where}.tick_range[0]", abi.MIN_TICK, abi.MAX_TICK)
            hi = _int(tr[1], f"{where}.tick_range[1]", lo, abi.MAX_TICK)
        ticks = _get(p, "ticks", where)
        if isinstance(ticks, dict):
            ticks = list(ticks.items())
        if not isinstance(ticks, list):
            raise StartStateError(f"{where}.ticks: expected [[tick, liquidity_net], ...]")
        if len(ticks) > MAX_TICKS_PER_FRAME:
            raise StartStateError(f"{where}.ticks: {len(ticks)} ticks, one frame holds {MAX_TICKS_PER_FRAME} "
                                  "beside the PoolState (narrow tick_range)")
        seen: set[int] = set()
        for j, tn in enumerate(ticks):
            w = f"{where}.ticks[{j}]"
            if not (isinstance(tn, (list, tuple)) and len(tn) == 2):
                raise StartStateError(f"{w}: expected [tick, liquidity_net]")
            t = _int(tn[0], w, lo, hi)
            if t % spacing:
                raise StartStateError(f"{w}: tick {t} is not a multiple of tick_spacing {spacing}")
            if t in seen:
                raise StartStateError(f"{w}: tick {t} listed twice")
            seen.add(t)
            net = _int(tn[1], w, -(1 << 127), (1 << 127) - 1)
            extra.append(codec.PoolTick(liquidity_net=net, block_number=block, tick=t, venue=venue,
                                        flags=0, pool=address))
        # the provider's order: PoolState, TickCoverage, PoolTick...
        extra.insert(0, codec.TickCoverage(block_number=block, tick_lower=lo, tick_upper=hi, pool=address))
    info = PoolInfo(address, kind, venue, factory, t0, t1, ds[0], ds[1], fee, spacing)
    state = codec.PoolState(reserve0=r0, reserve1=r1, sqrt_price_x96=sqrt_p, liquidity=liq,
                            block_number=block, block_ts_ns=0, tick=tick, fee_pips=fee, venue=venue,
                            pool_kind=kind, token0_decimals=ds[0], token1_decimals=ds[1], flags=0,
                            tick_spacing=spacing, pool=address, token0=t0, token1=t1)
    return info, [state] + extra


# ---------------------------------------------------------------- a node
@dataclass(frozen=True)
class BlockHeader:
    number: int
    hash: bytes
    timestamp: int          # seconds
    base_fee_wei: int | None


async def _connect(url: str, timeout_s: float) -> Any:
    from web3 import AsyncWeb3, WebSocketProvider
    provider = WebSocketProvider(url, max_connection_retries=1, request_timeout=timeout_s,
                                 websocket_kwargs={"max_size": 256 << 20})
    await asyncio.wait_for(provider.connect(), timeout_s)
    return AsyncWeb3(provider)


async def read_from_node(url: str, timeout_s: float, config: Any, block: int | None,
                         pools: Mapping[bytes, str], header_blocks: list[int], counters: Counter
                         ) -> tuple[StartState | None, dict[int, BlockHeader], int]:
    """(state of ``pools`` at the end of ``block`` or None, headers of ``header_blocks``, chain id).

    ``config``: with ``block``, an :class:`~alphapulse.adapters.evm.config.EvmDataClientConfig`
    (factories, known decimals, tick range, batch size) for the pool provider; ``pools``:
    address -> "v2" / "v3". Raises StartStateError naming the endpoint when the node cannot answer.
    """
    from alphapulse.adapters.evm.cache import PoolCache
    try:
        w3 = await _connect(url, timeout_s)
    except Exception as e:
        raise StartStateError(f"{url}: cannot connect: {e}") from None
    try:
        rpc = Rpc(w3, timeout_s)
        try:
            chain_id = int(await rpc.request("eth_chainId", []), 16)
            headers = await _headers(rpc, header_blocks, config.rpc_batch_size if config else 100)
            state = None
            if block is not None:
                provider = PoolProvider(config, PoolCache(":memory:", config.chain_id), counters)
                state = await _state(rpc, provider, config, block, pools)
                state.chain_id = chain_id
        except (RpcError, RetryLater, SnapshotUnavailable, AbiError, asyncio.TimeoutError, OSError) as e:
            raise StartStateError(f"{url}: {e}") from None
    finally:
        try:
            await w3.provider.disconnect()
        except Exception:
            pass
    return state, headers, chain_id


async def _headers(rpc: Rpc, blocks: list[int], batch: int) -> dict[int, BlockHeader]:
    out: dict[int, BlockHeader] = {}
    for i in range(0, len(blocks), batch):
        chunk = blocks[i:i + batch]
        res = await rpc.batch([("eth_getBlockByNumber", [hex(b), False]) for b in chunk])
        for b, r in zip(chunk, res):
            if isinstance(r, RpcError):
                raise r
            if not r:
                raise StartStateError(f"block {b} unknown to the node")
            bf = r.get("baseFeePerGas")
            out[b] = BlockHeader(b, bytes.fromhex(r["hash"][2:]), int(r["timestamp"], 16),
                                 int(bf, 16) if bf is not None else None)
    return out


async def _state(rpc: Rpc, provider: PoolProvider, config: Any, block: int,
                 pools: Mapping[bytes, str]) -> StartState:
    st = StartState(block=block)

    async def one(address: bytes, family: str) -> None:
        info = await provider.discover(rpc, address, family)
        if info is None:
            st.ignored[address] = provider.ignored.get(address, ("", "not followed"))[1]
            return
        recs = await provider.snapshot(rpc, info, block)     # one frame's records, TickCoverage included
        st.pools[address] = info
        st.records[address] = recs

    await asyncio.gather(*(one(a, f) for a, f in sorted(pools.items())))
    st.pools = dict(sorted(st.pools.items()))
    st.records = {a: st.records[a] for a in st.pools}
    return st
