"""Shared pieces of the adapter chain tests: config from a deployed Market, the chain's truth."""
from collections import Counter

from web3 import Web3

from alphapulse.adapters.evm import abi
from alphapulse.adapters.evm.config import EvmDataClientConfig, FactoryConfig
from alphapulse.protocol import codec
from alphapulse.protocol.layout import EVENT_REMOVED

POOL_EVENTS = (codec.PoolSwap, codec.PoolSync, codec.PoolMint, codec.PoolBurn)


def adapter_config(market, endpoints, **kw):
    facs = tuple(FactoryConfig(address=a.lower(), venue=v, kind="v3" if a == market.v3_factory else "v2")
                 for a, v in market.factory_venues.items())
    base = dict(factories=facs, chain_id=market.chain_id, watchdog_s=5.0, backoff_initial_s=0.05,
                backoff_max_s=0.5, request_timeout_s=5.0)
    base.update(kw)
    if isinstance(endpoints, str):
        endpoints = (endpoints,)
    return EvmDataClientConfig(endpoints=tuple(endpoints), **base)


def chain_log_keys(w3: Web3, lo: int, hi: int, addresses=None) -> list[tuple[int, int, bytes]]:
    """(block, log_index, pool) of every log of our 7 topics in [lo, hi], as the node has them."""
    flt = {"fromBlock": lo, "toBlock": hi, "topics": [abi.ALL_TOPIC0_HEX]}
    logs = w3.eth.get_logs(flt)
    out = [(lg["blockNumber"], lg["logIndex"], bytes(lg["address"] if isinstance(lg["address"], bytes)
                                                     else bytes.fromhex(lg["address"][2:])))
           for lg in logs]
    if addresses is not None:
        out = [k for k in out if k[2] in addresses]
    return sorted(out)


def pool_events(records):
    return [r for r in records if isinstance(r, POOL_EVENTS)]


def net_event_keys(records) -> list[tuple[int, int, bytes]]:
    """Keys of pool events published and not undone by a later removed copy, in publish order."""
    live: dict[tuple[int, int], object] = {}
    for r in pool_events(records):
        k = (r.block_number, r.log_index)
        if r.flags & EVENT_REMOVED:
            assert k in live, f"removed event {k} that was never published"
            undone = live.pop(k)
            assert codec.encode_value(undone) == codec.encode_value(
                type(r)(**{**{f: getattr(r, f) for f in r.__dataclass_fields__}, "flags": r.flags & ~EVENT_REMOVED})), \
                "removed copy differs from the published event"
        else:
            assert k not in live, f"duplicate event {k}"
            live[k] = r
    return sorted((b, i, r.pool) for (b, i), r in live.items())


def addr(s: str) -> bytes:
    return bytes.fromhex(s[2:])


def kinds(records) -> Counter:
    return Counter(type(r).__name__ for r in records)


def adapter_process(config, ring_name: str, stop_event) -> None:
    """Spawned-process target: the adapter publishing into an existing ring (as the pipeline runs it)."""
    from alphapulse.adapters.evm.data import ring_sink, run_adapter
    from alphapulse.ring import Ring
    ring = Ring.attach(ring_name, timeout=10.0)
    prod = ring.producer()
    try:
        run_adapter(config, ring_sink(prod), stop_event)
    finally:
        prod.close()
        ring.close()


def check_block_ends(frames, chain_id: int) -> list:
    """The BlockEnd contract over a published stream; returns its BlockEnd records in order.

    Each BlockEnd is a frame of its own; every pool event (not undone) between two BlockEnds
    belongs to the block the second one ends, and its ``event_count`` is their number; no
    event follows the last BlockEnd.
    """
    since = []
    ends = []
    for f in frames:
        tlvs = codec.parse_frame(f).tlvs
        for r in tlvs:
            if isinstance(r, codec.BlockEnd):
                assert len(tlvs) == 1, "a BlockEnd shares its frame"
                assert [e.block_number for e in since] == [r.block_number] * len(since), \
                    f"events of other blocks before the BlockEnd of {r.block_number}"
                assert r.event_count == len(since) and r.chain_id == chain_id
                ends.append(r)
                since = []
            elif isinstance(r, POOL_EVENTS) and not r.flags & EVENT_REMOVED:
                since.append(r)
    assert not since, f"{len(since)} events after the last BlockEnd"
    return ends
