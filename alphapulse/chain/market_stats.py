"""Measures of a simulated market against what a real one looks like.

:class:`MarketProbe` is an ``on_block(simulator, block_report)`` callback for
:func:`alphapulse.apps.make_recording.record`: after each block it reads, from the chain, every
pool's USD value (at the reference prices) and every shared pair's best two-pool edge after
fees (:func:`~alphapulse.chain.simulator.fee_gaps`). :func:`market_figures` combines them with
a backtest report's opportunities into the three figures of a believable market:

- ``max_net_share``: the largest ratio of an opportunity's best net profit to the USD value of
  the smallest pool it trades (bound: 2 %);
- ``median_open``: the median over blocks of the number of opportunities alive in the block
  (bound: 0);
- ``longest_gap_blocks``: the longest run of blocks over which a pair's cross-pool gap after
  fees stays open (from the block it opens to the first block at whose end it is closed;
  bound: 5).
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["GapSpan", "MarketProbe", "gap_spans", "market_figures"]


@dataclass(frozen=True)
class GapSpan:
    pair: tuple[str, ...]     # the pair's token addresses, sorted
    opened: int               # block at whose end the gap is first open
    closed: int | None        # first later block at whose end it is closed; None: open at the end
    peak: Fraction            # the largest edge after fees while open

    @property
    def blocks(self) -> int | None:
        return None if self.closed is None else self.closed - self.opened


class MarketProbe:
    """Per block: each pool's USD value at the reference prices, each shared pair's fee gap."""

    def __init__(self) -> None:
        self.pool_usd: dict[int, dict[str, float]] = {}      # block -> pool (0x lower-case) -> USD
        self.gaps: dict[int, dict[frozenset, Fraction]] = {}  # block -> pair -> edge after fees
        self.arbs = 0

    def __call__(self, sim: Any, rep: Any) -> None:
        from alphapulse.chain.simulator import fee_gaps
        m = sim.market
        values = {}
        for p in m.pools:
            values["0x" + p.address[2:].lower()] = sum(
                m.balance(p.address, t) / 10 ** m.token(t).decimals * sim.reference[t] for t in (p.token0, p.token1))
        self.pool_usd[rep.block_number] = values
        self.gaps[rep.block_number] = fee_gaps(m)
        self.arbs += sum(1 for a in rep.actions if a.kind == "arb")


def gap_spans(gaps: dict[int, dict[frozenset, Fraction]]) -> list[GapSpan]:
    """Every opening of a pair's gap after fees (edge > 0) and the block it closes at."""
    blocks = sorted(gaps)
    spans = []
    open_at: dict[frozenset, tuple[int, Fraction]] = {}
    for b in blocks:
        for pair, edge in gaps[b].items():
            if edge > 0:
                start, peak = open_at.get(pair, (b, edge))
                open_at[pair] = (start, max(peak, edge))
            elif pair in open_at:
                start, peak = open_at.pop(pair)
                spans.append(GapSpan(tuple(sorted(pair)), start, b, peak))
    spans += [GapSpan(tuple(sorted(pair)), start, None, peak) for pair, (start, peak) in open_at.items()]
    return sorted(spans, key=lambda s: (s.opened, s.pair))


def market_figures(probe: MarketProbe, report: dict) -> dict[str, Any]:
    """The figures of the module docstring, from a probe and a backtest report (JSON dict) of the
    same run; ``worst_gap`` and ``worst_share`` name where the extremes are."""
    blocks = sorted(probe.pool_usd)
    opps = report["opportunities"]
    last = blocks[-1]
    worst_share, share_of = 0.0, None
    for o in opps:
        if o["best_net_profit_usd_e8"] is None:
            continue
        smallest = min(probe.pool_usd[o["first_block"]][p] for p in o["pools"])
        share = o["best_net_profit_usd_e8"] / 1e8 / smallest
        if share > worst_share:
            worst_share, share_of = share, o

    def alive(o: dict, b: int) -> bool:
        end = o["closed_block"] if o["closed_block"] is not None else last + 1
        return o["first_block"] <= b < max(end, o["first_block"] + 1)
    per_block = [sum(1 for o in opps if alive(o, b)) for b in blocks]
    spans = gap_spans(probe.gaps)
    # a gap still open at the end counts as lasting to one block past the end
    longest = max(spans, key=lambda s: s.blocks if s.blocks is not None else last + 1 - s.opened, default=None)
    longest_blocks = (None if longest is None else
                      longest.blocks if longest.blocks is not None else last + 1 - longest.opened)
    return {
        "blocks": len(blocks),
        "opportunities": len(opps),
        "arbs": probe.arbs,
        "max_net_share": worst_share,
        "worst_share": share_of,
        "median_open": statistics.median(per_block) if per_block else 0,
        "blocks_with_open": sum(1 for n in per_block if n),
        "gaps": len(spans),
        "longest_gap_blocks": longest_blocks,
        "worst_gap": longest,
        "gap_blocks_histogram": _histogram([s.blocks if s.blocks is not None else last + 1 - s.opened
                                            for s in spans]),
    }


def _histogram(values: list[int]) -> dict[int, int]:
    out: dict[int, int] = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))
