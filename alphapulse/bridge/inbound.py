"""Inbound bridge: JetStream -> local ring, in order, exactly once.

A durable pull consumer (``jetstream.consumer_config``) fetches batches in
stream order. For each batch the bridge checks the header and the frames
(CRC-32, frame count, structure, domain; a bad batch is counted, logged and
skipped, never written), decides from its persisted positions which frames are
new (``state.admit``: redelivered frames are dropped, a jump is counted as a
gap), stages the new positions in the state file, then writes the new frames
into the local ring (``state.py`` explains why this order makes the pair
exact across a SIGKILL at any instruction). Only when every batch of a fetched
group is in the ring does it acknowledge the group's last message
(``AckPolicy.ALL``). After a disconnect, a NATS server restart or a restart of
the bridge, JetStream redelivers from the acknowledgement floor and the
positions drop what the ring already has: no frame is lost, none is written
twice.

A full lossless ring makes the write wait (the ring's own back-pressure); if
it stays full beyond ``ring_write_timeout_s`` the write is retried, the
messages not yet acknowledged stay with this bridge (told ``in_progress`` so
JetStream does not redeliver them meanwhile).
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

import nats.errors
import nats.js.errors
import numpy as np

from alphapulse.bridge import jetstream as J
from alphapulse.bridge import rings
from alphapulse.bridge.batch import BATCH_HEADER_SIZE, BatchError, FrameWalker, batch_frames, parse_header
from alphapulse.settings import ConfigError
from alphapulse.bridge.config import BridgeConfig
from alphapulse.bridge.state import UNCONDITIONAL, InboundState, admit
from alphapulse.bridge.stats import BridgeStats
from alphapulse.jit.frames import OFF_FLAGS as _FLAGS_OFF
from alphapulse.jit.frames import OFF_TIMESTAMP as _TS_OFF
from alphapulse.protocol.layout import FLAG_REPLAYED

log = logging.getLogger("alphapulse.bridge.inbound")

_TS = struct.Struct("<Q")
_WRITTEN, _SKIPPED, _RING_FULL, _OUT_OF_ORDER = (object() for _ in range(4))
MAX_LATENCY_NS = 3600 * 10**9    # older than this is a clock problem or a stale frame, not a latency



class InboundBridge:
    def __init__(self, cfg: BridgeConfig, stats: BridgeStats | None = None) -> None:
        self.cfg = cfg
        self.stats = stats or BridgeStats(cfg.metrics_block, cfg.component("in"))
        self.name = f"{cfg.component('in')}@{cfg.host_id}"
        self.walker = FrameWalker(0)
        self._stop: Any = None
        self._sub: Any = None
        self._puller: J.Puller | None = None
        self._nc: Any = None
        self._closing = False

    def _should_stop(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    def _connected(self, up: bool) -> bool:
        self.stats.set("rpc_connected", int(up))
        return not self._closing

    async def _bind(self, js: Any, start_seq: int) -> Any:
        """(Re)create the durable consumer so delivery starts at ``start_seq`` (0 = the
        consumer's own position, or the start of the stream for a new one), and bind to it."""
        cfg = self.cfg
        if self._sub is not None:
            try:
                await self._sub.unsubscribe()
            except Exception:  # noqa: BLE001 (a dead subscription is what we replace)
                pass
            self._sub = None
        await J.ensure_stream(js, cfg, update=False)
        if start_seq:
            try:
                await js.delete_consumer(cfg.stream_name(), cfg.durable_name())
            except nats.js.errors.NotFoundError:
                pass
        else:
            try:
                await js.consumer_info(cfg.stream_name(), cfg.durable_name())
                start_seq = -1                       # exists: keep its position
            except nats.js.errors.NotFoundError:
                pass
        if start_seq >= 0:
            await js.add_consumer(cfg.stream_name(), J.consumer_config(cfg, start_seq))
        self._sub = await js.pull_subscribe_bind(durable=cfg.durable_name(), stream=cfg.stream_name())
        self._puller = J.Puller(self._nc, self._sub, cfg.fetch_batch, cfg.fetch_timeout_s)
        return self._sub

    async def _rebind(self, js: Any, start_seq: int, why: str) -> Any:
        first = True
        while not self._should_stop():
            try:
                sub = await self._bind(js, start_seq)
                log.info("%s: consumer %s delivers from stream seq %s (%s)", self.name,
                         self.cfg.durable_name(), start_seq or "its last position", why)
                return sub
            except Exception as e:  # noqa: BLE001 (server restarting, JetStream not ready yet)
                if first:
                    log.warning("%s: cannot bind consumer %s on %s yet (%r); retrying", self.name,
                                self.cfg.durable_name(), self.cfg.stream_name(), e)
                    first = False
                await asyncio.sleep(self.cfg.reconnect_wait_s)
        return None

    async def run(self, stop: Any) -> dict[str, int]:
        self._stop = stop
        cfg = self.cfg
        sink = rings.RingSink(cfg.ring)
        state = InboundState(cfg.state_path())
        try:
            positions = state.recover(sink.position(), sink.token())
            log.info("%s: state %s (%s): stream seq %d, %s", self.name, state.path, state.recovered_from,
                     state.stream_seq, {f"{h}/{d}": p for (h, d), p in positions.items()} or "nothing written yet")
            nc = await J.connect(cfg, self.name, self._should_stop, self._connected)
            if nc is None:
                return dict(self.stats.values)
            reconnects0 = nc.stats.get("reconnects", 0)
            self._nc = nc
            try:
                js = nc.jetstream()
                # Resume right after the last batch that reached the ring: the durable's
                # delivered-but-unacknowledged messages would otherwise come back only after
                # ack_wait, behind newer ones.
                sub = await self._rebind(js, state.stream_seq + 1 if state.stream_seq else 0, "start")
                if sub is not None:
                    log.info("%s: bridging %s -> ring %s", self.name, cfg.inbound_filter(), cfg.ring)
                    await self._loop(js, sink, state, stop)
                self.stats.add("rpc_reconnects", nc.stats.get("reconnects", 0) - reconnects0)
            finally:
                self._closing = True
                await J.close(nc)
                self.stats.set("rpc_connected", 0)
        finally:
            state.close()
            sink.close()
        log.info("%s: stopped after %d frames written (%d duplicates dropped, %d gap frames)", self.name,
                 self.stats.values["frames_out"], self.stats.values["bridge_duplicates"],
                 self.stats.values["bridge_gap_frames"])
        return dict(self.stats.values)

    async def _loop(self, js: Any, sink: "rings.RingSink", state: InboundState, stop: Any) -> None:
        cfg, st = self.cfg, self.stats
        positions = dict(state.positions)
        token = sink.token()
        next_report = 0.0
        fetch_errors = 0
        rewound = False               # delivery restarted in order: a gap now is a real one
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_report:
                next_report = now + cfg.lag_interval_s
                st.beat()
                sink.idle()
            try:
                msgs = await self._puller.fetch(cfg.fetch_batch)
                fetch_errors = 0
            except (nats.errors.TimeoutError, asyncio.TimeoutError):
                continue
            except (nats.errors.Error, nats.js.errors.Error, OSError) as e:
                fetch_errors += 1
                if fetch_errors == 1:
                    log.warning("%s: fetch failed (%r); retrying", self.name, e)
                await asyncio.sleep(min(cfg.reconnect_wait_s * fetch_errors, 1.0))
                if fetch_errors % 8 == 0:     # e.g. the consumer vanished with a wiped server store
                    await self._rebind(js, state.stream_seq + 1 if state.stream_seq else 0, "fetch failing")
                continue
            i = 0
            rebind = False
            while i < len(msgs):
                r = self._write(msg := msgs[i], sink, state, positions, token, rewound)
                if r is _RING_FULL:
                    if stop.is_set():
                        return
                    try:
                        await msg.in_progress()
                    except Exception:  # noqa: BLE001 (disconnected: redelivery covers it)
                        pass
                    continue
                if r is _OUT_OF_ORDER:
                    rebind = True
                    break
                if r is _WRITTEN:
                    rewound = False
                i += 1
            if rebind:
                # Messages delivered before a disconnect and never acknowledged come back
                # only after ack_wait, behind newer ones: restart delivery, in order, right
                # after the last batch in the ring.
                await self._rebind(js, state.stream_seq + 1, "out-of-order delivery after a disconnect")
                rewound = True
                continue
            if i:
                last = msgs[i - 1]
                try:
                    await last.ack()        # AckPolicy.ALL: the whole group
                except Exception as e:  # noqa: BLE001 (disconnected: the group is redelivered and deduplicated)
                    log.debug("%s: ack failed (%r); redelivery will be deduplicated", self.name, e)
                st.set("bridge_pending_msgs", int(last.metadata.num_pending))

    def _write(self, msg: Any, sink: "rings.RingSink", state: InboundState,
               positions: dict, token: int, rewound: bool) -> object:
        """Handle one batch: _WRITTEN, _SKIPPED (invalid or duplicate), _RING_FULL (retry
        it) or _OUT_OF_ORDER (frames before it are missing: delivery must be rewound)."""
        st = self.stats
        data = msg.data
        try:
            hdr = parse_header(data)
            frames = np.frombuffer(data, np.uint8, offset=BATCH_HEADER_SIZE)
            offs = batch_frames(self.walker, hdr, frames)
        except BatchError as e:
            st.add("bridge_bad_batches")
            log.error("%s: dropped NATS message %s (stream seq %s): %s", self.name, msg.subject,
                      msg.metadata.sequence.stream, e)
            return _SKIPPED
        if hdr.domain != int(self.cfg.domain_id):
            st.add("bridge_bad_batches")
            log.error("%s: dropped a %d-domain batch from %s on the %s stream", self.name, hdr.domain,
                      hdr.host, self.cfg.domain)
            return _SKIPPED
        adm = admit(positions, hdr.host, hdr.domain, hdr.session, hdr.first_index, hdr.frame_count)
        if adm.gap and not rewound:
            log.info("%s: batch at bridge index %d from %s arrived %d frames early (session %x)",
                     self.name, hdr.first_index, hdr.host, adm.gap, hdr.session)
            return _OUT_OF_ORDER
        st.add("bridge_batches")
        st.add("frames_in", hdr.frame_count)
        if adm.gap:
            st.add("bridge_gap_frames", adm.gap)
            log.warning("%s: %d frames from %s before bridge index %d (session %x) are not in the "
                        "stream (stream limits, or lost with an outbound bridge)", self.name, adm.gap,
                        hdr.host, hdr.first_index, hdr.session)
        if adm.skip:
            st.add("bridge_duplicates", adm.skip)
        if adm.skip >= hdr.frame_count:
            return _SKIPPED
        sseq = int(msg.metadata.sequence.stream)
        key = (hdr.host, hdr.domain)
        state_seq0 = state.stream_seq
        k = adm.skip
        while k < hdr.frame_count:
            # the largest run of frames the ring takes in one commit
            start = int(offs[k])
            lim = int(np.searchsorted(offs, start + sink.max_write, side="right")) - 1
            j = min(max(lim, k + 1), hdr.frame_count)
            end = int(offs[j])
            positions[key] = (hdr.session, hdr.first_index + j)
            # stream_seq names the last batch written *whole*: delivery resumes after it
            state.stage(positions, sseq if j == hdr.frame_count else state_seq0, sink.position(), token)
            if not sink.write(frames, start, end, self.cfg.ring_write_timeout_s):
                # Nothing of this run was committed: restore the exact state (written
                # unconditionally, so the slot invariant of state.py holds again).
                positions[key] = (hdr.session, hdr.first_index + k)
                state.stage(positions, state_seq0, UNCONDITIONAL, token)
                log.warning("%s: ring %s stayed full for %.1fs; retrying", self.name, self.cfg.ring,
                            self.cfg.ring_write_timeout_s)
                return _RING_FULL
            st.add("frames_out", j - k)
            st.add("bridge_bytes", end - start)
            k = j
        last = int(offs[hdr.frame_count - 1])
        lag = time.time_ns() - _TS.unpack_from(frames, last + _TS_OFF)[0]
        st.set("bridge_lag_ns", lag)
        # A replayed frame keeps its recorded timestamp: its age is not a latency.
        if not frames[last + _FLAGS_OFF] & FLAG_REPLAYED and 0 <= lag < MAX_LATENCY_NS:
            st.observe_latency_ns(lag)
        return _WRITTEN


def run_inbound(stop: Any, **config: Any) -> dict[str, int]:
    """Process entry point (``alphapulse.bridge:run_inbound``): bridge until ``stop`` is set.

    ``stop`` is a ``multiprocessing.Event``; ``config`` holds the fields of
    :class:`BridgeConfig` (validated here: a bad value raises ConfigError naming it).
    """
    cfg = BridgeConfig.from_mapping(config).for_run("in")
    return asyncio.run(InboundBridge(cfg).run(stop))


def run_bridge(stop: Any, **config: Any) -> dict[str, int]:
    """Process entry point for a self-describing config (``direction = "out"|"in"``)."""
    from alphapulse.bridge.outbound import run_outbound
    d = config.get("direction", "")
    if d == "out":
        return run_outbound(stop, **config)
    if d == "in":
        return run_inbound(stop, **config)
    raise ConfigError("bridge.direction", f"must be 'out' or 'in', got {d!r}")
