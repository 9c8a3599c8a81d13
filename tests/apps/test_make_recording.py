"""make_recording on a real anvil node: each block of the journal reads GasPrice, its pool
frames, then its BlockEnd; the BlockEnds count the chain's events; the replayer passes them on."""
from alphapulse.adapters.replayer import Replayer
from alphapulse.apps.make_recording import record
from alphapulse.journal import JournalReader
from alphapulse.protocol import codec

POOL_EVENTS = (codec.PoolSwap, codec.PoolSync, codec.PoolMint, codec.PoolBurn)


def test_recording_carries_a_block_end_after_each_block_and_replays_it(tmp_path):
    journal, _, n = record(blocks=6, seed=3, out_dir=tmp_path, txs_per_block=4)
    frames = [b.frame_bytes(i) for b in JournalReader(journal).batches() for i in range(b.n)]
    assert len(frames) == n
    blocks = []          # per block: the record types in order
    for f in frames:
        tlvs = codec.parse_frame(f).tlvs          # checksum verified
        kinds = {type(t) for t in tlvs}
        if codec.BlockEnd in kinds:
            assert len(tlvs) == 1
        if codec.GasPrice in kinds or not blocks:
            blocks.append([])
        blocks[-1].extend(tlvs)
    ends = [b for b in blocks if any(isinstance(r, codec.BlockEnd) for r in b)]
    assert len(ends) >= 6
    for b in ends:
        gas, end = b[0], b[-1]
        assert isinstance(gas, codec.GasPrice) and isinstance(end, codec.BlockEnd)
        events = [r for r in b if isinstance(r, POOL_EVENTS)]
        assert {r.block_number for r in events} <= {end.block_number} == {gas.block_number}
        assert end.event_count == len(events) > 0 and end.chain_id == 137
        assert not any(isinstance(r, codec.BlockEnd) for r in b[:-1])
    out = []
    Replayer(journal, sink=out.extend, speed="max").run()
    assert len(out) == n and all(codec.parse_frame(f).replayed for f in out)
    replayed = [t for f in out for t in codec.parse_frame(f).tlvs if isinstance(t, codec.BlockEnd)]
    assert replayed == [r for b in ends for r in b if isinstance(r, codec.BlockEnd)]
