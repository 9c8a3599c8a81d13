"""The pools waiting for data, as the strategy sees them, for the supervisor to show.

The strategy takes a pool out of trading while it waits on a fresh snapshot
(``alphapulse.strategy.refresh.RefreshRequester.waiting``: pool row -> RefreshReason). The
supervisor names those pools in its status line and in ``/metrics`` without reading any ring:
the strategy writes a small fixed-size table in shared memory (segment name prefix
``alphapulse_``) at its heartbeat, the supervisor reads it when it renders.

Layout (little-endian)::

    0   magic  b"APWAIT01"
    8   u64    generation: odd while the strategy writes, even when complete
    16  u32    total pools waiting (may exceed the entries)
    20  u32    entries that follow (at most CAPACITY): the first pools by address
    24  entries of 64 bytes: pool (20) | token0 (20) | token1 (20) | reason (u8) | 3 zero bytes

One writer (the strategy process) and any number of readers. A reader takes the generation,
copies the table, and takes the generation again; it keeps the copy only when both are the same
even number (a seqlock, as ``alphapulse.apps.control``), and tries again otherwise. The
generation is one aligned 8-byte slot (single-copy atomic, see ``alphapulse.metrics``).
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Iterable, Mapping

from alphapulse.apps.seqblock import SeqlockBlock
from alphapulse.protocol import layout as L

MAGIC = b"APWAIT01"
CAPACITY = 16
_HEAD = struct.Struct("<8sQII")
_ENTRY = struct.Struct("<20s20s20sB3x")
SIZE = _HEAD.size + CAPACITY * _ENTRY.size


def reason_name(reason: int) -> str:
    """``no_tick_data`` etc. for a RefreshReason value, ``reason_<n>`` for an unknown one."""
    try:
        return L.RefreshReason(reason).name.lower()
    except ValueError:
        return f"reason_{reason}"


@dataclass(frozen=True)
class WaitingPool:
    pool: bytes
    token0: bytes
    token1: bytes
    reason: int

    @property
    def reason_name(self) -> str:
        return reason_name(self.reason)

    def label(self, symbols: Mapping[bytes, str]) -> str:
        """``0x1234…abcd WETH/USDC`` (the pair when both symbols are known), else ``0x1234…abcd``."""
        h = self.pool.hex()
        short = f"0x{h[:4]}…{h[-4:]}"
        s0, s1 = symbols.get(self.token0), symbols.get(self.token1)
        return f"{short} {s0}/{s1}" if s0 and s1 else short


@dataclass(frozen=True)
class WaitingTable:
    total: int
    pools: tuple[WaitingPool, ...]


class WaitingBlock(SeqlockBlock):
    """The table: :meth:`create` (the supervisor, which unlinks it on close) or :meth:`attach`
    (the strategy, the only writer)."""

    MAGIC, SIZE, WHAT = MAGIC, SIZE, "waiting-pools table"

    def __init__(self, name: str, buf: memoryview, keep: object, owner: bool) -> None:
        super().__init__(name, buf, keep, owner)
        self.torn_reads = 0                   # reads retried because a write was under way

    @classmethod
    def create(cls, name: str) -> "WaitingBlock":
        blk = cls._create(name)
        blk._seal()
        return blk

    def write(self, total: int, pools: Iterable[WaitingPool]) -> int:
        """Publish ``total`` and the first :data:`CAPACITY` of ``pools`` (the caller orders them);
        returns the new generation (the strategy only)."""
        entries = []
        for p in pools:
            if len(entries) == CAPACITY:
                break
            entries.append(_ENTRY.pack(p.pool, p.token0, p.token1, p.reason))
        self._begin_write()
        struct.pack_into("<II", self._buf, 16, max(total, len(entries)), len(entries))
        raw = b"".join(entries)
        self._buf[_HEAD.size:_HEAD.size + len(raw)] = raw
        return self._end_write()

    def try_read(self) -> WaitingTable | None:
        """The table, or None when a write was under way (torn: read again)."""
        g = self._gen[0]
        if g & 1:
            return None
        total, n = struct.unpack_from("<II", self._buf, 16)
        n = min(n, CAPACITY)
        raw = bytes(self._buf[_HEAD.size:_HEAD.size + n * _ENTRY.size])
        if self._gen[0] != g:
            return None
        return WaitingTable(total, tuple(WaitingPool(*_ENTRY.unpack_from(raw, i * _ENTRY.size))
                                         for i in range(n)))

    def read(self, attempts: int = 1000) -> WaitingTable | None:
        """The table, retried while a write is under way (a write takes microseconds); None
        only when ``attempts`` reads in a row were torn."""
        for _ in range(attempts):
            t = self.try_read()
            if t is not None:
                return t
            self.torn_reads += 1
            os.sched_yield()
        return None


def waiting_pools(engine) -> tuple[int, list[WaitingPool]]:
    """A ``StrategyEngine``'s waiting pools (``engine.refresh.waiting``: row -> reason) as table
    entries: their total and the first :data:`CAPACITY` by address (heartbeat-time work, never
    per frame)."""
    import numpy as np
    from alphapulse.jit import pool_state as S
    from alphapulse.strategy.config import words_to_address
    waiting, pools, reg = engine.refresh.waiting, engine.state["pools"], engine.registry
    if not waiting:
        return 0, []
    rows = np.fromiter(waiting, np.int64, len(waiting))
    # an address's bytes are the little-endian words C_ADDR..C_ADDR+2: byte-swapped, the words
    # compare as the bytes do (the third holds 4 bytes, its swapped low half is zero)
    w = pools[rows, S.C_ADDR:S.C_ADDR + 3].astype(np.uint64).byteswap()
    order = np.lexsort((w[:, 2], w[:, 1], w[:, 0]))[:CAPACITY]
    out = []
    for r in rows[order].tolist():
        a = words_to_address(pools[r, S.C_ADDR], pools[r, S.C_ADDR + 1], pools[r, S.C_ADDR + 2])
        out.append(WaitingPool(a, bytes(reg.token_address(int(pools[r, S.C_TOKEN0]))),
                               bytes(reg.token_address(int(pools[r, S.C_TOKEN1]))), int(waiting[r])))
    return len(waiting), out


def status_text(table: WaitingTable | None, count: int, symbols: Mapping[bytes, str], named: int = 3) -> str:
    """``waiting 3: 0x1234…abcd WETH/USDC, 0x…, 0x… +2 more`` for the status line (``count``:
    the strategy's gauge, used when the table cannot be read)."""
    if table is None:
        return f"waiting {count}"
    if not table.total:
        return "waiting 0"
    names = [p.label(symbols) for p in table.pools[:named]]
    more = table.total - len(names)
    return f"waiting {table.total}: " + ", ".join(names) + (f" +{more} more" if more > 0 else "")


def prometheus_lines(table: WaitingTable | None, prefix: str = "alphapulse") -> list[str]:
    """``<prefix>_pool_waiting{pool=..,reason=..} 1`` for each pool in the table (at most
    :data:`CAPACITY`), with HELP and TYPE; nothing when none wait."""
    if table is None or not table.pools:
        return []
    name = f"{prefix}_pool_waiting"
    out = [f"# HELP {name} 1 for a pool out of trading while it waits for data (the first "
           f"{CAPACITY} by address; alphapulse_pools_waiting counts them all).",
           f"# TYPE {name} gauge"]
    out += [f'{name}{{pool="0x{p.pool.hex()}",reason="{p.reason_name}"}} 1' for p in table.pools]
    return out
