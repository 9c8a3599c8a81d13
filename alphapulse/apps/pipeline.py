"""``python -m alphapulse.apps.pipeline``: one command runs everything.

The supervisor process owns the shared state (rings, the metrics block, and in
``local-chain`` mode the anvil node and the deployed market), starts every
component in its own spawned process, restarts crashes with backoff, serves
``/health`` and ``/metrics``, prints a status line, and on SIGINT/SIGTERM stops
the components (each drains and closes), then unlinks the rings and the
metrics block. Children die with it (PR_SET_PDEATHSIG); rings left by a
SIGKILLed supervisor are removed by the ring watchdog and the next start.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

from alphapulse import redact
from alphapulse.apps import cli
from alphapulse.apps.config import Config, ConfigError, load_config, to_toml

log = logging.getLogger("alphapulse.pipeline")

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
BUNDLED_RECORDING = DATA_DIR / "default_recording.apj"
BUNDLED_MARKET = DATA_DIR / "default_market.toml"
DEFAULT_CHAIN_ID = 137          # the live adapter, local chain and executor when chain.chain_id is unset
DOMAINS = ("market_data", "signal", "execution", "system")


class StartupError(Exception):
    """A start-up failure with a one-line message and a meaningful exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def effective_config(args: Any, environ: dict[str, str] | None = None) -> Config:
    """Flags over environment over ``--config`` over the bundled market (default run) over defaults."""
    overrides = cli.overrides_from_args(args)
    cfg = load_config(args.config, environ=environ, overrides=overrides)
    if cfg.source.kind == "replay" and not cfg.source.replay_file:
        if not BUNDLED_RECORDING.is_file():
            raise ConfigError("source.replay_file",
                              f"no file given and the bundled recording {BUNDLED_RECORDING} is missing")
        over = {**overrides}
        over["source"] = {**over.get("source", {}), "replay_file": str(BUNDLED_RECORDING)}
        cfg = load_config(args.config, environ=environ, overrides=over, base=BUNDLED_MARKET)
    elif (cfg.source.kind == "replay" and BUNDLED_RECORDING.is_file()
          and Path(cfg.source.replay_file).resolve() == BUNDLED_RECORDING.resolve()):
        # the bundled recording named explicitly (a backtest of it): its market comes with it
        cfg = load_config(args.config, environ=environ, overrides=overrides, base=BUNDLED_MARKET)
    return cfg


def check_replay_source(path: str) -> None:
    """Raise ConfigError naming ``source.replay_file`` unless ``path`` is a readable journal, or a
    directory holding at least one (PROTOCOL.md section 6): checked before anything starts."""
    from alphapulse.adapters.recorder import journal_files
    from alphapulse.journal import JournalError, read_file_header
    p = Path(path)
    if p.is_dir():
        files = journal_files(p)
        if not files:
            raise ConfigError("source.replay_file", f"{path}: a directory with no journal files (*-NNNNNN.apj)")
    elif not p.exists():
        raise ConfigError("source.replay_file", f"{path}: no such file or directory")
    else:
        files = [p]
    for f in files:
        try:
            with open(f, "rb") as fh:
                read_file_header(fh, f)
        except JournalError as e:
            raise ConfigError("source.replay_file", f"not a journal: {e}") from None
        except OSError as e:
            raise ConfigError("source.replay_file", f"{f}: {e.strerror or e}") from None


def check_writable_dir(key: str, path: str | Path) -> Path:
    """Create directory ``path`` (and its parents) or raise ConfigError naming ``key``: a component
    that would write there must not crash-loop on it once started."""
    p = Path(path).expanduser()
    for parent in (p, *p.parents):
        if parent.exists() and not parent.is_dir():
            raise ConfigError(key, f"{p}: {parent} is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(key, f"{p}: cannot create the directory ({e.strerror or e})") from None
    if not os.access(p, os.W_OK | os.X_OK):
        raise ConfigError(key, f"{p}: the directory is not writable")
    return p


def check_component_inputs(cfg: Config) -> None:
    """What a component would otherwise fail on at start, every restart again: the directories it
    writes (recorder journals, the pool cache, the nonce file) and, in send mode, the signing key
    (read here to check it exists and parses, then dropped). Raises ConfigError naming the key."""
    comps = cfg.supervisor.components
    if cfg.recorder.enabled and "recorder" in comps:
        check_writable_dir("recorder.directory", cfg.recorder.directory)
    if cfg.source.kind == "rpc" and "source" in comps:
        check_writable_dir("chain.pool_cache", Path(cfg.chain.pool_cache).expanduser().parent)
        if Path(cfg.chain.pool_cache).expanduser().is_dir():
            raise ConfigError("chain.pool_cache", f"{cfg.chain.pool_cache} is a directory, not a file")
    ex = cfg.execution
    if ex.effective_mode(cfg.source.kind) == "send" and "execution" in comps:
        from alphapulse.execution.sender import KeyUnavailable, read_key
        try:
            read_key(ex.key_env, ex.key_file)
        except KeyUnavailable as e:
            raise ConfigError("execution.key_file" if ex.key_file else "execution.key_env", str(e)) from None
        except OSError as e:
            raise ConfigError("execution.key_file", f"{ex.key_file}: {e.strerror or e}") from None
        if ex.nonce_file:
            check_writable_dir("execution.nonce_file", Path(ex.nonce_file).expanduser().parent)


def _check_port_free(what: str, host: str, port: int) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            raise StartupError(cli.EXIT_PORT_IN_USE,
                               f"{what} port {host}:{port} is already in use "
                               f"(choose another with --{what}-port or in the config)") from None


def _check_rpc_reachable(urls: tuple[str, ...], timeout: float = 5.0) -> None:
    """At least one endpoint accepts a WebSocket JSON-RPC request, else exit 4."""
    import asyncio

    async def probe(url: str) -> str | None:
        from web3 import AsyncWeb3, WebSocketProvider
        try:
            async with asyncio.timeout(timeout):
                async with AsyncWeb3(WebSocketProvider(url, max_connection_retries=1)) as w3:
                    await w3.eth.chain_id
            return None
        except Exception as e:  # any failure makes this endpoint unusable now
            return redact.redact(f"{url}: {type(e).__name__}: {e}")

    async def all_() -> list[str | None]:
        return await asyncio.gather(*(probe(u) for u in urls))
    errors = asyncio.run(all_())
    if all(e is not None for e in errors):
        raise StartupError(cli.EXIT_RPC_UNREACHABLE,
                           "no RPC endpoint is reachable: " + "; ".join(e for e in errors if e))


def bridge_component(table: dict) -> str:
    """Supervisor and metrics name of a ``[[bridges]]`` entry: bridge_<in|out>_<domain>."""
    return f"bridge_{table['direction']}_{table['domain']}"


def market_chain_config(chain: Any, mk: Any) -> Any:
    """``chain`` config section describing a deployed local market (``alphapulse.chain``)."""
    import dataclasses
    from alphapulse.apps.config import FactoryConfig, TokenConfig

    def hx(a: Any) -> str:
        return a.lower() if isinstance(a, str) else "0x" + bytes(a).hex()
    v3 = int(mk.v3_venue)
    names = {400: "QuickSwap", 401: "SushiSwap", 405: "Uniswap V3", 406: "QuickSwap V3",
             300: "Uniswap V2", 301: "Uniswap V3", 302: "SushiSwap"}   # PROTOCOL.md venue table
    kinds = getattr(mk, "factory_kinds", None) or {a: "v3" if int(v) == v3 else "v2"
                                                  for a, v in mk.factory_venues.items()}
    factories = tuple(FactoryConfig(address=hx(a), venue=int(v), kind=kinds[a],
                                    name=f"{names.get(int(v), f'venue {v}')} (local)")
                      for a, v in mk.factory_venues.items())
    tokens = tuple(TokenConfig(address=hx(t.address), symbol=t.symbol, decimals=int(t.decimals))
                   for t in mk.tokens.values() if not getattr(t, "decimals_reverts", False))
    by_sym = {t.symbol: t.address for t in tokens}
    return dataclasses.replace(chain, factories=factories, tokens=tokens,
                               stable_token=by_sym.get("USDC", chain.stable_token),
                               native_token=by_sym.get("WMATIC", chain.native_token))


# ------------------------------------------------------------------ the run
class Pipeline:
    """Owns rings, metrics, the optional local chain, the supervisor and the ops server."""

    def __init__(self, cfg: Config, duration_s: float | None = None) -> None:
        self.cfg = cfg
        self.duration_s = duration_s
        self.prefix = cfg.rings.prefix or f"ap{os.getpid()}"
        self.ring_names = {d: f"{self.prefix}_{d}" for d in DOMAINS}
        self.metrics_name = f"alphapulse_{self.prefix}_metrics"
        self.control_name = f"alphapulse_{self.prefix}_control"
        self.control: Any = None
        self.waiting_name = f"alphapulse_{self.prefix}_waiting"
        self.waiting: Any = None         # the strategy's waiting-pools table (alphapulse.apps.waiting)
        self.args: Any = None            # the command line, for re-reading the configuration on reload
        self.reload_requested = False
        self.rings: list[Any] = []
        self.metrics: Any = None
        self.anvil: Any = None
        self.market: Any = None
        self.sup: Any = None
        self.ops: Any = None
        self._last_status = 0.0
        self._status_prev: tuple[float, int] | None = None

    # -------------------------------------------------------------- start-up
    def preflight(self) -> None:
        c = self.cfg
        try:
            check_component_inputs(c)
        except ConfigError as e:
            raise StartupError(cli.EXIT_CONFIG, redact.redact(str(e))) from None
        for key, host in (("dashboard.host", c.dashboard.host if c.dashboard.enabled else None),
                          ("ops.host", c.ops.host)):
            if host is not None:
                try:
                    socket.getaddrinfo(host, None)
                except (socket.gaierror, UnicodeError) as e:
                    raise StartupError(cli.EXIT_CONFIG, f"config error: {key}: cannot resolve {host!r} ({e})") from None
        if c.dashboard.enabled:
            _check_port_free("dashboard", c.dashboard.host, c.dashboard.port)
        _check_port_free("ops", c.ops.host, c.ops.port)
        if c.source.kind == "rpc":
            _check_rpc_reachable(c.source.rpc_urls)
        if c.source.kind == "local-chain":
            from alphapulse.chain.anvil import AnvilNotFound, find_anvil_binary
            try:
                find_anvil_binary()
            except AnvilNotFound as e:
                raise StartupError(cli.EXIT_ANVIL_MISSING, str(e)) from None

    def _start_local_chain(self) -> None:
        """Start anvil, deploy the market, and describe it in the config (factories, tokens)."""
        import dataclasses
        from alphapulse.chain.algebra import ALGEBRA_GAS_LIMIT, ANVIL_ARGS
        from alphapulse.chain.anvil import Anvil
        from alphapulse.chain.deploy import DEMO_PAIRS, MarketSpec, deploy_market
        # the Algebra venue's npm pool code exceeds EIP-170: the node lifts the code-size limit
        self.anvil = Anvil(chain_id=self.cfg.chain.chain_id or DEFAULT_CHAIN_ID, extra_args=ANVIL_ARGS,
                           gas_limit=ALGEBRA_GAS_LIMIT).start()
        log.info("anvil on %s; deploying tokens, Uniswap V2 x2, V3 and Algebra (QuickSwap V3)", self.anvil.ws_url)
        self.market = mk = deploy_market(self.anvil.http_url, MarketSpec(pairs=DEMO_PAIRS))
        self.cfg = dataclasses.replace(self.cfg, chain=market_chain_config(self.cfg.chain, mk))
        ex = self.cfg.execution
        if ex.effective_mode("local-chain") == "send" and not ex.executor:
            # send mode on the local chain: the key's account deploys (and owns) its executor
            from alphapulse.execution.rpc import JsonRpc
            from alphapulse.execution.sender import KeyUnavailable, deploy_executor, read_key
            try:
                key = read_key(ex.key_env, ex.key_file)
            except KeyUnavailable as e:
                raise StartupError(cli.EXIT_CONFIG, f"config error: execution.key_env: {e}") from None
            self.executor_address = deploy_executor(JsonRpc(self.anvil.http_url), key,
                                                    self.cfg.chain.chain_id or DEFAULT_CHAIN_ID)
            log.info("ArbExecutor deployed at %s", self.executor_address)

    def component_specs(self) -> list[Any]:
        import dataclasses
        from alphapulse.apps.supervisor import ComponentSpec
        from alphapulse.strategy.config import EngineConfig
        c, rn, mname = self.cfg, self.ring_names, self.metrics_name
        factories = [dataclasses.asdict(f) for f in c.chain.factories]
        tokens = tuple((t.address, t.symbol, t.decimals) for t in c.chain.tokens)
        specs = []
        if c.source.kind == "replay":
            specs.append(ComponentSpec("source", "alphapulse.apps.components:replay_source", {
                "ring": rn["market_data"], "path": c.source.replay_file, "speed": c.source.speed,
                "loop": c.source.loop, "crc_every": c.protocol.recording_checksum_every,
                "metrics": mname}, oneshot=not c.source.loop))
        else:
            endpoints = ([self.anvil.ws_url] if self.anvil is not None else list(c.source.rpc_urls))
            adapter = {"endpoints": endpoints, "factories": factories,
                       "chain_id": c.chain.chain_id or DEFAULT_CHAIN_ID,
                       "cache_path": ":memory:" if self.anvil is not None
                       else str(Path(c.chain.pool_cache).expanduser()),
                       "tokens": tuple(t[0] for t in tokens) if c.chain.follow_tokens_only else (),
                       "checksum": c.protocol.market_producer_checksum,
                       "tick_snapshot_range": c.source.tick_range}
            if self.anvil is None:
                Path(adapter["cache_path"]).parent.mkdir(parents=True, exist_ok=True)
            kw: dict[str, Any] = {"ring": rn["market_data"], "adapter": adapter, "metrics": mname,
                                  "system_ring": rn["system"]}
            if self.market is not None and c.source.simulate:
                kw["market"] = self.market.to_dict()
                kw["simulator"] = {"seed": c.source.sim_seed,
                                   "txs_per_block": c.source.sim_swaps_per_block,
                                   "block_interval_s": c.source.sim_block_interval_s}
            specs.append(ComponentSpec("source", "alphapulse.apps.components:chain_source", kw))
        engine = EngineConfig.from_app_config(c)
        specs.append(ComponentSpec("strategy", "alphapulse.apps.components:strategy", {
            "market_ring": rn["market_data"], "signal_ring": rn["signal"], "engine": engine,
            "metrics": mname, "wait": c.strategy.wait, "control": self.control_name,
            "waiting": self.waiting_name,
            "realtime_priority": c.strategy.realtime_priority,
            # the strategy asks the source for fresh pool snapshots there, unless a bridge
            # brings the system domain in from another host (a ring has one producer)
            "system_ring": None if any(b["domain"] == "system" and b["direction"] == "in" for b in c.bridges)
            else rn["system"]}))
        if c.dashboard.enabled:
            specs.append(ComponentSpec("dashboard", "alphapulse.dashboard.server:run_component", {
                "host": c.dashboard.host, "port": c.dashboard.port,
                "rate_limit_hz": c.dashboard.rate_limit_hz, "signal_ring": rn["signal"],
                "market_ring": rn["market_data"], "system_ring": rn["system"], "metrics_block": mname,
                "execution_ring": rn["execution"],
                "tokens": tokens,
                "venue_names": {int(f["venue"]): f["name"] for f in factories if f["name"]},
                "market_crc_every": c.protocol.market_checksum_every,
                "secret_key": c.dashboard.secret_key}))
        ex_mode = c.execution.effective_mode(c.source.kind)
        if ex_mode != "off":
            specs.append(ComponentSpec("execution", "alphapulse.execution.component:run",
                                       self.execution_kwargs(ex_mode, factories)))
        if c.recorder.enabled:
            specs.append(ComponentSpec("recorder", "alphapulse.apps.components:recorder", {
                "ring": rn["market_data"], "directory": c.recorder.directory,
                "rotate_bytes": c.recorder.rotate_bytes, "metrics": mname}))
        specs = [s for s in specs if s.name in c.supervisor.components]
        if c.tracing.enabled:
            specs.append(ComponentSpec("tracing", "alphapulse.apps.tracing:run", {
                "signal_ring": rn["signal"], "metrics": mname,
                "execution_ring": rn["execution"] if any(s.name == "execution" for s in specs) else None,
                "otlp_endpoint": c.tracing.otlp_endpoint, "sample_every": c.tracing.sample_every}))
        for b in c.bridges:
            name = bridge_component(b)
            specs.append(ComponentSpec(name, "alphapulse.bridge:run_bridge", {
                **b, "ring": b.get("ring") or rn[b["domain"]], "metrics_block": mname,
                "metrics_component": name}))
        return specs

    def execution_kwargs(self, mode: str, factories: list[dict]) -> dict[str, Any]:
        """The execution component's settings: where to check (the source's node unless
        ``execution.rpc_url``), venue -> pool kind, and in send mode where the key is read from
        (never the key itself)."""
        from alphapulse.execution.cycle import venue_kinds
        c, ex = self.cfg, self.cfg.execution
        url = ex.rpc_url or (self.anvil.http_url if self.anvil is not None
                             else (c.source.rpc_urls[0] if c.source.rpc_urls else ""))
        kw: dict[str, Any] = {"signal_ring": self.ring_names["signal"], "execution_ring": self.ring_names["execution"],
                              "rpc_url": url, "method": ex.method, "venue_kinds": venue_kinds(factories),
                              "timeout_s": ex.check_timeout_s, "max_backlog": ex.max_backlog,
                              "warm_cycles": ex.revm_warm_cycles,
                              "metrics": self.metrics_name, "control": self.control_name}
        if mode == "send":
            kw["send"] = {"executor": ex.executor or getattr(self, "executor_address", ""),
                          "send_url": ex.send_url, "key_env": ex.key_env, "key_file": ex.key_file,
                          "min_profit_usd": ex.min_profit_usd, "max_gas_price_gwei": ex.max_gas_price_gwei,
                          "priority_fee": ex.priority_fee, "priority_fee_gwei": ex.priority_fee_gwei,
                          "nonce_file": ex.nonce_file, "chain_id": c.chain.chain_id or DEFAULT_CHAIN_ID}
        return kw

    def start(self) -> None:
        from alphapulse.apps.components import COMPONENTS
        from alphapulse.apps.ops import OpsServer, PortInUse
        from alphapulse.apps.supervisor import Supervisor
        from alphapulse.metrics import MetricsBlock
        from alphapulse.ring import Ring
        c = self.cfg
        if c.source.kind == "local-chain":
            self._start_local_chain()
        for d in DOMAINS:
            rc = getattr(c.rings, d)
            self.rings.append(Ring.create(self.ring_names[d], rc.capacity, rc.policy))
        from alphapulse.execution.component import COUNTERS as EXECUTION_COUNTERS
        from alphapulse.metrics import DEFAULT_COUNTERS, DEFAULT_GAUGES
        if c.bridges:
            from alphapulse.bridge import METRIC_COUNTERS, METRIC_GAUGES
            self.metrics = MetricsBlock.create(
                self.metrics_name, COMPONENTS + tuple(bridge_component(b) for b in c.bridges),
                counters=DEFAULT_COUNTERS + METRIC_COUNTERS + EXECUTION_COUNTERS,
                gauges=DEFAULT_GAUGES + METRIC_GAUGES)
        else:
            self.metrics = MetricsBlock.create(self.metrics_name, COMPONENTS,
                                               counters=DEFAULT_COUNTERS + EXECUTION_COUNTERS)
        from alphapulse.apps.control import ControlBlock, reloadable_settings
        self.control = ControlBlock.create(self.control_name, reloadable_settings(c))
        from alphapulse.apps.waiting import WaitingBlock
        self.waiting = WaitingBlock.create(self.waiting_name)
        self.sup = Supervisor(self.component_specs(), backoff_s=c.supervisor.restart_backoff_s,
                              backoff_max_s=c.supervisor.restart_backoff_max_s,
                              shutdown_timeout_s=c.supervisor.shutdown_timeout_s,
                              log_level=getattr(logging, c.logging.level), log_format=c.logging.format,
                              liveness_timeout_s=c.supervisor.liveness_timeout_s,
                              heartbeat_ns=self._heartbeat_ns, control=self.control_name)
        self.sup.__enter__()
        try:
            self.ops = OpsServer(c.ops.host, c.ops.port, self.health, self.prometheus).start()
        except PortInUse as e:
            raise StartupError(cli.EXIT_PORT_IN_USE, str(e)) from None
        host, port = self.ops.address
        log.info("rings %s; /health and /metrics on http://%s:%d", ", ".join(self.ring_names.values()),
                 host, port)
        if c.dashboard.enabled:
            log.info("dashboard: http://%s:%d/", c.dashboard.host, c.dashboard.port)

    # -------------------------------------------------------------- running
    def _heartbeat_ns(self, name: str) -> int:
        """Wall clock (ns) of ``name``'s last heartbeat in the metrics block, 0 when none."""
        if self.metrics is None:
            return 0
        try:
            return int(self.metrics.gauge(name, "heartbeat_ns").value)
        except KeyError:
            return 0

    def health(self) -> dict[str, Any]:
        status = self.sup.status() if self.sup else {}
        snap = self.metrics.snapshot() if self.metrics is not None else {}
        now = time.time_ns()
        comps = {}
        for name, st in status.items():
            hb = (snap.get("components", {}).get(name, {}).get("gauges", {}).get("heartbeat_ns", 0)
                  if snap else 0)
            age = (now - hb) / 1e9 if hb else None
            ready = bool(st["alive"] or st["finished"]) and (name == "dashboard" or name.startswith("bridge_") or st["finished"]
                                                             or (age is not None and age < 5.0))
            comps[name] = {**st, "heartbeat_age_s": age, "ready": ready}
        out = {"live": self.sup is not None and not self.sup.stopping.is_set(),
               "ready": bool(comps) and all(v["ready"] for v in comps.values()),
               "components": comps, "rings": dict(self.ring_names), "metrics_block": self.metrics_name,
               "pid": os.getpid()}
        if self.anvil is not None:
            out["local_chain"] = {"http_url": self.anvil.http_url, "ws_url": self.anvil.ws_url,
                                  "market": self.market.to_dict()}
        return out

    def prometheus(self) -> str:
        """``/metrics``: the metrics block's figures, the supervisor's view of each component
        and every ring's position, lag and losses (Prometheus text format 0.0.4)."""
        from alphapulse.bridge import METRIC_HELP as BRIDGE_HELP
        from alphapulse.execution.component import METRIC_HELP as EXECUTION_HELP
        from alphapulse.execution.component import render_prometheus as execution_prometheus
        from alphapulse.metrics import render_prometheus
        snap = self.metrics.snapshot()
        text = (render_prometheus(snap, help={**BRIDGE_HELP, **EXECUTION_HELP})
                + execution_prometheus(snap))
        lines = [text.rstrip("\n")] if text.strip() else []
        from alphapulse.apps.waiting import prometheus_lines
        lines += prometheus_lines(self._waiting_table())
        status = self.sup.status()
        lines += ["# HELP alphapulse_component_up 1 when the component's process is alive, else 0.",
                  "# TYPE alphapulse_component_up gauge"]
        lines += [f'alphapulse_component_up{{component="{n}"}} {1 if st["alive"] else 0}' for n, st in status.items()]
        lines += ["# HELP alphapulse_component_restarts_total Restarts of the component by the supervisor.",
                  "# TYPE alphapulse_component_restarts_total counter"]
        lines += [f'alphapulse_component_restarts_total{{component="{n}"}} {st["restarts"]}'
                  for n, st in status.items()]
        pos, lag, lost = [], [], []
        for r in self.rings:
            s = r.stats()
            pos.append(f'alphapulse_ring_written_bytes_total{{ring="{r.name}"}} {s.get("position", 0)}')
            for cs in s.get("consumers", []):
                lab = f'ring="{r.name}",consumer="{cs["name"]}"'
                lag.append(f"alphapulse_ring_lag_bytes{{{lab}}} {cs['lag_bytes']}")
                lost.append(f"alphapulse_ring_lost_frames_total{{{lab}}} {cs['lost_frames']}")
        for name, kind, text, samples in (
                ("alphapulse_ring_written_bytes_total", "counter", "Bytes the ring's producer has written.", pos),
                ("alphapulse_ring_lag_bytes", "gauge", "Bytes of the ring a consumer has not read yet.", lag),
                ("alphapulse_ring_lost_frames_total", "counter",
                 "Frames a consumer of an overwrite ring was lapped by.", lost)):
            if samples:
                lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples]
        return "\n".join(lines) + "\n"

    def status_line(self) -> str:
        snap = self.metrics.snapshot()
        comps = snap.get("components", {})
        src = comps.get("source", {}).get("counters", {})
        st = comps.get("strategy", {})
        frames = int(src.get("frames_out", 0))
        now = time.monotonic()
        rate = 0.0
        if self._status_prev is not None and now > self._status_prev[0]:
            rate = (frames - self._status_prev[1]) / (now - self._status_prev[0])
        self._status_prev = (now, frames)
        from alphapulse.metrics import histogram_quantile
        buckets = st.get("latency", {}).get("buckets", [])
        qs = {f"p{int(q * 100)}": histogram_quantile(q, snap["bounds_ns"], buckets) for q in (0.5, 0.99)}
        lat = " ".join(f"{k} {v / 1e3:.0f}us" for k, v in qs.items() if v is not None)
        from alphapulse.apps.waiting import status_text
        waiting = status_text(self._waiting_table(),
                              int(st.get("gauges", {}).get("pools_waiting", 0)), self._symbols())
        return (f"frames {frames} ({rate:,.0f}/s)  signals {st.get('counters', {}).get('signals', 0)}"
                f"  pools {st.get('gauges', {}).get('pools', 0)}"
                f" ({waiting})  block {st.get('gauges', {}).get('last_block', 0)}"
                f"  {lat}")

    def _waiting_table(self) -> Any:
        """The strategy's waiting-pools table, or None (logged) when every read of it was torn:
        a strategy stopped in the middle of a write, until its restart writes it again."""
        if self.waiting is None:
            return None
        t = self.waiting.read()
        if t is None:
            log.warning("waiting-pools table %s unreadable (generation %d, %d torn reads): pools "
                        "waiting are counted, not named", self.waiting_name, self.waiting.generation,
                        self.waiting.torn_reads)
        return t

    def _symbols(self) -> dict[bytes, str]:
        """Token address (bytes) -> symbol, from the configuration's tokens."""
        return {bytes.fromhex(t.address.removeprefix("0x")): t.symbol for t in self.cfg.chain.tokens}

    def reload(self) -> None:
        """Re-read the configuration (same command line) and apply what changes without a
        restart (``alphapulse.apps.control.RELOADABLE``) through the control block; changed keys
        that need a restart are named in one line and left as they were."""
        import dataclasses
        from alphapulse.apps.control import config_changes, reloadable_settings
        try:
            new = effective_config(self.args)
        except ConfigError as e:
            log.error("reload refused, nothing changed: %s", redact.redact(str(e)))
            return
        if self.market is not None:          # local chain: the deployed market stays
            new = dataclasses.replace(new, chain=market_chain_config(new.chain, self.market))
        live, restart = config_changes(self.cfg, new)
        if restart:
            log.warning("reload: these keys need a restart and were left as they were: %s", ", ".join(restart))
        if not live:
            log.info("reload: no setting that can change while running has changed")
            return
        cfg = self.cfg
        for key in live:
            sec, k = key.split(".")
            cfg = dataclasses.replace(cfg, **{sec: dataclasses.replace(getattr(cfg, sec), **{k: getattr(getattr(new, sec), k)})})
        self.cfg = cfg
        logging.getLogger().setLevel(cfg.logging.level)
        self.sup.log_level = getattr(logging, cfg.logging.level)
        gen = self.control.publish(reloadable_settings(cfg))
        log.info("reload: applied %s (generation %d)", ", ".join(f"{k} = {getattr(getattr(cfg, k.split('.')[0]), k.split('.')[1])!r}" for k in live), gen)

    def tick(self) -> None:
        if self.reload_requested:
            self.reload_requested = False
            try:
                self.reload()
            except Exception:                 # a failed reload must not stop the pipeline
                log.exception("reload failed; settings left as they were")
        now = time.monotonic()
        if self.cfg.logging.status_line and now - self._last_status >= 5.0:
            self._last_status = now
            try:
                line = self.status_line()
            except Exception as e:  # a status line must never stop the pipeline
                line = f"status unavailable: {e}"
            log.info("status: %s", line)

    def run(self) -> int:
        deadline = None if self.duration_s is None else time.monotonic() + self.duration_s

        def tick() -> None:
            self.tick()
            if deadline is not None and time.monotonic() >= deadline:
                log.info("duration of %.1f s reached: stopping", self.duration_s)
                self.sup.request_stop()
        self.sup.run(tick=tick, interval=0.1)
        return cli.EXIT_OK

    def close(self) -> None:
        if self.sup is not None:
            self.sup.shutdown()
        if self.ops is not None:
            self.ops.stop()
        for r in self.rings:
            r.close()
        self.rings.clear()
        if self.metrics is not None:
            self.metrics.close()
            self.metrics = None
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.waiting is not None:
            self.waiting.close()
            self.waiting = None
        if self.anvil is not None:
            self.anvil.stop()
            self.anvil = None


def _args_and_config(argv: list[str]) -> "tuple[Any, Any] | int":
    """The parsed command line and its effective configuration, or the exit code of a
    configuration error (its one line printed, credentials masked)."""
    args = cli.build_parser().parse_args(argv)
    try:
        return args, effective_config(args)
    except ConfigError as e:
        print(f"alphapulse: {redact.redact(str(e))}", file=sys.stderr)
        return cli.EXIT_CONFIG


def signal_reload(argv: list[str]) -> int:
    """``pipeline reload [--config ...] [--ops-port ...]``: find the running supervisor through
    its ops endpoint (the same configuration and flags name it) and send it SIGHUP."""
    import json
    import urllib.error
    import urllib.request
    parsed = _args_and_config(argv)
    if isinstance(parsed, int):
        return parsed
    _, cfg = parsed
    host = cfg.ops.host if ":" not in cfg.ops.host else f"[{cfg.ops.host}]"
    url = f"http://{host}:{cfg.ops.port}/health"
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            body = r.read()
    except urllib.error.HTTPError as e:      # 503: running but not ready; still the supervisor
        body = e.read()
    except OSError as e:
        print(f"alphapulse: no pipeline answers on {url} ({e})", file=sys.stderr)
        return cli.EXIT_FAILURE
    try:
        pid = int(json.loads(body)["pid"])
        os.kill(pid, signal.SIGHUP)
    except (ValueError, KeyError, TypeError, OSError) as e:
        print(f"alphapulse: cannot signal the pipeline behind {url}: {e}", file=sys.stderr)
        return cli.EXIT_FAILURE
    print(f"reload requested from the supervisor (pid {pid})")
    return cli.EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["reload"]:
        return signal_reload(argv[1:])
    parsed = _args_and_config(argv)
    if isinstance(parsed, int):
        return parsed
    args, cfg = parsed
    if args.print_config:
        print(redact.mask_urls(to_toml(cfg)))
        return cli.EXIT_OK
    from alphapulse.apps.supervisor import log_formatter, set_log_level
    logging.basicConfig(level=getattr(logging, cfg.logging.level))
    set_log_level(getattr(logging, cfg.logging.level))
    for h in logging.getLogger().handlers:
        h.setFormatter(log_formatter(cfg.logging.format))

    def fail(message: str) -> None:
        """A run's last word: on stderr, or in JSON mode as a log record (JSON lines to the end)."""
        if cfg.logging.format == "json":
            log.error("alphapulse: %s", message)
        else:
            print(f"alphapulse: {message}", file=sys.stderr)
    for h in logging.getLogger().handlers:
        redact.install(h)
    try:
        if cfg.source.kind == "replay":
            check_replay_source(cfg.source.replay_file)
    except ConfigError as e:
        print(f"alphapulse: {e}", file=sys.stderr)
        return cli.EXIT_CONFIG
    if cfg.source.kind == "replay" and cfg.source.speed == "max":
        from alphapulse.apps.backtest import check_report_path, run_backtest
        if args.report:
            try:
                check_report_path(args.report)
            except OSError as e:
                print(f"alphapulse: {e}", file=sys.stderr)
                return cli.EXIT_CONFIG
        return run_backtest(cfg, report=args.report, timings=not args.no_timings)
    pipe = Pipeline(cfg, duration_s=args.duration)
    pipe.args = args
    try:
        pipe.preflight()
    except StartupError as e:
        fail(str(e))
        return e.code
    stopping = {"n": 0}

    def on_signal(signum: int, _frame: Any) -> None:
        stopping["n"] += 1
        if pipe.sup is not None:
            log.info("%s: stopping (again to force)", signal.Signals(signum).name)
            pipe.sup.request_stop()
        if stopping["n"] > 1:
            raise KeyboardInterrupt
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    def on_hangup(_signum: int, _frame: Any) -> None:
        pipe.reload_requested = True         # applied by the supervisor loop's next tick
    signal.signal(signal.SIGHUP, on_hangup)
    rc = cli.EXIT_OK
    try:
        pipe.start()
        rc = pipe.run()
    except StartupError as e:
        fail(str(e))
        rc = e.code
    except KeyboardInterrupt:
        rc = cli.EXIT_OK
    finally:
        pipe.close()
        log.info("stopped; rings and metrics block unlinked")
    problems = pipe.sup.failures() if pipe.sup is not None else ""
    if rc == cli.EXIT_OK and problems:
        fail(problems)
        rc = cli.EXIT_FAILURE
    return rc


if __name__ == "__main__":
    sys.exit(main())
