"""Pools that wait on a fresh snapshot, and the PoolRefresh requests that ask the source for one.

The kernels take a pool out of trading when an event shows its tick set incomplete (a
Mint/Burn at a tick the arrays do not hold, liquidity that would go negative, a swap that
leaves the covered tick range) and mark why (``pool_state.C_WANT``); a concentrated-liquidity
pool without tick data waits too (``pool_state.scan_waiting``). :class:`RefreshRequester`
turns that into PoolRefresh frames (PROTOCOL.md type 101, system domain): at most one
outstanding request per pool, sent again when no snapshot came within the timeout. The
fresh PoolState (with its PoolTicks and TickCoverage) clears the mark, and the pool trades
again. Each pool's leaving and re-entering trading is logged once.
"""
from __future__ import annotations

import logging
import time
from typing import Mapping

import numpy as np

from alphapulse.jit import pool_state as S
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L

log = logging.getLogger("alphapulse.strategy.refresh")

REASONS = {
    int(L.RefreshReason.UNKNOWN_TICK): "an event touched a tick outside the known tick set",
    int(L.RefreshReason.NEGATIVE_LIQUIDITY): "liquidity would go negative",
    int(L.RefreshReason.NO_TICK_DATA): "no tick data",
    int(L.RefreshReason.STALE): "state older than allowed",
}


class RefreshRequester:
    """Tracks the engine's waiting pools (``state``: the engine's arrays) and builds the
    PoolRefresh frames to send for them (source: the arbitrage strategy, its own sequence).

    ``symbols``: token address (bytes) -> symbol, to name pools in logs and status.
    """

    def __init__(self, state: dict[str, np.ndarray], registry, *, timeout_s: float = 2.0,
                 symbols: Mapping[bytes, str] | None = None,
                 source: int = int(L.Source.ARBITRAGE_STRATEGY)) -> None:
        self._s = state
        self._registry = registry
        self._rows = np.zeros(state["pools"].shape[0], np.int64)
        self.timeout_ns = int(timeout_s * 1e9)
        self.symbols = dict(symbols or {})
        self.source = source
        self.waiting: dict[int, int] = {}       # pool row -> RefreshReason
        self._sent: dict[int, int] = {}         # pool row -> monotonic ns of its outstanding request
        self._no_ticks_said: set[int] = set()
        self._seq = 0
        self.requests_sent = 0
        self._wants_seen = -1

    @property
    def changed(self) -> bool:
        """True when a pool started waiting since the last :meth:`poll` (cheap: one counter)."""
        return int(self._s["meta"][S.M_WANTS]) != self._wants_seen

    def pool_name(self, row: int) -> str:
        """``0xabc…`` (SYM0/SYM1) of pool ``row``, symbols where known."""
        info = self._registry.pool(row)
        syms = [self.symbols.get(bytes(t), "0x" + bytes(t).hex()[:8]) for t in (info.token0, info.token1)]
        return f"0x{info.address.hex()} ({syms[0]}/{syms[1]})"

    def names(self, limit: int = 10) -> list[str]:
        """Names of (at most ``limit``) waiting pools, token symbols where known."""
        return [self.pool_name(r) for r in sorted(self.waiting)[:limit]]

    def poll(self, now_ns: int | None = None) -> list[bytes]:
        """Update the waiting set (logging who leaves and re-enters trading) and return the
        PoolRefresh frames due now: one per waiting pool without a request outstanding, or
        whose request is older than the timeout."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        s = self._s
        n = int(S.scan_waiting(s["pools"], s["tn"], s["meta"], s["counters"], self._rows))
        self._wants_seen = int(s["meta"][S.M_WANTS])
        pools = s["pools"]
        current = {int(r): int(pools[r, S.C_WANT]) for r in self._rows[:n]}
        for r in [r for r in self.waiting if r not in current]:
            self._sent.pop(r, None)
            log.info("pool %s re-enters trading (snapshot of block %d)", self.pool_name(r),
                     int(pools[r, S.C_SNAP_BLOCK]))
        for r, reason in current.items():
            if r in self.waiting:
                continue
            if reason == int(L.RefreshReason.NO_TICK_DATA):
                if r not in self._no_ticks_said:
                    self._no_ticks_said.add(r)
                    log.warning("V3 pool %s has no tick data: not traded; asking the source for it",
                                self.pool_name(r))
            else:
                log.warning("pool %s leaves trading: %s; asking the source for a fresh snapshot",
                            self.pool_name(r), REASONS.get(reason, f"reason {reason}"))
        self.waiting = current
        frames = []
        for r, reason in current.items():
            sent = self._sent.get(r)
            if sent is not None and now - sent < self.timeout_ns:
                continue
            self._sent[r] = now
            frames.append(self._frame(r, reason))
        return frames

    def _frame(self, row: int, reason: int) -> bytes:
        r = self._s["pools"][row]
        addr = int(r[S.C_ADDR]).to_bytes(8, "little") + int(r[S.C_ADDR + 1]).to_bytes(8, "little") \
            + int(r[S.C_ADDR + 2]).to_bytes(4, "little")
        self._seq += 1
        self.requests_sent += 1
        rec = C.PoolRefresh(pool=addr, reason=reason, block_number=int(r[S.C_STATE_BLOCK]))
        return C.build_frame(int(L.Domain.SYSTEM), self.source, self._seq, [rec])
