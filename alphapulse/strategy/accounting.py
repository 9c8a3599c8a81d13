"""Opportunity accounting: what a stream of signals is worth to one trader.

Signals are publications; a trader cares about opportunities and what can be captured.

* An **opportunity** is one cycle (its pools and their direction, whatever token it is
  started from) from the block where a signal first shows it profitable to the first block
  at whose end it no longer is. Its republications are updates of the same opportunity: it
  counts once, with its best net profit. Whether a cycle is still profitable is read from the
  market stream, not guessed from silence (the strategy republishes only material changes):
  the book tracks every pool's marginal price (PoolSync, PoolSwap, PoolState) and, at the end
  of each block in which one of an opportunity's pools moved, closes the opportunity if the
  product of its marginal rates after the pools' fees is no longer above 1.
  ``lifetime_blocks = closed_block - first_block``: 0 for an opportunity gone by the end of
  the block that opened it.
* **Capturable profit** of a block: among that block's signals still open at the block's end
  (the last publication of each cycle), the set with pairwise disjoint pools (one trade per
  pool per block) of largest total net profit. The sum over blocks is the headline profit.
* Signals flagged intra-block (``L.SIGNAL_INTRA_BLOCK``: priced between two events of one
  block) or unpriced (``L.SIGNAL_UNPRICED``: no USD value) never count as profit; intra-block
  signals do not open opportunities either.

A block ends at a BlockEnd record, or, in a stream without them, at the first pool event or
signal of a later block (PROTOCOL.md 4, type 19). Pure state: no clock, no threads, no I/O.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

from alphapulse.protocol import layout as L

__all__ = ["CycleKey", "Opportunity", "OpportunityBook", "best_disjoint_set", "cycle_key"]

PIPS = 1_000_000
Q192 = 1 << 192
#: exact set packing explores at most this many nodes per block; beyond it the best set found
#: so far is used and the block is counted in ``inexact_blocks``
PACKING_NODE_LIMIT = 200_000

CycleKey = tuple  # ((pool, token_in) per hop, rotated to start at the smallest pool address)
_COUNTED_OUT = L.SIGNAL_UNPRICED | L.SIGNAL_INTRA_BLOCK


def cycle_key(sig: Any) -> CycleKey:
    """The cycle of a signal, independent of its start token: ``(pool, token_in)`` per hop,
    rotated so that the smallest pool address comes first (direction is kept)."""
    hops = [(bytes(sig.pools[i]), bytes(sig.tokens[i])) for i in range(sig.hops)]
    i0 = min(range(len(hops)), key=lambda i: hops[i])
    return tuple(hops[i0:] + hops[:i0])


def best_disjoint_set(cands: list[tuple[int, frozenset]], node_limit: int = PACKING_NODE_LIMIT
                      ) -> tuple[int, list[int], bool]:
    """Largest total value of candidates ``(value, pools)`` with pairwise disjoint pool sets.

    Returns (total, chosen indices, exact). Branch and bound over the candidates by value,
    bounded by the sum of the values left; values <= 0 are never chosen. ``exact`` is False
    when ``node_limit`` nodes were explored before the search finished.
    """
    order = sorted((i for i, (v, _) in enumerate(cands) if v > 0), key=lambda i: -cands[i][0])
    suffix = [0] * (len(order) + 1)
    for k in range(len(order) - 1, -1, -1):
        suffix[k] = suffix[k + 1] + cands[order[k]][0]
    best = [0, []]
    nodes = [0]

    def search(k: int, total: int, used: frozenset, chosen: list[int]) -> None:
        nodes[0] += 1
        if total > best[0]:
            best[0], best[1] = total, list(chosen)
        if k == len(order) or total + suffix[k] <= best[0] or nodes[0] > node_limit:
            return
        i = order[k]
        v, pools = cands[i]
        if not (pools & used):
            chosen.append(i)
            search(k + 1, total + v, used | pools, chosen)
            chosen.pop()
        search(k + 1, total, used, chosen)

    search(0, 0, frozenset(), [])
    return best[0], sorted(best[1]), nodes[0] <= node_limit


@dataclass
class Opportunity:
    key: CycleKey
    first_block: int
    last_signal: Any
    signals: int = 1
    best_net_profit_usd_e8: int | None = None    # None: unpriced
    best_signal_id: int = 0
    closed_block: int | None = None              # None: still open

    def lifetime_blocks(self, current_block: int) -> int:
        end = self.closed_block if self.closed_block is not None else current_block
        return end - self.first_block

    def to_json(self, current_block: int) -> dict[str, Any]:
        sig = self.last_signal
        return {"first_block": self.first_block, "closed_block": self.closed_block,
                "lifetime_blocks": self.lifetime_blocks(current_block), "signals": self.signals,
                "best_net_profit_usd_e8": self.best_net_profit_usd_e8, "best_signal_id": self.best_signal_id,
                "hops": sig.hops, "pools": ["0x" + bytes(p).hex() for p in sig.pools[:sig.hops]],
                "tokens": ["0x" + bytes(t).hex() for t in sig.tokens[:sig.hops]]}


@dataclass
class _PoolMark:
    token0: bytes
    price01: Fraction          # token1 base units per token0 base unit, marginal, before fees


@dataclass
class OpportunityBook:
    """Feed it pool records, BlockEnd records and signals in stream order; read the totals.

    ``keep_closed``: how many closed opportunities to keep (None: all, for a report);
    ``keep_blocks``: how many blocks of ``capturable_by_block`` to keep (None: all); the totals
    always cover everything. ``on_block(block, capturable_e8)`` is called at each block end
    that had signals.
    """
    keep_closed: int | None = None
    keep_blocks: int | None = None
    on_block: Callable[[int, int], None] | None = None
    current_block: int = 0
    signals: int = 0
    signals_intra_block: int = 0
    signals_unpriced: int = 0
    opportunities: int = 0
    opportunities_unpriced: int = 0
    capturable_usd_e8: int = 0
    signals_net_usd_e8: int = 0           # sum over counted signals: what the headline is not
    inexact_blocks: int = 0
    skipped_signals: int = 0              # signals with a hop count other than 2 or 3
    skipped_records: int = 0              # pool records without a usable price or removed by a
                                          # reorganisation (counted, not applied)
    open: dict = field(default_factory=dict)
    closed: deque = field(default_factory=deque)
    capturable_by_block: dict = field(default_factory=dict)
    _marks: dict = field(default_factory=dict)
    _moved: set = field(default_factory=set)
    _block_signals: dict = field(default_factory=dict)
    _lifetimes: dict = field(default_factory=dict)   # lifetime in blocks -> closed opportunities

    def __post_init__(self) -> None:
        self.closed = deque(maxlen=self.keep_closed)

    # ------------------------------------------------------------------ input
    def feed(self, rec: Any) -> None:
        """One decoded TLV record of either domain; other types are ignored."""
        t = rec.TYPE
        if t == L.ARBITRAGE_SIGNAL.type_id:
            self.signal(rec)
        elif t == L.BLOCK_END.type_id:
            self._advance(int(rec.block_number))
            self.end_block(int(rec.block_number))
        elif t in (L.POOL_SYNC.type_id, L.POOL_SWAP.type_id, L.POOL_STATE.type_id):
            self.pool_record(rec)

    def feed_all(self, recs: Iterable[Any]) -> None:
        for rec in recs:
            self.feed(rec)

    def pool_record(self, rec: Any) -> None:
        """PoolSync, PoolSwap or PoolState: the pool's marginal price after it."""
        self._advance(int(rec.block_number))
        if rec.flags & L.EVENT_REMOVED:
            self.skipped_records += 1     # the pool's next record carries the restored state
            return
        t = rec.TYPE
        pool = bytes(rec.pool)
        if t == L.POOL_SYNC.type_id:
            token0, price = bytes(rec.token0), (Fraction(rec.reserve1, rec.reserve0) if rec.reserve0 else None)
        elif t == L.POOL_SWAP.type_id:
            if not rec.sqrt_price_x96_after:
                return     # a constant-product swap: its Sync carries the reserves
            token0 = bytes(rec.token_in if rec.flags & L.EVENT_TOKEN0_IN else rec.token_out)
            price = Fraction(rec.sqrt_price_x96_after ** 2, Q192)
        else:
            token0 = bytes(rec.token0)
            if rec.pool_kind == L.PoolKind.CONSTANT_PRODUCT:
                price = Fraction(rec.reserve1, rec.reserve0) if rec.reserve0 else None
            else:
                price = Fraction(rec.sqrt_price_x96 ** 2, Q192) if rec.sqrt_price_x96 else None
        if price is None or price <= 0:
            self.skipped_records += 1
            return
        self._marks[pool] = _PoolMark(token0, price)
        self._moved.add(pool)

    def signal(self, sig: Any) -> None:
        if sig.hops not in (2, 3):
            self.skipped_signals += 1     # malformed: counted, never a cycle
            return
        self._advance(int(sig.block_number))
        self.signals += 1
        if sig.flags & L.SIGNAL_INTRA_BLOCK:
            self.signals_intra_block += 1
            return
        priced = not sig.flags & L.SIGNAL_UNPRICED
        if not priced:
            self.signals_unpriced += 1
        else:
            self.signals_net_usd_e8 += int(sig.net_profit_usd_e8)
        key = cycle_key(sig)
        opp = self.open.get(key)
        if opp is None:
            opp = self.open[key] = Opportunity(key, self.current_block, sig, signals=0)
            self.opportunities += 1
            if not priced:
                self.opportunities_unpriced += 1
        opp.signals += 1
        opp.last_signal = sig
        if priced and (opp.best_net_profit_usd_e8 is None or sig.net_profit_usd_e8 > opp.best_net_profit_usd_e8):
            opp.best_net_profit_usd_e8 = int(sig.net_profit_usd_e8)
            opp.best_signal_id = int(sig.signal_id)
        self._block_signals[key] = sig

    # ------------------------------------------------------------------ blocks
    def _advance(self, block: int) -> None:
        """A record of a later block ends the blocks before it (streams without BlockEnd)."""
        if block > self.current_block:
            if self.current_block:
                self.end_block(self.current_block)
            self.current_block = block

    def end_block(self, block: int) -> None:
        """Close what the block's moves made unprofitable, then count its capturable profit."""
        if block < self.current_block:
            return         # a late BlockEnd of a block already ended by a later record
        self.current_block = block
        if self._moved:
            for key, opp in list(self.open.items()):
                if any(p in self._moved for p, _ in key) and not self._profitable(key, opp.last_signal):
                    self._close(key, block)
            self._moved = set()
        if self._block_signals:
            total, exact = self._block_best()
            self.inexact_blocks += not exact
            self._block_signals = {}
            if total:
                self.capturable_usd_e8 += total
                self.capturable_by_block[block] = total
                if self.keep_blocks is not None and len(self.capturable_by_block) > self.keep_blocks:
                    del self.capturable_by_block[next(iter(self.capturable_by_block))]
            if self.on_block is not None:
                self.on_block(block, total)

    def _block_best(self) -> tuple[int, bool]:
        cands = [(int(s.net_profit_usd_e8), frozenset(p for p, _ in k))
                 for k, s in self._block_signals.items() if k in self.open and not s.flags & _COUNTED_OUT]
        total, _, exact = best_disjoint_set(cands)
        return total, exact

    def pending_capturable_usd_e8(self) -> int:
        """What the current block's signals would add if it ended now (a live view's figure)."""
        return self._block_best()[0] if self._block_signals else 0

    def finish(self) -> None:
        """End of the stream: ends the current block (open opportunities stay open)."""
        if self.current_block:
            self.end_block(self.current_block)

    def _close(self, key: CycleKey, block: int) -> None:
        opp = self.open.pop(key)
        opp.closed_block = block
        life = block - opp.first_block
        self._lifetimes[life] = self._lifetimes.get(life, 0) + 1
        self.closed.append(opp)

    def _profitable(self, key: CycleKey, sig: Any) -> bool:
        """Product of the cycle's marginal rates after fees > 1 on the tracked prices (True
        while a pool's price is unknown: nothing says otherwise)."""
        fees = {bytes(sig.pools[i]): int(sig.fees_pips[i]) for i in range(sig.hops)}
        rate = Fraction(1)
        for pool, token_in in key:
            mark = self._marks.get(pool)
            if mark is None:
                return True
            r = mark.price01 if token_in == mark.token0 else 1 / mark.price01
            rate *= r * Fraction(PIPS - fees[pool], PIPS)
        return rate > 1

    # ------------------------------------------------------------------ output
    def lifetimes(self) -> dict[int, int]:
        """Closed opportunities per lifetime in blocks."""
        return dict(sorted(self._lifetimes.items()))

    def summary(self) -> dict[str, Any]:
        closed = sum(self._lifetimes.values())
        lives = sorted(self._lifetimes.items())

        def quantile(q: float) -> int | None:
            if not closed:
                return None
            target, seen = q * (closed - 1), 0
            for life, n in lives:
                seen += n
                if seen > target:
                    return life
            return lives[-1][0]
        best = max((o.best_net_profit_usd_e8 for o in self.all_opportunities()
                    if o.best_net_profit_usd_e8 is not None), default=0)
        return {
            "opportunities": self.opportunities, "opportunities_unpriced": self.opportunities_unpriced,
            "opportunities_open": len(self.open), "signals": self.signals,
            "signals_intra_block": self.signals_intra_block, "signals_unpriced": self.signals_unpriced,
            "capturable_profit_usd_e8": self.capturable_usd_e8,
            "blocks_with_capturable_profit": len(self.capturable_by_block),
            "signals_net_profit_usd_e8": self.signals_net_usd_e8,
            "best_opportunity_net_profit_usd_e8": best,
            "lifetime_blocks": {"closed": closed, "p50": quantile(0.5), "p90": quantile(0.9),
                                "max": lives[-1][0] if lives else None,
                                "histogram": {str(k): v for k, v in lives}},
            "inexact_blocks": self.inexact_blocks, "skipped_records": self.skipped_records,
            "skipped_signals": self.skipped_signals,
        }

    def all_opportunities(self) -> list[Opportunity]:
        """The kept closed opportunities, then the open ones, by first block."""
        return sorted(list(self.closed) + list(self.open.values()), key=lambda o: o.first_block)
