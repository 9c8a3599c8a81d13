"""EVM DEX market-data adapter (Uniswap V2/V3 families), nautilus-style layout.

- :mod:`.config`    typed, validated configuration (:class:`EvmDataClientConfig`)
- :mod:`.abi`       event topic0s and the eth_call ABIs, decoded exactly
- :mod:`.decode`    log dict -> typed event -> Protocol V2 records
- :mod:`.providers` pool and token discovery by batched eth_call, snapshots, ticks
- :mod:`.cache`     the SQLite pool cache
- :mod:`.data`      the WebSocket client: subscriptions, failover, backfill, reorgs
"""
from alphapulse.adapters.evm.config import EvmDataClientConfig
from alphapulse.adapters.evm.data import EvmDataClient, run_adapter, run_adapter_async

__all__ = ["EvmDataClientConfig", "EvmDataClient", "run_adapter", "run_adapter_async"]
