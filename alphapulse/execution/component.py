"""The execution component: signal ring -> checker (-> sender) -> execution ring.

The signal ring is lossless, so this reader never holds the strategy back: each poll takes every
frame, releases the ring at once and keeps the signals in a small backlog. Checks take the newest
signal first (a stale signal is worth less than a fresh one); a backlog over ``max_backlog`` drops
its oldest signals, counted as ``signals_skipped``. A dead or slow node makes a check time out: it
is counted (``check_timeouts``), logged at most every few seconds, and the loop goes on.

While no signal waits, the loop lets the check method prepare the newest block (the in-process
EVM forks it and reads what the recent cycles touch, ``RevmMethod.update``), so that work is not on
the next check's path; a failed preparation is counted (``state_update_failures``), logged and not
retried for ``UPDATE_RETRY_S``.
"""
from __future__ import annotations

import collections
import logging
import os
import time
from typing import Any

from alphapulse.execution.checker import Checker, RpcUnavailable, make_method
from alphapulse.execution.cycle import UnknownVenue
from alphapulse.protocol import codec as C
from alphapulse.protocol import layout as L

log = logging.getLogger("alphapulse.execution")

COMPONENT = "execution"
#: Counters of the execution component (added to the metrics block's schema by the pipeline),
#: each with its meaning (the ``# HELP`` line of ``/metrics``).
METRIC_HELP: dict[str, str] = {
    "checks": "Signals checked against the newest chain state.",
    "confirmed": "Checks that confirmed the signal's profit.",
    "changed": "Checks whose profit changed but stayed positive.",
    "unprofitable": "Checks that found the signal no longer profitable.",
    "reverted": "Checks whose execution reverted.",
    "check_timeouts": "Checks that timed out.",
    "checks_failed": "Checks that failed (RPC error or bad signal).",
    "signals_skipped": "Signals skipped because the check backlog was full.",
    "tx_sent": "Transactions sent (send mode).",
    "tx_included": "Sent transactions included on chain.",
    "tx_failed": "Sent transactions that failed or reverted on chain.",
    "state_updates": "New blocks the in-process EVM prepared before a check needed them.",
    "state_update_failures": "Preparations of a new block that failed (retried after 1 s).",
}
COUNTERS: tuple[str, ...] = tuple(METRIC_HELP)
STATUS_COUNTER = {int(L.ExecutionStatus.CONFIRMED): "confirmed", int(L.ExecutionStatus.CHANGED): "changed",
                  int(L.ExecutionStatus.UNPROFITABLE): "unprofitable", int(L.ExecutionStatus.REVERTED): "reverted",
                  int(L.ExecutionStatus.SENT): "tx_sent", int(L.ExecutionStatus.INCLUDED): "tx_included",
                  int(L.ExecutionStatus.FAILED): "tx_failed"}
LOG_EVERY_S = 5.0
UPDATE_RETRY_S = 1.0   # a node that failed a block's preparation is not asked again before this
#: /metrics: the checks by outcome and the transactions by state, from the component's counters
CHECK_OUTCOMES = (("confirmed", "confirmed"), ("changed", "changed"), ("unprofitable", "unprofitable"),
                  ("reverted", "reverted"), ("timeout", "check_timeouts"), ("error", "checks_failed"))
TX_STATES = (("sent", "tx_sent"), ("included", "tx_included"), ("failed", "tx_failed"))


def render_prometheus(snapshot: dict, prefix: str = "alphapulse") -> str:
    """The execution domain's Prometheus families from a metrics snapshot ("" without the
    execution component): ``<prefix>_check_results_total{outcome=..}``, ``<prefix>_execution_transactions_total
    {state=..}`` and the check latency histogram ``<prefix>_check_latency_seconds`` (one check:
    the cycle re-executed by contract code on the newest state, node round trip included)."""
    from alphapulse.metrics import prometheus_histogram
    d = snapshot["components"].get(COMPONENT)
    if d is None:
        return ""
    c = d["counters"]
    out = [f"# HELP {prefix}_check_results_total Signals checked by contract code, by outcome.",
           f"# TYPE {prefix}_check_results_total counter"]
    out += [f'{prefix}_check_results_total{{outcome="{o}"}} {c.get(k, 0)}' for o, k in CHECK_OUTCOMES]
    out += [f"# HELP {prefix}_execution_transactions_total Transactions of send mode, by state.",
            f"# TYPE {prefix}_execution_transactions_total counter"]
    out += [f'{prefix}_execution_transactions_total{{state="{st}"}} {c.get(k, 0)}' for st, k in TX_STATES]
    m = f"{prefix}_check_latency_seconds"
    out += [f"# HELP {m} Time of one check of a signal by contract code.", f"# TYPE {m} histogram"]
    out += prometheus_histogram(m, "", snapshot["bounds_ns"], d["latency"])
    return "\n".join(out) + "\n"


class ExecutionLoop:
    """One reader of the signal ring and one producer of the execution ring (no processes:
    the pipeline's component function wraps it; tests drive ``step`` directly)."""

    def __init__(self, consumer: Any, producer: Any, checker: Checker, *, max_backlog: int = 64,
                 metrics: Any = None, sender: Any = None) -> None:
        self.cons, self.prod, self.checker = consumer, producer, checker
        self.max_backlog = max_backlog
        self.metrics = metrics
        self.sender = sender
        self.backlog: collections.deque = collections.deque()
        self.counts: collections.Counter = collections.Counter()
        self.seq = 0
        self._last_log = 0.0
        self._update_after = 0.0

    def _count(self, key: str, n: int = 1) -> None:
        self.counts[key] += n
        if self.metrics is not None:
            self.metrics.counter(COMPONENT, key).add(n)

    def _take(self, timeout: float) -> None:
        views = self.cons.poll(timeout=timeout)
        for v in views:
            mv, off = memoryview(v), 0
            while off < len(mv):
                try:
                    fr = C.parse_frame(mv, off)
                except C.FrameError as e:
                    self._count("checks_failed")
                    log.warning("signal ring: bad frame skipped (%s)", e)
                    break
                off += fr.size
                for rec in fr.tlvs:
                    if getattr(rec, "TYPE", None) == L.ARBITRAGE_SIGNAL.type_id:
                        self.backlog.append(rec)
        if views:
            self.cons.release()
        over = len(self.backlog) - self.max_backlog
        if over > 0:
            for _ in range(over):
                self.backlog.popleft()
            self._count("signals_skipped", over)

    def publish(self, report: Any) -> None:
        self.seq += 1
        self.prod.publish(C.build_frame(int(L.Domain.EXECUTION), int(L.Source.EXECUTION_ENGINE), self.seq, [report]))
        self._count(STATUS_COUNTER.get(int(report.status), "checks_failed"))

    def _warn(self, msg: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_S:
            self._last_log = now
            log.warning(msg + " (%d check timeouts so far)", *args, self.counts["check_timeouts"])

    def _prepare(self) -> None:
        """Brings the check method to the node's newest block while no signal waits (a method
        without ``update``, such as eth_call, has nothing to prepare)."""
        update = getattr(self.checker.method, "update", None)
        if update is None or time.monotonic() < self._update_after:
            return
        try:
            if update():
                self._count("state_updates")
        except RuntimeError as e:   # RpcUnavailable, a node's JSON-RPC error, pyrevm's fork errors
            self._count("state_update_failures")
            self._update_after = time.monotonic() + UPDATE_RETRY_S
            self._warn("newest block not prepared: %s: %s", type(e).__name__, e)

    def step(self, timeout: float = 0.05) -> bool:
        """Take new signals, check the newest (and in send mode follow the sent transactions);
        True when a check ran."""
        if self.sender is not None and self.sender.pending:
            for follow in self.sender.poll():
                self.publish(follow)
            timeout = min(timeout, 0.02)
        self._take(0.0 if self.backlog else timeout)
        if not self.backlog:
            self._prepare()
            return False
        sig = self.backlog.pop()
        self._count("checks")
        try:
            report, ex, took_ns = self.checker.check(sig)
        except RpcUnavailable as e:
            self._count("check_timeouts")
            self._warn("check of signal %d not done: %s", int(sig.signal_id), e)
            return True
        except UnknownVenue as e:
            self._count("checks_failed")
            self._warn("signal %d not checkable: %s", int(sig.signal_id), e)
            return True
        except (ValueError, TypeError, KeyError, OverflowError) as e:   # a malformed answer or signal
            self._count("checks_failed")
            self._warn("check of signal %d failed: %s: %s", int(sig.signal_id), type(e).__name__, e)
            return True
        if self.metrics is not None:
            self.metrics.observe_latency_ns(COMPONENT, took_ns)
            self.metrics.gauge(COMPONENT, "last_block").set(ex.block)
        self.publish(report)
        if self.sender is not None:
            for follow in self.sender.consider(sig, report):
                self.publish(follow)
        return True


def apply_limits(loop: "ExecutionLoop", ex: dict) -> None:
    """A hot reload's ``[execution]`` limits, applied to a running loop and its sender."""
    loop.max_backlog = int(ex["max_backlog"])
    if loop.sender is not None:
        loop.sender.min_profit_usd_e8 = int(round(float(ex["min_profit_usd"]) * 1e8))
        from alphapulse.execution.sender import GWEI
        loop.sender.max_fee_wei = int(float(ex["max_gas_price_gwei"]) * GWEI)
    log.info("execution limits reloaded: %s", ex)


def run(stop: Any, *, signal_ring: str, execution_ring: str, rpc_url: str, method: str, venue_kinds: dict,
        timeout_s: float = 2.0, max_backlog: int = 64, metrics: str | None = None,
        send: dict | None = None, control: str | None = None, warm_cycles: int = 8) -> None:
    """Pipeline component (``[execution] mode = "check" | "send"``). With ``control`` a hot
    reload's ``[execution]`` limits (backlog, send-mode profit and gas-price limits) are taken
    over at the 0.5 s heartbeat; ``warm_cycles``: the recent cycles the in-process EVM re-runs
    on each new block before a check needs it."""
    from alphapulse.metrics import MetricsBlock
    from alphapulse.ring import Ring
    m = MetricsBlock.attach(metrics) if metrics else None
    rin = Ring.attach(signal_ring, timeout=10.0)
    rout = Ring.attach(execution_ring, timeout=10.0)
    cons = rin.consumer(COMPONENT)
    prod = rout.producer()
    checker = Checker(make_method(method, rpc_url, timeout_s, warm_cycles),
                      {int(k): int(v) for k, v in venue_kinds.items()})
    sender = None
    if send is not None:
        from alphapulse.execution.sender import Sender
        sender = Sender.from_settings(send, rpc_url, timeout_s, checker.kinds)
    if m is not None:
        m.declare(COMPONENT, "last_block", "heartbeat_ns", "pid",
                  *(k for k in COUNTERS if (sender is not None or not k.startswith("tx_"))
                    and (method == "revm" or not k.startswith("state_update"))), latency=True)
    loop = ExecutionLoop(cons, prod, checker, max_backlog=max_backlog, metrics=m, sender=sender)
    log.info("execution: %s checks by %s on %s%s", "send" if sender else "check", method, rpc_url,
             f", executor {sender.executor}" if sender else "")
    last_beat = 0.0
    ctl = None
    if control:
        from alphapulse.apps.control import ControlBlock
        ctl = ControlBlock.attach(control)         # first poll: the settings in force
    try:
        while not stop.is_set():
            loop.step(0.05)
            now = time.monotonic()
            if now - last_beat > 0.5:
                last_beat = now
                s = ctl.poll() if ctl is not None else None
                if s is not None:
                    apply_limits(loop, s["execution"])
                prod.heartbeat()
                if m is not None:
                    m.gauge(COMPONENT, "heartbeat_ns").set(time.time_ns())
                    m.gauge(COMPONENT, "pid").set(os.getpid())
        log.info("execution counters: %s", dict(loop.counts))
    finally:
        checker.close()
        cons.close()
        prod.close()
        rin.close()
        rout.close()
        if ctl is not None:
            ctl.close()
