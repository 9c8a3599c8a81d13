"""The backtest's money path: every frame's checksum verified, each rejected frame counted once,
the chain id taken from the recording, intra-block signals never counted as profit."""
from __future__ import annotations

import io
import json

import numpy as np

from alphapulse.apps.backtest import run_backtest
from alphapulse.apps.config import load_config
from alphapulse.journal import FILE_HEADER_SIZE, JournalWriter
from alphapulse.protocol import codec as C

from tests.strategy.feed import Feed, addr

USDC, WETH = addr(0xA0), addr(0xB0)
P1, P2 = addr(0x1001), addr(0x1002)
E18 = 10**18
CHAIN = 80002                  # the recording's chain (not Polygon PoS)
N_BLOCKS = 6
CORRUPT = 9                    # index of the frame whose payload is damaged (no multiple of 100)


def block_end(f: Feed) -> C.BlockEnd:
    return C.BlockEnd(block_number=f.block, block_ts_ns=0, event_count=0, chain_id=CHAIN, block_hash=bytes(32))


def write_recording(path, damaged: bool) -> int:
    """Two pools; each block moves P1 away and back (intra-block gaps only), then a last block
    leaves a gap open. ``damaged``: a payload byte of one frame is flipped, so that, applied, it
    would leave P1 away at the end of its block. Returns the frames written."""
    f = Feed()
    frames = [f.frame(f.v2_state(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18),
                      f.v2_state(P2, WETH, USDC, 1000 * E18, 2_000_000 * E18, venue=302), f.gas(chain_id=CHAIN)),
              f.frame(block_end(f))]
    for _ in range(N_BLOCKS):
        f.block += 1
        frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_200_000 * E18)))
        frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_000_000 * E18)))
        frames.append(f.frame(block_end(f)))
    # one real opportunity at the last block's end
    f.block += 1
    frames.append(f.frame(f.v2_sync(P1, WETH, USDC, 1000 * E18, 2_100_000 * E18)))
    raw = [bytearray(fr.tobytes()) for fr in frames]
    # CORRUPT is the second sync of a block: a flipped reserve byte would leave the gap open
    assert C.parse_frame(bytes(raw[CORRUPT])).tlvs[0].reserve1 == 2_000_000 * E18
    if damaged:
        raw[CORRUPT][32 + 2 + 20] ^= 0x40            # reserve1, its checksum left as it was
    with JournalWriter(path) as w:
        for r in raw:
            w.append(np.frombuffer(bytes(r), np.uint8))
    return len(raw)


def backtest(tmp_path, damaged=False, **over):
    rec = tmp_path / "rec.apj"
    n = write_recording(rec, damaged)
    cfg = load_config(environ={}, overrides={"source": {"kind": "replay", "replay_file": str(rec), "speed": "max"},
                                             **over})
    report = tmp_path / "report.json"
    out = io.StringIO()
    assert run_backtest(cfg, report=str(report), out=out) == 0
    return n, json.loads(report.read_text()), out.getvalue()


def test_every_frame_is_verified_and_each_rejected_frame_counted_once(tmp_path):
    n, doc, text = backtest(tmp_path, damaged=True)
    assert doc["rejected"] == 1
    assert doc["frames"] + doc["rejected"] == n
    assert "(1 rejected)" in text
    # the damaged frame was not applied: no signal from the state it would have left (the
    # sequence gap it leaves makes every pool stale until a snapshot: none after it either)
    assert doc["signals"] == []
    assert doc["summary"]["engine"]["seq_gaps"] == 1


def test_the_end_of_the_recording_ends_its_last_block(tmp_path):
    n, doc, _ = backtest(tmp_path)
    assert doc["rejected"] == 0 and doc["frames"] == n
    assert len(doc["signals"]) == 1 and doc["signals"][0]["block_number"] == 100 + N_BLOCKS + 1
    assert doc["summary"]["last_block"] == 100 + N_BLOCKS + 1


def test_signals_carry_the_recording_s_chain_id(tmp_path):
    _, doc, _ = backtest(tmp_path)
    assert doc["summary"]["engine"]["chain_mismatch"] == 0
    assert [s["chain_id"] for s in doc["signals"]] == [CHAIN]


def test_a_configured_chain_id_that_disagrees_is_counted(tmp_path, caplog):
    _, doc, _ = backtest(tmp_path, chain={"chain_id": 137})
    assert doc["summary"]["engine"]["chain_mismatch"] == 1
    assert [s["chain_id"] for s in doc["signals"]] == [CHAIN]
    assert "chain id other than the configured 137" in caplog.text


def test_intra_block_signals_are_not_counted_as_profit(tmp_path):
    _, doc, _ = backtest(tmp_path, strategy={"evaluate": "frame", "republish_min_blocks": 0})
    intra = [s for s in doc["signals"] if s["flags"] & 0x02]
    assert len(intra) >= N_BLOCKS and doc["summary"]["signals_intra_block"] == len(intra)
    counted = [s for s in doc["signals"] if not s["flags"] & 0x03]
    assert doc["summary"]["signals_net_profit_usd_e8"] == sum(s["net_profit_usd_e8"] for s in counted)
