"""EVM DEX market-data adapter (Uniswap V2/V3 families), nautilus-style layout.

In a pipeline process::

    from alphapulse.adapters.evm import EvmDataClientConfig, ring_sink, run_adapter
    cfg = EvmDataClientConfig.from_pipeline(app_config)      # or EvmDataClientConfig(endpoints=..., factories=...)
    run_adapter(cfg, ring_sink(Ring.attach("market_data").producer()), stop_event)   # blocks until stop

``sink(frames: list[bytes])`` receives complete Protocol V2 frames (domain 1,
source 4, sequence from 1); counters of every skip and error are in
``EvmDataClient.counters`` (``run_adapter`` returns them).

- :mod:`.config`    typed, validated configuration (:class:`EvmDataClientConfig`)
- :mod:`.abi`       event topic0s and the eth_call ABIs, decoded exactly
- :mod:`.decode`    log dict -> typed event -> Protocol V2 records
- :mod:`.frames`    records -> frames (struct compiled from the layouts; codec's bytes)
- :mod:`.providers` pool and token discovery by batched eth_call, snapshots, ticks
- :mod:`.cache`     the SQLite pool cache
- :mod:`.data`      the WebSocket client: subscriptions, failover, backfill, reorgs
"""
from alphapulse.adapters.evm.config import EvmDataClientConfig
from alphapulse.adapters.evm.data import EvmDataClient, ring_sink, run_adapter, run_adapter_async

__all__ = ["EvmDataClientConfig", "EvmDataClient", "ring_sink", "run_adapter", "run_adapter_async"]
