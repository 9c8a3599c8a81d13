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


# ---------------------------------------------------------------- a gap costs only what it could touch
Q1, Q2 = addr(0x2001), addr(0x2002)       # the second source's pools (another pair)
DAI = addr(0xC0)
GAP_BLOCKS = 40


def write_two_source_recording(path, drop: int | None) -> tuple[int, bytes]:
    """Two sources, as with one adapter per venue: source A feeds a V3 pool (snapshot at the start
    only) and a V2 pool of its pair, whose price leaves and rejoins the V3 price block after block
    (a signal every other block); source B feeds two V2 pools of another pair. ``drop``: the index
    among B's frames of the one left out of the file. Returns (frames written, B's first pool)."""
    from alphapulse.protocol import layout as L
    from tests.strategy.test_engine import _v3_setup
    a, b = Feed(), Feed(source=int(L.Source.IMPORTER))
    v3_frames, _ = _v3_setup(a)                         # P3 = addr(0x1003) in the engine tests
    frames = [a.frame(a.v2_state(P1, WETH, USDC, 10**24, 10**24), *v3_frames, a.gas(chain_id=CHAIN)),
              b.frame(b.v2_state(Q1, WETH, DAI, 10**24, 10**24), b.v2_state(Q2, WETH, DAI, 10**24, 10**24,
                                                                             venue=302))]
    b_frames = []
    for k in range(GAP_BLOCKS):
        a.block += 1
        b.block = a.block
        frames.append(a.frame(a.v2_sync(P1, WETH, USDC, 10**24, (103 if k % 2 == 0 else 100) * 10**22)))
        fb = b.frame(b.v2_sync(Q1, WETH, DAI, 10**24, (10**24 + k * 10**18)))
        b_frames.append(fb)
        if drop is None or len(b_frames) - 1 != drop:
            frames.append(fb)
        frames.append(a.frame(block_end(a)))
    with JournalWriter(path) as w:
        for fr in frames:
            w.append(fr)
    return len(frames), Q1


def gap_backtest(tmp_path, drop):
    rec = tmp_path / f"rec-{drop}.apj"
    write_two_source_recording(rec, drop)
    cfg = load_config(environ={}, overrides={"source": {"kind": "replay", "replay_file": str(rec), "speed": "max"}})
    report = tmp_path / f"report-{drop}.json"
    out = io.StringIO()
    assert run_backtest(cfg, report=str(report), out=out) == 0
    return json.loads(report.read_text()), out.getvalue()


def test_a_lost_frame_marks_stale_only_the_pools_its_source_feeds(tmp_path):
    intact, _ = gap_backtest(tmp_path, None)
    n = len(intact["signals"])
    assert n >= GAP_BLOCKS // 2 - 1 and intact["summary"]["stale_pools"] == 0
    damaged, text = gap_backtest(tmp_path, GAP_BLOCKS // 4)        # B loses one frame early on
    s = damaged["summary"]
    assert s["engine"]["seq_gaps"] == 1
    # source A's pools kept trading: the V3 pool, with no snapshot after the start, was never touched
    assert len(damaged["signals"]) >= n - 1, (len(damaged["signals"]), n)
    # B's pools turned stale (2), Q1 healed at its next PoolSync, Q2 (never synced again) stays
    assert s["engine"]["gap_stale_pools"] == 2
    assert s["stale_pools"] == 1 and s["stale_pool_addresses"] == ["0x" + Q2.hex()]
    assert "0x" + Q2.hex() in text and "1 pools stale at the end" in text and "2 turned stale by" in text
