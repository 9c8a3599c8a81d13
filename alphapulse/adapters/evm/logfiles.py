"""Log files -> JSON-RPC log objects, the form :func:`decode.decode_log` takes.

Two forms are read:

- JSON: the result of ``eth_getLogs`` (a JSON array of log objects), a JSON-RPC
  response holding one (``{"result": [...]}``), or JSON lines (one log object per
  line);
- CSV: one log per row, with columns for block number, transaction index, log
  index, address, topics and data. Topics are one column holding a JSON list or a
  bracketed list of quoted strings (``['0x..', '0x..']``), or columns
  ``topic0``..``topic3`` (as cryo and Dune export them). Numbers are decimal or
  0x-hex. Column names are configurable (:class:`CsvColumns`); optional columns
  give the block hash, the block timestamp (seconds or ISO 8601 UTC) and the
  block's base fee.

A row or line that cannot be read is a counted, logged skip (``bad_csv_row``,
``bad_json_line``, ``bad_log``); a file that is not in the expected form at all is a
:class:`LogFileError` naming it.
"""
from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger(__name__)

BASE_FEE_KEY = "baseFeePerGas"   # carried on a log object when the input gives the block's base fee


class LogFileError(ValueError):
    """An input file that cannot be read as logs at all."""


@dataclass(frozen=True)
class CsvColumns:
    """CSV column names; ``topics`` may be absent when ``topic0``.. columns are present."""
    block_number: str = "block_number"
    transaction_index: str = "transaction_index"
    log_index: str = "log_index"
    address: str = "address"
    topics: str = "topics"
    data: str = "data"
    block_hash: str = "block_hash"            # optional
    block_timestamp: str = "block_timestamp"  # optional
    base_fee: str = "base_fee_per_gas"        # optional

    @classmethod
    def parse(cls, spec: str) -> "CsvColumns":
        """``"log_index=index,block_number=blk"`` -> CsvColumns; raises ValueError naming the key."""
        known = {f.name for f in fields(cls)}
        kw: dict[str, str] = {}
        for item in filter(None, (s.strip() for s in spec.split(","))):
            key, sep, name = item.partition("=")
            key = key.strip()
            if not sep or not name.strip():
                raise ValueError(f"{item!r} is not FIELD=COLUMN")
            if key not in known:
                raise ValueError(f"unknown field {key!r} (known: {', '.join(sorted(known))})")
            kw[key] = name.strip()
        return cls(**kw)


def parse_topics(cell: str) -> list[str]:
    """A topics cell: a JSON list, or ``[a, b]`` with single, double or no quotes; ``[]`` empty."""
    s = cell.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise ValueError(f"topics {cell[:80]!r} is not a bracketed list")
    try:
        v = json.loads(s)
    except json.JSONDecodeError:
        inner = s[1:-1].strip()
        v = [] if not inner else [p.strip().strip("'\"").strip() for p in inner.split(",")]
    if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
        raise ValueError(f"topics {cell[:80]!r} is not a list of strings")
    return v


def _number(cell: str, what: str) -> int:
    s = cell.strip()
    try:
        return int(s, 16) if s[:2] in ("0x", "0X") else int(s, 10)
    except ValueError:
        raise ValueError(f"{what} {cell!r} is not a number") from None


def _timestamp(cell: str) -> int:
    """Seconds since the epoch from a number or an ISO 8601 time (UTC when no zone is given)."""
    s = cell.strip()
    try:
        return _number(s, "block_timestamp")
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(s.replace(" UTC", "+00:00").replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"block_timestamp {cell!r} is neither seconds nor an ISO 8601 time") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp())


def sniff_format(path: Path) -> str:
    """``json`` when the file's first non-blank character opens JSON, else ``csv``."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return "json" if head[:1] in (b"[", b"{") else "csv"


def read_json(path: Path, skipped: Counter) -> Iterator[dict]:
    """Log objects of a JSON array / ``{"result": [...]}`` file, or of a JSON-lines file."""
    text = path.read_text()
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if doc is not None:
        if isinstance(doc, dict) and "result" in doc:
            doc = doc["result"]
        if isinstance(doc, dict):       # a single log object: one JSON line
            doc = [doc]
        if not isinstance(doc, list):
            raise LogFileError(f"{path}: JSON of type {type(doc).__name__}, expected an array of log objects")
        for i, item in enumerate(doc):
            if isinstance(item, dict):
                yield item
            else:
                skipped["bad_log"] += 1
                log.warning("%s: item %d is a %s, not a log object: skipped", path, i, type(item).__name__)
        return
    n_ok = 0
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            skipped["bad_json_line"] += 1
            log.warning("%s:%d: not JSON (%s): skipped", path, lineno, e.msg)
            continue
        if not isinstance(item, dict):
            skipped["bad_log"] += 1
            log.warning("%s:%d: a %s, not a log object: skipped", path, lineno, type(item).__name__)
            continue
        n_ok += 1
        yield item
    if n_ok == 0 and text.strip():
        raise LogFileError(f"{path}: neither a JSON array nor JSON lines of log objects")


def read_csv(path: Path, cols: CsvColumns, skipped: Counter) -> Iterator[dict]:
    """Log objects of a CSV export (see the module docstring)."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        topic_cols = [c for c in ("topic0", "topic1", "topic2", "topic3") if c in header]
        need = [cols.block_number, cols.log_index, cols.address, cols.data]
        if cols.topics not in header and not topic_cols:
            need.append(cols.topics)
        missing = [c for c in need if c not in header]
        if missing:
            raise LogFileError(f"{path}: no column {', '.join(repr(c) for c in missing)} "
                               f"(columns: {', '.join(header) or 'none'}; rename with --csv-columns)")
        for lineno, row in enumerate(reader, 2):
            try:
                if None in row:
                    raise ValueError(f"{len(header) + len(row[None])} cells, header has {len(header)}")
                if cols.topics in header:
                    topics = parse_topics(row[cols.topics] or "")
                else:
                    topics = [row[c].strip() for c in topic_cols if (row[c] or "").strip()]
                item: dict[str, Any] = {
                    "blockNumber": _number(row[cols.block_number] or "", "block_number"),
                    "logIndex": _number(row[cols.log_index] or "", "log_index"),
                    "address": (row[cols.address] or "").strip(),
                    "topics": topics,
                    "data": (row[cols.data] or "").strip() or "0x",
                }
                tx = (row.get(cols.transaction_index) or "").strip()
                if tx:
                    item["transactionIndex"] = _number(tx, "transaction_index")
                bh = (row.get(cols.block_hash) or "").strip()
                if bh:
                    item["blockHash"] = bh
                ts = (row.get(cols.block_timestamp) or "").strip()
                if ts:
                    item["blockTimestamp"] = _timestamp(ts)
                bf = (row.get(cols.base_fee) or "").strip()
                if bf:
                    item[BASE_FEE_KEY] = _number(bf, "base_fee_per_gas")
            except (ValueError, TypeError) as e:
                skipped["bad_csv_row"] += 1
                log.warning("%s:%d: %s: row skipped", path, lineno, e)
                continue
            yield item


def read_logs(paths: list[Path], fmt: str, cols: CsvColumns, skipped: Counter) -> list[dict]:
    """Every readable log object of ``paths`` (``fmt``: auto, json or csv)."""
    out: list[dict] = []
    for p in paths:
        if not p.is_file():
            raise LogFileError(f"{p}: no such file")
        kind = sniff_format(p) if fmt == "auto" else fmt
        out.extend(read_json(p, skipped) if kind == "json" else read_csv(p, cols, skipped))
    return out
