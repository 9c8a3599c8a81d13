"""JetStream plumbing shared by both bridges: connection, stream, consumer, lag.

Stream: one per domain (``BridgeConfig.stream_name()``), capturing
``<prefix>.<domain>.*`` (one subject per source host), limits retention with
``max_age``/``max_bytes`` from the configuration, discard old, and a
deduplication window (JetStream drops a message whose ``Nats-Msg-Id`` it has
stored within that window: how a retried batch is not stored twice).

Consumer: durable, pull, deliver all (or from a stream sequence), ``AckPolicy.ALL`` (acknowledging a
message acknowledges every earlier one: the inbound bridge acknowledges once
per fetched group, after the whole group reached its ring), unlimited
redeliveries, ``ack_wait`` and ``max_ack_pending`` from the configuration.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Callable

import nats
from nats.js import api
from nats.js.errors import NotFoundError, BadRequestError

from alphapulse.bridge.config import BridgeConfig

log = logging.getLogger("alphapulse.bridge")

STREAM_IN_USE = 10058            # JetStream error code: stream name already in use


def stream_config(cfg: BridgeConfig) -> api.StreamConfig:
    return api.StreamConfig(
        name=cfg.stream_name(),
        description=f"AlphaPulse {cfg.domain} frames, one subject per source host",
        subjects=cfg.stream_subjects(),
        retention=api.RetentionPolicy.LIMITS,
        discard=api.DiscardPolicy.OLD,
        max_age=cfg.max_age_s,
        max_bytes=cfg.max_bytes,
        duplicate_window=cfg.duplicate_window_s,
        storage=api.StorageType.FILE if cfg.storage == "file" else api.StorageType.MEMORY,
        num_replicas=1,
    )


def consumer_config(cfg: BridgeConfig, start_seq: int = 0) -> api.ConsumerConfig:
    """The inbound durable; ``start_seq`` > 0 starts delivery at that stream sequence."""
    return api.ConsumerConfig(
        durable_name=cfg.durable_name(),
        name=cfg.durable_name(),
        description=f"AlphaPulse inbound bridge on {cfg.host_id} ({cfg.domain})",
        deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE if start_seq > 0 else api.DeliverPolicy.ALL,
        opt_start_seq=start_seq if start_seq > 0 else None,
        ack_policy=api.AckPolicy.ALL,
        ack_wait=cfg.ack_wait_s,
        max_deliver=-1,
        max_ack_pending=cfg.max_ack_pending,
        filter_subject=cfg.inbound_filter(),
    )


async def connect(cfg: BridgeConfig, name: str, should_stop: Callable[[], bool],
                  on_state: Callable[[bool], None]) -> Any:
    """Connect (retrying until ``should_stop()``), with unlimited automatic reconnects.

    ``on_state(True/False)`` is called on connect/disconnect (for metrics and logs).
    Returns None if asked to stop before a connection was made.
    """
    async def disconnected() -> None:
        if on_state(False) is not False:      # False: we are closing on purpose
            log.warning("%s: disconnected from NATS", name)

    async def reconnected() -> None:
        on_state(True)
        log.warning("%s: reconnected to NATS", name)

    async def error(e: Exception) -> None:
        log.debug("%s: NATS client error: %r", name, e)

    first_failure = True
    while not should_stop():
        try:
            nc = await nats.connect(
                servers=list(cfg.servers), name=name, allow_reconnect=True,
                max_reconnect_attempts=-1, reconnect_time_wait=cfg.reconnect_wait_s,
                connect_timeout=2, ping_interval=5, max_outstanding_pings=3,
                disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error)
            on_state(True)
            log.info("%s: connected to %s", name, nc.connected_url.netloc if nc.connected_url else cfg.servers)
            return nc
        except (OSError, asyncio.TimeoutError, nats.errors.Error) as e:
            if first_failure:
                log.warning("%s: cannot reach NATS at %s (%s); retrying every %.2fs",
                            name, ", ".join(cfg.servers), e or type(e).__name__, cfg.reconnect_wait_s)
                first_failure = False
            await asyncio.sleep(cfg.reconnect_wait_s)
    return None


async def close(nc: Any) -> None:
    """Send what is buffered (acknowledgements) if the server is there, then close.

    Not ``drain()``: draining a pull subscription waits up to its drain timeout
    (30 s) for deliveries that will never come.
    """
    try:
        await nc.flush(timeout=1)
    except Exception:  # noqa: BLE001 (disconnected: JetStream redelivers, the bridge deduplicates)
        pass
    await nc.close()


async def ensure_stream(js: Any, cfg: BridgeConfig, *, update: bool) -> api.StreamInfo:
    """Create the domain's stream; if it exists, apply this config's limits when ``update``."""
    sc = stream_config(cfg)
    try:
        return await js.add_stream(sc)
    except BadRequestError as e:
        if e.err_code != STREAM_IN_USE:
            raise
    if update:
        return await js.update_stream(sc)
    return await js.stream_info(sc.name)


async def consumer_lag(js: Any, cfg: BridgeConfig) -> dict[str, int]:
    """Server-side view of an inbound bridge's consumer: what is not yet delivered/acknowledged."""
    try:
        ci = await js.consumer_info(cfg.stream_name(), cfg.durable_name())
    except NotFoundError:
        return {"pending_msgs": -1, "ack_pending_msgs": -1, "redelivered_msgs": -1, "ack_floor_stream_seq": -1}
    return {"pending_msgs": int(ci.num_pending or 0), "ack_pending_msgs": int(ci.num_ack_pending or 0),
            "redelivered_msgs": int(ci.num_redelivered or 0),
            "ack_floor_stream_seq": int(ci.ack_floor.stream_seq if ci.ack_floor else 0)}


def jetstream_lag(**config: Any) -> dict[str, int]:
    """One-shot query, from any process: the inbound consumer's lag and the stream's size.

    Returns ``{"pending_msgs", "ack_pending_msgs", "redelivered_msgs",
    "ack_floor_stream_seq", "stream_msgs", "stream_bytes", "stream_last_seq"}``
    (-1 where the stream or consumer does not exist). Raises ConnectionError if
    NATS cannot be reached within 2 s.
    """
    cfg = BridgeConfig.from_mapping(config)

    async def q() -> dict[str, int]:
        try:
            nc = await nats.connect(servers=list(cfg.servers), allow_reconnect=False, connect_timeout=2,
                                    max_reconnect_attempts=0)
        except Exception as e:  # noqa: BLE001 (nats-py raises several unrelated types here)
            raise ConnectionError(f"cannot reach NATS at {', '.join(cfg.servers)}: {e!r}") from None
        try:
            js = nc.jetstream()
            out = await consumer_lag(js, cfg)
            try:
                si = await js.stream_info(cfg.stream_name())
                out.update(stream_msgs=int(si.state.messages), stream_bytes=int(si.state.bytes),
                           stream_last_seq=int(si.state.last_seq))
            except NotFoundError:
                out.update(stream_msgs=-1, stream_bytes=-1, stream_last_seq=-1)
            return out
        finally:
            await nc.close()

    return asyncio.run(q())


class Puller:
    """Continuous pull from a bound pull subscription: each message as soon as it arrives.

    ``PullSubscription.fetch(n)`` of nats-py, once a first message arrived, keeps
    waiting for the other ``n - 1`` until its timeout, which holds every frame of
    a quiet stream back for the whole timeout. This keeps one pull request of
    ``batch`` messages outstanding on the server (renewed when used up, answered
    by a status, or past its expiry, e.g. after a server restart) and returns
    whatever has arrived: it waits only for the first message. It reads the
    subscription's own pending queue, as nats-py's ``fetch`` does.
    """

    def __init__(self, nc: Any, psub: Any, batch: int, expires_s: float) -> None:
        self._nc, self._psub = nc, psub
        self._sub = psub._sub
        self.batch = batch
        self.expires_s = expires_s
        self._left = 0
        self._deadline = 0.0

    async def _request(self) -> None:
        req = {"batch": self.batch, "expires": int(self.expires_s * 1e9)}
        await self._nc.publish(self._psub._nms, json.dumps(req).encode(), reply=self._psub._deliver)
        self._left = self.batch
        self._deadline = time.monotonic() + self.expires_s + 0.25

    def _take(self, msg: Any, out: list) -> None:
        status = msg.headers.get(api.Header.STATUS) if msg.headers else None
        if not status:
            out.append(msg)
            self._left -= 1
        elif status != api.StatusCode.CONTROL_MESSAGE:
            self._left = 0                      # 404/408/409: this request is over

    async def fetch(self, max_msgs: int) -> list:
        """Messages available now (at most ``max_msgs``), waiting up to ``expires_s`` for the first."""
        out: list = []
        q = self._sub._pending_queue
        t_end = time.monotonic() + self.expires_s
        while not out:
            if self._left <= 0 or time.monotonic() > self._deadline:
                await self._request()
            if q.empty():
                remaining = min(t_end, self._deadline) - time.monotonic()
                if remaining <= 0:
                    if time.monotonic() >= t_end:
                        return out
                    continue
                try:
                    msg = await self._sub.next_msg(timeout=remaining)
                except nats.errors.TimeoutError:
                    if time.monotonic() >= t_end:
                        return out
                    continue
                self._take(msg, out)
            while not q.empty() and len(out) < max_msgs:
                msg = q.get_nowait()
                self._sub._pending_size -= len(msg.data)
                q.task_done()
                self._take(msg, out)
            if self._left <= 0 and out:
                await self._request()           # keep one request outstanding while busy
        return out
