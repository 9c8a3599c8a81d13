"""Outbound bridge: local ring -> JetStream, many frames per message.

The bridge is an ordinary consumer of the local ring. Each poll hands it every
frame published since its cursor (one or two zero-copy views); it copies them
out, validates their structure with the ``alphapulse.jit.frames`` kernel
(invalid frames are counted and not forwarded), cuts them into batches of at
most ``batch_max_bytes`` and publishes each batch to
``<prefix>.<domain>.<host>`` with ``Nats-Msg-Id = <host>.<domain>.<session>.<first_index>``
(see ``batch.py``), waiting for JetStream's acknowledgement.

Ordering: a batch is published only after the previous one was acknowledged,
and a failed publish (timeout, disconnect, JetStream not ready after a server
restart) is retried with the *same bytes and id* until acknowledged. So the
stream receives the batches in order, and a retry of a batch the server had
in fact stored is dropped by JetStream's deduplication window. Pipelining
several unacknowledged batches would let the client's reconnect buffer replay
a later batch before the retry of an earlier one; natural batching (a poll
takes everything available) keeps the messages large under load instead.

Batching costs no latency: the bridge never waits to fill a batch; an idle
ring yields single-frame batches, a busy one full batches.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import nats
import nats.errors
import nats.js.errors

from alphapulse.bridge import jetstream as J
from alphapulse.bridge import rings
from alphapulse.bridge.batch import BATCH_HEADER_SIZE, FrameWalker, cut, msg_id, pack_batch
from alphapulse.bridge.config import BridgeConfig
from alphapulse.bridge.stats import BridgeStats
from alphapulse.ring import ConsumerEvicted

log = logging.getLogger("alphapulse.bridge.outbound")

# Errors after which the same publish is simply tried again.
RETRYABLE = (nats.errors.TimeoutError, asyncio.TimeoutError, nats.errors.ConnectionClosedError,
             nats.errors.ConnectionReconnectingError, nats.errors.OutboundBufferLimitError,
             nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError,
             nats.js.errors.ServiceUnavailableError, nats.errors.StaleConnectionError,
             nats.errors.UnexpectedEOF, ConnectionError)
STOP_GRACE_S = 5.0           # after stop, keep retrying an unacknowledged batch this long


class OutboundBridge:
    def __init__(self, cfg: BridgeConfig, stats: BridgeStats | None = None) -> None:
        self.cfg = cfg
        self.stats = stats or BridgeStats(cfg.metrics_block, cfg.component("out"))
        self.name = f"{cfg.component('out')}@{cfg.host_id}"
        self.session = time.time_ns()          # strictly increasing across runs of this bridge
        self.next_index = 0
        self.walker = FrameWalker(cfg.verify_checksum_every)
        self._stop: Any = None
        self._closing = False
        self._stop_deadline = float("inf")

    def _connected(self, up: bool) -> bool:
        self.stats.set("rpc_connected", int(up))
        return not self._closing

    def _should_stop(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _publish(self, js: Any, subject: str, payload: bytes, mid: str,
                       source: "rings.RingSource") -> bool:
        """Publish until acknowledged (same id every time); False if stopped for good."""
        headers = {"Nats-Msg-Id": mid}
        failures = 0
        while True:
            try:
                await js.publish(subject, payload, timeout=self.cfg.publish_timeout_s, headers=dict(headers))
                if failures:
                    log.info("%s: batch %s stored after %d retries", self.name, mid, failures)
                return True
            except RETRYABLE as e:
                failures += 1
                self.stats.add("bridge_retries")
                if failures == 1:
                    log.warning("%s: publish of %s failed (%s); retrying with the same id",
                                self.name, mid, type(e).__name__)
            except nats.js.errors.APIError as e:
                failures += 1
                self.stats.add("bridge_retries")
                log.warning("%s: JetStream refused %s: %s; retrying", self.name, mid, e)
                try:
                    await J.ensure_stream(js, self.cfg, update=True)
                except Exception as e2:  # noqa: BLE001 (any failure here is retried next round)
                    log.debug("%s: ensure_stream failed: %r", self.name, e2)
            source.keepalive()                  # we hold ring frames without polling
            self.stats.beat()
            if self._should_stop():
                if self._stop_deadline == float("inf"):
                    self._stop_deadline = time.monotonic() + STOP_GRACE_S
                if time.monotonic() > self._stop_deadline:
                    return False
            await asyncio.sleep(min(self.cfg.reconnect_wait_s * failures, 1.0))

    def _reattach(self, source: "rings.RingSource", e: Exception, bridged: int = 0) -> int:
        """The ring dropped our consumer (stale heartbeat): register again, count the skip
        (``bridged``: frames after the old cursor that were published before we noticed)."""
        skipped = max(source.reattach() - bridged, 0)
        self.stats.add("frames_lost", skipped)
        log.error("%s: %s; registered again, %d frames were not bridged", self.name, e, skipped)
        return source.lost_frames

    async def _setup_stream(self, js: Any) -> bool:
        first = True
        while not self._should_stop():
            try:
                info = await J.ensure_stream(js, self.cfg, update=True)
                log.info("%s: stream %s ready (max_age %.0fs, max_bytes %d, dedup window %.0fs)",
                         self.name, info.config.name, self.cfg.max_age_s, self.cfg.max_bytes,
                         self.cfg.duplicate_window_s)
                return True
            except Exception as e:  # noqa: BLE001 (server restarting, JetStream not ready yet)
                if first:
                    log.warning("%s: cannot set up stream %s yet (%r); retrying", self.name,
                                self.cfg.stream_name(), e)
                    first = False
                await asyncio.sleep(self.cfg.reconnect_wait_s)
        return False

    async def run(self, stop: Any) -> dict[str, int]:
        """Bridge until ``stop`` is set; returns the final figures."""
        self._stop = stop
        cfg = self.cfg
        nc = await J.connect(cfg, self.name, self._should_stop, self._connected)
        if nc is None:
            return dict(self.stats.values)
        reconnects0 = nc.stats.get("reconnects", 0)
        try:
            if nc.max_payload < cfg.batch_max_bytes + BATCH_HEADER_SIZE:
                raise ValueError(f"bridge.batch_max_bytes {cfg.batch_max_bytes} + {BATCH_HEADER_SIZE} exceeds "
                                 f"the server's max_payload {nc.max_payload}")
            js = nc.jetstream()
            if not await self._setup_stream(js):
                return dict(self.stats.values)
            source = rings.RingSource(cfg.ring, cfg.ring_consumer_name())
            log.info("%s: bridging ring %s -> %s (session %x)", self.name, cfg.ring, cfg.subject(),
                     self.session)
            try:
                await self._loop(js, source, stop)
            finally:
                source.close()
            self.stats.add("rpc_reconnects", nc.stats.get("reconnects", 0) - reconnects0)
        finally:
            self._closing = True
            await J.close(nc)
            self.stats.set("rpc_connected", 0)
        log.info("%s: stopped after %d frames in %d batches", self.name, self.stats.values["frames_out"],
                 self.stats.values["bridge_batches"])
        return dict(self.stats.values)

    async def _loop(self, js: Any, source: "rings.RingSource", stop: Any) -> None:
        cfg, st = self.cfg, self.stats
        subject = cfg.subject()
        host, domain = cfg.host_id, int(cfg.domain_id)
        next_report = time.monotonic()
        lost0 = source.lost_frames
        rejected0 = self.walker.rejected + self.walker.corrupt
        frames0 = self.walker.frames
        idle = 0
        while not stop.is_set():
            try:
                chunks = source.read()
            except ConsumerEvicted as e:
                lost0 = self._reattach(source, e)
                continue
            now = time.monotonic()
            if now >= next_report:
                next_report = now + cfg.lag_interval_s
                st.beat()
                st.set("consumer_lag_bytes", source.lag_bytes())
            lost = source.lost_frames
            if lost != lost0:
                st.add("frames_lost", lost - lost0)
                log.warning("%s: lapped by the ring producer, %d frames lost", self.name, lost - lost0)
                lost0 = lost
            if not chunks:
                await asyncio.sleep(0)          # let the client's reader run (PINGs, reconnects)
                source.idle(idle, cfg.idle_sleep_max_s)
                idle += 1
                continue
            idle = 0
            for buf in chunks:
                for s, e, n, first_seq in cut(self.walker, buf, cfg.batch_max_bytes):
                    payload = pack_batch(host, domain, self.session, self.next_index, first_seq, n, buf[s:e])
                    mid = msg_id(host, domain, self.session, self.next_index)
                    if not await self._publish(js, subject, payload, mid, source):
                        log.error("%s: stopped with batch %s unacknowledged: %d frames may not have "
                                  "been bridged", self.name, mid, n)
                        return
                    self.next_index += n
                    st.add("frames_out", n)
                    st.add("bridge_batches")
                    st.add("bridge_bytes", e - s)
            try:
                source.done()
            except ConsumerEvicted as e:
                lost0 = self._reattach(source, e, bridged=self.walker.frames - frames0)
            st.add("frames_in", self.walker.frames - frames0)
            frames0 = self.walker.frames
            rejected = self.walker.rejected + self.walker.corrupt
            if rejected != rejected0:
                st.add("frames_rejected", rejected - rejected0)
                log.warning("%s: %d invalid frames not bridged (%s, %d bytes skipped)", self.name,
                            rejected - rejected0, self.walker.reasons, self.walker.skipped_bytes)
                rejected0 = rejected


def run_outbound(stop: Any, **config: Any) -> dict[str, int]:
    """Process entry point (``alphapulse.bridge:run_outbound``): bridge until ``stop`` is set.

    ``stop`` is a ``multiprocessing.Event``; ``config`` holds the fields of
    :class:`BridgeConfig` (validated here: a bad value raises ConfigError naming it).
    """
    cfg = BridgeConfig.from_mapping(config).for_run("out")
    return asyncio.run(OutboundBridge(cfg).run(stop))
