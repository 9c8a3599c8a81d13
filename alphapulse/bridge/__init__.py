"""Bridges between hosts: local rings <-> NATS JetStream.

One bridge process moves one relay domain in one direction:

* :func:`run_outbound` reads a local ring (as an ordinary consumer) and publishes
  its frames, byte for byte, many per NATS message, to ``<prefix>.<domain>.<host>``
  in the stream of that domain;
* :func:`run_inbound` is a durable JetStream pull consumer writing those frames,
  in order and exactly once, into a local ring (it is that ring's producer).

Both are plain functions ``fn(stop, **config)`` for the pipeline supervisor
(``"alphapulse.bridge:run_outbound"``), ``stop`` a ``multiprocessing.Event``,
``config`` the fields of :class:`BridgeConfig`; :func:`run_bridge` dispatches on
``direction`` (for a pipeline's ``[[bridges]]`` tables). Modules:

``config``      BridgeConfig (validation names the key) and the derived NATS names
``batch``       the batch wire format (header documented there) and frame cutting
``jetstream``   stream and consumer configuration, connection, :func:`jetstream_lag`
``outbound``    ring -> JetStream (ordering and retry argument)
``inbound``     JetStream -> ring (exactly-once argument with ``state``)
``state``       the crash-safe written-positions file of an inbound bridge
``stats``       figures for ``/metrics`` (:data:`METRIC_COUNTERS`, :func:`lag`)
``natsserver``  run a loopback ``nats-server -js`` (tests, benchmarks, demos)
"""
from alphapulse.bridge.batch import BatchError, BatchHeader, pack_batch, parse_header
from alphapulse.bridge.config import DOMAIN_NAMES, BridgeConfig
from alphapulse.bridge.inbound import InboundBridge, run_bridge, run_inbound
from alphapulse.bridge.jetstream import jetstream_lag
from alphapulse.bridge.natsserver import NatsServer
from alphapulse.bridge.outbound import OutboundBridge, run_outbound
from alphapulse.bridge.stats import METRIC_COUNTERS, METRIC_GAUGES, METRIC_HELP, BridgeStats, lag

__all__ = ["BridgeConfig", "DOMAIN_NAMES", "run_outbound", "run_inbound", "run_bridge", "OutboundBridge",
           "InboundBridge", "jetstream_lag", "lag", "METRIC_COUNTERS", "METRIC_GAUGES", "METRIC_HELP", "BridgeStats",
           "NatsServer", "BatchError", "BatchHeader", "pack_batch", "parse_header"]
