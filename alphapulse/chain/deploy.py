"""Deploy a complete DEX market onto a local node and drive it.

``deploy_market(url)`` deploys test tokens (18/6/8 decimals), two Uniswap V2 factories standing
for two venues (QuickSwap 400 and SushiSwap-on-Polygon 401 by default) with WETH9 and a Router02
each, one Uniswap V3 factory (venue 405) with NonfungiblePositionManager, SwapRouter and QuoterV2,
and the CycleExecutor test helper; then creates V2 pairs and V3 pools (one or more fee tiers)
on the same token pairs and adds liquidity at chosen USD prices (V3: a full-range position plus
concentrated ones, so swaps cross initialised ticks). Deployment is batched into a handful of
blocks (automine off + evm_mine), so the chain stays short.

The returned :class:`Market` knows every address, the factory -> venue map and each token's
decimals, and can swap (Router02 / SwapRouter), quote (Router02.getAmountsOut / QuoterV2), add
and remove liquidity, move a pool's price, and execute a cycle of swaps atomically (one tx via
CycleExecutor) or sequentially (one tx per hop, all in one block).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

import requests
from web3 import Web3
from web3.logs import DISCARD

from alphapulse.chain.anvil import DEV_ACCOUNTS
from alphapulse.chain.artifacts import function_codec, load_artifact
from alphapulse.chain.txs import ChainTxError, TxSender, encode_deploy
from alphapulse.protocol.layout import PoolKind, Venue

__all__ = [
    "CycleResult", "DEFAULT_PAIRS", "DEFAULT_TOKENS", "Market", "MarketSpec", "PairSpec", "Pool",
    "QuoteResult", "SwapResult", "V2PoolState", "V3PoolState", "Token", "TokenSpec", "connect", "deploy_market", "price_to_sqrt_price_x96",
    "MIN_TICK", "MAX_TICK", "MIN_SQRT_RATIO", "MAX_SQRT_RATIO", "V3_TICK_SPACING",
]

MIN_TICK = -887272
MAX_TICK = 887272
MIN_SQRT_RATIO = 4295128739
MAX_SQRT_RATIO = 1461446703485210103287273052203988822378723970342
V3_TICK_SPACING = {100: 1, 500: 10, 3000: 60, 10000: 200}  # enabled by UniswapV3Factory (+100 here)
V2_FEE_PIPS = 3000
DEADLINE = 2**63
MAX_UINT = 2**256 - 1

GAS_DEPLOY = 7_000_000
GAS_CALL = 300_000
GAS_SWAP = 1_500_000      # a V3 swap crossing many ticks stays far below
GAS_V3_MINT = 800_000
GAS_TOKEN = 120_000        # mint/approve/transfer of a TestToken
GAS_ALGEBRA_SWAP = 3_000_000   # the unoptimised npm Algebra pool (its fee recomputation included)
GAS_CYCLE_HOP = 5_000_000  # per CycleExecutor hop: a V3 swap that runs to the price limit scans
                           # hundreds of bitmap words (~2M gas)


# ---------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class TokenSpec:
    symbol: str
    decimals: int
    usd_price: Fraction   # initial price of one whole token in USD

    def __post_init__(self):
        object.__setattr__(self, "usd_price", Fraction(self.usd_price))


@dataclass(frozen=True)
class PairSpec:
    """One token pair: a V2 pair on each venue in ``v2_venues`` and a V3 pool per fee tier."""
    token_a: str
    token_b: str
    usd_depth: int = 2_000_000                      # USD value per side of each pool's main liquidity
    v2_venues: tuple[int, ...] = (Venue.QUICKSWAP, Venue.SUSHISWAP_POLYGON)
    v3_fees: tuple[int, ...] = (3000,)
    algebra: bool = False                            # an Algebra v1.0 pool too (MarketSpec.algebra_venue)


DEFAULT_TOKENS: tuple[TokenSpec, ...] = (
    TokenSpec("WMATIC", 18, Fraction(1, 2)),
    TokenSpec("USDC", 6, Fraction(1)),
    TokenSpec("WETH", 18, Fraction(3000)),
    TokenSpec("WBTC", 8, Fraction(60000)),
    TokenSpec("USDT", 6, Fraction(1)),
    TokenSpec("DAI", 18, Fraction(1)),
)
DEFAULT_PAIRS: tuple[PairSpec, ...] = (
    PairSpec("WMATIC", "USDC", v3_fees=(500, 3000)),
    PairSpec("WETH", "USDC", v3_fees=(500, 3000)),
    PairSpec("WMATIC", "WETH"),
    PairSpec("WBTC", "USDC"),
    PairSpec("WBTC", "WETH"),
    PairSpec("USDT", "USDC", v3_fees=(500,)),
    PairSpec("DAI", "USDC", v2_venues=(Venue.QUICKSWAP,), v3_fees=()),
)


# The live demo's market (``--source local-chain``): the default pairs, and an Algebra v1.0 pool
# (QuickSwap V3, venue 406) on the two deepest, beside their Uniswap V2 and V3 pools.
DEMO_PAIRS: tuple[PairSpec, ...] = tuple(
    PairSpec(p.token_a, p.token_b, p.usd_depth, p.v2_venues, p.v3_fees,
             algebra=(p.token_a, p.token_b) in (("WMATIC", "USDC"), ("WETH", "USDC")))
    for p in DEFAULT_PAIRS)


@dataclass(frozen=True)
class MarketSpec:
    tokens: tuple[TokenSpec, ...] = DEFAULT_TOKENS
    pairs: tuple[PairSpec, ...] = DEFAULT_PAIRS
    v3_venue: int = Venue.UNISWAP_V3_POLYGON
    algebra_venue: int = Venue.QUICKSWAP_V3
    # the Algebra pools' adaptive-fee base fee (pips); the sigmoids' alphas are set to 0, so the
    # fee a pool recomputes at a block's first swap is this one (the differential tests vary it)
    algebra_base_fee: int = 2500
    # V3 positions besides full range, as (lower, upper) offsets in tick spacings from the
    # current tick and the share of usd_depth they get: narrow ones make swaps cross ticks.
    v3_ranges: tuple[tuple[int, int, Fraction], ...] = (
        (-2, 2, Fraction(1, 4)), (-12, 8, Fraction(1, 4)), (-40, 40, Fraction(1, 4)))
    traders: tuple[str, ...] = DEV_ACCOUNTS[1:5]   # funded and approved for every token and spender
    trader_usd: int = 10_000_000                   # USD value of each token minted to each trader

    def token(self, symbol: str) -> TokenSpec:
        for t in self.tokens:
            if t.symbol == symbol:
                return t
        raise KeyError(f"token {symbol!r} not in spec: {[t.symbol for t in self.tokens]}")


# ---------------------------------------------------------------------------------- market types
@dataclass(frozen=True)
class Token:
    symbol: str
    address: str
    decimals: int                  # what decimals() answers (for a reverting token: what it would hold)
    decimals_reverts: bool = False  # RevertingDecimalsToken: decimals() reverts (bad-input tests)


@dataclass(frozen=True)
class Pool:
    address: str
    kind: PoolKind           # CONSTANT_PRODUCT (Uniswap V2), CONCENTRATED (Uniswap V3), CONCENTRATED_DYNAMIC_FEE (Algebra)
    venue: int               # Venue of the pool's factory
    factory: str
    token0: str              # sorted by address, as in the contract
    token1: str
    fee_pips: int            # V2: 3000; V3: the pool's fee tier
    tick_spacing: int        # V3 only (0 for V2)
    label: str               # e.g. "WMATIC/USDC@400" or "WMATIC/USDC@405/500"

    def other(self, token: str) -> str:
        t = Web3.to_checksum_address(token)
        if t == self.token0:
            return self.token1
        if t == self.token1:
            return self.token0
        raise ValueError(f"{token} is not a token of pool {self.label}")


@dataclass(frozen=True)
class SwapResult:
    pool: str
    token_in: str
    token_out: str
    amount_in: int
    amount_out: int
    block_number: int
    tx_hash: str
    sqrt_price_x96: int = 0   # V3: pool state after the swap (from the Swap event)
    liquidity: int = 0
    tick: int = 0


@dataclass(frozen=True)
class V2PoolState:
    pool: str
    reserve0: int
    reserve1: int
    fee_pips: int
    block_number: int


@dataclass(frozen=True)
class V3PoolState:
    pool: str
    sqrt_price_x96: int
    tick: int
    liquidity: int
    fee_pips: int
    tick_spacing: int
    ticks: tuple[tuple[int, int], ...]   # (tick, liquidityNet) of every initialised tick, ascending
    block_number: int


@dataclass(frozen=True)
class QuoteResult:
    amount_out: int
    sqrt_price_x96_after: int
    initialized_ticks_crossed: int
    gas_estimate: int


@dataclass(frozen=True)
class CycleResult:
    amount_in: int
    amount_out: int              # exact tokens of the start token received back
    hop_amounts: tuple[int, ...]  # output of each hop (last == amount_out)
    block_number: int
    tx_hashes: tuple[str, ...]

    @property
    def profit(self) -> int:
        return self.amount_out - self.amount_in


def price_to_sqrt_price_x96(price_raw: Fraction) -> int:
    """floor(sqrt(price) * 2**96) for a raw price (token1 base units per token0 base unit)."""
    price_raw = Fraction(price_raw)
    if price_raw <= 0:
        raise ValueError("price must be positive")
    return math.isqrt(price_raw.numerator * 2**192 // price_raw.denominator)


def _tick_of_price(price_raw: Fraction) -> int:
    return math.floor(math.log(float(price_raw)) / math.log(1.0001))


def _v3_positions(spacing: int, price_raw: Fraction, amt0: int, amt1: int,
                  ranges: Sequence[tuple[int, int, Fraction]]) -> list[tuple[int, int, int, int]]:
    """(tick_lower, tick_upper, amount0_desired, amount1_desired): full range with the whole
    amounts plus each concentrated range (offsets in spacings around the current tick)."""
    lo, hi = -(-MIN_TICK // spacing) * spacing, (MAX_TICK // spacing) * spacing
    out = [(lo, hi, amt0, amt1)]
    cur = (_tick_of_price(price_raw) // spacing) * spacing
    for d_lo, d_hi, share in ranges:
        out.append((max(lo, cur + d_lo * spacing), min(hi, cur + d_hi * spacing),
                    int(amt0 * Fraction(share)), int(amt1 * Fraction(share))))
    return out


# ---------------------------------------------------------------------------------- Market
@dataclass
class Market:
    """A deployed market on one node. Addresses are checksummed strings."""

    w3: Web3
    chain_id: int
    deployer: str
    tokens: dict[str, Token]                 # by symbol
    weth9: str
    v2_factories: dict[int, str]             # venue -> UniswapV2Factory
    v2_routers: dict[int, str]               # venue -> UniswapV2Router02
    v3_factory: str
    v3_venue: int
    v3_position_manager: str
    v3_swap_router: str
    v3_quoter: str
    executor: str                            # CycleExecutor
    pools: list[Pool]
    traders: tuple[str, ...]
    v3_positions: dict[str, list[int]] = field(default_factory=dict)  # pool -> NPM token ids
    algebra_factory: str = ""                # Algebra v1.0 (QuickSwap V3) factory; "" when not deployed
    algebra_venue: int = int(Venue.QUICKSWAP_V3)
    algebra_caller: str = ""                 # AlgebraCaller: pays an Algebra pool's callbacks from its caller
    usd_prices: dict[str, Fraction] = field(default_factory=dict)     # symbol -> USD per whole token (spec)
    sender: TxSender = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self):
        if self.sender is None:
            self.sender = TxSender(self.w3, self.chain_id)
        self._contracts: dict[tuple[str, str], object] = {}

    # ---------------------------------------------------------------- lookup
    @property
    def factory_venues(self) -> dict[str, int]:
        """factory address -> venue id (configuration the ingestion adapter needs)."""
        out = {addr: int(venue) for venue, addr in self.v2_factories.items()}
        out[self.v3_factory] = int(self.v3_venue)
        if self.algebra_factory:
            out[self.algebra_factory] = int(self.algebra_venue)
        return out

    @property
    def factory_kinds(self) -> dict[str, str]:
        """factory address -> configuration kind ("v2", "v3", "algebra")."""
        out = {addr: "v2" for addr in self.v2_factories.values()}
        out[self.v3_factory] = "v3"
        if self.algebra_factory:
            out[self.algebra_factory] = "algebra"
        return out

    @property
    def decimals(self) -> dict[str, int]:
        """token address -> decimals."""
        return {t.address: t.decimals for t in self.tokens.values()}

    def token(self, ref: str) -> Token:
        """A token by symbol or address."""
        if ref in self.tokens:
            return self.tokens[ref]
        if not Web3.is_address(ref):
            raise KeyError(f"unknown token {ref!r}: not a symbol of this market ({sorted(self.tokens)}) nor an address")
        addr = Web3.to_checksum_address(ref)
        for t in self.tokens.values():
            if t.address == addr:
                return t
        raise KeyError(f"unknown token {ref!r}")

    def pool(self, ref: "Pool | str") -> Pool:
        """A pool by object, address or label."""
        if isinstance(ref, Pool):
            return ref
        for p in self.pools:
            if p.label == ref or p.address.lower() == str(ref).lower():
                return p
        raise KeyError(f"unknown pool {ref!r}")

    def pools_for(self, a: str, b: str, kind: PoolKind | None = None) -> list[Pool]:
        """Every pool trading tokens a and b (symbols or addresses), optionally of one kind."""
        ta, tb = self.token(a).address, self.token(b).address
        return [p for p in self.pools if {p.token0, p.token1} == {ta, tb} and (kind is None or p.kind == kind)]

    def v2_pool(self, a: str, b: str, venue: int) -> Pool:
        for p in self.pools_for(a, b, PoolKind.CONSTANT_PRODUCT):
            if p.venue == venue:
                return p
        raise KeyError(f"no V2 pool {a}/{b} on venue {venue}")

    def v3_pool(self, a: str, b: str, fee: int) -> Pool:
        for p in self.pools_for(a, b, PoolKind.CONCENTRATED):
            if p.fee_pips == fee:
                return p
        raise KeyError(f"no V3 pool {a}/{b} with fee {fee}")

    def contract(self, name: str, address: str):
        key = (name, address)
        c = self._contracts.get(key)
        if c is None:
            c = self.w3.eth.contract(address=address, abi=load_artifact(name).abi)
            self._contracts[key] = c
        return c

    def erc20(self, token: str):
        return self.contract("TestToken", self.token(token).address)

    def fork(self) -> "Market":
        """A copy with its own mutable containers (for per-test snapshot/revert isolation)."""
        m = copy.copy(self)
        m.tokens = dict(self.tokens)
        m.pools = list(self.pools)
        m.v3_positions = {k: list(v) for k, v in self.v3_positions.items()}
        m.usd_prices = dict(self.usd_prices)
        m.v2_factories, m.v2_routers = dict(self.v2_factories), dict(self.v2_routers)
        m._contracts = dict(self._contracts)
        return m

    # ---------------------------------------------------------------- reads
    def read(self, contract: str, address: str, fn: str, args: Sequence = (), block: int | str = "latest") -> tuple:
        """A view call by raw eth_call (no web3 formatting): the decoded outputs as a tuple."""
        codec = function_codec(contract, fn)
        blk = hex(block) if isinstance(block, int) else block
        reply = self.w3.provider.make_request("eth_call", [{"to": address, "data": codec.encode(args)}, blk])
        if "error" in reply:
            raise ChainTxError(f"{codec.name} at {address} failed: {reply['error']}")
        return codec.decode(bytes.fromhex(reply["result"][2:]))

    def balance(self, account: str, token: str, block: int | str = "latest") -> int:
        return self.read("TestToken", self.token(token).address, "balanceOf", [account], block)[0]

    def reserves(self, pool: "Pool | str", block: int | str = "latest") -> tuple[int, int]:
        r0, r1, _ = self.read("UniswapV2Pair", self.pool(pool).address, "getReserves", (), block)
        return r0, r1

    def slot0(self, pool: "Pool | str", block: int | str = "latest") -> tuple[int, int, int]:
        """(sqrtPriceX96, tick, liquidity) of a V3 pool (of an Algebra pool: from globalState)."""
        p = self.pool(pool)
        if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE:
            s = self.read("AlgebraPool", p.address, "globalState", (), block)
            return s[0], s[1], self.read("AlgebraPool", p.address, "liquidity", (), block)[0]
        s = self.read("UniswapV3Pool", p.address, "slot0", (), block)
        return s[0], s[1], self.read("UniswapV3Pool", p.address, "liquidity", (), block)[0]

    def algebra_fee(self, pool: "Pool | str", block: int | str = "latest") -> int:
        """The fee in force of an Algebra pool (globalState.fee, pips)."""
        return self.read("AlgebraPool", self.pool(pool).address, "globalState", (), block)[2]

    def read_many(self, calls: Sequence[tuple[str, str, str, Sequence]], block: int | str = "latest",
                  *, allow_errors: bool = False) -> list:
        """Many view calls [(contract, address, fn, args), ...] in JSON-RPC batch requests (500
        per request). A failed call raises ChainTxError, or with ``allow_errors`` is returned in
        place as the ChainTxError instance."""
        blk = hex(block) if isinstance(block, int) else block
        codecs = [function_codec(c, fn) for c, _, fn, _ in calls]
        reqs = [("eth_call", [{"to": addr, "data": codec.encode(args)}, blk])
                for codec, (_, addr, _, args) in zip(codecs, calls)]
        out = []
        for start in range(0, len(reqs), 500):
            replies = self.w3.provider.make_batch_request(reqs[start:start + 500])
            if isinstance(replies, dict):   # the whole batch was refused
                raise ChainTxError(f"batch eth_call refused: {replies.get('error')}")
            for codec, reply in zip(codecs[start:start + 500], sorted(replies, key=lambda r: r["id"])):
                if "error" in reply:
                    err = ChainTxError(f"{codec.name} failed: {reply['error']}")
                    if not allow_errors:
                        raise err
                    out.append(err)
                    continue
                out.append(codec.decode(bytes.fromhex(reply["result"][2:])))
        return out

    def v3_state(self, pool: "Pool | str", block: int | str = "latest") -> V3PoolState:
        """Exact state of a V3 pool at ``block`` as the contract sees it: slot0, liquidity and
        every initialised tick (tickBitmap scanned over the whole tick range, then ticks(t)) with
        its liquidityNet. Ground truth for the V3 swap simulation. An Algebra pool's the same way
        (globalState, its tickTable words at spacing 60, ``ticks(t)``' liquidityDelta), with
        ``fee_pips`` its fee in force (globalState.fee)."""
        p = self.pool(pool)
        if p.kind not in (PoolKind.CONCENTRATED, PoolKind.CONCENTRATED_DYNAMIC_FEE):
            raise ValueError(f"{p.label} is not a V3 pool")
        if not isinstance(block, int):
            block = self.w3.eth.get_block(block)["number"]
        sqrt_p, tick, liquidity = self.slot0(p, block)
        algebra = p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE
        name, bitmap_fn = ("AlgebraPool", "tickTable") if algebra else ("UniswapV3Pool", "tickBitmap")
        fee = self.algebra_fee(p, block) if algebra else p.fee_pips
        s = p.tick_spacing
        words = range((MIN_TICK // s) >> 8, ((MAX_TICK // s) >> 8) + 1)
        bitmaps = self.read_many([(name, p.address, bitmap_fn, [w]) for w in words], block)
        ticks = []
        for w, (bits,) in zip(words, bitmaps):
            while bits:
                low = bits & -bits
                ticks.append(((w << 8) + low.bit_length() - 1) * s)
                bits ^= low
        infos = self.read_many([(name, p.address, "ticks", [t]) for t in ticks], block)
        return V3PoolState(p.address, sqrt_p, tick, liquidity, fee, s,
                           tuple((t, info[1]) for t, info in zip(ticks, infos)), block)

    def pool_state(self, pool: "Pool | str", block: int | str = "latest") -> "V2PoolState | V3PoolState":
        """The pool's exact state at ``block`` (V2: reserves; V3: see v3_state)."""
        p = self.pool(pool)
        if not isinstance(block, int):
            block = self.w3.eth.get_block(block)["number"]
        if p.kind != PoolKind.CONSTANT_PRODUCT:
            return self.v3_state(p, block)
        r0, r1 = self.reserves(p, block)
        return V2PoolState(p.address, r0, r1, p.fee_pips, block)

    def price(self, pool: "Pool | str", block: int | str = "latest") -> Fraction:
        """Marginal raw price: token1 base units per token0 base unit (before fees)."""
        p = self.pool(pool)
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            r0, r1 = self.reserves(p, block)
            return Fraction(r1, r0)
        sqrt_p, _, _ = self.slot0(p, block)
        return Fraction(sqrt_p * sqrt_p, 2**192)

    def v2_get_amount_out(self, pool: "Pool | str", token_in: str, amount_in: int) -> int:
        """Router02.getAmountsOut on the pool's venue (the contract's own formula)."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        router = self.contract("UniswapV2Router02", self.v2_routers[p.venue])
        return router.functions.getAmountsOut(amount_in, [t_in, p.other(t_in)]).call()[-1]

    def quote_v3(self, pool: "Pool | str", token_in: str, amount_in: int, sqrt_price_limit_x96: int = 0) -> QuoteResult:
        """QuoterV2.quoteExactInputSingle (eth_call)."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        q = self.contract("QuoterV2", self.v3_quoter)
        out = q.functions.quoteExactInputSingle(
            (t_in, p.other(t_in), amount_in, p.fee_pips, sqrt_price_limit_x96)).call()
        return QuoteResult(*out)

    def quote_v3_many(self, pool: "Pool | str", token_in: str, amounts: Sequence[int],
                      block: int | str = "latest") -> list["QuoteResult | None"]:
        """QuoterV2.quoteExactInputSingle for many amounts in batched eth_calls (differential
        tests); None where the quoter reverts."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        calls = [("QuoterV2", self.v3_quoter, "quoteExactInputSingle", [(t_in, p.other(t_in), a, p.fee_pips, 0)])
                 for a in amounts]
        return [None if isinstance(r, ChainTxError) else QuoteResult(*r)
                for r in self.read_many(calls, block, allow_errors=True)]

    def v2_get_amount_out_many(self, pool: "Pool | str", token_in: str, amounts: Sequence[int],
                               block: int | str = "latest") -> list[int | None]:
        """Router02.getAmountsOut for many amounts on the pool's state at ``block``; None where it
        reverts (e.g. an output that would drain the pool)."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        router = self.v2_routers[p.venue]
        calls = [("UniswapV2Router02", router, "getAmountsOut", [a, [t_in, p.other(t_in)]]) for a in amounts]
        return [None if isinstance(r, ChainTxError) else r[0][-1]
                for r in self.read_many(calls, block, allow_errors=True)]

    def quote_v3_exact_output(self, pool: "Pool | str", token_in: str, amount_out: int) -> QuoteResult:
        """QuoterV2.quoteExactOutputSingle: amount_out field holds the required input."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        q = self.contract("QuoterV2", self.v3_quoter)
        out = q.functions.quoteExactOutputSingle((t_in, p.other(t_in), amount_out, p.fee_pips, 0)).call()
        return QuoteResult(*out)

    # ---------------------------------------------------------------- writes
    def _call_tx(self, name: str, address: str, fn: str, args: Sequence, sender: str, gas: int = GAS_CALL, value: int = 0) -> dict:
        return self.sender.tx(sender, address, function_codec(name, fn).encode(args), gas, value)

    def _transact(self, name: str, address: str, fn: str, args: Sequence, sender: str, gas: int = GAS_CALL):
        return self.sender.transact(self._call_tx(name, address, fn, args, sender, gas), f"{name}.{fn}")

    def fund(self, account: str, amounts: dict[str, int], *, approve: bool = True) -> None:
        """Mint tokens (symbol -> base units) to ``account`` and, with ``approve``, give every
        router, the position manager and the executor unlimited allowance (one block)."""
        self.sender.batch(self._fund_txs(account, amounts, approve))

    def _fund_txs(self, account: str, amounts: dict[str, int], approve: bool) -> list[dict]:
        account = Web3.to_checksum_address(account)
        txs = [self._call_tx("TestToken", self.token(s).address, "mint", [account, int(a)], self.deployer, GAS_TOKEN)
               for s, a in amounts.items()]
        if approve:
            txs += [self._call_tx("TestToken", self.token(s).address, "approve", [sp, MAX_UINT], account, GAS_TOKEN)
                    for s in amounts for sp in self.spenders]
        return txs

    @property
    def spenders(self) -> list[str]:
        out = list(self.v2_routers.values()) + [self.v3_swap_router, self.v3_position_manager, self.executor]
        return out + [self.algebra_caller] if self.algebra_caller else out

    def _default_trader(self, sender: str | None) -> str:
        return Web3.to_checksum_address(sender) if sender else self.traders[0]

    def v2_swap(self, pool: "Pool | str", token_in: str, amount_in: int, *, sender: str | None = None,
                recipient: str | None = None, min_amount_out: int = 0) -> SwapResult:
        """Router02.swapExactTokensForTokens through one pair; amount_out from the pair's Swap event."""
        p = self.pool(pool)
        if p.kind != PoolKind.CONSTANT_PRODUCT:
            raise ValueError(f"{p.label} is not a V2 pair")
        s = self._default_trader(sender)
        t_in = self.token(token_in).address
        t_out = p.other(t_in)
        rc = self._transact("UniswapV2Router02", self.v2_routers[p.venue], "swapExactTokensForTokens",
                            [amount_in, min_amount_out, [t_in, t_out], recipient or s, DEADLINE], s, GAS_SWAP)
        return self._swap_result(p, t_in, rc)

    def v3_swap(self, pool: "Pool | str", token_in: str, amount_in: int, *, sender: str | None = None,
                recipient: str | None = None, min_amount_out: int = 0, sqrt_price_limit_x96: int = 0) -> SwapResult:
        """SwapRouter.exactInputSingle; amount_out and the pool's state after from its Swap event."""
        p = self.pool(pool)
        if p.kind != PoolKind.CONCENTRATED:
            raise ValueError(f"{p.label} is not a V3 pool")
        s = self._default_trader(sender)
        t_in = self.token(token_in).address
        params = (t_in, p.other(t_in), p.fee_pips, recipient or s, DEADLINE, amount_in, min_amount_out,
                  sqrt_price_limit_x96)
        rc = self._transact("SwapRouter", self.v3_swap_router, "exactInputSingle", [params], s, GAS_SWAP)
        return self._swap_result(p, t_in, rc)

    def algebra_swap(self, pool: "Pool | str", token_in: str, amount_in: int, *, sender: str | None = None,
                     sqrt_price_limit_x96: int = 0) -> SwapResult:
        """An exact-input swap of an Algebra pool through AlgebraCaller (the sender pays, receives)."""
        p = self.pool(pool)
        if p.kind != PoolKind.CONCENTRATED_DYNAMIC_FEE:
            raise ValueError(f"{p.label} is not an Algebra pool")
        s = self._default_trader(sender)
        t_in = self.token(token_in).address
        rc = self.sender.transact(self.swap_tx(p, t_in, amount_in, s, sqrt_price_limit_x96), "AlgebraCaller.swap")
        return self._swap_result(p, t_in, rc)

    def swap(self, pool: "Pool | str", token_in: str, amount_in: int, **kw) -> SwapResult:
        """v2_swap, v3_swap or algebra_swap by the pool's kind."""
        p = self.pool(pool)
        if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE:
            return self.algebra_swap(p, token_in, amount_in, **kw)
        return (self.v2_swap if p.kind == PoolKind.CONSTANT_PRODUCT else self.v3_swap)(p, token_in, amount_in, **kw)

    def swap_tx(self, pool: "Pool | str", token_in: str, amount_in: int, sender: str,
                sqrt_price_limit_x96: int = 0) -> dict:
        """The transaction ``swap`` would send, unsent (for batches of many swaps per block)."""
        p = self.pool(pool)
        t_in = self.token(token_in).address
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            return self._call_tx("UniswapV2Router02", self.v2_routers[p.venue], "swapExactTokensForTokens",
                                 [amount_in, 0, [t_in, p.other(t_in)], sender, DEADLINE], sender, GAS_SWAP)
        if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE:
            zero_to_one = t_in == p.token0
            limit = sqrt_price_limit_x96 or (MIN_SQRT_RATIO + 1 if zero_to_one else MAX_SQRT_RATIO - 1)
            return self._call_tx("AlgebraCaller", self.algebra_caller, "swap", [p.address, zero_to_one, amount_in, limit],
                                 sender, GAS_ALGEBRA_SWAP)
        params = (t_in, p.other(t_in), p.fee_pips, sender, DEADLINE, amount_in, 0, sqrt_price_limit_x96)
        return self._call_tx("SwapRouter", self.v3_swap_router, "exactInputSingle", [params], sender, GAS_SWAP)

    def _swap_result(self, p: Pool, t_in: str, rc) -> SwapResult:
        name = {PoolKind.CONSTANT_PRODUCT: "UniswapV2Pair", PoolKind.CONCENTRATED: "UniswapV3Pool",
                PoolKind.CONCENTRATED_DYNAMIC_FEE: "AlgebraPool"}[p.kind]
        events = [e for e in self.contract(name, p.address).events.Swap().process_receipt(rc, errors=DISCARD)
                  if e["address"] == p.address]
        if len(events) != 1:
            raise ChainTxError(f"expected one Swap event of {p.label}, got {len(events)}")
        a = events[0]["args"]
        zero_for_one = t_in == p.token0
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            amount_in = a["amount0In"] if zero_for_one else a["amount1In"]
            amount_out = a["amount1Out"] if zero_for_one else a["amount0Out"]
            return SwapResult(p.address, t_in, p.other(t_in), amount_in, amount_out, rc["blockNumber"],
                              rc["transactionHash"].to_0x_hex())
        d_in, d_out = (a["amount0"], a["amount1"]) if zero_for_one else (a["amount1"], a["amount0"])
        price = a["price"] if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE else a["sqrtPriceX96"]
        return SwapResult(p.address, t_in, p.other(t_in), d_in, -d_out, rc["blockNumber"],
                          rc["transactionHash"].to_0x_hex(), price, a["liquidity"], a["tick"])

    def add_liquidity_v2(self, pool: "Pool | str", amount0: int, amount1: int, *, sender: str | None = None) -> int:
        """Transfer both tokens to the pair and mint LP tokens to the sender; returns LP minted."""
        p = self.pool(pool)
        s = self._default_trader(sender)
        pair = self.contract("UniswapV2Pair", p.address)
        before = pair.functions.balanceOf(s).call()
        self.sender.batch([
            self._call_tx("TestToken", p.token0, "transfer", [p.address, amount0], s),
            self._call_tx("TestToken", p.token1, "transfer", [p.address, amount1], s),
            self._call_tx("UniswapV2Pair", p.address, "mint", [s], s),
        ])
        return pair.functions.balanceOf(s).call() - before

    def remove_liquidity_v2(self, pool: "Pool | str", lp_amount: int, *, sender: str | None = None) -> tuple[int, int]:
        """Burn ``lp_amount`` LP tokens of the sender; returns (amount0, amount1) paid out."""
        p = self.pool(pool)
        s = self._default_trader(sender)
        rcs = self.sender.batch([
            self._call_tx("UniswapV2Pair", p.address, "transfer", [p.address, lp_amount], s),
            self._call_tx("UniswapV2Pair", p.address, "burn", [s], s),
        ])
        ev = self.contract("UniswapV2Pair", p.address).events.Burn().process_receipt(rcs[1], errors=DISCARD)
        return ev[0]["args"]["amount0"], ev[0]["args"]["amount1"]

    def add_liquidity_v3(self, pool: "Pool | str", tick_lower: int, tick_upper: int, amount0: int, amount1: int,
                         *, sender: str | None = None) -> tuple[int, int, int, int]:
        """NPM.mint of a position; returns (token_id, liquidity, amount0, amount1)."""
        p = self.pool(pool)
        s = self._default_trader(sender)
        params = (p.token0, p.token1, p.fee_pips, tick_lower, tick_upper, amount0, amount1, 0, 0, s, DEADLINE)
        rc = self._transact("NonfungiblePositionManager", self.v3_position_manager, "mint", [params], s, GAS_V3_MINT)
        ev = self.contract("NonfungiblePositionManager", self.v3_position_manager).events \
            .IncreaseLiquidity().process_receipt(rc, errors=DISCARD)
        a = ev[0]["args"]
        self.v3_positions.setdefault(p.address, []).append(a["tokenId"])
        return a["tokenId"], a["liquidity"], a["amount0"], a["amount1"]

    def remove_liquidity_v3(self, token_id: int, liquidity: int | None = None, *, sender: str | None = None) -> tuple[int, int]:
        """decreaseLiquidity (all of it by default) and collect; returns the amounts collected."""
        s = self._default_trader(sender)
        npm = self.contract("NonfungiblePositionManager", self.v3_position_manager)
        if liquidity is None:
            liquidity = npm.functions.positions(token_id).call()[7]
        rcs = self.sender.batch([
            self._call_tx("NonfungiblePositionManager", self.v3_position_manager, "decreaseLiquidity",
                          [(token_id, liquidity, 0, 0, DEADLINE)], s, GAS_V3_MINT),
            self._call_tx("NonfungiblePositionManager", self.v3_position_manager, "collect",
                          [(token_id, s, 2**128 - 1, 2**128 - 1)], s, GAS_V3_MINT),
        ])
        ev = npm.events.Collect().process_receipt(rcs[1], errors=DISCARD)
        return ev[0]["args"]["amount0"], ev[0]["args"]["amount1"]

    def move_price(self, pool: "Pool | str", factor: Fraction | float, *, sender: str | None = None) -> SwapResult:
        """Swap so the pool's marginal price (token1 per token0) becomes about ``factor`` times
        what it is now; e.g. 1.02 makes token0 2% dearer on this pool only, which opens an
        arbitrage against the other venues. Returns the swap that did it."""
        p = self.pool(pool)
        factor = Fraction(factor) if not isinstance(factor, float) else Fraction(str(factor))
        if factor <= 0 or factor == 1:
            raise ValueError("factor must be positive and not 1")
        if p.kind == PoolKind.CONSTANT_PRODUCT:
            r0, r1 = self.reserves(p)
            k = r0 * r1
            target = Fraction(r1, r0) * factor
            if factor > 1:   # buy token0: pay token1 in
                new_r1 = math.isqrt(k * target.numerator // target.denominator)
                amount_in = (new_r1 - r1) * 1000 // 997 + 1
                return self.v2_swap(p, p.token1, amount_in, sender=sender)
            new_r0 = math.isqrt(k * target.denominator // target.numerator)
            amount_in = (new_r0 - r0) * 1000 // 997 + 1
            return self.v2_swap(p, p.token0, amount_in, sender=sender)
        sqrt_p, _, _ = self.slot0(p)
        limit = math.isqrt(sqrt_p * sqrt_p * factor.numerator // factor.denominator)
        limit = min(max(limit, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
        token_in = p.token1 if factor > 1 else p.token0
        s = self._default_trader(sender)
        budget = self.balance(s, token_in)
        if budget == 0:
            raise ValueError(f"{s} holds no {self.token(token_in).symbol} to move {p.label}")
        if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE:
            return self.algebra_swap(p, token_in, budget, sender=s, sqrt_price_limit_x96=limit)
        return self.v3_swap(p, token_in, budget, sender=s, sqrt_price_limit_x96=limit)

    # ---------------------------------------------------------------- new tokens and pools
    def add_token(self, symbol: str, decimals: int = 18, usd_price: Fraction | int = 1, *,
                  reverting_decimals: bool = False) -> Token:
        """Deploy a TestToken (or a RevertingDecimalsToken, whose decimals() reverts) and mint
        ``trader_usd``-like balances to every trader with all approvals."""
        if symbol in self.tokens:
            raise ValueError(f"token {symbol} exists")
        if reverting_decimals:
            art = load_artifact("RevertingDecimalsToken")
            data = encode_deploy(self.w3, art.abi, art.bytecode, [symbol, symbol])
            decimals = 18
        else:
            art = load_artifact("TestToken")
            data = encode_deploy(self.w3, art.abi, art.bytecode, [symbol, symbol, decimals])
        rc = self.sender.transact(self.sender.tx(self.deployer, None, data, 2_000_000), f"deploy {symbol}")
        token = Token(symbol, rc["contractAddress"], decimals, reverting_decimals)
        self.tokens[symbol] = token
        self.usd_prices[symbol] = Fraction(usd_price)
        amount = int(Fraction(10_000_000) / Fraction(usd_price) * 10**decimals)
        self.sender.batch([t for trader in self.traders for t in self._fund_txs(trader, {symbol: amount}, True)])
        return token

    def create_v2_pool(self, token_a: str, token_b: str, venue: int, amount_a: int, amount_b: int) -> Pool:
        """createPair on the venue's factory and add the first liquidity (deployer's tokens,
        minted): the pair's price is amount_b/amount_a."""
        ta, tb = self.token(token_a), self.token(token_b)
        factory = self.v2_factories[venue]
        rc = self._transact("UniswapV2Factory", factory, "createPair", [ta.address, tb.address], self.deployer, 3_000_000)
        addr = self.contract("UniswapV2Factory", factory).events.PairCreated().process_receipt(rc, errors=DISCARD)[0]["args"]["pair"]
        (t0, a0), (t1, a1) = sorted([(ta, amount_a), (tb, amount_b)], key=lambda x: int(x[0].address, 16))
        pool = Pool(addr, PoolKind.CONSTANT_PRODUCT, venue, factory, t0.address, t1.address, V2_FEE_PIPS, 0,
                    f"{t0.symbol}/{t1.symbol}@{venue}")
        d = self.deployer
        self.sender.batch([
            self._call_tx("TestToken", t0.address, "mint", [addr, a0], d, GAS_TOKEN),
            self._call_tx("TestToken", t1.address, "mint", [addr, a1], d, GAS_TOKEN),
            self._call_tx("UniswapV2Pair", addr, "mint", [d], d, 400_000)])
        self.pools.append(pool)
        return pool

    def create_v3_pool(self, token_a: str, token_b: str, fee: int, amount_a: int, amount_b: int, *,
                       ranges: Sequence[tuple[int, int, Fraction]] = MarketSpec.v3_ranges) -> Pool:
        """Create and initialise a V3 pool at price amount_b/amount_a and mint a full-range
        position with those amounts plus ``ranges`` (offsets in tick spacings, share of amounts)."""
        ta, tb = self.token(token_a), self.token(token_b)
        (t0, a0), (t1, a1) = sorted([(ta, amount_a), (tb, amount_b)], key=lambda x: int(x[0].address, 16))
        price_raw = Fraction(a1, a0)
        rc = self._transact("NonfungiblePositionManager", self.v3_position_manager, "createAndInitializePoolIfNecessary",
                            [t0.address, t1.address, fee, price_to_sqrt_price_x96(price_raw)], self.deployer, 6_000_000)
        ev = self.contract("UniswapV3Factory", self.v3_factory).events.PoolCreated().process_receipt(rc, errors=DISCARD)
        if not ev:
            raise ChainTxError(f"V3 pool {t0.symbol}/{t1.symbol}/{fee} exists already")
        addr, spacing = ev[0]["args"]["pool"], ev[0]["args"]["tickSpacing"]
        pool = Pool(addr, PoolKind.CONCENTRATED, self.v3_venue, self.v3_factory, t0.address, t1.address, fee, spacing,
                    f"{t0.symbol}/{t1.symbol}@{self.v3_venue}/{fee}")
        self.pools.append(pool)
        positions = _v3_positions(spacing, price_raw, a0, a1, ranges)
        d, npm = self.deployer, self.v3_position_manager
        txs = [self._call_tx("TestToken", t.address, fn, args, d, GAS_TOKEN)
               for t, amt in ((t0, sum(p[2] for p in positions)), (t1, sum(p[3] for p in positions)))
               for fn, args in (("mint", [d, amt]), ("approve", [npm, MAX_UINT]))]
        txs += [self._call_tx("NonfungiblePositionManager", npm, "mint",
                              [(t0.address, t1.address, fee, tl, tu, x0, x1, 0, 0, d, DEADLINE)], d, GAS_V3_MINT)
                for tl, tu, x0, x1 in positions]
        rcs = self.sender.batch(txs)
        npm_c = self.contract("NonfungiblePositionManager", npm)
        for rc in rcs:
            for e in npm_c.events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD):
                self.v3_positions.setdefault(addr, []).append(e["args"]["tokenId"])
        return pool

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict:
        """JSON-serialisable description (addresses, venues, decimals, pools) to hand the market
        to another process; ``Market.from_dict(url, d)`` rebuilds it there."""
        return {
            "chain_id": self.chain_id, "deployer": self.deployer, "weth9": self.weth9,
            "tokens": [[t.symbol, t.address, t.decimals, t.decimals_reverts] for t in self.tokens.values()],
            "usd_prices": {k: [v.numerator, v.denominator] for k, v in self.usd_prices.items()},
            "v2_factories": {str(k): v for k, v in self.v2_factories.items()},
            "v2_routers": {str(k): v for k, v in self.v2_routers.items()},
            "v3_factory": self.v3_factory, "v3_venue": self.v3_venue,
            "v3_position_manager": self.v3_position_manager, "v3_swap_router": self.v3_swap_router,
            "v3_quoter": self.v3_quoter, "executor": self.executor,
            "pools": [[p.address, int(p.kind), p.venue, p.factory, p.token0, p.token1, p.fee_pips, p.tick_spacing, p.label]
                      for p in self.pools],
            "traders": list(self.traders),
            "v3_positions": self.v3_positions,
            "algebra_factory": self.algebra_factory, "algebra_venue": self.algebra_venue,
            "algebra_caller": self.algebra_caller,
        }

    @classmethod
    def from_dict(cls, w3_or_url: "Web3 | str", d: dict) -> "Market":
        w3 = connect(w3_or_url) if isinstance(w3_or_url, str) else w3_or_url
        return cls(
            w3=w3, chain_id=d["chain_id"], deployer=d["deployer"], weth9=d["weth9"],
            tokens={t[0]: Token(t[0], t[1], t[2], t[3]) for t in d["tokens"]},
            usd_prices={k: Fraction(v[0], v[1]) for k, v in d["usd_prices"].items()},
            v2_factories={int(k): v for k, v in d["v2_factories"].items()},
            v2_routers={int(k): v for k, v in d["v2_routers"].items()},
            v3_factory=d["v3_factory"], v3_venue=d["v3_venue"], v3_position_manager=d["v3_position_manager"],
            v3_swap_router=d["v3_swap_router"], v3_quoter=d["v3_quoter"], executor=d["executor"],
            pools=[Pool(p[0], PoolKind(p[1]), p[2], p[3], p[4], p[5], p[6], p[7], p[8]) for p in d["pools"]],
            traders=tuple(d["traders"]),
            v3_positions={k: list(v) for k, v in d["v3_positions"].items()},
            algebra_factory=d.get("algebra_factory", ""), algebra_venue=d.get("algebra_venue", int(Venue.QUICKSWAP_V3)),
            algebra_caller=d.get("algebra_caller", ""),
        )

    # ---------------------------------------------------------------- cycles
    def cycle_hops(self, path: Sequence[tuple["Pool | str", str, str]]) -> list[tuple]:
        """CycleExecutor.Hop tuples for a path of (pool, token_in, token_out)."""
        hops = []
        for i, (pool, t_in, t_out) in enumerate(path):
            p = self.pool(pool)
            a_in, a_out = self.token(t_in).address, self.token(t_out).address
            if p.other(a_in) != a_out:
                raise ValueError(f"hop {i}: pool {p.label} does not trade {t_in} -> {t_out}")
            if i > 0 and hops[-1][3] != a_in:
                raise ValueError(f"hop {i}: path broken ({t_in} is not the previous hop's output)")
            fee = p.fee_pips if p.kind == PoolKind.CONSTANT_PRODUCT else 0
            hops.append((p.address, int(p.kind), a_in, a_out, fee))
        return hops

    def execute_cycle(self, path: Sequence[tuple["Pool | str", str, str]], amount_in: int, *,
                      sender: str | None = None, mode: str = "atomic", fund: bool = True,
                      min_amount_out: int = 0) -> CycleResult:
        """Execute ``path`` = [(pool, token_in, token_out), ...] with ``amount_in`` of the first
        token from a funded account and return exactly what came back.

        mode "atomic": one CycleExecutor.execute transaction. mode "sequential": one
        CycleExecutor.executeHop transaction per hop (each hop swaps the previous one's output),
        all mined in one block with automine off. ``fund`` mints ``amount_in`` to the sender first.
        """
        s = self._default_trader(sender)
        hops = self.cycle_hops(path)
        start, end = hops[0][2], hops[-1][3]
        if fund:
            self.fund(s, {self.token(start).symbol: amount_in}, approve=False)
        before = self.balance(s, end)
        if mode == "atomic":
            rc = self.sender.transact(self._call_tx("CycleExecutor", self.executor, "execute",
                                                    [hops, amount_in, min_amount_out], s,
                                                    min(GAS_CYCLE_HOP * len(hops), self.sender.block_gas_limit())),
                                      "CycleExecutor.execute")
            ev = self.contract("CycleExecutor", self.executor).events.CycleExecuted().process_receipt(rc, errors=DISCARD)
            hop_amounts = tuple(ev[0]["args"]["hopAmounts"])
            rcs = [rc]
        elif mode == "sequential":
            txs = []
            for i, hop in enumerate(hops):
                last = i == len(hops) - 1
                txs.append(self._call_tx("CycleExecutor", self.executor, "executeHop",
                                         [hop, amount_in if i == 0 else 0, last], s, GAS_CYCLE_HOP))
            rcs = self.sender.batch(txs, [f"hop {i}" for i in range(len(txs))])
            if len({rc["blockNumber"] for rc in rcs}) != 1:
                raise ChainTxError("sequential cycle did not fit in one block")
            hop_amounts = tuple(self._hop_output(rc, hop) for rc, hop in zip(rcs, hops))
        else:
            raise ValueError(f"mode must be 'atomic' or 'sequential', not {mode!r}")
        received = self.balance(s, end) - before + (amount_in if start == end else 0)
        if received != hop_amounts[-1]:
            raise ChainTxError(f"balance change {received} != last hop output {hop_amounts[-1]}")
        return CycleResult(amount_in, received, hop_amounts, rcs[-1]["blockNumber"],
                           tuple(rc["transactionHash"].to_0x_hex() for rc in rcs))

    def _hop_output(self, rc, hop) -> int:
        p = self.pool(hop[0])
        return self._swap_result(p, hop[2], rc).amount_out


# ---------------------------------------------------------------------------------- deploy
def connect(http_url: str) -> Web3:
    """A sync web3 for a local node, trimmed for speed: no proxy lookup per request and no
    validation/ENS/gas middleware (each added RPC round trips per call: eth_chainId twice per
    eth_call). Transactions built by TxSender carry every field, so nothing needs filling."""
    session = requests.Session()
    session.trust_env = False
    w3 = Web3(Web3.HTTPProvider(http_url, request_kwargs={"timeout": 60}, session=session))
    for name in ("validation", "ens_name_to_address", "gas_price_strategy", "gas_estimate"):
        try:
            w3.middleware_onion.remove(name)
        except (ValueError, KeyError):
            pass
    return w3


def deploy_market(w3_or_url: "Web3 | str", spec: MarketSpec = MarketSpec(), *, deployer: str = DEV_ACCOUNTS[0]) -> Market:
    """Deploy ``spec`` onto the node (dev accounts must be unlocked, as on anvil)."""
    w3 = connect(w3_or_url) if isinstance(w3_or_url, str) else w3_or_url
    chain_id = w3.eth.chain_id
    tx = TxSender(w3, chain_id)
    deployer = Web3.to_checksum_address(deployer)

    def deploy_tx(name: str, *args, gas: int = GAS_DEPLOY) -> dict:
        art = load_artifact(name)
        return tx.tx(deployer, None, encode_deploy(w3, art.abi, art.bytecode, args), gas)

    contracts: dict[tuple[str, str], object] = {}

    def c(name: str, address: str):
        key = (name, address)
        if key not in contracts:
            contracts[key] = w3.eth.contract(address=address, abi=load_artifact(name).abi)
        return contracts[key]

    def call_tx(name: str, address: str, fn: str, args: Sequence, sender: str = deployer, gas: int = GAS_CALL) -> dict:
        return tx.tx(sender, address, function_codec(name, fn).encode(args), gas)

    # Block 1: everything without constructor dependencies.
    venues = sorted({int(v) for pair in spec.pairs for v in pair.v2_venues})
    phase1 = [deploy_tx("TestToken", t.symbol, t.symbol, t.decimals, gas=2_000_000) for t in spec.tokens]
    phase1 += [deploy_tx("WETH9", gas=2_000_000), deploy_tx("UniswapV3Factory"), deploy_tx("CycleExecutor", gas=2_000_000)]
    phase1 += [deploy_tx("UniswapV2Factory", deployer, gas=4_000_000) for _ in venues]
    rcs = tx.batch(phase1, ["token"] * len(spec.tokens) + ["WETH9", "V3Factory", "CycleExecutor"] + ["V2Factory"] * len(venues))
    addrs = [rc["contractAddress"] for rc in rcs]
    n = len(spec.tokens)
    tokens = {t.symbol: Token(t.symbol, addrs[i], t.decimals) for i, t in enumerate(spec.tokens)}
    weth9, v3_factory, executor = addrs[n], addrs[n + 1], addrs[n + 2]
    v2_factories = {venue: addrs[n + 3 + i] for i, venue in enumerate(venues)}

    # Block 2: periphery (needs factories + WETH9), fee tier 100 (not enabled by default).
    phase2 = [deploy_tx("UniswapV2Router02", v2_factories[v], weth9, gas=5_000_000) for v in venues]
    phase2 += [deploy_tx("NonfungiblePositionManager", v3_factory, weth9, "0x" + "00" * 19 + "01", gas=7_000_000),
               deploy_tx("SwapRouter", v3_factory, weth9, gas=5_000_000),
               deploy_tx("QuoterV2", v3_factory, weth9, gas=5_000_000),
               call_tx("UniswapV3Factory", v3_factory, "enableFeeAmount", [100, 1])]
    rcs = tx.batch(phase2)
    v2_routers = {v: rcs[i]["contractAddress"] for i, v in enumerate(venues)}
    npm, swap_router, quoter = (rcs[len(venues) + i]["contractAddress"] for i in range(3))

    market = Market(w3=w3, chain_id=chain_id, deployer=deployer, tokens=tokens, weth9=weth9,
                    v2_factories=v2_factories, v2_routers=v2_routers, v3_factory=v3_factory,
                    v3_venue=int(spec.v3_venue), v3_position_manager=npm, v3_swap_router=swap_router,
                    v3_quoter=quoter, executor=executor, pools=[], traders=tuple(Web3.to_checksum_address(t) for t in spec.traders),
                    sender=tx, usd_prices={t.symbol: t.usd_price for t in spec.tokens})

    # Block 3: create pairs/pools, mint liquidity tokens to the deployer, approve the NPM.
    need: dict[str, int] = {t.symbol: 0 for t in spec.tokens}
    phase3: list[dict] = []
    plans = []
    for pair in spec.pairs:
        ta, tb = spec.token(pair.token_a), spec.token(pair.token_b)
        a_addr, b_addr = tokens[ta.symbol].address, tokens[tb.symbol].address
        t0, t1 = (ta, tb) if int(a_addr, 16) < int(b_addr, 16) else (tb, ta)
        amt0 = int(Fraction(pair.usd_depth) / t0.usd_price * 10**t0.decimals)
        amt1 = int(Fraction(pair.usd_depth) / t1.usd_price * 10**t1.decimals)
        price_raw = Fraction(amt1, amt0)
        for venue in pair.v2_venues:
            phase3.append(call_tx("UniswapV2Factory", v2_factories[venue], "createPair",
                                  [tokens[t0.symbol].address, tokens[t1.symbol].address], gas=3_000_000))
            plans.append(("v2", int(venue), t0, t1, amt0, amt1, price_raw, 0))
            need[t0.symbol] += amt0
            need[t1.symbol] += amt1
        for fee in pair.v3_fees:
            sqrt_p = price_to_sqrt_price_x96(price_raw)
            phase3.append(call_tx("NonfungiblePositionManager", npm, "createAndInitializePoolIfNecessary",
                                  [tokens[t0.symbol].address, tokens[t1.symbol].address, fee, sqrt_p], gas=6_000_000))
            plans.append(("v3", int(spec.v3_venue), t0, t1, amt0, amt1, price_raw, fee))
            share = 1 + sum(r[2] for r in spec.v3_ranges)
            need[t0.symbol] += int(amt0 * share) + 1
            need[t1.symbol] += int(amt1 * share) + 1
    phase3 += [call_tx("TestToken", tokens[s].address, "mint", [deployer, need[s]]) for s in need if need[s]]
    phase3 += [call_tx("TestToken", tokens[s].address, "approve", [npm, MAX_UINT]) for s in need if need[s]]
    rcs = tx.batch(phase3)

    # Block 4: liquidity. V2: transfer both sides then pair.mint; V3: full range + concentrated.
    phase4: list[dict] = []
    for plan, rc in zip(plans, rcs):
        kind, venue, t0, t1, amt0, amt1, price_raw, fee = plan
        a0, a1 = tokens[t0.symbol].address, tokens[t1.symbol].address
        sym = f"{t0.symbol}/{t1.symbol}"
        if kind == "v2":
            ev = c("UniswapV2Factory", v2_factories[venue]).events.PairCreated().process_receipt(rc, errors=DISCARD)
            addr = ev[0]["args"]["pair"]
            market.pools.append(Pool(addr, PoolKind.CONSTANT_PRODUCT, venue, v2_factories[venue], a0, a1,
                                     V2_FEE_PIPS, 0, f"{sym}@{venue}"))
            phase4 += [call_tx("TestToken", a0, "transfer", [addr, amt0]),
                       call_tx("TestToken", a1, "transfer", [addr, amt1]),
                       call_tx("UniswapV2Pair", addr, "mint", [deployer], gas=400_000)]
        else:
            ev = c("UniswapV3Factory", v3_factory).events.PoolCreated().process_receipt(rc, errors=DISCARD)
            addr = ev[0]["args"]["pool"]
            spacing = ev[0]["args"]["tickSpacing"]
            market.pools.append(Pool(addr, PoolKind.CONCENTRATED, venue, v3_factory, a0, a1, fee, spacing,
                                     f"{sym}@{venue}/{fee}"))
            for tl, tu, x0, x1 in _v3_positions(spacing, price_raw, amt0, amt1, spec.v3_ranges):
                phase4.append(call_tx("NonfungiblePositionManager", npm, "mint",
                                      [(a0, a1, fee, tl, tu, x0, x1, 0, 0, deployer, DEADLINE)], gas=GAS_V3_MINT))
    rcs = tx.batch(phase4)
    npm_c = c("NonfungiblePositionManager", npm)
    for rc in rcs:
        for e in npm_c.events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD):
            pos = npm_c.functions.positions(e["args"]["tokenId"]).call()
            pool = next(p for p in market.pools if p.kind == PoolKind.CONCENTRATED and p.token0 == pos[2]
                        and p.token1 == pos[3] and p.fee_pips == pos[4])
            market.v3_positions.setdefault(pool.address, []).append(e["args"]["tokenId"])

    if any(pair.algebra for pair in spec.pairs):
        _deploy_algebra_venue(market, spec)

    # Block 5: fund and approve the traders.
    amounts = {t.symbol: int(Fraction(spec.trader_usd) / t.usd_price * 10**t.decimals) for t in spec.tokens}
    tx.batch([t for trader in market.traders for t in market._fund_txs(trader, amounts, True)])
    return market



def _deploy_algebra_venue(market: Market, spec: MarketSpec) -> None:
    """Algebra v1.0 (QuickSwap V3) beside the market's venues: its factory, and for each pair with
    ``algebra`` a pool at the pair's price with a full-range position and the spec's ``v3_ranges``
    (spacing 60), paid by the deployer through AlgebraCaller. Needs a node started with
    ``alphapulse.chain.algebra.ANVIL_ARGS`` (the npm pool code exceeds EIP-170)."""
    from alphapulse.chain.algebra import deploy_algebra
    alg = deploy_algebra(market.w3, deployer=market.deployer,
                         tokens={s: t.address for s, t in market.tokens.items()})
    alg.tx = market.sender
    market.algebra_factory = alg.factory
    market.algebra_venue = int(spec.algebra_venue)
    market.algebra_caller = alg.caller
    need: dict[str, int] = {}
    plans = []
    for pair in spec.pairs:
        if not pair.algebra:
            continue
        ta, tb = spec.token(pair.token_a), spec.token(pair.token_b)
        a_addr, b_addr = market.tokens[ta.symbol].address, market.tokens[tb.symbol].address
        t0, t1 = (ta, tb) if int(a_addr, 16) < int(b_addr, 16) else (tb, ta)
        amt0 = int(Fraction(pair.usd_depth) / t0.usd_price * 10**t0.decimals)
        amt1 = int(Fraction(pair.usd_depth) / t1.usd_price * 10**t1.decimals)
        plans.append((t0, t1, amt0, amt1))
        share = 2 + sum(r[2] for r in spec.v3_ranges)
        need[t0.symbol] = need.get(t0.symbol, 0) + int(amt0 * share) + 1
        need[t1.symbol] = need.get(t1.symbol, 0) + int(amt1 * share) + 1
    market.sender.batch(market._fund_txs(market.deployer, need, False) +
                        [market._call_tx("TestToken", market.tokens[s].address, "approve", [alg.caller, MAX_UINT],
                                         market.deployer, GAS_TOKEN) for s in need])
    for t0, t1, amt0, amt1 in plans:
        price_raw = Fraction(amt1, amt0)
        pool = alg.create_pool(t0.symbol, t1.symbol, price_to_sqrt_price_x96(price_raw))
        # adaptive fee with both alphas 0: the fee recomputed at a block's first swap is the base fee
        alg.set_fee_configuration(pool, 0, 0, 1, 1, 1, 1, 0, 1, int(spec.algebra_base_fee))
        for tl, tu, x0, x1 in _v3_positions(ALGEBRA_TICK_SPACING, price_raw, amt0, amt1, spec.v3_ranges):
            alg.mint(pool, tl, tu, _liquidity_for(price_raw, tl, tu, x0, x1))
        market.pools.append(Pool(pool, PoolKind.CONCENTRATED_DYNAMIC_FEE, market.algebra_venue, alg.factory,
                                 market.tokens[t0.symbol].address, market.tokens[t1.symbol].address,
                                 int(spec.algebra_base_fee), ALGEBRA_TICK_SPACING,
                                 f"{t0.symbol}/{t1.symbol}@{market.algebra_venue}"))
    # A pool starts at Algebra's initial fee; its first swap of a new block timestamp recomputes it
    # from the configuration: one small swap per pool, in a block with a new timestamp, makes the
    # fee in force the configured one from the start.
    now = market.w3.eth.get_block("latest")["timestamp"]
    market.w3.provider.make_request("evm_setNextBlockTimestamp", [now + 1])
    algebra = [p for p in market.pools if p.kind == PoolKind.CONCENTRATED_DYNAMIC_FEE]
    market.sender.batch([market.swap_tx(p, p.token0, 10 ** (market.token(p.token0).decimals // 2), market.deployer)
                         for p in algebra])
    for p in algebra:
        fee = market.algebra_fee(p)
        if fee != int(spec.algebra_base_fee):
            raise ChainTxError(f"{p.label}: fee in force {fee}, configured {spec.algebra_base_fee}")


ALGEBRA_TICK_SPACING = 60


def _liquidity_for(price_raw: Fraction, tick_lower: int, tick_upper: int, amount0: int, amount1: int) -> int:
    """The liquidity a position on [tick_lower, tick_upper] holds with at most ``amount0`` and
    ``amount1`` at the price ``price_raw`` (LiquidityAmounts.getLiquidityForAmounts, in floats:
    only the size of the position, which the pool then prices exactly)."""
    sp = math.sqrt(price_raw)
    sa, sb = 1.0001 ** (tick_lower / 2), 1.0001 ** (tick_upper / 2)
    if sp <= sa:
        liq = amount0 * sa * sb / (sb - sa)
    elif sp >= sb:
        liq = amount1 / (sb - sa)
    else:
        liq = min(amount0 * sp * sb / (sb - sp), amount1 / (sp - sa))
    return max(int(liq * 0.999), 1)
