"""Configuration of the arbitrage engine (one typed, validated object).

:class:`EngineConfig` holds every threshold and capacity the kernels use; the
kernels receive it packed into an int64 parameter array (``params_array``).
``EngineConfig.from_app_config`` builds it from the pipeline configuration
(``alphapulse.apps.config.Config``): venue fees from the factories, stable and
native tokens from the chain section, thresholds from the strategy section.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from alphapulse.jit import arb as A
from alphapulse.protocol import layout as L


class EngineConfigError(ValueError):
    """A configuration value the engine cannot use; the message names the key."""


def address_words(addr: str | bytes) -> tuple[int, int, int]:
    """20-byte address -> the three little-endian words the kernels key on (bytes 0-7, 8-15, 16-19)."""
    if isinstance(addr, str):
        s = addr[2:] if addr.lower().startswith("0x") else addr
        if len(s) != 40:
            raise EngineConfigError(f"not a 20-byte hex address: {addr!r}")
        b = bytes.fromhex(s)
    else:
        b = bytes(addr)
        if len(b) != 20:
            raise EngineConfigError(f"address must be 20 bytes, got {len(b)}")
    return (int.from_bytes(b[0:8], "little"), int.from_bytes(b[8:16], "little"),
            int.from_bytes(b[16:20], "little"))


def words_to_address(w0: int, w1: int, w2: int) -> bytes:
    return int(w0).to_bytes(8, "little") + int(w1).to_bytes(8, "little") + int(w2).to_bytes(4, "little")


def _i64(u: int) -> int:
    return u - (1 << 64) if u >= 1 << 63 else u


_DEFAULT_V2_FEES = {int(L.Venue.UNISWAP_V2): 3000, int(L.Venue.SUSHISWAP): 3000,
                    int(L.Venue.QUICKSWAP): 3000, int(L.Venue.SUSHISWAP_POLYGON): 3000,
                    int(L.Venue.TEST): 3000}


def _reloadable_kw(s: Any) -> dict[str, Any]:
    """Engine settings from the pipeline's ``[strategy]`` keys that a hot reload may change
    (``alphapulse.apps.control.RELOADABLE["strategy"]``): one mapping for start and reload."""
    return dict(min_net_profit_usd_e8=int(round(s.min_net_profit_usd * 100_000_000)),
                max_input_share_bps=s.max_input_share_bps, gas_units_base=s.gas_units_base,
                gas_units_v2_hop=s.gas_units_per_hop, gas_units_v3_hop=s.gas_units_per_hop,
                republish_change_bps=s.material_change_bps, republish_min_blocks=s.republish_min_blocks,
                min_price_depth_usd=int(s.min_price_depth_usd))


@dataclass(frozen=True)
class EngineConfig:
    # pricing
    stable_token: str = ""                  # USD numeraire; "" = every signal unpriced
    min_price_depth_usd: int = 10_000       # price routes to the stable coin thinner than this (USD) price nothing
    native_token: str = ""                  # wrapped native token: values gas in USD
    chain_id: int = 0                       # expected chain, 0 = any: signals carry the GasPrice frames' chain
                                            # id (this one before the first); a GasPrice that disagrees with
                                            # a configured value is counted (chain_mismatch) and logged
    strategy_id: int = 1
    # thresholds
    min_net_profit_usd_e8: int = 0
    max_input_share_bps: int = 3000         # input at most this share of the first pool's input reserve
    unpriced_min_profit: Mapping[str, int] = field(default_factory=dict)  # token -> min gross (native units)
    republish_change_bps: int = 50          # re-publish a live opportunity when profit or size moves this much
    republish_min_blocks: int = 1           # ... and at most once per this many blocks (the newest state
                                            # block of its pools); 0 = on every material change
    min_spread_e9: int = 0                  # screen: marginal edge must exceed this (x 1e-9)
    screen_pct: int = 50                    # screen: skip the exact search when the closed-form profit is
                                            # below this % of gas + min net (or the unpriced minimum); 0 = off
    # gas
    gas_units_base: int = 60_000
    gas_units_v2_hop: int = 110_000
    gas_units_v3_hop: int = 110_000
    # search
    max_hops: int = 3
    max_triangles_per_pool: int = 64
    search_iters_v2: int = 24               # golden-section steps of the fallback search (the exact swaps
                                            # revert at the modelled optimum)
    search_iters_v3: int = 28               # exact ascent from the modelled optimum: most simulations
    search_tolerance_ppb: int = 1           # ... which stops within this many parts per billion of the
                                            # best profit (or the rounding staircase, if wider)
    evaluate: str = "block"                 # "block": apply a block's events, then search each touched pool
                                            # once on the block-end state (the only states a searcher can
                                            # trade); "frame": after every frame (research: a state a later
                                            # event of its block may change gives flagged intra-block signals)
    neighbor_scan: int = 1024               # all-V2 integer refinement: widest band (each side) scanned exhaustively
    # pool state: a pool whose tick set an event showed incomplete (or a V3 pool without tick
    # data) waits on a fresh snapshot; its PoolRefresh request is sent again after this long
    refresh_timeout_s: float = 2.0
    token_symbols: Mapping[str, str] = field(default_factory=dict)   # address -> symbol, for names in logs
    # venues: constant-product fee in pips per venue (pools are created from PoolSync with it)
    v2_venue_fees: Mapping[int, int] = field(default_factory=lambda: dict(_DEFAULT_V2_FEES))
    # frames
    market_checksum_every: int = 100
    signal_checksum: bool = True
    # capacities
    max_pools: int = 16_384
    max_tokens: int = 8_192
    max_v3_pools: int = 8_192
    max_ticks_per_pool: int = 512
    journal_size: int = 1 << 16
    signal_table_size: int = 1 << 16
    max_signals_per_batch: int = 4096

    def __post_init__(self) -> None:
        for name in ("stable_token", "native_token"):
            v = getattr(self, name)
            if v:
                try:
                    address_words(v)
                except EngineConfigError as e:
                    raise EngineConfigError(f"{name}: {e}") from None
        if self.evaluate not in ("block", "frame"):
            raise EngineConfigError(f"evaluate: must be 'block' or 'frame', got {self.evaluate!r}")
        if self.max_hops not in (2, 3):
            raise EngineConfigError(f"max_hops: must be 2 or 3, got {self.max_hops}")
        if not 0 < self.max_input_share_bps <= 10_000:
            raise EngineConfigError(f"max_input_share_bps: must be in 1..10000, got {self.max_input_share_bps}")
        for name in ("min_net_profit_usd_e8", "republish_change_bps", "republish_min_blocks", "min_spread_e9", "gas_units_base",
                     "gas_units_v2_hop", "gas_units_v3_hop", "max_triangles_per_pool", "search_iters_v2",
                     "search_iters_v3", "search_tolerance_ppb", "neighbor_scan", "market_checksum_every", "chain_id", "screen_pct",
                     "min_price_depth_usd"):
            if getattr(self, name) < 0:
                raise EngineConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not self.refresh_timeout_s > 0:
            raise EngineConfigError(f"refresh_timeout_s: must be > 0, got {self.refresh_timeout_s}")
        for tok in self.token_symbols:
            try:
                address_words(tok)
            except EngineConfigError as e:
                raise EngineConfigError(f"token_symbols: {e}") from None
        if not 0 <= self.strategy_id < 65536:
            raise EngineConfigError(f"strategy_id: must be a u16, got {self.strategy_id}")
        for venue, fee in self.v2_venue_fees.items():
            if not 0 <= int(venue) < 65536:
                raise EngineConfigError(f"v2_venue_fees: venue {venue} is not a u16")
            if not 0 <= int(fee) < 1_000_000:
                raise EngineConfigError(f"v2_venue_fees[{venue}]: fee must be in 0..999999 pips, got {fee}")
        for tok, v in self.unpriced_min_profit.items():
            address_words(tok)
            if not 0 <= int(v) < 1 << 128:
                raise EngineConfigError(f"unpriced_min_profit[{tok}]: must be a u128, got {v}")
        for name in ("max_pools", "max_tokens", "max_v3_pools", "max_ticks_per_pool", "journal_size",
                     "signal_table_size", "max_signals_per_batch"):
            if getattr(self, name) < 1:
                raise EngineConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        st = self.signal_table_size
        if st & (st - 1):
            raise EngineConfigError(f"signal_table_size: must be a power of two, got {st}")

    def replace(self, **kw: Any) -> "EngineConfig":
        return dataclasses.replace(self, **kw)

    @classmethod
    def from_app_config(cls, cfg: Any, **overrides: Any) -> "EngineConfig":
        """Engine configuration from the pipeline ``Config`` (alphapulse.apps.config)."""
        fees = dict(_DEFAULT_V2_FEES)
        for f in cfg.chain.factories:
            if f.kind == "v2":
                fees[int(f.venue)] = int(f.fee_pips)
        s = cfg.strategy
        kw: dict[str, Any] = dict(
            stable_token=cfg.chain.stable_token, native_token=cfg.chain.native_token,
            chain_id=cfg.chain.chain_id, strategy_id=s.strategy_id,
            max_triangles_per_pool=s.max_triangles_per_pool,
            evaluate=s.evaluate,
            v2_venue_fees=fees, market_checksum_every=cfg.protocol.market_checksum_every,
            token_symbols={t.address: t.symbol for t in cfg.chain.tokens if t.symbol},
            **_reloadable_kw(s),
        )
        kw.update(overrides)
        return cls(**kw)

    def reloaded(self, strategy: Mapping[str, Any]) -> "EngineConfig":
        """This configuration with the reloadable ``[strategy]`` settings of a hot reload
        (``alphapulse.apps.control``, section ``strategy``); validated like any other."""
        import types
        return self.replace(**_reloadable_kw(types.SimpleNamespace(**strategy)))

    # ---------------------------------------------------------------- kernel arrays
    #: Entries of :meth:`params_array` a running engine takes over on a hot reload.
    RELOADABLE_PARAMS = (A.PR_MIN_NET_USD_E8, A.PR_MAX_INPUT_BPS, A.PR_GAS_BASE_UNITS, A.PR_GAS_V2_UNITS,
                         A.PR_GAS_V3_UNITS, A.PR_REPUBLISH_BPS, A.PR_REPUBLISH_BLOCKS, A.PR_MIN_PRICE_DEPTH_USD)

    def params_array(self) -> np.ndarray:
        p = np.zeros(A.NPARAMS, np.int64)
        p[A.PR_MIN_NET_USD_E8] = self.min_net_profit_usd_e8
        p[A.PR_MAX_HOPS] = self.max_hops
        p[A.PR_MAX_TRIANGLES] = self.max_triangles_per_pool
        p[A.PR_MAX_INPUT_BPS] = self.max_input_share_bps
        p[A.PR_GAS_BASE_UNITS] = self.gas_units_base
        p[A.PR_GAS_V2_UNITS] = self.gas_units_v2_hop
        p[A.PR_GAS_V3_UNITS] = self.gas_units_v3_hop
        if self.stable_token:
            p[A.PR_STABLE:A.PR_STABLE + 3] = [_i64(w) for w in address_words(self.stable_token)]
            p[A.PR_HAS_STABLE] = 1
        if self.native_token:
            p[A.PR_NATIVE:A.PR_NATIVE + 3] = [_i64(w) for w in address_words(self.native_token)]
            p[A.PR_HAS_NATIVE] = 1
        p[A.PR_CHAIN_ID] = self.chain_id
        p[A.PR_STRATEGY_ID] = self.strategy_id
        p[A.PR_REPUBLISH_BPS] = self.republish_change_bps
        p[A.PR_REPUBLISH_BLOCKS] = self.republish_min_blocks
        p[A.PR_EVALUATE] = A.EVAL_FRAME if self.evaluate == "frame" else A.EVAL_BLOCK
        p[A.PR_CRC_EVERY] = self.market_checksum_every
        p[A.PR_ITERS_V2] = self.search_iters_v2
        p[A.PR_ITERS_V3] = self.search_iters_v3
        p[A.PR_SEARCH_TOL_PPB] = self.search_tolerance_ppb
        p[A.PR_NEIGHBOR_SCAN] = self.neighbor_scan
        p[A.PR_MIN_SPREAD_E9] = self.min_spread_e9
        p[A.PR_SIGNAL_CRC] = 1 if self.signal_checksum else 0
        p[A.PR_SOURCE] = int(L.Source.ARBITRAGE_STRATEGY)
        p[A.PR_SCREEN_PCT] = self.screen_pct
        p[A.PR_MIN_PRICE_DEPTH_USD] = self.min_price_depth_usd
        return p

    def venue_fee_array(self) -> np.ndarray:
        a = np.full(65536, -1, np.int64)
        for venue, fee in self.v2_venue_fees.items():
            a[int(venue)] = int(fee)
        return a

    def symbols_by_address(self) -> dict[bytes, str]:
        """token_symbols keyed by the 20 address bytes."""
        return {words_to_address(*address_words(a)): s for a, s in self.token_symbols.items()}

    def token_min_array(self) -> np.ndarray:
        rows = max(1, len(self.unpriced_min_profit))
        a = np.zeros((rows, A.TMCOL), np.uint64)
        if not self.unpriced_min_profit:
            a[0, :3] = np.uint64(0xFFFFFFFFFFFFFFFF)  # matches no token (addresses are < 2**32 in word 2)
        for i, (tok, v) in enumerate(self.unpriced_min_profit.items()):
            a[i, :3] = address_words(tok)
            a[i, 3] = int(v) & ((1 << 64) - 1)
            a[i, 4] = int(v) >> 64
        return a
