"""Recorder and replayer: journal format, rotation, crash tails, corruption, pace, determinism;
and a live session recorded from a ring and replayed into a fresh ring."""
import os
import threading

import pytest

from alphapulse.adapters.recorder import Recorder, journal_files, record_ring
from alphapulse.journal import FILE_HEADER_SIZE as JOURNAL_HEADER_SIZE
from alphapulse.adapters.replayer import Replayer, parse_speed
from alphapulse.protocol import codec
from alphapulse.protocol.layout import FLAG_REPLAYED, MAX_FRAME


def _frames(n, ts0=1_700_000_000_000_000_000, step_ns=1_000_000, checksum=True):
    out = []
    for i in range(n):
        rec = codec.PoolSync(reserve0=10**18 + i, reserve1=(1 << 111) + i, block_number=100 + i // 3,
                             log_index=i % 3, venue=400, token0_decimals=18, token1_decimals=6,
                             pool=bytes([i % 256]) * 20, token0=b"\x01" * 20, token1=b"\x02" * 20)
        recs = [rec] * (1 + i % 4)
        out.append(codec.build_frame(1, 4, i + 1, recs, timestamp_ns=ts0 + i * step_ns, checksum=checksum))
    return out


def _unmark(frame: bytes) -> bytes:
    """A replayed frame with the replay flag cleared and its checksum recomputed as recorded."""
    b = bytearray(frame)
    assert b[7] & FLAG_REPLAYED
    b[7] &= ~FLAG_REPLAYED
    if any(b[28:32]):
        b[28:32] = codec.frame_checksum(b).to_bytes(4, "little")
    return bytes(b)


def _replay(path, **kw):
    got = []
    rp = Replayer(path, got.extend, speed="max", **kw)
    rp.run()
    return got, rp


def test_record_rotate_replay_byte_identical_and_deterministic(tmp_path):
    frames = _frames(3000) + _frames(50, checksum=False)
    with Recorder(tmp_path, "md", rotate_bytes=MAX_FRAME + JOURNAL_HEADER_SIZE + 50_000) as rec:
        rec.write_frames(frames[:1000])
        rec.write_buffer(b"".join(frames[1000:]))
    files = journal_files(tmp_path, "md")
    assert files == rec.files and len(files) >= 5
    for f in files:
        raw = f.read_bytes()
        assert raw[:8] == b"APJRNL01" and raw[8:16] == (1).to_bytes(4, "little") + bytes(4)
        assert len(raw) <= rec.rotate_bytes
        assert list(codec.iter_frames(raw[16:]))   # whole frames only in every file
    got, rp = _replay(tmp_path)
    assert len(got) == len(frames) and rp.counters["files"] == len(files)
    for g, f in zip(got, frames):
        fr = codec.parse_frame(g)                  # valid, checksum recomputed
        assert fr.replayed and _unmark(g) == f
    assert got == _replay(tmp_path)[0]             # the same journal gives the same bytes
    # a second recorder in the same directory continues the numbering, never overwrites
    with Recorder(tmp_path, "md") as rec2:
        rec2.write_frames(frames[:1])
    assert rec2.files[0].name.endswith(f"{len(files) + 1:06d}.apj")


def test_crash_tail_and_corruption_are_counted_and_skipped(tmp_path):
    frames = _frames(200)
    with Recorder(tmp_path, "md") as rec:
        rec.write_frames(frames)
    path = rec.files[0]
    raw = bytearray(path.read_bytes())
    # a crash in the middle of the last frame
    path.write_bytes(raw[:-7])
    got, rp = _replay(path)
    assert [_unmark(g) for g in got] == frames[:-1]
    assert rp.counters["truncated_tail_bytes"] == len(frames[-1]) - 7
    # garbage over frame 10's header and a flipped payload byte in frame 20 (checksum)
    raw = bytearray(path.read_bytes())
    off10 = JOURNAL_HEADER_SIZE + sum(len(f) for f in frames[:10])
    raw[off10:off10 + 4] = b"\x00\x11\x22\x33"
    off20 = JOURNAL_HEADER_SIZE + sum(len(f) for f in frames[:20])
    raw[off20 + 40] ^= 0xFF
    path.write_bytes(raw)
    got, rp = _replay(path)
    want = [f for i, f in enumerate(frames[:-1]) if i not in (10, 20)]
    assert [_unmark(g) for g in got] == want
    assert rp.counters["rejected_BAD_MAGIC"] == 1 and rp.counters["rejected_BAD_CHECKSUM"] == 1
    assert rp.counters["rejected"] == 2
    assert rp.counters["resync_skipped_bytes"] == len(frames[10])


def test_not_a_journal_is_refused_with_a_count(tmp_path):
    p = tmp_path / "x.apj"
    p.write_bytes(b"NOTAJRNL" + bytes(8) + _frames(1)[0])
    got, rp = _replay(p)
    assert got == [] and rp.counters["bad_journal_header"] == 1


class FakeClock:
    def __init__(self):
        self.t = 100.0
        self.slept = 0.0

    def clock(self):
        return self.t

    def sleep(self, s):
        self.slept += s
        self.t += s


@pytest.mark.parametrize("speed,expect_s", [("recorded", 2.0), (4, 0.5), ("max", 0.0)])
def test_pace_follows_recorded_timestamps(tmp_path, speed, expect_s):
    frames = _frames(21, step_ns=100_000_000)            # 2.0 s of recording
    with Recorder(tmp_path, "md") as rec:
        rec.write_frames(frames)
    clk = FakeClock()
    seen = []
    rp = Replayer(tmp_path, lambda fs: seen.extend((clk.t, f) for f in fs), speed=speed,
                  clock=clk.clock, sleep=clk.sleep)
    assert rp.run() == 21
    assert clk.slept == pytest.approx(expect_s, abs=1e-4)
    if speed != "max":
        mult = parse_speed(speed)
        for i, (t, _) in enumerate(seen):              # each frame at its recorded offset
            assert t - 100.0 == pytest.approx(i * 0.1 / mult, abs=1e-4)
    if speed == "recorded":   # a stop ends a paced replay between frames, not at the end
        stop = threading.Event()
        rp.rewind()
        rp.sleep = lambda s: (clk.sleep(s), stop.set())
        assert rp.run(stop) == 1


def test_speed_is_validated():
    for bad in ("fast", 0, -2):
        with pytest.raises(ValueError):
            parse_speed(bad)


def test_live_session_recorded_from_ring_replays_identically_into_a_fresh_ring(anvil, market, adapter_run,
                                                                                tmp_path):
    from alphapulse.adapters.evm.data import ring_sink
    from alphapulse.ring import Ring
    from .chain_helpers import adapter_config
    tag = f"{os.getpid()}_{id(tmp_path) % 10000}"
    live = Ring.create(f"t_live_{tag}", capacity=1 << 22, policy="lossless")
    stop_rec = threading.Event()
    result = {}
    rec_thread = threading.Thread(target=lambda: result.update(
        record_ring(live.name, tmp_path, stop_rec, rotate_bytes=1 << 17, poll_timeout_s=0.02)))
    rec_thread.start()
    # the recorder has registered as a consumer before anything is published
    import time
    deadline = time.monotonic() + 10
    while live.stats()["consumers"] == [] and time.monotonic() < deadline:
        time.sleep(0.01)
    prod = live.producer()
    run = adapter_run(adapter_config(market, anvil.ws_url))
    run.client.publisher.sink = ring_sink(prod)          # frames go to the ring ...
    sent = []
    orig = run.client.publisher.sink
    run.client.publisher.sink = lambda fs: (sent.extend(fs), orig(fs))   # ... and we keep a copy
    run.wait_connected()
    m = market
    for p in m.pools[:6]:
        m.swap(p, p.token0, 10 ** m.decimals[p.token0] // 10)
    run.wait_head(anvil.block_number())
    run.stop()
    deadline = time.monotonic() + 10
    while result == {} and live.stats()["consumers"] and time.monotonic() < deadline:
        if all(c["lag_frames"] == 0 for c in live.stats()["consumers"]):
            break
        time.sleep(0.01)
    stop_rec.set()
    rec_thread.join(10)
    assert result["frames"] == len(sent) > 20 and result["lost_frames"] == 0
    fresh = Ring.create(f"t_replay_{tag}", capacity=1 << 22, policy="lossless")
    cons = fresh.consumer("check")
    n = Replayer(tmp_path, producer=fresh.producer(), speed="max").run()
    replayed = list(cons.frames(timeout=0.5))
    assert n == len(replayed) == len(sent)
    assert [_unmark(f) for f in replayed] == sent
    assert all(codec.parse_frame(f).replayed for f in replayed)
    cons.close()
    fresh.close()
    prod.close()
    live.close()


def test_checksum_fix_matches_a_full_crc_for_every_payload_size(tmp_path):
    """The replayer's incremental checksum (per-size delta) equals zlib's over the new bytes,
    including frames recorded with the replay flag already set and restamped replays."""
    frames = []
    for i in range(300):      # payload sizes from a handful of bytes to ~6 KB, some already flagged
        recs = [codec.RawTlv(200, bytes([i % 251]) * (i * 7 % 250))] * (1 + i % 25)
        frames.append(codec.build_frame(1, 4, i + 1, recs, timestamp_ns=i, flags=FLAG_REPLAYED if i % 7 == 0 else 0))
    with Recorder(tmp_path, "md") as rec:
        rec.write_frames(frames)
    for restamp in (False, True):
        got = []
        Replayer(tmp_path, got.extend, speed="max", restamp=restamp).run()
        assert len(got) == len(frames)
        for g, f in zip(got, frames):
            assert int.from_bytes(g[28:32], "little") == codec.frame_checksum(g)
            assert g[7] == f[7] | FLAG_REPLAYED
            if not restamp:
                assert g[:7] + g[8:28] + g[32:] == f[:7] + f[8:28] + f[32:]


def test_restamped_replay_stamps_each_frame_as_it_is_written(tmp_path):
    """``restamp=True``: every frame carries the time it was copied out (the TSC clock read per
    frame), not one stamp for its whole batch: within the run, in order, and not all equal."""
    import time
    frames = _frames(3000)
    with Recorder(tmp_path, "md") as rec:
        rec.write_frames(frames)
    before = time.time_ns()
    got, rp = _replay(tmp_path, restamp=True)
    after = time.time_ns()
    assert len(got) == len(frames) and rp.counters["frames"] == len(frames)
    ts = [int.from_bytes(g[16:24], "little") for g in got]
    assert before <= ts[0] and ts[-1] <= after
    assert all(a <= b for a, b in zip(ts, ts[1:]))
    assert len(set(ts)) > len(ts) // 2          # one batch of 3,000 frames, stamped one by one


def test_full_speed_replay_into_a_ring_publishes_whole_batches(tmp_path):
    """At ``speed="max"`` the replayer fills its batch buffer before each publish (one ring
    publication, one consumer wake-up, per ``batch_bytes``), never a frame at a time; counted."""
    from alphapulse.ring import Ring
    frames = _frames(3000)
    with Recorder(tmp_path, "md") as rec:
        rec.write_frames(frames)
    total = sum(len(f) for f in frames)
    batch = 1 << 18
    ring = Ring.create(f"t_rpb{os.getpid()}", capacity=1 << 23, policy="lossless")
    prod = ring.producer()
    cons = ring.consumer("check", wait="sleep")
    try:
        rp = Replayer(tmp_path, producer=prod, speed="max", batch_bytes=batch)
        assert rp.run() == 3000
        assert rp.counters["bytes"] == total and ring.stats()["frames"] == 3000
        # each publish but a file's last holds at least batch - MAX_FRAME bytes
        files = len(journal_files(tmp_path, "md"))
        assert -(-total // batch) <= rp.counters["publishes"] <= total // (batch - MAX_FRAME) + files
        got = b"".join(bytes(v) for v in cons.poll(timeout=0.0))
        assert len(got) == total
    finally:
        cons.close()
        prod.close()
        ring.close()
        ring.unlink()
