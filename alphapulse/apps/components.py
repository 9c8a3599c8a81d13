"""The pipeline's components: plain functions ``fn(stop, **kwargs)`` the supervisor
runs, each in its own spawned process. They connect rings to the engines of the
other packages and report into the shared metrics block; no logic of their own
beyond the loop, so what they run can be tested without processes.
"""
from __future__ import annotations

import asyncio
import os
import logging
import threading
import time
from typing import Any

from alphapulse.apps.gcpolicy import IdleCollector

log = logging.getLogger("alphapulse.components")

# Metrics-block component names (one slot group each).
COMPONENTS = ("source", "strategy", "dashboard", "recorder", "supervisor", "execution", "tracing")


def _metrics(name: str | None):
    if not name:
        return None
    from alphapulse.metrics import MetricsBlock
    return MetricsBlock.attach(name)


def _alive(m: Any, component: str) -> None:
    import os
    if m is not None:
        m.gauge(component, "heartbeat_ns").set(time.time_ns())
        m.gauge(component, "pid").set(os.getpid())


# ------------------------------------------------------------------ sources
def replay_source(stop: Any, *, ring: str, path: str, speed: str = "recorded", loop: bool = True,
                  crc_every: int = 1, metrics: str | None = None) -> None:
    """Replay a recording (file or directory of journals) into the market-data ring.

    Frames are re-stamped with the time they are published, so latency figures
    downstream measure this run, and flagged replayed (0x20); with ``loop`` the
    recording starts over at its end (it begins with PoolState snapshots, so the
    strategy's state is reset by the replay itself).
    """
    from alphapulse.adapters.replayer import Replayer
    from alphapulse.ring import Ring
    m = _metrics(metrics)
    if m is not None:
        m.declare("source", "frames_out", "frames_rejected", "heartbeat_ns", "pid")
    r = Ring.attach(ring, timeout=10.0)
    prod = r.producer()
    rp = Replayer(path, producer=prod, speed=speed, restamp=True, crc_every=crc_every)
    last: dict[str, int] = {}

    def report() -> None:                 # counters -> metrics block, from the heartbeat thread
        nonlocal last
        if m is None:
            return
        c = dict(rp.counters)
        rej = sum(v for k, v in c.items() if k.startswith("rejected"))
        m.counter("source", "frames_out").add(c.get("frames", 0) - last.get("frames", 0))
        m.counter("source", "frames_rejected").add(rej - last.get("rejected", 0))
        last = {"frames": c.get("frames", 0), "rejected": rej}
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat_loop, args=(stop, prod, m, "source", report, done), daemon=True)
    beat.start()
    try:
        while not stop.is_set():
            rp.run(stop)
            rp.rewind()                         # next lap: pace from its own first frame
            if not loop:
                break
        log.info("replay finished: %s", dict(rp.counters))
    finally:
        done.set()
        beat.join(2.0)
        report()
        prod.close()
        r.close()


def _heartbeat_loop(stop: Any, prod: Any, m: Any, component: str, report: Any = None,
                    done: threading.Event | None = None) -> None:
    """Producer heartbeat + liveness gauge (+ ``report()``) every 0.5 s until stop or done."""
    while not stop.wait(0.5) and not (done is not None and done.is_set()):
        try:
            prod.heartbeat()
        except Exception:  # ring closed under us at shutdown
            return
        _alive(m, component)
        if report is not None:
            report()


def chain_source(stop: Any, *, ring: str, adapter: dict, metrics: str | None = None,
                 market: dict | None = None, simulator: dict | None = None,
                 system_ring: str | None = None) -> None:
    """Live ingestion: the web3 adapter on ``adapter['endpoints']`` into the market-data ring.

    With ``market`` (a deployed local market, ``Market.to_dict()``) and
    ``simulator`` settings, also drives the local market simulator in a thread:
    the production path on one machine. With ``system_ring``, answers the
    PoolRefresh frames read there with fresh snapshots on the market-data ring.
    """
    from alphapulse.adapters.evm.config import EvmDataClientConfig
    from alphapulse.adapters.evm.data import ring_sink, run_adapter_async
    from alphapulse.ring import Ring
    m = _metrics(metrics)
    if m is not None:
        m.declare("source", "frames_out", "rpc_reconnects", "rpc_errors", "rpc_connected", "last_block",
                  "pools", "heartbeat_ns", "pid", *(("frames_in",) if system_ring is not None else ()))
    r = Ring.attach(ring, timeout=10.0)
    prod = r.producer()
    publish = ring_sink(prod)

    def sink(frames: list[bytes]) -> None:
        publish(frames)
        if m is not None:
            m.counter("source", "frames_out").add(len(frames))

    sim_thread = None
    if market is not None:
        from alphapulse.chain.deploy import Market
        from alphapulse.chain.simulator import MarketSimulator, SimulatorConfig
        mk = Market.from_dict(adapter["endpoints"][0].replace("ws://", "http://"), market)
        sim = MarketSimulator(mk, SimulatorConfig(**(simulator or {})))

        def drive() -> None:
            try:
                sim.run()                       # paced by block_interval_s, until sim.stop()
            except Exception:
                if not stop.is_set():
                    log.exception("market simulator failed")

        def stopper() -> None:
            stop.wait()
            sim.stop()
        sim_thread = threading.Thread(target=drive, name="simulator", daemon=True)
        sim_thread.start()
        threading.Thread(target=stopper, name="simulator-stop", daemon=True).start()
    clients: list[Any] = []
    last: dict[str, int] = {}

    def report() -> None:                 # adapter state -> metrics block, from the heartbeat thread
        if m is None or not clients:
            return
        cl = clients[0]
        c = cl.counters
        m.gauge("source", "rpc_connected").set(1 if cl.connected else 0)
        m.gauge("source", "last_block").set(max(cl.completed_block, 0))
        m.gauge("source", "pools").set(c.get("pools_discovered", 0) + c.get("pools_from_cache", 0))
        for key, src in (("rpc_reconnects", "disconnects"), ("rpc_errors", "connect_failures")):
            m.counter("source", key).add(c.get(src, 0) - last.get(src, 0))
            last[src] = c.get(src, 0)
    beat = threading.Thread(target=_heartbeat_loop, args=(stop, prod, m, "source", report), daemon=True)
    beat.start()
    refresher = None
    if system_ring is not None:
        refresher = threading.Thread(target=read_pool_refreshes, args=(stop, system_ring, clients, m),
                                     name="pool-refresh", daemon=True)
        refresher.start()
    try:
        client = asyncio.run(run_adapter_async(EvmDataClientConfig(**adapter), sink, stop,
                                               client_ready=clients.append))
        log.info("adapter counters: %s", dict(client.counters))
    finally:
        if sim_thread is not None:
            sim_thread.join(5.0)
        if refresher is not None:
            refresher.join(5.0)
        prod.close()
        r.close()


def read_pool_refreshes(stop: Any, system_ring: str, clients: list, m: Any = None,
                        poll_timeout_s: float = 0.1) -> None:
    """The source's consumer of the system ring: each PoolRefresh goes to the adapter
    (``clients[0]``, an :class:`EvmDataClient`, once it runs; requests that come earlier
    wait for it). Other records there are not the source's business."""
    from alphapulse.protocol import codec
    from alphapulse.ring import Ring
    sr = Ring.attach(system_ring, timeout=10.0)
    cons = sr.consumer("source")
    waiting: dict[bytes, Any] = {}          # pool -> request not yet handed over (no adapter yet)
    try:
        while not stop.is_set():
            for f in cons.frames(timeout=poll_timeout_s):
                if m is not None:
                    m.counter("source", "frames_in").add(1)
                for t in codec.parse_frame(f).tlvs:
                    if isinstance(t, codec.PoolRefresh):   # the adapter merges and paces them
                        if not (clients and clients[0].refresh_threadsafe(bytes(t.pool), t.reason,
                                                                          t.block_number)):
                            waiting[bytes(t.pool)] = t
            if waiting and clients:
                for pool, t in list(waiting.items()):
                    if clients[0].refresh_threadsafe(pool, t.reason, t.block_number):
                        del waiting[pool]
        if waiting:
            log.warning("stopping with %d PoolRefresh requests unanswered", len(waiting))
    finally:
        if cons.rejects:
            log.warning("system ring: frames rejected %s", dict(cons.rejects))
        cons.close()
        sr.close()


# ------------------------------------------------------------------ strategy
def strategy(stop: Any, *, market_ring: str, signal_ring: str, engine: Any,
             metrics: str | None = None, poll_timeout_s: float = 0.05, wait: str = "sleep",
             realtime_priority: int = 0, system_ring: str | None = None, control: str | None = None,
             waiting: str | None = None) -> None:
    """Market-data ring -> :class:`StrategyEngine` -> signal ring, in batches.

    With ``control`` (the pipeline's control block, ``alphapulse.apps.control``) a hot reload's
    ``[strategy]`` settings are taken over between batches, at the 0.5 s heartbeat.

    With ``system_ring`` the strategy is that ring's producer: it sends there the PoolRefresh
    requests for the pools that wait on a fresh snapshot (``StrategyEngine.refresh_requests``),
    as soon as one starts waiting and every 0.5 s otherwise (re-sent after the engine's timeout).

    With ``waiting`` (the pipeline's waiting-pools table, ``alphapulse.apps.waiting``) the
    pools that wait for data are published there (total and the first by address) whenever
    the set changes, at most at the heartbeat's pace: the supervisor names them in its status
    line and ``/metrics``.

    ``wait``: the ring consumer's waiting strategy ("sleep" or "spin");
    ``realtime_priority`` > 0 asks for SCHED_FIFO (if refused, a warning is
    logged and the process runs on at normal priority).
    """
    from alphapulse.ring import Ring
    from alphapulse.jit.pool_state import K_FRAMES, K_FRAMES_REJECTED
    from alphapulse.strategy.engine import StrategyEngine
    import numpy as np
    m = _metrics(metrics)
    if m is not None:
        m.declare("strategy", "frames_in", "frames_rejected", "frames_lost", "signals", "frames_out",
                  "pools", "last_block", "pools_waiting", "heartbeat_ns", "pid",
                  *(("refresh_requests",) if system_ring else ()), latency=True)
    rin = Ring.attach(market_ring, timeout=10.0)
    rout = Ring.attach(signal_ring, timeout=10.0)
    if realtime_priority:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(realtime_priority))
            log.info("strategy runs under SCHED_FIFO %d", realtime_priority)
        except (OSError, AttributeError) as e:
            log.warning("realtime_priority %d refused (%s): normal scheduling", realtime_priority, e)
    cons = rin.consumer("strategy", wait=wait)
    prod = rout.producer()
    rsys = Ring.attach(system_ring, timeout=10.0) if system_ring else None
    psys = rsys.producer() if rsys is not None else None
    eng = StrategyEngine(engine)
    counters = eng.state["counters"]          # the kernel's counters (read in place, per batch)
    seen_frames = int(counters[K_FRAMES])
    seen_rejected = int(counters[K_FRAMES_REJECTED])
    last_beat = 0.0
    ctl = None
    if control:
        from alphapulse.apps.control import ControlBlock
        ctl = ControlBlock.attach(control)         # first poll: the settings in force (reloaded
        #                                           ones too, after a restart)
    wtab = None
    if waiting:
        from alphapulse.apps.waiting import WaitingBlock
        try:
            wtab = WaitingBlock.attach(waiting)
        except (FileNotFoundError, ValueError) as e:
            log.warning("waiting-pools table %s not usable (%s): waiting pools are only counted", waiting, e)
    published: dict | None = None             # the waiting set last written to the table

    spin = wait == "spin"

    # metrics handles resolved once (each lookup builds a handle: microseconds a batch otherwise)
    if m is not None:
        c_frames_in = m.counter("strategy", "frames_in")
        c_rejected = m.counter("strategy", "frames_rejected")
        c_signals = m.counter("strategy", "signals")
        c_frames_out = m.counter("strategy", "frames_out")
        c_lost = m.counter("strategy", "frames_lost")
        g_pools = m.gauge("strategy", "pools")
        g_last_block = m.gauge("strategy", "last_block")
        hist = m.histogram("strategy")

        def observe_ns(lat_ns: np.ndarray) -> None:
            """Trigger-to-publication latency of the signals the engine just published."""
            for v in lat_ns.tolist():
                hist.observe(v)
        latency = observe_ns
    else:
        latency = None

    # cyclic GC passes only when the ring is idle (see gcpolicy); process-wide, so only
    # when this is its own process's main thread (the supervisor's case), not in a thread
    gcp = IdleCollector().start() if threading.current_thread() is threading.main_thread() else None
    try:
        while not stop.is_set():
            lost = 0
            if spin:
                # poll, process and release in compiled code for one slice, back here between
                # slices (heartbeat, metrics, GC) and for futex wakes of sleeping signal readers
                n_sig = eng.run(cons, prod, poll_timeout_s, latency=latency)
                busy = int(counters[K_FRAMES]) != seen_frames
            else:
                views = cons.poll(timeout=poll_timeout_s)
                busy = bool(views)
                if views:
                    # the kernel publishes each 2-pool signal on the signal ring itself as soon as
                    # it is sized, before the rest of the search (back in Python only to wake
                    # sleeping readers)
                    n_sig, _ = eng.process_raw(views, sink=prod, latency=latency)
                    lost = cons.release()
            now = time.monotonic()
            beat = now - last_beat > 0.5
            if beat or (busy and eng.refresh.changed):
                _send_refresh(eng, psys, m)
            if beat and wtab is not None and eng.refresh.waiting != published:
                published = _publish_waiting(eng, wtab)
            if beat:
                prod.heartbeat()
                if psys is not None:
                    psys.heartbeat()
                _alive(m, "strategy")
                eng.log_bad_events()
                last_beat = now
                s = ctl.poll() if ctl is not None else None
                if s is not None:
                    try:
                        eng.reconfigure(eng.config.reloaded(s["strategy"]))
                        log.info("strategy settings reloaded: %s", s["strategy"])
                    except (KeyError, TypeError, ValueError) as e:
                        log.error("reload refused, strategy settings left as they were: %s", e)
            if gcp is not None:
                gcp.tick(idle=not busy)
            if not busy:
                continue
            frames, rejected = int(counters[K_FRAMES]), int(counters[K_FRAMES_REJECTED])
            if m is not None:
                c_frames_in.add(frames - seen_frames)
                c_rejected.add(rejected - seen_rejected)
                c_signals.add(n_sig)
                c_frames_out.add(n_sig)
                if lost:
                    c_lost.add(lost)
                g_pools.set(len(eng.registry))
                g_last_block.set(eng.last_block)
            seen_frames, seen_rejected = frames, rejected
            eng.report_chain_mismatch()
    finally:
        if gcp is not None:
            gcp.stop()
            log.info("strategy gc passes: %d (%d while busy), %d objects in cycles",
                     gcp.passes, gcp.forced, gcp.collected)
        cons.close()
        prod.close()
        rin.close()
        rout.close()
        if rsys is not None:
            psys.close()
            rsys.close()
        if ctl is not None:
            ctl.close()
        if wtab is not None:
            wtab.close()


def _publish_waiting(eng: Any, wtab: Any) -> dict:
    """Write the engine's waiting pools into the table; returns the set written."""
    from alphapulse.apps.waiting import waiting_pools
    total, pools = waiting_pools(eng)
    wtab.write(total, pools)
    return dict(eng.refresh.waiting)


def _send_refresh(eng: Any, psys: Any, m: Any) -> None:
    """Publish the engine's due PoolRefresh requests on the system ring (when there is one) and
    report how many pools wait on a snapshot."""
    frames = eng.refresh_requests()
    if psys is not None:
        for f in frames:
            psys.publish(f)
    if m is not None:
        waiting = eng.refresh.waiting
        m.gauge("strategy", "pools_waiting").set(len(waiting))
        if frames and psys is not None:
            m.counter("strategy", "refresh_requests").add(len(frames))


# ------------------------------------------------------------------ recorder
def recorder(stop: Any, *, ring: str, directory: str, rotate_bytes: int,
             metrics: str | None = None) -> None:
    """Copy every market-data frame into journal files (PROTOCOL.md section 6)."""
    from alphapulse.adapters.recorder import record_ring
    m = _metrics(metrics)
    out = record_ring(ring, directory, stop, rotate_bytes=rotate_bytes, beat=lambda: _alive(m, "recorder"))
    log.info("recorder: %s", out)
