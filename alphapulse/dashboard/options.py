"""Everything the dashboard process is told at start (the pipeline fills it from its config)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# renders per second per browser session: beyond a screen's refresh rate nobody sees more, and
# below one render per 100 s the page is not live (the limiter's delays stay within the event loop's range)
RATE_LIMIT_RANGE_HZ = (0.01, 1000.0)
MIN_SECRET_KEY_BYTES = 32           # what Bokeh asks of BOKEH_SECRET_KEY


@dataclass(frozen=True)
class DashboardOptions:
    """Dashboard settings; plain values only, so it pickles into a spawned process.

    ``tokens`` is a sequence of ``(address, symbol, decimals)`` (or dicts with
    those keys) from the pipeline's token list; tokens not listed show as short
    hex with decimals learned from pool frames. Ring and metrics names are the
    names the pipeline created them under; ``None`` leaves that panel empty.
    """
    host: str = "127.0.0.1"
    port: int = 5006
    rate_limit_hz: float = 10.0             # renders per second per browser session (what a person sees)
    signal_ring: str | None = None
    market_ring: str | None = None
    system_ring: str | None = None        # PoolRefresh requests: the pools waiting on a snapshot
    execution_ring: str | None = None     # ExecutionReports: each signal's check and transaction state
    metrics_block: str | None = None
    tokens: tuple[Any, ...] = ()
    venue_names: dict[int, str] = field(default_factory=dict)
    allow_origins: tuple[str, ...] = ()     # extra websocket origins (host:port), e.g. behind a proxy
    title: str = "AlphaPulse"
    max_rows: int = 30                      # signals kept and shown (the browser holds no more)
    price_history: int = 600                # points per pool
    price_interval_ms: int = 100            # at most one plotted point per pool per interval
    market_crc_every: int = 100             # verify every N-th market-data checksum (PROTOCOL.md 1)
    latency_component: str = "strategy"     # metrics component whose histogram is frame-in -> signal-out
    consumer_name: str = "dashboard"
    poll_timeout_ms: int = 20
    stats_interval_ms: int = 500
    max_market_frames_per_batch: int = 4096  # newest kept, older ones of a burst skipped (counted)
    market_cpu_share: float = 0.25          # at most this share of one core on market data
    # signs the Bokeh session ids (HMAC): a session id this server did not sign is refused;
    # "" = a random key made at start (then only pages this server handed out connect)
    secret_key: str = field(default="", repr=False)

    def validate(self) -> "DashboardOptions":
        """Raise ValueError naming the field of the first bad value; returns self."""
        def bad(name: str, why: str) -> None:
            raise ValueError(f"dashboard.{name}: {why}")
        if not 0 <= self.port < 65536:
            bad("port", f"must be in 0..65535, got {self.port}")
        lo, hi = RATE_LIMIT_RANGE_HZ
        if not (isinstance(self.rate_limit_hz, (int, float)) and lo <= self.rate_limit_hz <= hi):
            bad("rate_limit_hz", f"must be within {lo:g}..{hi:g} renders/s, got {self.rate_limit_hz}")
        for name in ("max_rows", "price_history", "price_interval_ms", "market_crc_every",
                     "poll_timeout_ms", "stats_interval_ms", "max_market_frames_per_batch"):
            if getattr(self, name) < 1:
                bad(name, f"must be >= 1, got {getattr(self, name)}")
        if not 0 < self.market_cpu_share <= 1:
            bad("market_cpu_share", f"must be in (0, 1], got {self.market_cpu_share}")
        if self.secret_key and len(self.secret_key.encode()) < MIN_SECRET_KEY_BYTES:
            bad("secret_key", f"must be at least {MIN_SECRET_KEY_BYTES} bytes (it is never shown)")
        if not self.consumer_name or len(self.consumer_name) > 31:
            bad("consumer_name", "must be 1..31 characters")
        return self
