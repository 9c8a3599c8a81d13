"""Pipeline configuration: typed, validated, one object assembled in one place.

Precedence (lowest to highest): dataclass defaults, the TOML file given with
``--config``, environment variables ``ALPHAPULSE__SECTION__KEY=value`` (values
parsed as TOML literals, falling back to plain strings), then command-line
flags. Every error names the key and the problem (:class:`ConfigError`).
Components never read the environment on their own: they get their section.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from alphapulse import redact
from alphapulse.bridge.config import BridgeConfig
from alphapulse.settings import (  # noqa: F401  (re-exported: the pipeline's configuration API)
    MAX_CONFIG_NUMBER, ConfigError, FactoryConfig, TokenConfig, build, coerce, hex_address,
)

ENV_PREFIX = "ALPHAPULSE__"
PACKAGE_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


def physical_memory() -> int:
    """Bytes of RAM of this machine, 0 when unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


@dataclass(frozen=True)
class SourceConfig:
    kind: Literal["replay", "local-chain", "rpc"] = "replay"
    rpc_urls: tuple[str, ...] = ()
    replay_file: str = ""                # a journal or a directory of them; "" = the bundled recording
    speed: str = "recorded"              # "recorded", "max" or a multiple such as "4"
    loop: bool = True                    # replay: start over when the recording ends
    simulate: bool = True                # local-chain: run the market simulator
    sim_seed: int = 7                    # local-chain: market simulator seed
    sim_swaps_per_block: int = 6         # local-chain: simulated trades per block
    sim_block_interval_s: float = 1.0    # local-chain: seconds between blocks
    tick_range: int = 20_000             # live: ticks each side of a V3 pool's price whose initialised
                                         # ticks a snapshot lists (its TickCoverage); x7.4 in price

    def validate(self, key: str) -> None:
        if self.kind == "rpc" and not self.rpc_urls:
            raise ConfigError(f"{key}.rpc_urls", "source kind 'rpc' needs at least one ws:// or wss:// URL")
        for i, url in enumerate(self.rpc_urls):
            if not url.startswith(("ws://", "wss://")):
                raise ConfigError(f"{key}.rpc_urls[{i}]", f"must be a ws:// or wss:// URL, got {url!r}")
        if self.speed not in ("recorded", "max"):
            try:
                mult = float(self.speed)
            except ValueError:
                mult = -1.0
            if not (mult > 0 and math.isfinite(mult)):
                raise ConfigError(f"{key}.speed", f"must be 'recorded', 'max' or a positive multiple, got {self.speed!r}")
        if self.replay_file:
            rp = Path(self.replay_file)
            if not (rp.is_file() or (rp.is_dir() and any(rp.glob("*.apj")))):
                raise ConfigError(f"{key}.replay_file",
                                  f"no such file (or directory of .apj journals): {self.replay_file}")
        if self.sim_swaps_per_block < 1:
            raise ConfigError(f"{key}.sim_swaps_per_block", "must be >= 1")
        if not self.sim_block_interval_s > 0:
            raise ConfigError(f"{key}.sim_block_interval_s", "must be > 0")
        if self.tick_range < 0:
            raise ConfigError(f"{key}.tick_range", "must be >= 0")


@dataclass(frozen=True)
class ChainConfig:
    chain_id: int = 0                    # 0 = unset: the strategy takes it from the GasPrice frames (the
                                         # live adapter and the local chain then use 137, Polygon PoS)
    stable_token: str = ""               # USD numeraire (e.g. USDC); "" = every signal unpriced
    native_token: str = ""               # wrapped native token, values gas in USD
    factories: tuple[FactoryConfig, ...] = ()
    tokens: tuple[TokenConfig, ...] = ()
    follow_tokens_only: bool = False     # ingest only pools whose both tokens are listed
    pool_cache: str = "~/.cache/alphapulse/pools.sqlite"

    def validate(self, key: str) -> None:
        if not 0 <= self.chain_id < 1 << 32:
            raise ConfigError(f"{key}.chain_id", f"must be a u32 (0 = from the frames), got {self.chain_id}")
        for name in ("stable_token", "native_token"):
            v = getattr(self, name)
            if v:
                hex_address(f"{key}.{name}", v)
        seen: set[str] = set()
        for i, f in enumerate(self.factories):
            f.validate(f"{key}.factories[{i}]")
            if f.address.lower() in seen:
                raise ConfigError(f"{key}.factories[{i}].address", f"duplicate factory {f.address}")
            seen.add(f.address.lower())
        for i, t in enumerate(self.tokens):
            t.validate(f"{key}.tokens[{i}]")


@dataclass(frozen=True)
class StrategyConfig:
    min_net_profit_usd: float = 0.0      # publish threshold, USD (converted to integer e8; reloadable)
    max_input_share_bps: int = 3000      # never size above this share of the input pool's reserve
    gas_units_base: int = 60_000         # per transaction
    gas_units_per_hop: int = 110_000     # per swap in the cycle
    max_triangles_per_pool: int = 64     # bound on triangular cycles evaluated through one pool
    material_change_bps: int = 50        # re-publish a live opportunity when profit moves this much
    republish_min_blocks: int = 1        # ... at most once per this many blocks (0 = no limit)
    # "block": apply every event of a block, then search each touched pool once on the block-end
    # state (a BlockEnd record, a change of block number, or the end of a recording ends a block);
    # "frame": search after every market frame (research; signals priced on a state that a later
    # event of its block may change carry the intra-block flag and never count as profit).
    # Neither depends on how frames were batched: a replay gives the live run's signals.
    evaluate: Literal["block", "frame"] = "block"
    strategy_id: int = 1
    # how the strategy waits on the market ring: "sleep" (spin briefly, then futex: low CPU,
    # tens of us to wake) or "spin" (busy-spin: lowest latency, one core taken for good)
    wait: Literal["sleep", "spin"] = "sleep"
    # > 0: run the strategy process under SCHED_FIFO at this priority (root or CAP_SYS_NICE),
    # so that no ordinary process preempts it; with wait = "spin" it then owns a core
    realtime_priority: int = 0
    # a token is priced in USD through its deepest route to the stable coin (by the pools'
    # liquidity in the stable coin); routes whose pools hold less than this many USD leave it unpriced
    min_price_depth_usd: float = 10_000.0

    def validate(self, key: str) -> None:
        if self.min_net_profit_usd < 0:
            raise ConfigError(f"{key}.min_net_profit_usd", f"must be >= 0, got {self.min_net_profit_usd}")
        if not 0 < self.max_input_share_bps <= 10_000:
            raise ConfigError(f"{key}.max_input_share_bps", f"must be in 1..10000, got {self.max_input_share_bps}")
        for name in ("gas_units_base", "gas_units_per_hop", "max_triangles_per_pool", "material_change_bps",
                     "republish_min_blocks"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{key}.{name}", f"must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_price_depth_usd < 1e15:
            raise ConfigError(f"{key}.min_price_depth_usd", f"must be in 0..1e15, got {self.min_price_depth_usd}")
        if not 0 <= self.realtime_priority <= 99:
            raise ConfigError(f"{key}.realtime_priority", f"must be in 0..99 (0 = normal scheduling), got {self.realtime_priority}")
        if not 0 <= self.strategy_id < 65536:
            raise ConfigError(f"{key}.strategy_id", f"must be a u16, got {self.strategy_id}")


@dataclass(frozen=True)
class ProtocolConfig:
    market_checksum_every: int = 100     # ring readers verify every N-th market-data frame (1 = all)
    recording_checksum_every: int = 1    # readers of a recording (replay, backtest) verify every N-th
                                         # frame: a file may come from any writer (PROTOCOL.md section 1)
    market_producer_checksum: bool = True

    def validate(self, key: str) -> None:
        if self.market_checksum_every < 1:
            raise ConfigError(f"{key}.market_checksum_every", f"must be >= 1, got {self.market_checksum_every}")
        if self.recording_checksum_every < 1:
            raise ConfigError(f"{key}.recording_checksum_every",
                              f"must be >= 1, got {self.recording_checksum_every}")


@dataclass(frozen=True)
class RingConfig:
    capacity: int
    policy: Literal["lossless", "overwrite"]

    def validate(self, key: str) -> None:
        if self.capacity < 1 << 16 or self.capacity & (self.capacity - 1):
            raise ConfigError(f"{key}.capacity", f"must be a power of two >= 65536 bytes, got {self.capacity}")
        mem = physical_memory()
        if mem and self.capacity > mem:
            raise ConfigError(f"{key}.capacity", f"{self.capacity} bytes is more than this machine's memory ({mem})")


@dataclass(frozen=True)
class RingsConfig:
    market_data: RingConfig = RingConfig(1 << 24, "overwrite")
    signal: RingConfig = RingConfig(1 << 22, "lossless")
    execution: RingConfig = RingConfig(1 << 20, "lossless")
    system: RingConfig = RingConfig(1 << 20, "overwrite")
    prefix: str = ""                     # segment name prefix; "" = alphapulse_<pid>

    def validate(self, key: str) -> None:
        for name in ("market_data", "signal", "execution", "system"):
            getattr(self, name).validate(f"{key}.{name}")
        mem = physical_memory()
        total = sum(getattr(self, n).capacity for n in ("market_data", "signal", "execution", "system"))
        if mem and total > mem:
            raise ConfigError(f"{key}", f"the rings' capacities add up to {total} bytes, more than this "
                                        f"machine's memory ({mem})")
        if self.prefix and not re.fullmatch(r"[A-Za-z0-9_.-]{1,120}", self.prefix):
            raise ConfigError(f"{key}.prefix", "must be 1-120 characters of A-Z a-z 0-9 _ . - (a shared-memory "
                                               f"name), got {self.prefix!r}")


@dataclass(frozen=True)
class DashboardConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 5006
    rate_limit_hz: float = 10.0          # dashboard renders per second per browser session
    # signs the Bokeh session ids (>= 32 bytes; shown as *** wherever the configuration is printed);
    # "" = a random key made when the dashboard starts
    secret_key: str = field(default="", repr=False, metadata={"secret": True})

    def validate(self, key: str) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{key}.port", f"must be in 0..65535, got {self.port}")
        from alphapulse.dashboard.options import RATE_LIMIT_RANGE_HZ
        lo, hi = RATE_LIMIT_RANGE_HZ
        if not lo <= self.rate_limit_hz <= hi:
            raise ConfigError(f"{key}.rate_limit_hz", f"must be within {lo:g}..{hi:g} renders/s, got {self.rate_limit_hz}")
        from alphapulse.dashboard.options import MIN_SECRET_KEY_BYTES
        if self.secret_key and len(self.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            raise ConfigError(f"{key}.secret_key", f"must be at least {MIN_SECRET_KEY_BYTES} bytes (it is never shown)")


@dataclass(frozen=True)
class OpsConfig:
    host: str = "127.0.0.1"
    port: int = 9464                     # /health and /metrics; 0 = pick a free port

    def validate(self, key: str) -> None:
        if not 0 <= self.port < 65536:
            raise ConfigError(f"{key}.port", f"must be in 0..65535, got {self.port}")


@dataclass(frozen=True)
class RecorderConfig:
    enabled: bool = False
    directory: str = "recordings"
    rotate_bytes: int = 256 << 20

    def validate(self, key: str) -> None:
        if self.rotate_bytes < 1 << 16:
            raise ConfigError(f"{key}.rotate_bytes", f"must be >= 65536, got {self.rotate_bytes}")


@dataclass(frozen=True)
class LoggingConfig:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    status_line: bool = True             # progress line on the terminal
    format: Literal["text", "json"] = "text"   # json: one JSON object per line (time, level, component, pid, logger, message, extra fields)

    def validate(self, key: str) -> None:
        pass


@dataclass(frozen=True)
class TracingConfig:
    """[tracing]: OpenTelemetry traces of sampled signals, built from the stamps the frames carry."""
    enabled: bool = False                # off by default; on: a tracing component reads the signal and execution rings
    sample_every: int = 100              # trace every Nth signal
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"   # OTLP/HTTP (protobuf) traces endpoint

    def validate(self, key: str) -> None:
        if not 1 <= self.sample_every <= 1 << 32:
            raise ConfigError(f"{key}.sample_every", f"must be in 1..2**32, got {self.sample_every}")
        if not self.otlp_endpoint.startswith(("http://", "https://")):
            raise ConfigError(f"{key}.otlp_endpoint", f"must be an http(s) URL, got {self.otlp_endpoint!r}")


@dataclass(frozen=True)
class ExecutionConfig:
    """[execution]: each signal checked by real contract code on the newest state, or also sent.

    The signing key is never part of the configuration: only where to read it (``key_env``, the
    name of an environment variable, or ``key_file``, a path), so ``--print-config`` cannot show it.
    """
    # "auto": "check" when a node is at hand (local-chain and rpc sources), "off" for replays
    mode: Literal["auto", "off", "check", "send"] = "auto"
    method: Literal["eth_call", "revm"] = "eth_call"   # both exact; eth_call is one round trip per check (docs/architecture.md)
    rpc_url: str = ""                    # http(s) endpoint for checks; "" = the source's node
    send_url: str = ""                   # separate endpoint for raw transactions (private relay); "" = rpc_url
    executor: str = ""                   # deployed ArbExecutor (send mode); local-chain deploys one
    key_env: str = "ALPHAPULSE_EXECUTION_KEY"   # name of the environment variable holding the key
    key_file: str = ""                   # or a file holding it (read by the execution component only)
    min_profit_usd: float = 0.0          # send only when the checked net profit is above this
    max_gas_price_gwei: float = 1000.0   # never send above this max fee per gas
    priority_fee: Literal["node", "fixed"] = "node"   # eth_maxPriorityFeePerGas, or priority_fee_gwei
    priority_fee_gwei: float = 30.0
    check_timeout_s: float = 2.0         # a node slower than this counts a check timeout
    max_backlog: int = 64                # unchecked signals kept; older ones are skipped (counted)
    # method "revm": the recently checked cycles re-executed on each new block's fork when the block
    # arrives, so their accounts are read before a check asks (0 = the first check of a block forks)
    revm_warm_cycles: int = 8
    nonce_file: str = ""                 # last nonce used, kept across restarts ("" = node's pending count)

    def validate(self, key: str) -> None:
        if self.executor:
            hex_address(f"{key}.executor", self.executor)
        for name in ("rpc_url", "send_url"):
            v = getattr(self, name)
            if v and not v.startswith(("http://", "https://", "ws://", "wss://")):
                raise ConfigError(f"{key}.{name}", f"must be an http(s) or ws(s) URL, got {v!r}")
        if self.min_profit_usd < 0:
            raise ConfigError(f"{key}.min_profit_usd", "must be >= 0")
        if not self.max_gas_price_gwei > 0:
            raise ConfigError(f"{key}.max_gas_price_gwei", "must be > 0")
        if self.priority_fee_gwei < 0:
            raise ConfigError(f"{key}.priority_fee_gwei", "must be >= 0")
        if not self.check_timeout_s > 0:
            raise ConfigError(f"{key}.check_timeout_s", "must be > 0")
        if self.max_backlog < 1:
            raise ConfigError(f"{key}.max_backlog", "must be >= 1")
        if self.revm_warm_cycles < 0:
            raise ConfigError(f"{key}.revm_warm_cycles", "must be >= 0")

    def effective_mode(self, source_kind: str) -> str:
        if self.mode != "auto":
            return self.mode
        return "off" if source_kind == "replay" and not self.rpc_url else "check"


COMPONENT_NAMES = ("source", "strategy", "dashboard", "recorder", "execution")


@dataclass(frozen=True)
class SupervisorConfig:
    # which components run on this host; the rest arrive or leave through [[bridges]]
    components: tuple[str, ...] = COMPONENT_NAMES
    restart_backoff_s: float = 0.5       # first restart delay, doubled per crash, capped
    restart_backoff_max_s: float = 30.0
    shutdown_timeout_s: float = 10.0
    # a component whose heartbeat is older than this is killed and restarted (0 = never)
    liveness_timeout_s: float = 60.0

    def validate(self, key: str) -> None:
        import math
        if not (math.isfinite(self.liveness_timeout_s) and 0 <= self.liveness_timeout_s <= 86400):
            raise ConfigError(f"{key}.liveness_timeout_s", "must be within 0 (off) and 86400 s")
        for i, c in enumerate(self.components):
            if c not in COMPONENT_NAMES:
                raise ConfigError(f"{key}.components[{i}]", f"must be one of {', '.join(COMPONENT_NAMES)}, got {c!r}")
        if not 0 < self.restart_backoff_s <= self.restart_backoff_max_s:
            raise ConfigError(f"{key}.restart_backoff_s", "must be > 0 and <= restart_backoff_max_s")


@dataclass(frozen=True)
class Config:
    source: SourceConfig = SourceConfig()
    chain: ChainConfig = ChainConfig()
    strategy: StrategyConfig = StrategyConfig()
    protocol: ProtocolConfig = ProtocolConfig()
    rings: RingsConfig = RingsConfig()
    dashboard: DashboardConfig = DashboardConfig()
    ops: OpsConfig = OpsConfig()
    recorder: RecorderConfig = RecorderConfig()
    logging: LoggingConfig = LoggingConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    execution: ExecutionConfig = ExecutionConfig()
    tracing: TracingConfig = TracingConfig()
    # [[bridges]]: NATS JetStream bridges of rings to other hosts; each table holds the fields of
    # alphapulse.bridge.BridgeConfig (domain, direction, servers, host, ...), validated there.
    bridges: tuple[dict, ...] = ()

    def validate(self) -> "Config":
        for f in dataclasses.fields(self):
            if f.name != "bridges":
                getattr(self, f.name).validate(f.name)
        if self.source.kind == "rpc" and not self.chain.factories:
            raise ConfigError("chain.factories", "source kind 'rpc' needs at least one [[chain.factories]] entry "
                                                 "(e.g. --config alphapulse/config/polygon.toml)")
        mode = self.execution.effective_mode(self.source.kind)
        if mode != "off" and self.source.kind == "replay" and not self.execution.rpc_url:
            raise ConfigError("execution.mode", f"{mode!r} needs a node: a local-chain or rpc source, or execution.rpc_url")
        if mode == "send" and self.source.kind != "local-chain" and not self.execution.executor:
            raise ConfigError("execution.executor", "send mode needs the address of a deployed ArbExecutor")
        if self.bridges:
            for i, b in enumerate(self.bridges):
                BridgeConfig.from_mapping({**b, "ring": b.get("ring") or "pipeline"}, key=f"bridges[{i}]")
                if b.get("direction") not in ("in", "out"):
                    raise ConfigError(f"bridges[{i}].direction", f"must be 'in' or 'out', got {b.get('direction')!r}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return _to_plain(self)


# ---------------------------------------------------------------- building
def _to_plain(obj: Any, masked: bool = False) -> Any:
    """Plain dicts and lists; with ``masked``, a set field declared secret (``metadata={"secret":
    True}``) reads ``redact.MASK``."""
    if dataclasses.is_dataclass(obj):
        return {f.name: (redact.MASK if masked and f.metadata.get("secret") and getattr(obj, f.name)
                         else _to_plain(getattr(obj, f.name), masked))
                for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(x, masked) for x in obj]
    return obj


def _deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _set_path(d: dict, path: list[str], value: Any) -> None:
    for p in path[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(".".join(path), "parent key is not a table")
    d[path[-1]] = value


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> dict:
    """``ALPHAPULSE__SECTION__KEY=value`` pairs as a nested dict (keys lower-cased)."""
    out: dict = {}
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX):
            path = [p.lower() for p in name[len(ENV_PREFIX):].split("__") if p]
            if path:
                _set_path(out, path, _parse_env_value(raw))
    return out


def read_toml(path: str | Path) -> dict:
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError("--config", f"no such file: {p}")
    try:
        return tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError("--config", f"{p}: invalid TOML: {e}") from None


def packaged_config(name: str) -> Path:
    """Path of a config shipped in the package (``alphapulse/config/NAME.toml``)."""
    return PACKAGE_CONFIG_DIR / f"{name}.toml"


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None,
                overrides: Mapping[str, Any] | None = None,
                base: str | Path | None = None) -> Config:
    """The effective, validated configuration (see the module docstring for precedence).

    ``base``: a TOML file applied over the defaults and under everything else
    (the market description shipped with the bundled recording).
    """
    data: dict = _to_plain(Config())   # defaults, so a partial table overrides one key
    if base is not None:
        data = _deep_merge(data, read_toml(base))
    if path is not None:
        data = _deep_merge(data, read_toml(path))
    data = _deep_merge(data, env_overrides(os.environ if environ is None else environ))
    if overrides:
        data = _deep_merge(data, overrides)
    return build(Config, data, "").validate()


def to_toml(cfg: Config) -> str:
    """The configuration as TOML text (``--print-config``), secrets masked."""
    lines: list[str] = []

    def lit(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(lit(x) for x in v) + "]"
        raise TypeError(v)

    def emit(table: dict, name: str) -> None:
        scalars = {k: v for k, v in table.items()
                   if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))}
        lines.append(f"[{name}]")
        lines.extend(f"{k} = {lit(v)}" for k, v in scalars.items())
        lines.append("")
        for k, v in table.items():
            if isinstance(v, dict):
                emit(v, f"{name}.{k}")
            elif isinstance(v, list) and v and isinstance(v[0], dict):
                for item in v:
                    lines.append(f"[[{name}.{k}]]")
                    lines.extend(f"{ik} = {lit(iv)}" for ik, iv in item.items())
                    lines.append("")

    for section, table in _to_plain(cfg, masked=True).items():
        if isinstance(table, list):            # top-level array of tables ([[bridges]])
            for item in table:
                lines.append(f"[[{section}]]")
                lines.extend(f"{ik} = {lit(iv)}" for ik, iv in item.items())
                lines.append("")
        else:
            emit(table, section)
    return "\n".join(lines)
