"""A seeded market simulator that trades a deployed :class:`~alphapulse.chain.deploy.Market`.

Each step builds one block: with automine off it sends ``txs_per_block`` actions from the
market's trader accounts and mines them with ``evm_mine`` (realistic for Polygon, where a block
holds many swaps, and ~10x faster than one block per tx).

The market has a reference: every token has a USD price (from the market's spec) that moves
each block as a seeded random walk with a volatility per token (``volatility_bps``: stable
coins barely move, WBTC/WETH/WMATIC like crypto). Actions, drawn with ``random.Random``:

- ``swap``: a noise trade on a random pool, log-uniform USD size, random direction;
- ``shock``: a large trade that moves one pool's price by ``shock_bps`` (opens an arbitrage
  against the other pools of that pair and the triangles through it);
- ``arb``: moves the pool farthest from its reference price back to it at once;
- ``add_v2`` / ``remove_v2`` / ``add_v3`` / ``remove_v3``: liquidity moves (Mint/Burn events;
  V3 positions are narrow ranges around the current tick, so they create initialised ticks).

Besides them, arbitrageurs watch every pool: when a pool's price is more than
``arb_edge_bps`` away from the ratio of its tokens' reference prices, its token pair is
disturbed, and ``arb_latency_blocks`` (drawn per disturbance, 1-3 by default) blocks later they
move every pool of the pair that is off back to that ratio, and again at each following block
until the pair starts a block calm (a shock during a disturbance does not restart the wait).
Every pool of every pair is pulled toward one consistent set of prices, so triangles close as
well as pairs, and a cross-pool gap closes within a few blocks.

Shocks and arbs go first in their block, one per pool, so they execute on the state they were
computed from; a well-formed run has no reverted transactions (BlockReport.reverted counts any).

Determinism: the choice of every action depends only on the seed and on chain state, and the
chain state depends only on the previous actions (the reference walk draws from the same
generator and uses no library function but IEEE arithmetic), so the same seed on the same deployed market
gives the same transactions, events and amounts (block timestamps are wall-clock and do not
enter any pool arithmetic).
"""
from __future__ import annotations

import collections
import math
import random
import threading
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable

from web3.logs import DISCARD

from alphapulse.chain.deploy import (DEADLINE, GAS_TOKEN, GAS_V3_MINT, MAX_SQRT_RATIO, MIN_SQRT_RATIO,
                                     Market, Pool)
from alphapulse.protocol.layout import PoolKind

__all__ = ["Action", "BlockReport", "MarketSimulator", "SimulationReport", "SimulatorConfig", "fee_gaps",
           "price_gaps"]

ACTION_KINDS = ("swap", "shock", "arb", "add_v2", "remove_v2", "add_v3", "remove_v3")


@dataclass(frozen=True)
class SimulatorConfig:
    seed: int = 0
    txs_per_block: int = 8                   # actions per block (each is 1-3 txs)
    block_interval_s: float | None = None    # wall time per block; None = as fast as possible
    # relative weights of the action kinds
    weights: tuple[tuple[str, float], ...] = (
        ("swap", 0.795), ("shock", 0.025),
        ("add_v2", 0.05), ("remove_v2", 0.04), ("add_v3", 0.05), ("remove_v3", 0.04))
    trade_usd_min: float = 10.0
    trade_usd_max: float = 4_000.0
    # reference prices: per-block volatility (one standard deviation, bps) per token symbol;
    # tokens not listed move by default_volatility_bps
    volatility_bps: tuple[tuple[str, float], ...] = (
        ("WBTC", 3.0), ("WETH", 4.0), ("WMATIC", 6.0), ("USDC", 0.0), ("USDT", 0.2), ("DAI", 0.2))
    default_volatility_bps: float = 4.0
    # arbitrageurs: a pool further than arb_edge_bps from its reference is moved back to it after
    # a latency drawn in arb_latency_blocks (inclusive); None: no arbitrageurs
    arb_edge_bps: float = 5.0
    arb_latency_blocks: tuple[int, int] | None = (1, 3)
    shock_bps_min: int = 60                  # price move of a shock: 0.6% .. 3%
    shock_bps_max: int = 300
    liquidity_usd: float = 100_000.0         # value per side of a liquidity add
    refill_every_blocks: int = 50            # top traders' balances up (open mint) this often
    # Base fee of each simulated block: a seeded random walk around base_fee_gwei (Polygon-like),
    # set with anvil_setNextBlockBaseFeePerGas so GasPrice frames move; None keeps anvil's own
    # EIP-1559 dynamics (which decay towards 0 on a mostly empty local chain).
    base_fee_gwei: float | None = 40.0
    base_fee_step: float = 0.08              # max relative change per block
    base_fee_range: tuple[float, float] = (0.25, 4.0)   # bounds as multiples of base_fee_gwei

    def __post_init__(self):
        unknown = {k for k, _ in self.weights} - set(ACTION_KINDS)
        if unknown:
            raise ValueError(f"unknown action kinds {sorted(unknown)}; known: {ACTION_KINDS}")
        if self.txs_per_block < 1:
            raise ValueError("txs_per_block must be >= 1")
        if not 0 < self.trade_usd_min <= self.trade_usd_max:
            raise ValueError("need 0 < trade_usd_min <= trade_usd_max")
        if not 0 < self.shock_bps_min <= self.shock_bps_max < 10_000:
            raise ValueError("need 0 < shock_bps_min <= shock_bps_max < 10000")
        if any(not 0 <= v < 1_000 for _, v in self.volatility_bps) or not 0 <= self.default_volatility_bps < 1_000:
            raise ValueError("volatilities must be in [0, 1000) bps per block")
        if self.arb_latency_blocks is not None and not 1 <= self.arb_latency_blocks[0] <= self.arb_latency_blocks[1]:
            raise ValueError("need 1 <= arb_latency_blocks[0] <= arb_latency_blocks[1]")
        if not self.arb_edge_bps > 0:
            raise ValueError("arb_edge_bps must be > 0")
        if self.base_fee_gwei is not None and not (self.base_fee_gwei > 0 and 0 <= self.base_fee_step < 1
                                                   and 0 < self.base_fee_range[0] <= 1 <= self.base_fee_range[1]):
            raise ValueError("need base_fee_gwei > 0, 0 <= base_fee_step < 1, range (lo <= 1 <= hi)")


@dataclass(frozen=True)
class Action:
    kind: str
    pool: str        # pool label
    sender: str
    detail: str
    n_txs: int


@dataclass
class BlockReport:
    block_number: int
    actions: list[Action]
    txs: int
    reverted: int


@dataclass
class SimulationReport:
    """Totals of a run plus the most recent ``keep`` BlockReports (an open-ended run in the
    pipeline must not grow without bound)."""

    def __init__(self, keep: int = 10_000):
        self.blocks: collections.deque[BlockReport] = collections.deque(maxlen=keep)
        self.n_blocks = 0
        self.txs = 0
        self.reverted = 0
        self.first_block = 0
        self.last_block = 0
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, block: BlockReport) -> None:
        if self.n_blocks == 0:
            self.first_block = block.block_number
        self.last_block = block.block_number
        self.n_blocks += 1
        self.txs += block.txs
        self.reverted += block.reverted
        self._counts.update(a.kind for a in block.actions)
        self.blocks.append(block)

    def count(self, kind: str) -> int:
        return self._counts[kind]


def _shared_pairs(market: Market) -> dict[frozenset, list[Pool]]:
    """Token pair -> its pools, for the pairs traded by two pools or more."""
    groups: dict[frozenset, list[Pool]] = {}
    for p in market.pools:
        groups.setdefault(frozenset((p.token0, p.token1)), []).append(p)
    return {k: v for k, v in groups.items() if len(v) > 1}


def fee_gaps(market: Market, block: int | str = "latest") -> dict[frozenset, Fraction]:
    """For each token pair with 2+ pools: the best two-pool round trip at zero size after both
    pools' fees, minus 1 (> 0: an arbitrage between two pools of the pair is open)."""
    out = {}
    for key, pools in _shared_pairs(market).items():
        prices = [market.price(p, block) for p in pools]
        keep = [Fraction(1_000_000 - p.fee_pips, 1_000_000) for p in pools]
        out[key] = max(prices[i] / prices[j] * keep[i] * keep[j]
                       for i in range(len(pools)) for j in range(len(pools)) if i != j) - 1
    return out


def price_gaps(market: Market, block: int | str = "latest") -> dict[frozenset, Fraction]:
    """For each token pair with 2+ pools: max/min of the pools' marginal prices (1 = aligned)."""
    out = {}
    for key, pools in _shared_pairs(market).items():
        prices = [market.price(p, block) for p in pools]
        out[key] = max(prices) / min(prices)
    return out


class MarketSimulator:
    """Drives ``market`` with seeded random activity; see the module docstring."""

    def __init__(self, market: Market, config: SimulatorConfig = SimulatorConfig()):
        if not market.pools:
            raise ValueError("the market has no pools to trade")
        self.market = market
        self.config = config
        self.rng = random.Random(config.seed)
        self._kinds = [k for k, _ in config.weights]
        self._weights = [w for _, w in config.weights]
        self._usd = self._usd_prices()
        vol = dict(config.volatility_bps)
        # reference USD price per whole token and its per-block volatility (fraction)
        self.reference: dict[str, float] = {t.address: float(market.usd_prices.get(sym, Fraction(1)))
                                            for sym, t in market.tokens.items()}
        self._vol = {t.address: vol.get(sym, config.default_volatility_bps) / 10_000
                     for sym, t in market.tokens.items()}
        self._arb_due: dict[frozenset, int] = {}           # disturbed token pair -> block index of its arbs
        self._v2_lp: list[tuple[str, str]] = []            # (pool address, owner) with LP tokens
        self._v3_positions: list[tuple[int, str, str, int]] = []  # (token_id, owner, pool, liquidity)
        self._blocks_done = 0
        self._base_fee_factor = 1.0
        self._moved_this_block: set[str] = set()
        self._lp_used_this_block: set[tuple[str, str]] = set()
        self.stop_event = threading.Event()

    def _usd_prices(self) -> dict[str, Fraction]:
        """USD value of one base unit per token address, from the market's spec prices: fixed at
        start so trade sizes never depend on timing."""
        out = {}
        for sym, tok in self.market.tokens.items():
            out[tok.address] = self.market.usd_prices.get(sym, Fraction(1)) / 10**tok.decimals
        return out

    # ------------------------------------------------------------------ running
    def run(self, steps: int | None = None, *, duration_s: float | None = None,
            on_block: Callable[[BlockReport], None] | None = None) -> SimulationReport:
        """Run ``steps`` blocks, or for ``duration_s``, or until ``stop()``; returns the report."""
        report = SimulationReport(keep=steps if steps is not None else 10_000)
        deadline = time.monotonic() + duration_s if duration_s is not None else None
        next_at = time.monotonic()
        while not self.stop_event.is_set():
            if steps is not None and report.n_blocks >= steps:
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            block = self.step()
            report.add(block)
            if on_block is not None:
                on_block(block)
            if self.config.block_interval_s:
                next_at += self.config.block_interval_s
                delay = next_at - time.monotonic()
                if delay > 0:
                    self.stop_event.wait(delay)
                else:
                    next_at = time.monotonic()
        return report

    def stop(self) -> None:
        self.stop_event.set()

    def step(self) -> BlockReport:
        """Build, send and mine one block of actions.

        Price-targeted actions (shock, arb) go first in the block, at most one per pool, so the
        state they were computed on is the state they execute on (a V3 price limit computed
        from a stale price would revert with SPL); noise swaps and liquidity moves follow.
        """
        m = self.market
        refill = self._refill_txs() if (self.config.refill_every_blocks and
                                        self._blocks_done % self.config.refill_every_blocks == 0) else []
        self._moved_this_block: set[str] = set()
        self._lp_used_this_block: set[tuple[str, str]] = set()
        front, rest = self._arbitrage(), []
        for _ in range(self.config.txs_per_block):
            kind = self.rng.choices(self._kinds, self._weights)[0]
            built = getattr(self, f"_build_{kind}")()
            if built is None:      # e.g. nothing to remove yet: fall back to a noise swap
                kind, built = "swap", self._build_swap()
            (front if kind in ("shock", "arb") else rest).append(built)
        txs: list[dict] = list(refill)
        actions: list[Action] = []
        post: list[tuple[int, Callable]] = []   # (index of tx, handler(receipt)) after mining
        for act_txs, action, handler in front + rest:
            if handler is not None:
                post.append((len(txs) + len(act_txs) - 1, handler))
            txs += act_txs
            actions.append(action)
        if self.config.base_fee_gwei is not None:
            m.w3.provider.make_request("anvil_setNextBlockBaseFeePerGas", [hex(self._next_base_fee())])
        receipts = m.sender.batch(txs, check=False)
        for idx, handler in post:
            if receipts[idx]["status"] == 1:
                handler(receipts[idx])
        self._blocks_done += 1
        self._walk_reference()
        blocks = {rc["blockNumber"] for rc in receipts}
        return BlockReport(max(blocks), actions, len(txs), sum(1 for rc in receipts if rc["status"] != 1))

    # ------------------------------------------------------------------ reference market
    def _walk_reference(self) -> None:
        """One block of every token's reference price: a multiplicative step whose draw is a
        sum of three uniforms (Irwin-Hall, close to normal; exact IEEE arithmetic only)."""
        for addr in sorted(self.reference):
            sigma = self._vol.get(addr, self.config.default_volatility_bps / 10_000)
            if sigma:
                z = 2.0 * (self.rng.random() + self.rng.random() + self.rng.random() - 1.5)
                self.reference[addr] *= 1.0 + sigma * z

    def reference_price(self, pool: Pool) -> Fraction:
        """The pool's price implied by the reference: token1 base units per token0 base unit."""
        m = self.market
        if pool.token0 not in self.reference or pool.token1 not in self.reference:  # a token added later
            for addr in (pool.token0, pool.token1):
                tok = m.token(addr)
                self.reference.setdefault(addr, float(m.usd_prices.get(tok.symbol, Fraction(1))))
        d0, d1 = m.token(pool.token0).decimals, m.token(pool.token1).decimals
        return Fraction(self.reference[pool.token0]) / Fraction(self.reference[pool.token1]) * 10**d1 / 10**d0

    def _arbitrage(self) -> list:
        """Arbitrage transactions of this block.

        At each block start every pool is compared with its reference price. A token pair whose
        pools are all within ``arb_edge_bps`` of it is calm; when one of them is off, the pair's
        disturbance opens and an arbitrageur is due ``arb_latency_blocks`` (drawn once per
        disturbance) later. From then on, every block, every pool of the pair still off its
        reference is moved back to it, until a block starts with the whole pair calm. The
        latency runs from the disturbance's first block: a shock or a large trade on the pair
        while it is open (or a noise trade that pushes a just-arbitraged pool out again) is
        taken back at the next block, it does not start a new wait. Every pair is pulled to one
        consistent set of prices, so triangles close with the pairs.
        """
        lat = self.config.arb_latency_blocks
        if lat is None:
            return []
        m = self.market
        edge = Fraction(round(self.config.arb_edge_bps * 100), 1_000_000)
        now = self._blocks_done
        factors = {pool.address: self.reference_price(pool) / m.price(pool) for pool in m.pools}
        off_pairs = {frozenset((p.token0, p.token1)) for p in m.pools if abs(factors[p.address] - 1) > edge}
        for key in [k for k in self._arb_due if k not in off_pairs]:
            del self._arb_due[key]                         # the pair is calm again
        for pool in m.pools:                               # new disturbances, in pool order
            key = frozenset((pool.token0, pool.token1))
            if key in off_pairs and key not in self._arb_due:
                self._arb_due[key] = now + self.rng.randint(lat[0], lat[1]) - 1
        out = []
        for pool in m.pools:
            factor = factors[pool.address]
            due = self._arb_due.get(frozenset((pool.token0, pool.token1)))
            if due is None or due > now or abs(factor - 1) <= edge / 4 or pool.address in self._moved_this_block:
                continue
            sender = self._trader()
            tx = self._move_tx(pool, factor, sender)
            if tx is None:
                continue
            self._moved_this_block.add(pool.address)
            out.append(([tx], Action("arb", pool.label, sender, f"price x{float(factor):.5f}", 1), None))
        return out

    # ------------------------------------------------------------------ helpers
    def _next_base_fee(self) -> int:
        """Next block's base fee in wei: multiplicative seeded random walk, kept in range."""
        cfg = self.config
        self._base_fee_factor *= 1 + self.rng.uniform(-cfg.base_fee_step, cfg.base_fee_step)
        self._base_fee_factor = min(max(self._base_fee_factor, cfg.base_fee_range[0]), cfg.base_fee_range[1])
        return int(cfg.base_fee_gwei * self._base_fee_factor * 10**9)

    def _amount_of_usd(self, token: str, usd: float) -> int:
        per_unit = self._usd.get(token)
        if per_unit is None:     # a token added after the simulator started
            tok = self.market.token(token)
            per_unit = self._usd[token] = self.market.usd_prices.get(tok.symbol, Fraction(1)) / 10**tok.decimals
        return max(1, int(Fraction(usd).limit_denominator(10**6) / per_unit))

    def _trader(self) -> str:
        return self.rng.choice(self.market.traders)

    def _refill_txs(self) -> list[dict]:
        m = self.market
        txs = []
        for trader in m.traders:
            if m.w3.eth.get_balance(trader) < 1_000 * 10**18:   # gas money for a long run
                m.w3.provider.make_request("anvil_setBalance", [trader, hex(10_000 * 10**18)])
            for tok in m.tokens.values():
                target = self._amount_of_usd(tok.address, 5_000_000)
                if m.balance(trader, tok.address) < target:
                    txs.append(m._call_tx("TestToken", tok.address, "mint", [trader, 2 * target], m.deployer, GAS_TOKEN))
        return txs

    def _move_tx(self, pool: Pool, factor: Fraction, sender: str) -> dict | None:
        """A swap tx that moves ``pool``'s price by ``factor`` (from the state at block start)."""
        m = self.market
        if pool.kind == PoolKind.CONSTANT_PRODUCT:
            r0, r1 = m.reserves(pool)
            k = r0 * r1
            target = Fraction(r1, r0) * factor
            if factor > 1:
                new_r1 = math.isqrt(k * target.numerator // target.denominator)
                amount, token_in = (new_r1 - r1) * 1000 // 997 + 1, pool.token1
            else:
                new_r0 = math.isqrt(k * target.denominator // target.numerator)
                amount, token_in = (new_r0 - r0) * 1000 // 997 + 1, pool.token0
            if amount <= 1:
                return None
            return m.swap_tx(pool, token_in, amount, sender)
        sqrt_p, _, _ = m.slot0(pool)
        limit = math.isqrt(sqrt_p * sqrt_p * factor.numerator // factor.denominator)
        limit = min(max(limit, MIN_SQRT_RATIO + 1), MAX_SQRT_RATIO - 1)
        token_in = pool.token1 if factor > 1 else pool.token0
        # exactInputSingle with a price limit spends only what reaching the limit takes
        budget = self._amount_of_usd(token_in, 1_500_000)
        return m.swap_tx(pool, token_in, budget, sender, sqrt_price_limit_x96=limit)

    # ------------------------------------------------------------------ actions
    def _build_swap(self):
        m = self.market
        pool = self.rng.choice(m.pools)
        token_in = self.rng.choice((pool.token0, pool.token1))
        usd = math.exp(self.rng.uniform(math.log(self.config.trade_usd_min), math.log(self.config.trade_usd_max)))
        amount = self._amount_of_usd(token_in, usd)
        sender = self._trader()
        return ([m.swap_tx(pool, token_in, amount, sender)],
                Action("swap", pool.label, sender, f"{amount} of {m.token(token_in).symbol}", 1), None)

    def _build_shock(self):
        m = self.market
        pool = self.rng.choice(m.pools)
        bps = self.rng.randint(self.config.shock_bps_min, self.config.shock_bps_max)
        if pool.address in self._moved_this_block:
            return None
        self._moved_this_block.add(pool.address)
        factor = Fraction(10_000 + bps, 10_000) if self.rng.random() < 0.5 else Fraction(10_000, 10_000 + bps)
        sender = self._trader()
        tx = self._move_tx(pool, factor, sender)
        if tx is None:
            return None
        return [tx], Action("shock", pool.label, sender, f"price x{float(factor):.4f}", 1), None

    def _build_arb(self):
        m = self.market
        free = [p for p in m.pools if p.address not in self._moved_this_block]
        if not free:
            return None
        factors = [self.reference_price(p) / m.price(p) for p in free]
        worst = max(range(len(free)), key=lambda i: abs(factors[i] - 1))
        factor = factors[worst]
        if abs(factor - 1) < Fraction(1, 10_000):
            return None
        pool = free[worst]
        self._moved_this_block.add(pool.address)
        sender = self._trader()
        tx = self._move_tx(pool, factor, sender)
        if tx is None:
            return None
        return [tx], Action("arb", pool.label, sender, f"price x{float(factor):.4f}", 1), None

    def _build_add_v2(self):
        m = self.market
        pools = [p for p in m.pools if p.kind == PoolKind.CONSTANT_PRODUCT]
        if not pools:
            return None
        pool = self.rng.choice(pools)
        r0, r1 = m.reserves(pool)
        a0 = self._amount_of_usd(pool.token0, self.config.liquidity_usd * self.rng.uniform(0.2, 1.0))
        a1 = a0 * r1 // r0 + 1
        sender = self._trader()
        txs = [m._call_tx("TestToken", pool.token0, "transfer", [pool.address, a0], sender, GAS_TOKEN),
               m._call_tx("TestToken", pool.token1, "transfer", [pool.address, a1], sender, GAS_TOKEN),
               m._call_tx("UniswapV2Pair", pool.address, "mint", [sender], sender, 400_000)]

        def minted(_rc, pool=pool, sender=sender):
            if (pool.address, sender) not in self._v2_lp:   # one entry per holder: balanceOf is read on removal
                self._v2_lp.append((pool.address, sender))
        return txs, Action("add_v2", pool.label, sender, f"{a0}/{a1}", 3), minted

    def _build_remove_v2(self):
        m = self.market
        if not self._v2_lp:
            return None
        pool_addr, owner = self._v2_lp.pop(self.rng.randrange(len(self._v2_lp)))
        if (pool_addr, owner) in self._lp_used_this_block:   # its balance is already being moved
            self._v2_lp.append((pool_addr, owner))
            return None
        lp = m.read("UniswapV2Pair", pool_addr, "balanceOf", [owner])[0]
        if lp == 0:
            return None
        self._lp_used_this_block.add((pool_addr, owner))
        amount = lp if self.rng.random() < 0.5 else lp // 2
        if amount < lp:
            self._v2_lp.append((pool_addr, owner))
        txs = [m._call_tx("UniswapV2Pair", pool_addr, "transfer", [pool_addr, amount], owner, GAS_TOKEN),
               m._call_tx("UniswapV2Pair", pool_addr, "burn", [owner], owner, 400_000)]
        return txs, Action("remove_v2", m.pool(pool_addr).label, owner, f"{amount} LP", 2), None

    def _build_add_v3(self):
        m = self.market
        pools = [p for p in m.pools if p.kind == PoolKind.CONCENTRATED]
        if not pools:
            return None
        pool = self.rng.choice(pools)
        _, tick, _ = m.slot0(pool)
        s = pool.tick_spacing
        lo = (tick // s - self.rng.randint(1, 6)) * s
        hi = (tick // s + self.rng.randint(1, 6)) * s
        usd = self.config.liquidity_usd * self.rng.uniform(0.2, 1.0)
        a0, a1 = self._amount_of_usd(pool.token0, usd), self._amount_of_usd(pool.token1, usd)
        sender = self._trader()
        params = (pool.token0, pool.token1, pool.fee_pips, lo, hi, a0, a1, 0, 0, sender, DEADLINE)
        tx = m._call_tx("NonfungiblePositionManager", m.v3_position_manager, "mint", [params], sender, GAS_V3_MINT)

        def minted(rc, pool=pool, sender=sender):
            npm = m.contract("NonfungiblePositionManager", m.v3_position_manager)
            for e in npm.events.IncreaseLiquidity().process_receipt(rc, errors=DISCARD):
                self._v3_positions.append((e["args"]["tokenId"], sender, pool.address, e["args"]["liquidity"]))
        return [tx], Action("add_v3", pool.label, sender, f"[{lo},{hi}]", 1), minted

    def _build_remove_v3(self):
        m = self.market
        if not self._v3_positions:
            return None
        token_id, owner, pool_addr, liquidity = self._v3_positions.pop(self.rng.randrange(len(self._v3_positions)))
        txs = [m._call_tx("NonfungiblePositionManager", m.v3_position_manager, "decreaseLiquidity",
                          [(token_id, liquidity, 0, 0, DEADLINE)], owner, GAS_V3_MINT),
               m._call_tx("NonfungiblePositionManager", m.v3_position_manager, "collect",
                          [(token_id, owner, 2**128 - 1, 2**128 - 1)], owner, GAS_V3_MINT)]
        return txs, Action("remove_v3", m.pool(pool_addr).label, owner, f"position {token_id}", 2), None

