"""The waiting-pools table: the strategy publishes the pools waiting for data, the supervisor names
them in its status line and ``/metrics`` (bounded, never a torn table)."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
import time
import uuid

import pytest

from alphapulse.apps.waiting import (CAPACITY, WaitingBlock, WaitingPool, prometheus_lines, status_text,
                                     waiting_pools)
from alphapulse.protocol import layout as L
from tests.apps.pipeline_helpers import PipelineProcess
from tests.strategy.feed import Feed, addr

WMATIC = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")   # the default configuration's tokens
USDC = bytes.fromhex("e7f1725e7734ce288f8367e1bb143e90bb3f0512")
SYMBOLS = {WMATIC: "WMATIC", USDC: "USDC"}
NO_TICKS = int(L.RefreshReason.NO_TICK_DATA)


@pytest.fixture
def block():
    blk = WaitingBlock.create(f"alphapulse_test_wait_{uuid.uuid4().hex[:8]}")
    yield blk
    blk.close()


def test_a_table_written_by_one_process_is_read_by_another(block):
    writer = WaitingBlock.attach(block.name)
    try:
        assert block.read().total == 0 and block.read().pools == ()
        pools = [WaitingPool(addr(0x1000 + i), WMATIC, USDC, NO_TICKS) for i in range(3)]
        g = writer.write(3, pools)
        assert g % 2 == 0 and g == block.generation
        t = block.read()
        assert t.total == 3 and t.pools == tuple(pools)
        assert t.pools[0].reason_name == "no_tick_data"
    finally:
        writer.close()


def test_the_table_is_bounded_and_keeps_the_total(block):
    pools = [WaitingPool(addr(0x2000 + i), WMATIC, USDC, int(L.RefreshReason.UNKNOWN_TICK)) for i in range(40)]
    block.write(40, pools)
    t = block.read()
    assert t.total == 40 and len(t.pools) == CAPACITY and t.pools == tuple(pools[:CAPACITY])
    text = status_text(t, 40, SYMBOLS)
    h = addr(0x2000).hex()
    assert text.startswith(f"waiting 40: 0x{h[:4]}…{h[-4:]} WMATIC/USDC, ")
    assert text.endswith(" +37 more") and text.count("WMATIC/USDC") == 3
    lines = prometheus_lines(t)
    assert lines[0].startswith("# HELP alphapulse_pool_waiting ") and lines[1] == "# TYPE alphapulse_pool_waiting gauge"
    assert len(lines) == 2 + CAPACITY
    assert lines[2] == f'alphapulse_pool_waiting{{pool="0x{h}",reason="unknown_tick"}} 1'
    # a shorter set next: the old entries are not shown any more
    block.write(1, pools[5:6])
    t = block.read()
    assert t.total == 1 and t.pools == (pools[5],)
    assert status_text(t, 1, {}) == f"waiting 1: 0x{addr(0x2005).hex()[:4]}…{addr(0x2005).hex()[-4:]}"


def test_nothing_waiting_renders_no_family(block):
    assert prometheus_lines(block.read()) == []
    assert status_text(block.read(), 0, SYMBOLS) == "waiting 0"
    assert status_text(None, 2, SYMBOLS) == "waiting 2"      # unreadable table: the count alone


def test_a_read_during_a_write_is_retried_never_kept(block):
    block.write(2, [WaitingPool(addr(1), WMATIC, USDC, NO_TICKS)] * 2)
    g = block.generation
    block._gen[0] = g + 1                  # a writer in the middle of its write (odd generation)
    assert block.try_read() is None
    assert block.read(attempts=3) is None and block.torn_reads == 3
    block._gen[0] = g + 2                  # the write completes
    assert block.read().total == 2


def test_readers_never_see_a_torn_table(block):
    """A writer rewriting the table as fast as it can; every table a reader keeps is one the writer
    wrote whole (entry i of write k carries k in its address, and there are k % 17 entries)."""
    writer = WaitingBlock.attach(block.name)
    reader = WaitingBlock.attach(block.name)
    stop = threading.Event()

    def write() -> None:
        k = 0
        while not stop.is_set():
            k += 1
            n = k % 17
            writer.write(k, [WaitingPool(k.to_bytes(20, "big"), addr(i), addr(i + 1), 1 + i % 4) for i in range(n)])
            time.sleep(0)                      # let the reader in between writes too, not only in them
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)            # interleave the two threads as finely as CPython allows
    t = threading.Thread(target=write, daemon=True)
    t.start()
    try:
        kept = torn = 0
        deadline = time.monotonic() + 60
        while kept < 10000 and time.monotonic() < deadline:
            tab = reader.try_read()
            if tab is None:
                torn += 1                      # a write under way: never kept
                continue
            if tab.total == 0:
                continue
            kept += 1
            k = tab.total
            assert len(tab.pools) == min(k % 17, CAPACITY)
            for i, p in enumerate(tab.pools):
                assert p.pool == k.to_bytes(20, "big") and p.token0 == addr(i) and p.reason == 1 + i % 4
        assert kept >= 10000, (kept, torn)
    finally:
        stop.set()
        t.join(10)
        sys.setswitchinterval(old)
        writer.close()
        reader.close()


def test_an_engine_publishes_its_waiting_pools_by_address():
    from tests.strategy.test_engine import engine
    e, f = engine(max_v3_pools=32), Feed()
    # addresses that differ in each of the words the engine holds them in, more than the table takes
    pools = [bytes([b0]) + bytes(10) + bytes([b11]) + bytes(7) + bytes([b19])
             for b0 in (9, 1, 5) for b11 in (3, 0) for b19 in (7, 2, 4)]
    for i in range(0, len(pools), 6):
        e.process([f.frame(*[f.v3_state(p, WMATIC, USDC, 1 << 96, 10**20, 0) for p in pools[i:i + 6]])])
    e.refresh_requests(now_ns=0)
    total, entries = waiting_pools(e)
    assert total == len(pools) == 18
    assert [p.pool for p in entries] == sorted(pools)[:CAPACITY]
    assert all(p.token0 == WMATIC and p.token1 == USDC and p.reason == NO_TICKS for p in entries)


# ------------------------------------------------------------------ end to end
def write_recording(path) -> None:
    """Two V2 pools and a V3 pool without tick data on WMATIC/USDC, a block every 0.1 s."""
    import numpy as np
    from alphapulse.journal import JournalWriter
    from alphapulse.protocol import codec as C
    f = Feed()
    E18 = 10**18
    ts = 1_700_000_000 * 10**9
    frames = []
    for b in range(10):
        recs = [f.v2_state(addr(0x1001), WMATIC, USDC, 1000 * E18, 500 * 10**6, d1=6),
                f.v2_state(addr(0x1002), WMATIC, USDC, 1000 * E18, 500 * 10**6, venue=int(L.Venue.SUSHISWAP), d1=6),
                f.v3_state(V3_POOL, WMATIC, USDC, 1 << 96, 10**20, 0, d1=6), f.gas()]
        frames.append(f.frame(*recs, ts=ts + b * 10**8))
        frames.append(f.frame(C.BlockEnd(block_number=f.block, block_ts_ns=ts + b * 10**8, event_count=len(recs),
                                         chain_id=137, block_hash=bytes(32)), ts=ts + b * 10**8))
        f.block += 1
    with JournalWriter(path) as w:
        for fr in frames:
            w.append(np.frombuffer(fr.tobytes(), np.uint8))


V3_POOL = bytes.fromhex("abcd" + "00" * 16 + "1234")


def test_a_pipeline_names_its_waiting_pool_in_the_status_line_and_metrics(tmp_path):
    rec = tmp_path / "rec.apj"
    write_recording(rec)
    cfg = tmp_path / "tokens.toml"             # the supervisor labels pairs from these
    cfg.write_text("".join(f'[[chain.tokens]]\naddress = "0x{a.hex()}"\nsymbol = "{s}"\ndecimals = {d}\n\n'
                           for a, s, d in ((WMATIC, "WMATIC", 18), (USDC, "USDC", 6))))
    p = PipelineProcess("--config", str(cfg), "--replay", str(rec), "--speed", "1", "--loop", dashboard=False)
    try:
        line = f'alphapulse_pool_waiting{{pool="0x{V3_POOL.hex()}",reason="no_tick_data"}} 1'

        def scrape() -> str | None:
            try:
                t = p.get("/metrics")[1]
            except OSError:
                return None                    # not listening yet
            return t if line in t else None
        text = p.wait_for(scrape, 180, "the waiting pool in /metrics")
        assert text.count("# TYPE alphapulse_pool_waiting gauge") == 1
        assert 'alphapulse_pools_waiting{component="strategy"} 1' in text
        promtool = shutil.which("promtool")
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stdout + r.stderr + text
        p.wait_for(lambda: re.search(r"status: .*pools 3 \(waiting 1: 0xabcd…1234 WMATIC/USDC\)", p.output()),
                   60, "the waiting pool named in the status line")
        segs = p.segments()
        assert any(s.endswith("_waiting") for s in segs), segs
    finally:
        code = p.stop()
    assert code == 0, p.output()[-3000:]
    assert p.segments() == []


def test_a_table_left_half_written_is_counted_and_logged_by_the_supervisor(caplog):
    """A strategy stopped in the middle of a write leaves an odd generation: the supervisor's
    status line and /metrics go on without the names, and say why."""
    import logging
    from alphapulse.apps.config import Config
    from alphapulse.apps.pipeline import Pipeline
    pl = Pipeline(Config())
    pl.waiting = WaitingBlock.create(f"alphapulse_test_wait_{uuid.uuid4().hex[:8]}")
    try:
        pl.waiting.write(1, [WaitingPool(addr(1), WMATIC, USDC, NO_TICKS)])
        assert pl._waiting_table().total == 1
        pl.waiting._gen[0] += 1                        # odd: a write that never completed
        with caplog.at_level(logging.WARNING, logger="alphapulse.pipeline"):
            assert pl._waiting_table() is None
        assert "unreadable" in caplog.text and pl.waiting.torn_reads == 1000
        assert prometheus_lines(pl._waiting_table()) == []
    finally:
        pl.waiting.close()
