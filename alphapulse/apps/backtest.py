"""Backtest: a recording through the strategy as fast as possible, then a summary.

``python -m alphapulse.apps.pipeline --replay FILE --speed max [--report PATH]``
runs in one process (no rings: nothing to wait for), deterministic: the same
recording and config give the same signals, in the same order.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from alphapulse.protocol import codec
from alphapulse.strategy.accounting import OpportunityBook

log = logging.getLogger("alphapulse.backtest")

JS_SAFE = 1 << 53


# A recording holds the pools' events, not the chain's state: no node can re-execute its signals.
NOT_CHECKED = ("signals not checked against a node (a backtest replays recorded events; no chain state "
               "of those blocks to execute the cycles on): profits are the strategy's exact simulation")


def _jsonable(v: Any) -> Any:
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, int) and not isinstance(v, bool):
        return str(v) if abs(v) >= JS_SAFE else v
    if isinstance(v, tuple):
        return [_jsonable(x) for x in v]
    return v


def signal_to_json(sig: Any) -> dict[str, Any]:
    """Every ArbitrageSignal field by its PROTOCOL.md name; integers >= 2^53 as decimal strings,
    addresses as 0x-hex, ``pools`` and ``tokens`` as lists of ``hops`` entries."""
    d = {name: _jsonable(getattr(sig, name)) for name in sig.__dataclass_fields__}
    d["pools"] = d["pools"][:sig.hops]
    d["tokens"] = d["tokens"][:sig.hops]
    return d


STALE_NAMED = 10          # stale pools named in the printed summary (the report lists them all)


def _hex_address(a: bytes) -> str:
    return "0x" + bytes(a).hex()


def _pct(sorted_vals: list[int], q: float) -> float | None:
    if not sorted_vals:
        return None
    i = min(len(sorted_vals) - 1, int(q * len(sorted_vals)))
    return sorted_vals[i] / 1e3


def check_report_path(report: str) -> None:
    """Raise OSError naming ``report`` unless a report can be written there (checked before the
    run, so that an hour of backtest is not lost to a typo); leaves no file behind."""
    p = Path(report)
    if p.is_dir():
        raise IsADirectoryError(f"--report {report}: is a directory")
    existed = p.exists()
    try:
        with open(p, "a"):
            pass
    except OSError as e:
        raise OSError(f"--report {report}: {e.strerror or e}") from None
    if not existed:
        p.unlink()


def run_backtest(cfg: Any, report: str | None = None, out: Any = None, timings: bool = True) -> int:
    """Run the recording through the engine, print the summary, write ``report`` (JSON) if given.

    The report keeps results (signals, counters: the same for the same recording and config)
    apart from ``timings`` (wall-clock figures), which ``timings=False`` leaves out so that two
    reports of one recording compare byte for byte."""
    from alphapulse.adapters.replayer import Replayer
    from alphapulse.strategy.config import EngineConfig
    from alphapulse.strategy.engine import StrategyEngine
    out = out or sys.stdout
    engine = StrategyEngine(EngineConfig.from_app_config(cfg))
    signals: list[Any] = []
    latencies_ns: list[int] = []
    book = OpportunityBook()

    def sink(batch: list[bytes]) -> None:
        # one frame at a time: the latency of each signal is that of the frame that
        # triggered its search (its block's end)
        for frame in batch:
            t0 = time.perf_counter_ns()
            produced = engine.process([frame])
            dt = time.perf_counter_ns() - t0
            try:
                book.feed_all(codec.parse_frame(frame).tlvs)
            except codec.FrameError:
                pass       # the engine counted and rejected it
            for f in produced:
                sig = codec.parse_frame(f).tlvs[0]
                signals.append(sig)
                book.signal(sig)
                latencies_ns.append(dt)

    rp = Replayer(cfg.source.replay_file, sink=sink, speed="max",
                  crc_every=cfg.protocol.recording_checksum_every)
    t0 = time.perf_counter()
    rp.run()
    # the end of the recording ends its last block
    t1 = time.perf_counter_ns()
    produced = engine.end_input_frames()
    dt = time.perf_counter_ns() - t1
    for f in produced:
        sig = codec.parse_frame(f).tlvs[0]
        signals.append(sig)
        book.signal(sig)
        latencies_ns.append(dt)
    wall = time.perf_counter() - t0
    book.finish()
    engine.report_chain_mismatch()
    counters = dict(rp.counters)
    engine.log_bad_events()
    ec = engine.counters()
    per_pair: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "net_profit_usd_e8": 0})
    for s in signals:
        key = "-".join(str(v) for v in s.venues[:s.hops])
        per_pair[key]["count"] += 1
        per_pair[key]["net_profit_usd_e8"] += s.net_profit_usd_e8
    lat = sorted(latencies_ns)
    stale = [engine.registry.pool(i) for i in range(len(engine.registry))]
    stale_addresses = [_hex_address(p.address) for p in stale if p.stale]
    stale_pools = len(stale_addresses)
    summary = {
        **book.summary(),
        "evaluate": engine.config.evaluate,
        "last_block": engine.last_block,
        "per_venue_path": dict(per_pair),
        "stale_pools": stale_pools,
        "stale_pool_addresses": stale_addresses,
        "engine": ec,
        "replayer": counters,
        "execution": NOT_CHECKED,
    }
    timing = {
        "latency_us": {"p50": _pct(lat, 0.5), "p99": _pct(lat, 0.99), "p999": _pct(lat, 0.999)},
        "wall_s": round(wall, 3),
        "frames_per_s": round(counters.get("frames", 0) / wall) if wall > 0 else None,
    }
    frames = int(counters.get("frames", 0))
    rejected = int(counters.get("rejected", 0))      # the total (rejected_<reason> break it down)
    usd = lambda e8: f"${e8 / 1e8:,.2f}"  # noqa: E731 (display only)
    print(f"backtest of {cfg.source.replay_file}", file=out)
    print(f"  frames {frames:,} ({rejected} rejected) in {wall:.2f} s"
          f" = {timing['frames_per_s'] or 0:,} frames/s", file=out)
    life = summary["lifetime_blocks"]
    print(f"  capturable profit {usd(summary['capturable_profit_usd_e8'])} in "
          f"{summary['blocks_with_capturable_profit']:,} blocks (one trade per pool per block)", file=out)
    print(f"  opportunities {summary['opportunities']:,} ({summary['opportunities_unpriced']} unpriced, "
          f"{summary['opportunities_open']} open at the end), best "
          f"{usd(summary['best_opportunity_net_profit_usd_e8'])}; lifetime p50 {life['p50']} blocks, "
          f"p90 {life['p90']}, max {life['max']}", file=out)
    print(f"  signals {summary['signals']:,} ({summary['signals_unpriced']} unpriced, "
          f"{summary['signals_intra_block']} intra-block), summed net "
          f"{usd(summary['signals_net_profit_usd_e8'])} (republications of one opportunity included)", file=out)
    for k, v in sorted(per_pair.items(), key=lambda kv: -kv[1]["net_profit_usd_e8"]):
        print(f"    venues {k:<16} {v['count']:>6} signals  net {usd(v['net_profit_usd_e8'])}", file=out)
    if ec.get("seq_gaps") or ec.get("bad_event") or stale_pools:
        named = ", ".join(stale_addresses[:STALE_NAMED]) + (", ..." if stale_pools > STALE_NAMED else "")
        print(f"  sequence gaps {ec.get('seq_gaps', 0)}, bad events {ec.get('bad_event', 0)}; "
              f"{ec.get('gap_stale_pools', 0)} turned stale by sequence gaps (the pools of the source that "
              f"lost frames); {stale_pools} pools stale at the end{' (' + named + ')' if named else ''}, "
              f"{ec.get('stale_skips', 0):,} changes of stale pools not searched", file=out)
    lu = timing["latency_us"]
    if lu["p50"] is not None:
        print(f"  batch-in to signal-out latency: p50 {lu['p50']:.1f} us, p99 {lu['p99']:.1f} us, "
              f"p99.9 {lu['p999']:.1f} us", file=out)
    print(f"  execution: {NOT_CHECKED}", file=out)
    if report:
        doc = {"frames": frames, "rejected": rejected,
               "signals": [signal_to_json(s) for s in signals],
               "opportunities": [o.to_json(book.current_block) for o in book.all_opportunities()],
               "capturable_per_block": [[b, v] for b, v in sorted(book.capturable_by_block.items())],
               "summary": summary}
        if timings:
            doc["timings"] = timing
        Path(report).write_text(json.dumps(doc, indent=1, default=_jsonable))
        print(f"  report: {report}", file=out)
    return 0
