"""Configuration of the EVM adapter: one typed, validated object.

Errors name the offending key (:class:`alphapulse.settings.ConfigError`, the
one error type for configuration). :meth:`EvmDataClientConfig.from_pipeline`
builds it from the pipeline's :class:`alphapulse.apps.config.Config`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

from alphapulse.settings import ConfigError, FactoryConfig

__all__ = ["ConfigError", "FactoryConfig", "EvmDataClientConfig"]


def _address(key: str, value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)) and len(value) == 20:
        return bytes(value)
    s = value.lower() if isinstance(value, str) else ""
    if not (s.startswith("0x") and len(s) == 42 and all(c in "0123456789abcdef" for c in s[2:])):
        raise ConfigError(key, f"not a 0x-prefixed 20-byte hex address: {value!r}")
    return bytes.fromhex(s[2:])


@dataclass(frozen=True)
class EvmDataClientConfig:
    """Everything the adapter needs; times in seconds, ticks in Uniswap V3 tick units."""
    endpoints: tuple[str, ...]                         # ws:// or wss://, tried in order, failover
    factories: tuple[FactoryConfig, ...]               # factory -> venue and kind (v2/v3/algebra)
    chain_id: int = 137
    cache_path: str = ":memory:"                       # SQLite pool cache; ":memory:" = no persistence
    tokens: tuple[str, ...] = ()                       # optional token filter (addresses)
    token_match: Literal["both", "any"] = "both"       # with ``tokens``: both tokens listed, or one
    known_decimals: Mapping[str, int] = field(default_factory=dict)  # token -> decimals, trusted
    backoff_initial_s: float = 0.2                     # first reconnect delay, doubled per failure
    backoff_max_s: float = 10.0
    backoff_jitter: float = 0.25                       # +-fraction of the delay, randomised
    connect_timeout_s: float = 5.0
    request_timeout_s: float = 10.0
    watchdog_s: float = 15.0                           # silence before the subscription is checked
    reorg_depth: int = 128                             # blocks of history kept to undo a reorg
    tick_snapshot_range: int = 20_000                  # V3: ticks each side of the price to snapshot
    discovery_concurrency: int = 8                     # pools discovered at once
    discovery_max_attempts: int = 8                    # node errors on one pool before it is given up
    rpc_batch_size: int = 100                          # eth_calls per JSON-RPC batch
    rpc_batching: bool = True                          # False: concurrent single requests instead
    getlogs_chunk_blocks: int = 2_000                  # eth_getLogs range per request in backfill
    start_block: int | None = None                     # first connection: backfill from here; None = live
    fetch_priority_fee: bool = True                    # GasPrice.priority_fee_wei via eth_maxPriorityFeePerGas
    checksum: bool = True                              # CRC-32 in every frame header
    heartbeat_s: float | None = 1.0                    # Heartbeat frame after this much silence; None = off
    max_frames_per_batch: int = 256                    # frames per sink() call during backfill
    ws_max_message_bytes: int = 256 << 20              # largest JSON-RPC message (eth_getLogs replies)
    refresh_min_interval_s: float = 1.0                # PoolRefresh: one fresh snapshot per pool at most this often
    refresh_max_per_s: float = 20.0                    # PoolRefresh: fresh snapshots per second, all pools

    def __post_init__(self) -> None:
        object.__setattr__(self, "endpoints", tuple(self.endpoints))
        object.__setattr__(self, "factories", tuple(
            f if isinstance(f, FactoryConfig) else FactoryConfig(**f) for f in self.factories))
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "known_decimals", dict(self.known_decimals))
        self.validate()

    def validate(self, key: str = "adapter") -> "EvmDataClientConfig":
        if not self.endpoints:
            raise ConfigError(f"{key}.endpoints", "needs at least one ws:// or wss:// URL")
        for i, url in enumerate(self.endpoints):
            if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
                raise ConfigError(f"{key}.endpoints[{i}]", f"must be a ws:// or wss:// URL, got {url!r}")
        if not self.factories:
            raise ConfigError(f"{key}.factories", "needs at least one factory (address, venue, kind)")
        seen: set[bytes] = set()
        for i, f in enumerate(self.factories):
            f.validate(f"{key}.factories[{i}]")
            if f.kind not in ("v2", "v3", "algebra"):
                raise ConfigError(f"{key}.factories[{i}].kind",
                                  f"must be 'v2', 'v3' or 'algebra', got {f.kind!r}")
            a = _address(f"{key}.factories[{i}].address", f.address)
            if a in seen:
                raise ConfigError(f"{key}.factories[{i}].address", f"duplicate factory {f.address}")
            seen.add(a)
        if not 0 < self.chain_id < 1 << 32:
            raise ConfigError(f"{key}.chain_id", f"must be a positive u32, got {self.chain_id}")
        for i, t in enumerate(self.tokens):
            _address(f"{key}.tokens[{i}]", t)
        if self.token_match not in ("both", "any"):
            raise ConfigError(f"{key}.token_match", f"must be 'both' or 'any', got {self.token_match!r}")
        for t, d in self.known_decimals.items():
            _address(f"{key}.known_decimals[{t!r}]", t)
            if isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 255:
                raise ConfigError(f"{key}.known_decimals[{t!r}]", f"must be an integer 0..255, got {d!r}")
        positive = ("backoff_initial_s", "backoff_max_s", "connect_timeout_s", "request_timeout_s",
                    "watchdog_s", "refresh_min_interval_s", "refresh_max_per_s")
        for name in positive:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
                raise ConfigError(f"{key}.{name}", f"must be a number > 0, got {v!r}")
        if self.heartbeat_s is not None and (isinstance(self.heartbeat_s, bool)
                                             or not isinstance(self.heartbeat_s, (int, float))
                                             or not self.heartbeat_s > 0):
            raise ConfigError(f"{key}.heartbeat_s", f"must be None or a number > 0, got {self.heartbeat_s!r}")
        if self.backoff_initial_s > self.backoff_max_s:
            raise ConfigError(f"{key}.backoff_initial_s", "must be <= backoff_max_s")
        if not 0 <= self.backoff_jitter < 1:
            raise ConfigError(f"{key}.backoff_jitter", f"must be in [0, 1), got {self.backoff_jitter!r}")
        ints = {"reorg_depth": 1, "tick_snapshot_range": 0, "discovery_concurrency": 1,
                "discovery_max_attempts": 1,
                "rpc_batch_size": 1, "getlogs_chunk_blocks": 1, "max_frames_per_batch": 1,
                "ws_max_message_bytes": 1 << 16}
        for name, lo in ints.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise ConfigError(f"{key}.{name}", f"must be an integer >= {lo}, got {v!r}")
        if self.start_block is not None and (isinstance(self.start_block, bool)
                                             or not isinstance(self.start_block, int)
                                             or self.start_block < 0):
            raise ConfigError(f"{key}.start_block", f"must be None or a block number >= 0, got {self.start_block!r}")
        return self

    # -- derived views (bytes keys for the hot path) --
    def factory_map(self) -> dict[bytes, FactoryConfig]:
        """20-byte factory address -> its configuration."""
        return {bytes.fromhex(f.address.lower()[2:]): f for f in self.factories}

    def token_set(self) -> frozenset[bytes]:
        return frozenset(bytes.fromhex(t.lower()[2:]) for t in self.tokens)

    def known_decimals_bytes(self) -> dict[bytes, int]:
        return {bytes.fromhex(t.lower()[2:]): d for t, d in self.known_decimals.items()}

    def replace(self, **changes: Any) -> "EvmDataClientConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_pipeline(cls, cfg: Any, **overrides: Any) -> "EvmDataClientConfig":
        """From the pipeline's ``Config``: source.rpc_urls, chain.factories/tokens/pool_cache."""
        import os
        ch = cfg.chain
        kw: dict[str, Any] = dict(
            endpoints=tuple(cfg.source.rpc_urls), factories=ch.factories,
            cache_path=os.path.expanduser(ch.pool_cache),
            tokens=tuple(t.address for t in ch.tokens) if ch.follow_tokens_only else (),
            known_decimals={t.address: t.decimals for t in ch.tokens},
        )
        if ch.chain_id:                     # unset (0): this class's default
            kw["chain_id"] = ch.chain_id
        kw.update(overrides)
        return cls(**kw)
