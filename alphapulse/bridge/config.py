"""Bridge configuration: one typed, validated object per bridge process.

A bridge moves one relay domain in one direction between a local ring and a
JetStream stream. The pipeline builds a :class:`BridgeConfig` (for example from
a ``[[bridges]]`` table of its TOML file) and hands its fields to
:func:`alphapulse.bridge.run_outbound` / :func:`alphapulse.bridge.run_inbound`
as keyword arguments. Every error is a
:class:`alphapulse.settings.ConfigError` naming the key.

Names on the NATS side, derived from the configuration (one definition each,
see :meth:`BridgeConfig.subject`, :meth:`BridgeConfig.stream_name`,
:meth:`BridgeConfig.durable_name`)::

    subject  <subject_prefix>.<domain>.<host>      e.g. alphapulse.market_data.hosta
    stream   <STREAM_PREFIX>_<DOMAIN>              e.g. ALPHAPULSE_MARKET_DATA (captures
                                                   <subject_prefix>.<domain>.*)
    durable  in_<host>_<domain>_from_<source_host> e.g. in_hostb_market_data_from_hosta
"""
from __future__ import annotations

import dataclasses
import re
import socket
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from alphapulse.settings import ConfigError, coerce
from alphapulse.protocol.layout import Domain

#: Domain names used in subjects and configuration: ``Domain.MARKET_DATA`` -> "market_data".
DOMAIN_NAMES: dict[str, Domain] = {d.name.lower(): d for d in Domain}

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")       # one NATS subject token, also a file name part
_STREAM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_NATS_URL = re.compile(r"^(nats|tls)://[^\s/]+(:\d+)?$")

# A batch must fit one NATS message; nats-server's default max_payload is 1 MiB.
MAX_BATCH_BYTES = 1 << 20


def default_host() -> str:
    """This machine's host name reduced to a subject token (``[A-Za-z0-9_-]``, <= 32)."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname().split(".")[0])[:32]
    return name or "host"


@dataclass(frozen=True)
class BridgeConfig:
    """One bridge: a domain, a local ring, a NATS server list and the stream limits.

    Units are in the names: ``_s`` seconds, ``_bytes`` bytes.
    """
    domain: str                                   # market_data | signal | execution | system
    ring: str = ""                                # local ring name (outbound reads it, inbound writes
                                                  # it); "" = the pipeline's ring of ``domain``, filled
                                                  # in by the pipeline before the bridge starts
    direction: Literal["out", "in", ""] = ""      # for run_bridge and pipeline [[bridges]] tables
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    host: str = ""                                # this host's id in subjects; "" = default_host()
    source_host: str = "*"                        # inbound: the host whose frames to take; "*" = any
    subject_prefix: str = "alphapulse"
    stream: str = ""                              # "" = ALPHAPULSE_<DOMAIN>
    durable: str = ""                             # inbound consumer name; "" = derived (see module doc)
    consumer_name: str = ""                       # outbound ring consumer name; "" = bridge_out_<domain>
    # stream limits (applied by the outbound bridge, which owns the stream's configuration)
    max_age_s: float = 3600.0
    max_bytes: int = 1 << 30
    duplicate_window_s: float = 120.0
    storage: Literal["file", "memory"] = "file"
    # batching and flow
    batch_max_bytes: int = 256 * 1024             # frames per NATS message: as many as fit
    idle_sleep_max_s: float = 0.001               # outbound: longest sleep between empty ring reads
    fetch_timeout_s: float = 0.5                  # inbound: one JetStream pull request waits this long
    fetch_batch: int = 32                         # inbound: NATS messages per pull request
    ack_wait_s: float = 30.0                      # JetStream redelivers what stays unacked this long
    max_ack_pending: int = 256
    publish_timeout_s: float = 2.0                # one publish attempt; then it is retried, same id
    reconnect_wait_s: float = 0.25
    ring_write_timeout_s: float = 5.0             # inbound: lossless local ring full this long -> retry
    verify_checksum_every: int = 0                # outbound: verify every N-th frame CRC (0 = structure only)
    # inbound idempotence state (survives SIGKILL of the bridge; see inbound.py)
    state_dir: str = "~/.local/state/alphapulse/bridge"
    # metrics (alphapulse.metrics block); "" = none
    metrics_block: str = ""
    metrics_component: str = ""                   # "" = bridge_out_<domain> / bridge_in_<domain>
    lag_interval_s: float = 1.0                   # how often lag gauges are refreshed

    # ------------------------------------------------------------ derived names
    @property
    def domain_id(self) -> Domain:
        return DOMAIN_NAMES[self.domain]

    @property
    def host_id(self) -> str:
        return self.host or default_host()

    def subject(self, host: str | None = None) -> str:
        """Subject the frames of ``host`` (default: this host) on this domain travel on."""
        return f"{self.subject_prefix}.{self.domain}.{host or self.host_id}"

    def inbound_filter(self) -> str:
        """Subject filter of the inbound consumer (``*`` = every host)."""
        return f"{self.subject_prefix}.{self.domain}.{self.source_host}"

    def stream_name(self) -> str:
        return self.stream or f"{self.subject_prefix.upper().replace('.', '_')}_{self.domain.upper()}"

    def stream_subjects(self) -> list[str]:
        return [f"{self.subject_prefix}.{self.domain}.*"]

    def durable_name(self) -> str:
        if self.durable:
            return self.durable
        src = "any" if self.source_host == "*" else self.source_host
        return f"in_{self.host_id}_{self.domain}_from_{src}"

    def ring_consumer_name(self) -> str:
        return self.consumer_name or f"bridge_out_{self.domain}"

    def component(self, direction: Literal["out", "in"]) -> str:
        return self.metrics_component or f"bridge_{direction}_{self.domain}"

    def state_path(self) -> Path:
        return Path(self.state_dir).expanduser() / f"{self.stream_name()}.{self.durable_name()}.state"

    # ------------------------------------------------------------ validation
    def validate(self, key: str = "bridge") -> "BridgeConfig":
        """Check every field; raise ConfigError naming ``key.field``. Returns self."""
        if self.domain not in DOMAIN_NAMES:
            raise ConfigError(f"{key}.domain", f"must be one of {', '.join(DOMAIN_NAMES)}, got {self.domain!r}")
        if "/" in self.ring:
            raise ConfigError(f"{key}.ring", f"must be a shared-memory ring name, got {self.ring!r}")
        if self.direction not in ("out", "in", ""):
            raise ConfigError(f"{key}.direction", f"must be 'out' or 'in', got {self.direction!r}")
        if not self.servers:
            raise ConfigError(f"{key}.servers", "needs at least one nats:// URL")
        for i, url in enumerate(self.servers):
            if not _NATS_URL.match(url):
                raise ConfigError(f"{key}.servers[{i}]", f"must be nats://host:port or tls://host:port, got {url!r}")
        if self.host and not _TOKEN.match(self.host):
            raise ConfigError(f"{key}.host", f"must be 1-32 of [A-Za-z0-9_-] (a subject token), got {self.host!r}")
        if self.source_host != "*" and not _TOKEN.match(self.source_host):
            raise ConfigError(f"{key}.source_host", f"must be '*' or 1-32 of [A-Za-z0-9_-], got {self.source_host!r}")
        if not all(_TOKEN.match(t) for t in self.subject_prefix.split(".")):
            raise ConfigError(f"{key}.subject_prefix", f"must be dot-separated [A-Za-z0-9_-] tokens, got {self.subject_prefix!r}")
        if self.stream and not _STREAM.match(self.stream):
            raise ConfigError(f"{key}.stream", f"must be 1-64 of [A-Za-z0-9_-], got {self.stream!r}")
        for name in ("durable", "consumer_name"):
            v = getattr(self, name)
            if v and not _STREAM.match(v):
                raise ConfigError(f"{key}.{name}", f"must be 1-64 of [A-Za-z0-9_-], got {v!r}")
        if not self.max_age_s > 0:
            raise ConfigError(f"{key}.max_age_s", f"must be > 0 seconds, got {self.max_age_s}")
        if self.max_bytes < 1 << 20:
            raise ConfigError(f"{key}.max_bytes", f"must be >= 1 MiB, got {self.max_bytes}")
        if not 0 < self.duplicate_window_s <= self.max_age_s:
            raise ConfigError(f"{key}.duplicate_window_s",
                              f"must be > 0 and <= max_age_s ({self.max_age_s}), got {self.duplicate_window_s}")
        if self.storage not in ("file", "memory"):
            raise ConfigError(f"{key}.storage", f"must be 'file' or 'memory', got {self.storage!r}")
        from alphapulse.bridge.batch import BATCH_HEADER_SIZE
        from alphapulse.protocol.layout import MAX_FRAME
        if not MAX_FRAME <= self.batch_max_bytes <= MAX_BATCH_BYTES - BATCH_HEADER_SIZE:
            raise ConfigError(f"{key}.batch_max_bytes",
                              f"must be in {MAX_FRAME}..{MAX_BATCH_BYTES - BATCH_HEADER_SIZE} "
                              f"(one largest frame .. one NATS message), got {self.batch_max_bytes}")
        for name in ("idle_sleep_max_s", "fetch_timeout_s", "ack_wait_s", "publish_timeout_s", "reconnect_wait_s",
                     "ring_write_timeout_s", "lag_interval_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{key}.{name}", f"must be > 0 seconds, got {getattr(self, name)}")
        for name in ("fetch_batch", "max_ack_pending"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{key}.{name}", f"must be >= 1, got {getattr(self, name)}")
        if self.max_ack_pending < self.fetch_batch:
            raise ConfigError(f"{key}.max_ack_pending", f"must be >= fetch_batch ({self.fetch_batch}), "
                              f"got {self.max_ack_pending}")
        if self.verify_checksum_every < 0:
            raise ConfigError(f"{key}.verify_checksum_every", f"must be >= 0, got {self.verify_checksum_every}")
        if not self.state_dir:
            raise ConfigError(f"{key}.state_dir", "must be a directory path")
        if self.metrics_block and not self.metrics_block.startswith("alphapulse_"):
            raise ConfigError(f"{key}.metrics_block", f"must start with 'alphapulse_', got {self.metrics_block!r}")
        return self

    # ------------------------------------------------------------ construction
    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], key: str = "bridge") -> "BridgeConfig":
        """Build from plain values (TOML table, kwargs), type-checked, then validated."""
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        kw: dict[str, Any] = {}
        for k, v in data.items():
            if k not in names:
                raise ConfigError(f"{key}.{k}", f"unknown key (known: {', '.join(sorted(names))})")
            if typing.get_origin(hints[k]) is tuple and isinstance(v, str):
                v = (v,)                    # servers = "nats://..." is a list of one
            kw[k] = coerce(f"{key}.{k}", hints[k], v)
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.name not in kw:
                raise ConfigError(f"{key}.{f.name}", "required")
        return cls(**kw).validate(key)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def for_run(self, direction: Literal["out", "in"], key: str = "bridge") -> "BridgeConfig":
        """This config checked for running ``direction``: the ring is known, the direction agrees."""
        if self.direction and self.direction != direction:
            raise ConfigError(f"{key}.direction", f"is {self.direction!r} but the {direction}bound "
                                                  f"bridge was started")
        if not self.ring:
            raise ConfigError(f"{key}.ring", "required: the local ring to "
                                             + ("read" if direction == "out" else "write"))
        return dataclasses.replace(self, direction=direction)
