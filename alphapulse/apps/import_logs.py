"""Import recorded pool logs into a journal (PROTOCOL.md section 6) for backtests.

``python -m alphapulse.apps.import_logs LOGS... --out FILE.apj (--snapshot FILE | --rpc URL
--state-block N) [--market TOML] [--chain-id N] [--base-fee-wei W] ...``

Inputs: ``eth_getLogs`` results (a JSON array or JSON lines) or CSV exports
(:mod:`alphapulse.adapters.evm.logfiles`); a starting state from a snapshot file or
read from a node at a block (:mod:`alphapulse.adapters.evm.startstate`).

The journal holds, in order: the starting state (per pool a PoolState, and for
concentrated-liquidity pools its PoolTick records and a TickCoverage), then per
block a GasPrice (when a base fee is known: from the node's block header, a CSV
column, or ``--base-fee-wei``), one frame per pool event in (block, log index)
order, and a BlockEnd. Frames are stamped with their block's time (1 us apart
inside a block), so "recorded pace" follows the chain.

Logs are decoded and turned into records by the live adapter's own code
(:mod:`alphapulse.adapters.evm.decode`); a log that cannot be is skipped and counted
by reason, never guessed: undecodable (the decoder's reasons), removed, duplicate,
at or before the starting state, of a pool the state does not know, of the wrong
pool kind, or of a block whose logs disagree on its hash.

Exit codes: 0 written, 1 failure, 2 bad arguments or inputs (one line naming the input).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alphapulse.adapters.evm.decode import DecodeError, EvmEvent, decode_log, to_record
from alphapulse.adapters.evm.frames import EncodeError, build_frame
from alphapulse.adapters.evm.logfiles import BASE_FEE_KEY, CsvColumns, LogFileError, read_logs
from alphapulse.adapters.evm.providers import event_fits
from alphapulse.adapters.evm.startstate import (BlockHeader, StartState, StartStateError, load_snapshot,
                                                read_from_node)
from alphapulse.protocol import codec
from alphapulse.protocol import layout as L

log = logging.getLogger("alphapulse.import_logs")

NS_PER_S = 1_000_000_000
FRAME_GAP_NS = 1_000          # header timestamps of one block's frames, 1 us apart


class UsageError(ValueError):
    """Bad arguments or inputs: exit 2 with this one line."""


@dataclass
class ImportReport:
    """What an import read, wrote and skipped (skips by reason)."""
    logs_read: int = 0
    events_written: Counter = field(default_factory=Counter)     # event name -> count
    skipped: Counter = field(default_factory=Counter)            # reason -> count
    pools: int = 0
    blocks: int = 0
    gas_prices: int = 0
    frames: int = 0
    state_block: int = 0
    first_block: int | None = None
    last_block: int | None = None
    node_counters: Counter = field(default_factory=Counter)      # discovery and snapshot counters

    def to_json(self) -> dict[str, Any]:
        return {"logs_read": self.logs_read, "events_written": dict(sorted(self.events_written.items())),
                "skipped": dict(sorted(self.skipped.items())), "pools": self.pools, "blocks": self.blocks,
                "gas_prices": self.gas_prices, "frames": self.frames, "state_block": self.state_block,
                "first_block": self.first_block, "last_block": self.last_block}


@dataclass
class ImportOptions:
    logs: list[Path]
    out: Path
    fmt: str = "auto"
    columns: CsvColumns = field(default_factory=CsvColumns)
    snapshot: Path | None = None
    rpc: str | None = None
    state_block: int | None = None
    market: Path | None = None
    chain_id: int | None = None
    base_fee_wei: int | None = None
    priority_fee_wei: int = 0
    tick_range: int = 20_000
    rpc_timeout_s: float = 30.0


# ---------------------------------------------------------------- the market TOML
@dataclass
class Market:
    venues: dict[bytes, int] = field(default_factory=dict)        # factory -> venue
    decimals: dict[bytes, int] = field(default_factory=dict)      # token -> decimals
    factories: tuple = ()
    chain_id: int | None = None


def load_market(path: Path | None) -> Market:
    if path is None:
        return Market()
    from alphapulse.apps.config import ConfigError, load_config, read_toml
    try:
        raw = read_toml(path)
        cfg = load_config(base=path, environ={})
    except ConfigError as e:
        raise UsageError(f"--market: {path}: {e.key}: {e.problem}") from None
    ch = cfg.chain
    explicit = raw.get("chain", {}).get("chain_id") if isinstance(raw.get("chain"), dict) else None
    return Market(venues={bytes.fromhex(f.address.lower()[2:]): int(f.venue) for f in ch.factories},
                  decimals={bytes.fromhex(t.address.lower()[2:]): int(t.decimals) for t in ch.tokens},
                  factories=tuple(ch.factories), chain_id=ch.chain_id if explicit is not None else None)


# ---------------------------------------------------------------- the import
def _decode_all(raw_logs: list[dict], rep: ImportReport) -> tuple[list[EvmEvent], dict[int, int]]:
    """Decoded events, deduplicated and in chain order; base fees carried by the logs."""
    by_key: dict[tuple[int, int], EvmEvent] = {}
    base_fees: dict[int, int] = {}
    for raw in raw_logs:
        try:
            ev = decode_log(raw)
        except DecodeError as e:
            rep.skipped[e.reason] += 1
            log.debug("log skipped: %s", e)
            continue
        if ev.removed:
            rep.skipped["removed"] += 1
            continue
        if ev.key in by_key:
            rep.skipped["duplicate"] += 1
            continue
        by_key[ev.key] = ev
        bf = raw.get(BASE_FEE_KEY)
        if bf is not None:
            base_fees[ev.block_number] = int(bf)
    return [by_key[k] for k in sorted(by_key)], base_fees


def _drop_conflicting_hashes(events: list[EvmEvent], headers: dict[int, BlockHeader],
                             rep: ImportReport) -> list[EvmEvent]:
    """Events of a block whose logs name two block hashes (a reorganised block mixed in):
    with the node's header the other branch's logs are dropped, without it the whole block."""
    hashes: dict[int, set[bytes]] = {}
    for ev in events:
        if ev.block_hash:
            hashes.setdefault(ev.block_number, set()).add(ev.block_hash)
    out = []
    for ev in events:
        h = headers.get(ev.block_number)
        if h is not None and ev.block_hash and ev.block_hash != h.hash:
            rep.skipped["stale_block_hash"] += 1
        elif h is None and len(hashes.get(ev.block_number, ())) > 1:
            rep.skipped["conflicting_block_hash"] += 1
        else:
            out.append(ev)
    for b, hs in hashes.items():
        if len(hs) > 1:
            log.warning("block %d: logs of %d different block hashes", b, len(hs))
    return out


class _Writer:
    """Frames of the importer's stream (source 5, sequence from 1), stamped monotonically."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.sequence = 0
        self.last_ts = 0

    def frame(self, records: list[Any], ts_ns: int) -> None:
        """Write one frame; raises EncodeError (writing nothing) for a value the wire cannot carry."""
        ts = max(ts_ns, self.last_ts + FRAME_GAP_NS)
        frame = build_frame(int(L.Domain.MARKET_DATA), int(L.Source.IMPORTER), self.sequence + 1,
                            records, timestamp_ns=ts)
        self.journal.append(frame)
        self.sequence += 1
        self.last_ts = ts


def run_import(opt: ImportOptions) -> ImportReport:
    """Read, decode and write; raises UsageError for bad inputs."""
    from alphapulse.journal import JournalWriter
    rep = ImportReport()
    market = load_market(opt.market)
    try:
        raw_logs = read_logs(opt.logs, opt.fmt, opt.columns, rep.skipped)
    except LogFileError as e:
        raise UsageError(f"LOGS: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"LOGS: {e}") from None
    rep.logs_read = len(raw_logs) + sum(rep.skipped.values())
    events, base_fees = _decode_all(raw_logs, rep)
    families = {}
    for ev in events:
        families.setdefault(ev.pool, ev.spec.family)

    state: StartState | None = None
    if opt.snapshot is not None:
        try:
            state = load_snapshot(opt.snapshot, market.venues, market.decimals)
        except StartStateError as e:
            raise UsageError(f"--snapshot: {e}") from None
    headers: dict[int, BlockHeader] = {}
    chain_id = opt.chain_id or (state.chain_id if state else None) or market.chain_id
    if opt.rpc is not None:
        node_state, headers, node_chain = _from_node(opt, market, families, chain_id,
                                                     sorted({ev.block_number for ev in events}), rep)
        if chain_id is not None and chain_id != node_chain:
            raise UsageError(f"--rpc: {opt.rpc}: chain id {node_chain}, but {chain_id} was given "
                             "(--chain-id, the snapshot or --market)")
        chain_id = node_chain
        if node_state is not None:
            state = node_state
    if state is None:
        raise UsageError("--snapshot/--rpc: a starting state is needed (--snapshot FILE, or --rpc URL "
                         "with --state-block N)")
    if chain_id is None:
        raise UsageError("--chain-id: unknown (give --chain-id, a snapshot 'chain_id', --market or --rpc)")
    rep.state_block = state.block
    rep.pools = len(state.pools)
    events = _drop_conflicting_hashes(events, headers, rep)

    blocks: dict[int, list[Any]] = {}
    hashes: dict[int, bytes] = {}
    times: dict[int, int] = {}
    for ev in events:
        b = ev.block_number
        if b <= state.block:
            rep.skipped["before_start_state"] += 1
            continue
        recs = blocks.setdefault(b, [])
        if ev.block_hash:
            hashes.setdefault(b, ev.block_hash)
        if ev.block_ts:
            times.setdefault(b, ev.block_ts)
        info = state.pools.get(ev.pool)
        if info is None:
            reason = "unfollowed_pool" if ev.pool in state.ignored else "unknown_pool"
            rep.skipped[reason] += 1
            continue
        if not event_fits(ev.spec.family, info.kind):
            rep.skipped["kind_mismatch"] += 1
            continue
        h = headers.get(b)
        try:
            rec = to_record(ev, info, h.timestamp if h is not None else 0)
        except DecodeError as e:
            rep.skipped[e.reason] += 1
            continue
        recs.append((ev.spec.name, rec))

    opt.out.parent.mkdir(parents=True, exist_ok=True)
    if opt.out.exists():
        opt.out.unlink()
    with JournalWriter(opt.out) as journal:
        w = _Writer(journal)
        first = min(blocks, default=state.block + 1)
        t0 = _block_ts(first, headers, times)
        # pools in the order the logs first name them, as a live adapter meets them (the engine
        # lists a pair's pools in the order it first saw them), then the rest of the state
        order = [a for a in families if a in state.pools] + [a for a in state.pools if a not in families]
        for address in order:     # one frame per pool: its PoolState with its TickCoverage and ticks
            w.frame(state.records[address], t0 * NS_PER_S)
        for b in sorted(blocks):
            h = headers.get(b)
            ts = _block_ts(b, headers, times)
            ts_ns = ts * NS_PER_S
            base = h.base_fee_wei if h is not None and h.base_fee_wei is not None else \
                base_fees.get(b, opt.base_fee_wei)
            if base is not None:
                w.frame([codec.GasPrice(base_fee_wei=base, priority_fee_wei=opt.priority_fee_wei,
                                        block_number=b, block_ts_ns=ts_ns, chain_id=chain_id)], ts_ns)
                rep.gas_prices += 1
            n = 0
            for name, rec in blocks[b]:
                try:
                    w.frame([rec], ts_ns)
                except EncodeError as e:     # e.g. decimals above 255: the wire cannot carry it
                    rep.skipped["encode_error"] += 1
                    log.warning("block %d: %s: skipped", b, e)
                    continue
                rep.events_written[name] += 1
                n += 1
            bh = h.hash if h is not None else hashes.get(b, bytes(32))
            w.frame([codec.BlockEnd(block_number=b, block_ts_ns=ts_ns, event_count=n,
                                    chain_id=chain_id, block_hash=bh)], ts_ns)
        rep.frames = w.sequence
    for reason, n in sorted(rep.skipped.items()):
        log.warning("skipped %d logs: %s", n, reason)
    rep.blocks = len(blocks)
    if blocks:
        rep.first_block, rep.last_block = min(blocks), max(blocks)
    return rep


def _block_ts(b: int, headers: dict[int, BlockHeader], times: dict[int, int]) -> int:
    h = headers.get(b)
    return h.timestamp if h is not None else times.get(b, 0)


def _from_node(opt: ImportOptions, market: Market, families: dict[bytes, str], chain_id: int | None,
               header_blocks: list[int], rep: ImportReport) -> tuple[StartState | None, dict, int]:
    from alphapulse.adapters.evm.config import EvmDataClientConfig
    from alphapulse.apps.config import ConfigError
    cfg = None
    if opt.state_block is not None:
        if not market.factories:
            raise UsageError("--market: needed with --state-block (its factories give each pool's venue)")
        try:
            cfg = EvmDataClientConfig(
                endpoints=(opt.rpc,), factories=market.factories, chain_id=chain_id or 1,
                known_decimals={"0x" + t.hex(): d for t, d in market.decimals.items()},
                tick_snapshot_range=opt.tick_range, request_timeout_s=opt.rpc_timeout_s)
        except ConfigError as e:
            raise UsageError(f"--market: {e.key}: {e.problem}") from None
    try:
        return asyncio.run(read_from_node(opt.rpc, opt.rpc_timeout_s, cfg, opt.state_block, families,
                                          header_blocks, rep.node_counters))
    except StartStateError as e:
        raise UsageError(f"--rpc: {e}") from None


# ---------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m alphapulse.apps.import_logs", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("logs", nargs="+", metavar="LOGS", help="log files: eth_getLogs JSON (array or lines) or CSV")
    p.add_argument("--out", required=True, metavar="FILE.apj", help="the journal to write (replaced)")
    p.add_argument("--format", choices=["auto", "json", "csv"], default="auto")
    p.add_argument("--csv-columns", default="", metavar="FIELD=COLUMN,...",
                   help="CSV column names, e.g. 'log_index=index,block_number=blk' (defaults: "
                        "block_number, transaction_index, log_index, address, topics or topic0..3, data; "
                        "optional block_hash, block_timestamp, base_fee_per_gas)")
    p.add_argument("--snapshot", metavar="FILE", help="starting state: a snapshot JSON file")
    p.add_argument("--rpc", metavar="WS_URL",
                   help="a node (ws:// or wss://): block headers, and the state at --state-block")
    p.add_argument("--state-block", type=int, metavar="N", help="read the starting state at the end of block N")
    p.add_argument("--market", metavar="TOML", help="market TOML: factories (venues), token decimals, chain id")
    p.add_argument("--chain-id", type=int, metavar="N")
    p.add_argument("--base-fee-wei", type=int, metavar="W", help="base fee of blocks whose input gives none")
    p.add_argument("--priority-fee-wei", type=int, default=0, metavar="W")
    p.add_argument("--tick-range", type=int, default=20_000, metavar="TICKS",
                   help="with --rpc: initialised ticks read on each side of the price")
    p.add_argument("--report", metavar="PATH", help="also write the import report as JSON")
    return p


def options(argv: list[str] | None) -> tuple[ImportOptions, str | None]:
    a = _parser().parse_args(argv)
    try:
        cols = CsvColumns.parse(a.csv_columns)
    except ValueError as e:
        raise UsageError(f"--csv-columns: {e}") from None
    if a.snapshot is None and a.rpc is None:
        raise UsageError("--snapshot/--rpc: a starting state is needed (--snapshot FILE, or --rpc URL "
                         "with --state-block N)")
    if a.snapshot is not None and a.state_block is not None:
        raise UsageError("--state-block: reads the state from --rpc; it cannot be combined with --snapshot")
    if a.rpc is not None and a.snapshot is None and a.state_block is None:
        raise UsageError("--state-block: needed with --rpc when no --snapshot is given")
    if a.rpc is not None and not a.rpc.startswith(("ws://", "wss://")):
        raise UsageError(f"--rpc: {a.rpc!r} is not a ws:// or wss:// URL")
    if a.state_block is not None and a.state_block < 0:
        raise UsageError(f"--state-block: {a.state_block} is negative")
    for name in ("chain_id",):
        v = getattr(a, name)
        if v is not None and not 0 < v < 1 << 32:
            raise UsageError(f"--chain-id: {v} is not a positive u32")
    for name, flag in (("base_fee_wei", "--base-fee-wei"), ("priority_fee_wei", "--priority-fee-wei")):
        v = getattr(a, name)
        if v is not None and not 0 <= v < 1 << 64:
            raise UsageError(f"{flag}: {v} does not fit u64")
    if a.tick_range < 0:
        raise UsageError(f"--tick-range: {a.tick_range} is negative")
    for f in a.logs:
        if not Path(f).is_file():
            raise UsageError(f"LOGS: {f}: no such file")
    for flag, f in (("--snapshot", a.snapshot), ("--market", a.market)):
        if f is not None and not Path(f).is_file():
            raise UsageError(f"{flag}: {f}: no such file")
    return ImportOptions(
        logs=[Path(f) for f in a.logs], out=Path(a.out), fmt=a.format, columns=cols,
        snapshot=Path(a.snapshot) if a.snapshot else None, rpc=a.rpc, state_block=a.state_block,
        market=Path(a.market) if a.market else None, chain_id=a.chain_id, base_fee_wei=a.base_fee_wei,
        priority_fee_wei=a.priority_fee_wei, tick_range=a.tick_range), a.report


def main(argv: list[str] | None = None) -> int:
    from alphapulse import redact
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in logging.getLogger().handlers:          # --rpc's credentials never reach the stream
        redact.install(h)
    try:
        opt, report_path = options(argv)
        rep = run_import(opt)
    except UsageError as e:
        print(f"import_logs: error: {redact.redact(str(e))}", file=sys.stderr)
        return 2
    written = sum(rep.events_written.values())
    print(f"wrote {opt.out}: {rep.frames} frames; state of {rep.pools} pools at block {rep.state_block}; "
          f"{written} events in {rep.blocks} blocks ({rep.first_block}..{rep.last_block}), "
          f"{rep.gas_prices} gas prices; {rep.logs_read} logs read")
    for name, n in sorted(rep.events_written.items()):
        print(f"  written {name}: {n}")
    for reason, n in sorted(rep.skipped.items()):
        print(f"  skipped {reason}: {n}")
    if report_path:
        Path(report_path).write_text(json.dumps(rep.to_json(), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
