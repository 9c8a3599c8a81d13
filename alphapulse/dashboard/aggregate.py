"""What the dashboard knows: opportunities, prices per venue, pipeline health.

Pure state machines fed with decoded frames and an injected clock (``now_ns``),
no Bokeh and no threads here, so every rule (ordering, best of the last hour,
exact formatting, price maths, rates) is unit-tested without a server. The
reader thread (:mod:`alphapulse.dashboard.feed`) owns the writes; sessions
read under :attr:`Aggregator.lock`.

Money rules: amounts stay Python ints end to end; prices are exact
:class:`fractions.Fraction` from reserves or ``sqrtPriceX96``; a float appears
only as the y value of a plot point, and USD figures are rounded only when
formatted for display (integer arithmetic, half away from zero).
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any, Iterable, Mapping

import numpy as np

from alphapulse.protocol import codec
from alphapulse.protocol import layout as L
from alphapulse.protocol.layout import Domain, Reject, Venue
from alphapulse.strategy.accounting import OpportunityBook

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
Q96 = 1 << 96

#: Short display names of the venues of PROTOCOL.md table 5.
VENUE_NAMES: dict[int, str] = {
    Venue.ETHEREUM: "Ethereum", Venue.POLYGON: "Polygon",
    Venue.UNISWAP_V2: "Uniswap V2", Venue.UNISWAP_V3: "Uniswap V3", Venue.SUSHISWAP: "SushiSwap",
    Venue.QUICKSWAP: "QuickSwap", Venue.SUSHISWAP_POLYGON: "SushiSwap",
    Venue.UNISWAP_V3_POLYGON: "Uniswap V3", Venue.QUICKSWAP_V3: "QuickSwap V3",
    Venue.SUSHISWAP_V3_POLYGON: "SushiSwap V3", Venue.TEST: "Test",
}


def short_hex(addr: bytes) -> str:
    h = bytes(addr).hex()
    return f"0x{h[:4]}…{h[-4:]}"


# ---------------------------------------------------------------- formatting
def format_units(amount: int, decimals: int | None) -> str:
    """Exact decimal string of ``amount`` native units (``1500000, 6 -> '1.5'``); no rounding."""
    if decimals is None or decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10 ** decimals)
    fs = str(frac).rjust(decimals, "0").rstrip("0")
    return f"{sign}{whole}" + (f".{fs}" if fs else "")


def format_usd_e8(v: int, places: int = 2) -> str:
    """``12345678901 -> '$123.46'``: USD x 1e8 rounded half away from zero for display only."""
    if not 0 <= places <= 8:
        raise ValueError("places must be 0..8")
    q = 10 ** (8 - places)
    mag = (abs(v) + q // 2) // q
    whole, frac = divmod(mag, 10 ** places)
    s = f"{whole:,}" + (f".{frac:0{places}d}" if places else "")
    return ("-$" if v < 0 and mag else "$") + s


def format_fraction(x: Fraction, sig: int = 8) -> str:
    """A positive exact price as a decimal string with ``sig`` significant digits (display)."""
    if x <= 0:
        return "0"
    # exact integer arithmetic: find e with 10^(sig-1) <= x * 10^-e < 10^sig
    n, d = x.numerator, x.denominator
    e = len(str(n)) - len(str(d)) - sig
    while True:
        m = (n * 10 ** -e) // d if e < 0 else n // (d * 10 ** e)
        if m >= 10 ** sig:
            e += 1
        elif m < 10 ** (sig - 1):
            e -= 1
        else:
            break
    scaled = Fraction(n, d) / (Fraction(10) ** e)
    m = int(scaled + Fraction(1, 2))              # round half up
    if m >= 10 ** sig:
        m //= 10
        e += 1
    digits = str(m)
    if e >= 0:
        return f"{int(digits + '0' * e):,}"
    point = len(digits) + e
    if point > 0:
        out = f"{int(digits[:point]):,}.{digits[point:]}"
    else:
        out = "0." + "0" * (-point) + digits
    return out.rstrip("0").rstrip(".") if "." in out else out


# ---------------------------------------------------------------- tokens
class TokenBook:
    """Token metadata: configured ``address -> (symbol, decimals)``, else learned decimals
    from pool frames and a short-hex symbol."""

    def __init__(self, tokens: Mapping[Any, Any] | Iterable[Any] | None = None) -> None:
        self._sym: dict[bytes, str] = {}
        self._dec: dict[bytes, int] = {}
        self._configured: set[bytes] = set()
        if tokens is None:
            return
        entries: list[tuple[Any, Any, Any]] = []
        if isinstance(tokens, Mapping):            # address -> (symbol, decimals) | {symbol, decimals}
            for addr, meta in tokens.items():
                sym, dec = ((meta["symbol"], meta["decimals"]) if isinstance(meta, Mapping)
                            else tuple(meta))
                entries.append((addr, sym, dec))
        else:                                      # (address, symbol, decimals) | dict | TokenConfig
            for it in tokens:
                if isinstance(it, Mapping):
                    entries.append((it["address"], it["symbol"], it["decimals"]))
                elif isinstance(it, (tuple, list)):
                    entries.append(tuple(it))
                else:
                    entries.append((it.address, it.symbol, it.decimals))
        for addr, sym, dec in entries:
            a = codec.address_bytes(addr)
            if not isinstance(dec, int) or not 0 <= dec <= 77:
                raise ValueError(f"token {addr}: decimals must be an int in 0..77, got {dec!r}")
            self._sym[a], self._dec[a] = str(sym), dec
            self._configured.add(a)

    def symbol(self, addr: bytes) -> str:
        return self._sym.get(bytes(addr)) or short_hex(addr)

    def decimals(self, addr: bytes) -> int | None:
        return self._dec.get(bytes(addr))

    def learn(self, addr: bytes, decimals: int) -> None:
        """Decimals seen in a pool frame; configured values win."""
        a = bytes(addr)
        if a not in self._configured:
            self._dec[a] = decimals


# ---------------------------------------------------------------- opportunities
@dataclass
class OpportunityRow:
    seq: int                  # dashboard-local, increasing
    ts_ns: int                # header timestamp of the signal frame
    signal_id: int
    block: int
    path: str                 # "WETH → USDC → WETH"
    venues: str               # "QuickSwap → SushiSwap"
    amount_in: int
    amount_out: int
    gross_token: int          # amount_out - amount_in, start-token units (exact)
    start_symbol: str
    start_decimals: int | None
    net_usd_e8: int
    gross_usd_e8: int
    gas_usd_e8: int
    gas_wei: int
    spread_bps: int
    unpriced: bool
    strategy_id: int = 0
    # what the execution component made of it (ExecutionReport records, PROTOCOL.md type 40)
    check: str = ""               # confirmed | changed | unprofitable | reverted ("" until checked)
    checked_out: int | None = None   # the cycle's output when executed by contract code (start-token units)
    check_ns: int | None = None   # from the signal's trigger to the check's result
    tx: str = ""                  # send mode: sent | included | failed

    _cells: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    def display(self) -> dict[str, Any]:
        """Column values for the table (strings for exact integers); formatted once, shared
        by every session. ``ts_ms`` lets the browser show the age without server pushes."""
        if self._cells is None:
            usd = (lambda v: "unpriced") if self.unpriced else format_usd_e8
            self._cells = {
                "seq": self.seq, "signal_id": str(self.signal_id), "block": self.block,
                "time": datetime.fromtimestamp(self.ts_ns / 1e9, timezone.utc).strftime(
                    "%H:%M:%S.%f")[:-3],
                "ts_ms": self.ts_ns / 1e6,
                "path": self.path, "venues": self.venues,
                "amount_in": f"{format_units(self.amount_in, self.start_decimals)} {self.start_symbol}",
                "amount_in_units": str(self.amount_in),
                "gross_token": f"{format_units(self.gross_token, self.start_decimals)} {self.start_symbol}",
                "gross_usd": usd(self.gross_usd_e8), "net_usd": usd(self.net_usd_e8),
                "gas_usd": usd(self.gas_usd_e8), "gas_wei": str(self.gas_wei),
                "spread": f"{self.spread_bps} bps",
                "check": self.check or "–",
                "checked_out": ("–" if self.checked_out is None else
                                f"{format_units(self.checked_out, self.start_decimals)} {self.start_symbol}"),
                "check_ms": "–" if self.check_ns is None else f"{self.check_ns / 1e6:,.1f} ms",
                "tx": self.tx or "–",
            }
        return self._cells


#: ExecutionReport.status -> the word shown (checks: 1-4; send mode's transaction states: 5-7)
CHECK_STATES = {int(L.ExecutionStatus.CONFIRMED): "confirmed", int(L.ExecutionStatus.CHANGED): "changed",
                int(L.ExecutionStatus.UNPROFITABLE): "unprofitable", int(L.ExecutionStatus.REVERTED): "reverted"}
TX_STATES = {int(L.ExecutionStatus.SENT): "sent", int(L.ExecutionStatus.INCLUDED): "included",
             int(L.ExecutionStatus.FAILED): "failed"}


class Opportunities:
    """The newest ``max_rows`` signals, running totals, and the best of the last hour.

    The best is kept with a monotonic deque (sliding-window maximum over the
    whole hour, not only the rows still displayed): O(1) amortised per signal.
    """

    def __init__(self, tokens: TokenBook, max_rows: int = 500, best_window_ns: int = HOUR_NS,
                 venue_names: Mapping[int, str] | None = None) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        self.tokens = tokens
        self.rows: deque[OpportunityRow] = deque(maxlen=max_rows)
        self.best_window_ns = best_window_ns
        self.venue_names = dict(VENUE_NAMES) | dict(venue_names or {})
        self._best: deque[OpportunityRow] = deque()   # net_usd_e8 strictly decreasing
        self.next_seq = 1
        self.count = 0
        self.priced_count = 0
        self.unpriced_count = 0
        self.total_net_usd_e8 = 0
        self.skipped = 0                               # malformed signals (counted, not shown)
        # execution reports: the row of each shown signal, rows changed by a report (update
        # number, row seq) for sessions to patch, reports per state, reports of no shown row
        self._by_signal: dict[tuple[int, int], OpportunityRow] = {}
        self.updates: deque[tuple[int, int]] = deque(maxlen=4 * max_rows)
        self.update_seq = 0
        self.reports: dict[str, int] = {}
        self.reports_unmatched = 0
        self.reports_skipped = 0                       # unknown status (counted, not shown)

    def venue(self, v: int) -> str:
        return self.venue_names.get(v, f"venue {v}")

    def add(self, sig: Any, ts_ns: int) -> OpportunityRow | None:
        """Add one decoded ArbitrageSignal (``codec.ArbitrageSignal``) stamped ``ts_ns``."""
        hops = sig.hops
        if hops not in (2, 3):
            self.skipped += 1
            return None
        toks = sig.tokens[:hops]
        start = toks[0]
        path = " → ".join(self.tokens.symbol(t) for t in (*toks, start))
        venues = " → ".join(self.venue(v) for v in sig.venues[:hops])
        unpriced = bool(sig.flags & L.SIGNAL_UNPRICED)
        row = OpportunityRow(
            seq=self.next_seq, ts_ns=ts_ns, signal_id=sig.signal_id, block=sig.block_number,
            path=path, venues=venues, amount_in=sig.amount_in, amount_out=sig.amount_out,
            gross_token=sig.amount_out - sig.amount_in, start_symbol=self.tokens.symbol(start),
            start_decimals=self.tokens.decimals(start), net_usd_e8=sig.net_profit_usd_e8,
            gross_usd_e8=sig.gross_profit_usd_e8, gas_usd_e8=sig.gas_cost_usd_e8,
            gas_wei=sig.gas_cost_wei, spread_bps=sig.spread_bps, unpriced=unpriced, strategy_id=sig.strategy_id)
        self.next_seq += 1
        if len(self.rows) == self.rows.maxlen:
            old = self.rows[0]
            if self._by_signal.get((old.strategy_id, old.signal_id)) is old:
                del self._by_signal[(old.strategy_id, old.signal_id)]
        self.rows.append(row)
        self._by_signal[(row.strategy_id, row.signal_id)] = row
        self.count += 1
        if unpriced:
            self.unpriced_count += 1
        else:
            self.priced_count += 1
            self.total_net_usd_e8 += row.net_usd_e8
            while self._best and self._best[-1].net_usd_e8 <= row.net_usd_e8:
                self._best.pop()
            self._best.append(row)
        return row

    def report(self, rep: Any) -> OpportunityRow | None:
        """Apply one decoded ExecutionReport to its signal's row: the check's result, checked
        output and latency (trigger -> result), or the transaction's state. A report of a signal
        no longer shown is counted (``reports_unmatched``); the state counts include it."""
        status = int(rep.status)
        name = CHECK_STATES.get(status) or TX_STATES.get(status)
        if name is None:
            self.reports_skipped += 1
            return None
        self.reports[name] = self.reports.get(name, 0) + 1
        row = self._by_signal.get((int(rep.strategy_id), int(rep.signal_id)))
        if row is None:
            self.reports_unmatched += 1
            return None
        if status in CHECK_STATES:
            row.check, row.checked_out = name, int(rep.amount_out_checked)
            row.check_ns = max(0, int(rep.done_ts_ns) - int(rep.trigger_ts_ns)) if rep.trigger_ts_ns else None
        else:
            row.tx = name
        row._cells = None
        self.update_seq += 1
        self.updates.append((self.update_seq, row.seq))
        return row

    def updated_after(self, n: int) -> tuple[list[OpportunityRow], int]:
        """Rows still shown that reports changed after update number ``n`` (each once), and the
        newest update number."""
        seqs = []
        for u, seq in reversed(self.updates):
            if u <= n:
                break
            seqs.append(seq)
        first = self.rows[0].seq if self.rows else 0
        by_seq = {}
        for seq in seqs:
            if seq >= first and seq not in by_seq:
                by_seq[seq] = self.rows[seq - first]
        return [by_seq[k] for k in sorted(by_seq)], self.update_seq

    def best(self, now_ns: int) -> OpportunityRow | None:
        """Highest net USD profit among priced signals of the last window (ties: newest)."""
        lo = now_ns - self.best_window_ns
        while self._best and self._best[0].ts_ns < lo:
            self._best.popleft()
        return self._best[0] if self._best else None

    def rows_after(self, seq: int) -> list[OpportunityRow]:
        """Rows with ``row.seq > seq``, oldest first (what a session has not seen yet)."""
        out = []
        for r in reversed(self.rows):
            if r.seq <= seq:
                break
            out.append(r)
        out.reverse()
        return out


# ---------------------------------------------------------------- prices
def price_v2(reserve0: int, reserve1: int, dec0: int, dec1: int) -> Fraction | None:
    """Exact mid price of token0 in token1 (human units) of a constant-product pool."""
    if reserve0 <= 0 or reserve1 <= 0:
        return None
    return Fraction(reserve1 * 10 ** dec0, reserve0 * 10 ** dec1)


def price_v3(sqrt_price_x96: int, dec0: int, dec1: int) -> Fraction | None:
    """Exact price of token0 in token1 (human units) from ``sqrtPriceX96``."""
    if sqrt_price_x96 <= 0:
        return None
    return Fraction(sqrt_price_x96 * sqrt_price_x96 * 10 ** dec0, (Q96 * Q96) * 10 ** dec1)


PairKey = tuple[bytes, bytes]          # (token0, token1), token0 < token1 as pools order them


@dataclass
class PoolSeries:
    """Price history of one pool, as token1 per token0 in its pair's display orientation."""
    pool: bytes
    pair: PairKey
    venue: int
    label: str
    capacity: int
    t_ms: np.ndarray = field(init=False)
    price: np.ndarray = field(init=False)
    total: int = 0                     # points ever committed (sessions keep a cursor)
    last_exact: Fraction | None = None
    last_block: int = 0
    last_commit_ns: int = -(1 << 62)
    pending: tuple[int, float] | None = None

    def __post_init__(self) -> None:
        self.t_ms = np.zeros(self.capacity)
        self.price = np.zeros(self.capacity)

    def commit(self, ts_ns: int, value: float) -> None:
        i = self.total % self.capacity
        self.t_ms[i] = ts_ns / 1e6
        self.price[i] = value
        self.total += 1
        self.last_commit_ns = ts_ns
        self.pending = None

    def points_after(self, cursor: int) -> tuple[list[float], list[float], int]:
        """Points committed after ``cursor`` (at most ``capacity``), oldest first, and the new cursor."""
        start = max(cursor, self.total - self.capacity)
        idx = [i % self.capacity for i in range(start, self.total)]
        return self.t_ms[idx].tolist(), self.price[idx].tolist(), self.total


@dataclass
class PairInfo:
    key: PairKey
    base: bytes                        # the token whose price is shown ...
    quote: bytes                       # ... in units of this one
    label: str                         # "WETH/USDC"
    pools: dict[bytes, PoolSeries] = field(default_factory=dict)


class PriceBook:
    """Latest exact price of every pool and a short history per pool, grouped by token pair.

    A pair's orientation (base/quote) is fixed at its first price so that the
    shown price is >= 1. History points are thinned to one per
    ``min_interval_ns`` per pool: an update inside the interval replaces the
    pending point, which :meth:`flush` commits once the interval has passed,
    so the newest price is always shown within one interval.
    """

    def __init__(self, tokens: TokenBook, history: int = 600,
                 min_interval_ns: int = 100_000_000,
                 venue_names: Mapping[int, str] | None = None) -> None:
        self.tokens = tokens
        self.history = history
        self.min_interval_ns = min_interval_ns
        self.venue_names = dict(VENUE_NAMES) | dict(venue_names or {})
        self.pairs: dict[PairKey, PairInfo] = {}
        self.pools: dict[bytes, PoolSeries] = {}
        self.pairs_version = 0
        self.updates = 0
        self.skipped = 0               # zero reserves / zero price / removed events

    def _pool(self, pool: bytes, t0: bytes, t1: bytes, venue: int, fee_pips: int,
              first: Fraction) -> PoolSeries:
        ps = self.pools.get(pool)
        if ps is not None:
            return ps
        key = (t0, t1)
        pair = self.pairs.get(key)
        if pair is None:
            base, quote = (t0, t1) if first >= 1 else (t1, t0)
            pair = PairInfo(key, base, quote,
                            f"{self.tokens.symbol(base)}/{self.tokens.symbol(quote)}")
            self.pairs[key] = pair
        vname = self.venue_names.get(venue, f"venue {venue}")
        label = vname + (f" {fee_pips / 1e4:g}%" if fee_pips else "")
        if any(p.label == label for p in pair.pools.values()):
            label += f" {short_hex(pool)}"
        ps = PoolSeries(pool, key, venue, label, self.history)
        pair.pools[pool] = ps
        self.pools[pool] = ps
        self.pairs_version += 1
        return ps

    def update(self, pool: bytes, venue: int, token0: bytes, token1: bytes, price01: Fraction | None,
               ts_ns: int, block: int, fee_pips: int = 0) -> None:
        """One exact price (token1 per token0) for ``pool`` at ``ts_ns``."""
        if price01 is None:
            self.skipped += 1
            return
        pool, token0, token1 = bytes(pool), bytes(token0), bytes(token1)
        if token1 < token0:                               # keep pairs canonical
            token0, token1, price01 = token1, token0, 1 / price01
        ps = self._pool(pool, token0, token1, venue, fee_pips, price01)
        pair = self.pairs[ps.pair]
        shown = price01 if pair.base == token0 else 1 / price01
        ps.last_exact = shown
        ps.last_block = block
        self.updates += 1
        value = float(shown)                              # display only
        if ts_ns - ps.last_commit_ns >= self.min_interval_ns:
            ps.commit(ts_ns, value)
        else:
            ps.pending = (ts_ns, value)

    def flush(self, now_ns: int) -> None:
        """Commit pending points whose interval has passed."""
        for ps in self.pools.values():
            if ps.pending is not None and now_ns - ps.last_commit_ns >= self.min_interval_ns:
                ps.commit(max(ps.pending[0], ps.last_commit_ns + self.min_interval_ns), ps.pending[1])

    def pair_options(self) -> list[tuple[str, str]]:
        """(pair id, label with pool count), most pools first: the Select widget's options."""
        ps = sorted(self.pairs.values(), key=lambda p: (-len(p.pools), p.label))
        return [(pair_id(p.key), f"{p.label} ({len(p.pools)} pools)") for p in ps]

    def default_pair(self) -> PairKey | None:
        if not self.pairs:
            return None
        return max(self.pairs.values(), key=lambda p: (len(p.pools), p.label)).key


def pair_id(key: PairKey) -> str:
    return key[0].hex() + ":" + key[1].hex()


def parse_pair_id(s: str) -> PairKey:
    a, b = s.split(":")
    return bytes.fromhex(a), bytes.fromhex(b)


# ---------------------------------------------------------------- health
class RateMeter:
    """Rate of a monotonic counter over a sliding window of samples (default 5 s), so
    sparse events (a signal now and then) read as a steady rate, not 0 / spike / 0."""

    def __init__(self, window_ns: int = 5 * NS_PER_S) -> None:
        self.window_ns = window_ns
        self.samples: deque[tuple[int, int]] = deque()
        self.rate = 0.0

    def sample(self, value: int, now_ns: int) -> float:
        s = self.samples
        s.append((now_ns, value))
        while len(s) > 2 and s[1][0] <= now_ns - self.window_ns:
            s.popleft()
        t0, v0 = s[0]
        if now_ns > t0:
            self.rate = max(0, value - v0) * NS_PER_S / (now_ns - t0)
        return self.rate


class Health:
    """Pipeline health from ring statistics, the metrics block and the dashboard's own reads."""

    def __init__(self, trend_points: int = 600) -> None:
        self.rings: dict[str, dict[str, Any]] = {}
        self.ring_rates: dict[str, RateMeter] = {}
        self.metrics: dict[str, Any] | None = None
        self.component_rates: dict[tuple[str, str], RateMeter] = {}
        self.rejects: dict[str, int] = {}          # dashboard's own: reason name -> count
        self.frames_read: dict[str, int] = {}      # dashboard's own: ring -> frames
        self.lost: dict[str, int] = {}             # dashboard's own: ring -> frames it was lapped by
        self.skipped: dict[str, int] = {}          # dashboard's own: ring -> burst frames not decoded
        self.read_rates: dict[str, RateMeter] = {}
        self.trend: deque[tuple[float, dict[str, float]]] = deque(maxlen=trend_points)
        self.version = 0
        self.last_block = 0
        self.errors: dict[str, str] = {}           # source -> last error text (attach failures...)
        # pools the strategy asked the source to refresh (PoolRefresh on the system ring) and no
        # snapshot has answered yet: pool -> name (token symbols where known)
        self.waiting: dict[bytes, str] = {}
        self._lat_hist: deque[tuple[int, dict[str, list[int]]]] = deque(maxlen=128)

    def note_frames(self, ring: str, n: int) -> None:
        self.frames_read[ring] = self.frames_read.get(ring, 0) + n

    def note_reject(self, reason: Reject) -> None:
        self.rejects[reason.name] = self.rejects.get(reason.name, 0) + 1

    def set_ring_stats(self, ring: str, stats: Mapping[str, Any], published: int | None,
                       now_ns: int) -> None:
        """``stats`` as returned by ``Ring.stats()``; ``published`` the producer's frame count."""
        self.rings[ring] = dict(stats)
        if published is not None:
            self.ring_rates.setdefault(ring, RateMeter()).sample(published, now_ns)

    def set_metrics(self, snap: Mapping[str, Any], now_ns: int) -> None:
        self.metrics = dict(snap)
        for comp, d in snap["components"].items():
            for key in ("frames_in", "frames_out", "signals"):
                self.component_rates.setdefault((comp, key), RateMeter()).sample(
                    d["counters"][key], now_ns)
            self.last_block = max(self.last_block, d["gauges"].get("last_block", 0))
        self._lat_hist.append((now_ns, {c: list(d["latency"]["buckets"])
                                        for c, d in snap["components"].items()}))

    def latency_window(self, comp: str, seconds: float) -> list[int]:
        """Histogram counts of ``comp`` over (about) the last ``seconds``: the
        newest snapshot minus the newest one at least that old (or the oldest kept)."""
        if not self._lat_hist or comp not in self._lat_hist[-1][1]:
            return []
        now, cur = self._lat_hist[-1]
        lo = now - int(seconds * NS_PER_S)
        base = None
        for ts, b in reversed(self._lat_hist):
            if ts <= lo:
                base = b
                break
        if base is None:
            base = self._lat_hist[0][1]
            if self._lat_hist[0][0] == now:
                return list(cur[comp])
        old = base.get(comp, [0] * len(cur[comp]))
        return [max(0, a - b) for a, b in zip(cur[comp], old)]

    def sample(self, now_ns: int) -> None:
        """Close one health period: rates of the dashboard's own reads, one trend point."""
        for ring, n in self.frames_read.items():
            self.read_rates.setdefault(ring, RateMeter()).sample(n, now_ns)
        point = {f"ring:{r}": m.rate for r, m in self.ring_rates.items()}
        point.update({f"read:{r}": m.rate for r, m in self.read_rates.items()})
        self.trend.append((now_ns / 1e6, point))
        self.version += 1

    def ring_rate(self, ring: str) -> float:
        m = self.ring_rates.get(ring) or self.read_rates.get(ring)
        return m.rate if m else 0.0

    def component_rate(self, comp: str, key: str) -> float:
        m = self.component_rates.get((comp, key))
        return m.rate if m else 0.0


# ---------------------------------------------------------------- the whole state
class Aggregator:
    """Everything the dashboard shows, fed frame by frame by the reader thread.

    ``lock`` guards all state; writers hold it per batch, sessions while they
    copy what they push. Each part has a counter that sessions compare with
    what they last pushed.
    """

    def __init__(self, tokens: TokenBook | None = None, *, max_rows: int = 500,
                 price_history: int = 600, price_interval_ns: int = 100_000_000,
                 best_window_ns: int = HOUR_NS, market_crc_every: int = 100,
                 venue_names: Mapping[int, str] | None = None, capturable_points: int = 600) -> None:
        self.tokens = tokens or TokenBook()
        self.lock = threading.RLock()
        self.opportunities = Opportunities(self.tokens, max_rows, best_window_ns, venue_names)
        # opportunities, signals and capturable profit (one definition: strategy.accounting);
        # the per-block series keeps its newest capturable_points blocks for the chart
        self.capturable: deque[tuple[int, int, int]] = deque(maxlen=capturable_points)  # (n, block, e8)
        self._capturable_n = 0
        self.book = OpportunityBook(keep_closed=0, keep_blocks=0, on_block=self._on_block)
        self.prices = PriceBook(self.tokens, price_history, price_interval_ns, venue_names)
        self.health = Health()
        if market_crc_every < 1:
            raise ValueError("market_crc_every must be >= 1")
        self.market_crc_every = market_crc_every
        self._md_seen = 0
        self.gas: Any = None

    # -- frames
    def ingest(self, ring: str, frame: bytes | memoryview, now_ns: int) -> bool:
        """Validate and apply one whole frame; False (counted by reason) when rejected.

        Checksums (PROTOCOL.md section 1): every frame of the signal and
        execution domains, every ``market_crc_every``-th market-data frame.
        """
        try:
            h = codec.parse_header(frame)
            if h.relay_domain == Domain.MARKET_DATA:
                self._md_seen += 1
                verify = self._md_seen % self.market_crc_every == 0
            else:
                verify = True
            fr = codec.parse_frame(frame, verify_checksum=verify)
        except codec.FrameError as e:
            self.health.note_reject(e.reason)
            return False
        ts = fr.header.timestamp_ns
        for rec in fr.tlvs:
            t = getattr(rec, "TYPE", 0)
            if t:
                self.book.feed(rec)
            if t == L.ARBITRAGE_SIGNAL.type_id:
                self.opportunities.add(rec, ts)
            elif t == L.EXECUTION_REPORT.type_id:
                self.opportunities.report(rec)
            elif t == L.POOL_SYNC.type_id:
                self._sync(rec, ts)
            elif t == L.POOL_STATE.type_id:
                self._state(rec, ts)
            elif t == L.POOL_SWAP.type_id:
                self._swap(rec, ts)
            elif t == L.GAS_PRICE.type_id:
                self.gas = rec
            elif t == L.POOL_REFRESH.type_id:
                self._refresh(rec)
            if t in (L.POOL_SYNC.type_id, L.POOL_STATE.type_id, L.POOL_SWAP.type_id):
                self.health.last_block = max(self.health.last_block, rec.block_number)
        return True

    def _on_block(self, block: int, capturable_e8: int) -> None:
        self._capturable_n += 1
        self.capturable.append((self._capturable_n, block, capturable_e8))

    def capturable_after(self, n: int) -> list[tuple[int, int, int]]:
        """Per-block capturable points newer than ``n``: (n, block, USD e8), oldest first."""
        out = []
        for p in reversed(self.capturable):
            if p[0] <= n:
                break
            out.append(p)
        out.reverse()
        return out

    def _sync(self, r: Any, ts: int) -> None:
        if r.flags & L.EVENT_REMOVED:
            self.prices.skipped += 1          # the next Sync of the pool carries the restored reserves
            return
        self.tokens.learn(r.token0, r.token0_decimals)
        self.tokens.learn(r.token1, r.token1_decimals)
        self.prices.update(r.pool, r.venue, r.token0, r.token1,
                           price_v2(r.reserve0, r.reserve1, r.token0_decimals, r.token1_decimals),
                           ts, r.block_number)

    def _refresh(self, r: Any) -> None:
        pool = bytes(r.pool)
        ps = self.prices.pools.get(pool)
        info = self.prices.pairs.get(ps.pair) if ps is not None else None
        pair = f" ({info.label})" if info is not None else ""
        self.health.waiting[pool] = f"{short_hex(pool)}{pair}"

    def _state(self, r: Any, ts: int) -> None:
        self.health.waiting.pop(bytes(r.pool), None)     # the snapshot that answers a refresh
        self.tokens.learn(r.token0, r.token0_decimals)
        self.tokens.learn(r.token1, r.token1_decimals)
        if r.pool_kind != L.PoolKind.CONSTANT_PRODUCT:     # Uniswap V3 and Algebra (QuickSwap V3)
            p = price_v3(r.sqrt_price_x96, r.token0_decimals, r.token1_decimals)
            fee = r.fee_pips
        else:
            p = price_v2(r.reserve0, r.reserve1, r.token0_decimals, r.token1_decimals)
            fee = 0
        self.prices.update(r.pool, r.venue, r.token0, r.token1, p, ts, r.block_number, fee)

    def _swap(self, r: Any, ts: int) -> None:
        if r.flags & L.EVENT_REMOVED or r.sqrt_price_x96_after == 0:
            return                            # V2 swaps: the pool's Sync carries the reserves
        if r.flags & L.EVENT_TOKEN0_IN:
            t0, t1, d0, d1 = r.token_in, r.token_out, r.amount_in_decimals, r.amount_out_decimals
        else:
            t0, t1, d0, d1 = r.token_out, r.token_in, r.amount_out_decimals, r.amount_in_decimals
        self.tokens.learn(t0, d0)
        self.tokens.learn(t1, d1)
        # the fee tier is not on the wire in a swap: a pool first seen through a
        # swap is labelled by venue only (a PoolState names it)
        self.prices.update(r.pool, r.venue, t0, t1, price_v3(r.sqrt_price_x96_after, d0, d1),
                           ts, r.block_number)
