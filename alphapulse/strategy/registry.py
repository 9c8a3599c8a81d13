"""Python view of the engine's pool registry (address -> row, token graph).

The registry itself lives in the kernel arrays (``alphapulse.jit.pool_state``)
so that the hot path resolves addresses without leaving Numba; this class
reads them for tools, tests and the dashboard.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alphapulse.jit import pool_state as S
from alphapulse.strategy.config import address_words, words_to_address


def _limbs(row: np.ndarray, col: int, n: int) -> int:
    return sum(int(row[col + i]) << (64 * i) for i in range(n))


def _i64(u: int) -> int:
    u = int(u)
    return u - (1 << 64) if u >= 1 << 63 else u


@dataclass(frozen=True)
class PoolInfo:
    row: int
    address: bytes
    kind: int                 # 1 constant product, 2 concentrated liquidity, 3 the same with a dynamic fee (Algebra)
    token0: bytes
    token1: bytes
    decimals0: int
    decimals1: int
    fee_pips: int
    venue: int
    tick_spacing: int
    reserve0: int
    reserve1: int
    sqrt_price_x96: int
    liquidity: int
    tick: int
    stale: bool
    has_state: bool
    block_number: int
    ticks: tuple[tuple[int, int], ...]   # (tick, liquidity_net) of V3 pools, sorted
    coverage: tuple[int, int] | None = None  # tick range the ticks are complete over (TickCoverage)
    waiting: int = 0                     # RefreshReason it waits on a fresh snapshot for, 0 = none


class PoolRegistry:
    def __init__(self, state: dict[str, np.ndarray]):
        self._s = state

    def __len__(self) -> int:
        return int(self._s["meta"][S.M_NPOOLS])

    @property
    def n_tokens(self) -> int:
        return int(self._s["meta"][S.M_NTOKENS])

    def index(self, address: str | bytes) -> int:
        """Row of a pool, -1 if the engine has not seen it."""
        w = [np.uint64(x) for x in address_words(address)]
        return int(S.find_pool(self._s["pools"], self._s["pool_ht"], w[0], w[1], w[2]))

    def token_index(self, address: str | bytes) -> int:
        w = [np.uint64(x) for x in address_words(address)]
        return int(S.find_token(self._s["tokens"], self._s["token_ht"], w[0], w[1], w[2]))

    def token_address(self, t: int) -> bytes:
        r = self._s["tokens"][t]
        return words_to_address(r[S.T_ADDR], r[S.T_ADDR + 1], r[S.T_ADDR + 2])

    def pools_of_pair(self, a: str | bytes, b: str | bytes) -> list[int]:
        ta, tb = self.token_index(a), self.token_index(b)
        if ta < 0 or tb < 0:
            return []
        pr = int(S.find_pair(self._s["pair_ht"], ta, tb))
        out = []
        p = int(self._s["pairs"][pr, S.P_HEAD]) if pr >= 0 else -1
        while p >= 0:
            out.append(p)
            p = _i64(self._s["pools"][p, S.C_NEXT_PAIR])
        return sorted(out)

    def pool(self, ref: int | str | bytes) -> PoolInfo:
        p = ref if isinstance(ref, int) else self.index(ref)
        if not 0 <= p < len(self):
            raise KeyError(f"unknown pool {ref!r}")
        r = self._s["pools"][p]
        ticks: tuple[tuple[int, int], ...] = ()
        v3row = _i64(r[S.C_V3ROW])
        if v3row >= 0:
            n = int(self._s["tn"][v3row])
            nets = self._s["tnets"][v3row]
            lst = []
            for i in range(n):
                v = int(nets[i, 0]) | (int(nets[i, 1]) << 64)
                if v >= 1 << 127:
                    v -= 1 << 128
                lst.append((int(self._s["tticks"][v3row, i]), v))
            ticks = tuple(lst)
        return PoolInfo(
            row=p, address=words_to_address(r[S.C_ADDR], r[S.C_ADDR + 1], r[S.C_ADDR + 2]),
            kind=int(r[S.C_KIND]), token0=self.token_address(int(r[S.C_TOKEN0])),
            token1=self.token_address(int(r[S.C_TOKEN1])), decimals0=int(r[S.C_DEC0]),
            decimals1=int(r[S.C_DEC1]), fee_pips=int(r[S.C_FEE]), venue=int(r[S.C_VENUE]),
            tick_spacing=_i64(r[S.C_SPACING]), reserve0=_limbs(r, S.C_R0, 2), reserve1=_limbs(r, S.C_R1, 2),
            sqrt_price_x96=_limbs(r, S.C_SQRT, 4), liquidity=_limbs(r, S.C_LIQ, 2), tick=_i64(r[S.C_TICK]),
            stale=bool(r[S.C_STALE]), has_state=bool(r[S.C_HAS_STATE]), block_number=int(r[S.C_STATE_BLOCK]),
            ticks=ticks, coverage=self._coverage(r), waiting=int(r[S.C_WANT]))

    @staticmethod
    def _coverage(r: np.ndarray) -> tuple[int, int] | None:
        if r[S.C_COV_LO] == S.NO_COV_LO and r[S.C_COV_HI] == S.NO_COV_HI:
            return None
        return _i64(r[S.C_COV_LO]), _i64(r[S.C_COV_HI])
