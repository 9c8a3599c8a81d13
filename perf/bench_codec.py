"""Protocol V2 codec kernels vs the same work in pure Python (single core).

Figures (frames/s unless noted), all measured in one run on one core:

* ``validate_fps``           validate_frames, no checksum verified
* ``validate_crc_fps``       validate_frames, checksum verified on every frame
* ``validate_decode_fps``    validate (checksum sampled every 100th frame, the
                             market-data default of PROTOCOL.md) + TLV index +
                             decode of every TLV into columns, on a realistic
                             mix (55 % PoolSync, 30 % PoolSwap, then PoolState,
                             GasPrice, PoolMint, PoolBurn, PoolTick)
                             The batch loop runs in one kernel call (as in a
                             consumer kernel); ``validate_decode_pycalls_fps``
                             drives the same batches from Python, nine kernel
                             calls per batch, dispatch cost included
* ``python_baseline_fps``    the same validate + decode with ``struct`` in pure
                             Python (precompiled Struct per layout, u128 as
                             two uint64 limbs like the kernels, zlib.crc32 on the
                             same sampled frames)
* ``crc_gbps`` / ``zlib_gbps``  CRC-32 over one 64 MiB buffer (16 MiB quick),
                             GB/s = 1e9 bytes/s; ``crc_frame_gbps`` over
                             154-byte frames one call each (from a kernel loop)
* ``encode_fps`` / ``encode_crc_fps``  encode_frames of PoolSync rows
* ``python_encode_fps``      ``codec.build_frame`` of the same rows
* ``clock_read_ns``          one ``time.time_ns()`` from Python, against
                             ``encode_ns_per_frame``: what a clock read per frame
                             would add to the encoder (it reads one per batch);
                             ``clock_read_per_encode_x`` = their quotient (an
                             informative figure, not a speed-up: it does not gate)
* ``fast_timestamp_ns``      one ``jit.clock.fast_ns`` (TSC clock) read in compiled
                             code, against ``clock_gettime_ns`` (``wall_ns``, the
                             vDSO call): the fastest of many chunks of 1,000 reads; ``fast_timestamp_tsc`` = 1
                             when the TSC is used (invariant TSC), 0 = clock_gettime
                             ``rdtsc_ns``: the bare ``rdtsc`` instruction timed the
                             same way (the floor of any TSC read on this CPU)
* ``fast_timestamp_drift_ns``  largest |fast_ns - CLOCK_REALTIME| over
                             ``fast_timestamp_drift_window_s`` (60 s; 5 s with
                             ``--quick``) of reads 1 ms apart, each between two
                             clock_gettime reads (pairs pre-empted in between, more
                             than 2 us apart, are not judged); the clock re-anchors
                             itself every 50 ms meanwhile (``fast_timestamp_reanchors``)
* ``encode_stamp_ns_per_frame``  encode_frames_now (each frame stamped by the TSC
                             clock as it is written, no checksum) per frame;
                             ``encode_stamp_cost_ns`` = what the per-frame stamp adds
                             to ``encode_frames`` with one stamp per batch (same run)

Ratios: ``validate_decode_speedup``, ``validate_crc_speedup``,
``encode_speedup``, ``crc_vs_zlib_ratio``. Frames flow in batches of 4,096
(about 600 KiB, what a ring consumer takes per wake-up), each batch validated
and decoded into the same preallocated columns. Each figure is the best of
several repeats (noise on a shared machine only adds time); the two sides of
each ratio are timed alternately so that they see the same load.

Usage: python perf/bench_codec.py [--quick] [--json]. Every figure is printed
as one JSON object per line; the last line is one JSON object with all of
them. ``--quick`` finishes in under a minute once the Numba cache is warm.
Compare two runs with ``python -m perf.compare OLD.json NEW.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from alphapulse import jit as J  # noqa: E402
from alphapulse.jit.clock import CAL_REANCHORS, TscClock, fast_ns, rdtsc, wall_ns  # noqa: E402
from alphapulse.protocol import codec as C  # noqa: E402
from alphapulse.protocol import layout as L  # noqa: E402

BATCH = 4096
DRIFT_WINDOW_S = 60.0         # the TSC clock's drift against CLOCK_REALTIME: over a minute
DRIFT_WINDOW_QUICK_S = 5.0    # --quick
MIX = ((L.POOL_SYNC, 0.55), (L.POOL_SWAP, 0.30), (L.POOL_STATE, 0.05), (L.GAS_PRICE, 0.04),
       (L.POOL_MINT, 0.025), (L.POOL_BURN, 0.025), (L.POOL_TICK, 0.01))
CRC_SAMPLE = 100


def emit(out: dict, key: str, value, unit: str = "") -> None:
    out[key] = value
    print(json.dumps({"figure": key, "value": value, "unit": unit}), flush=True)


def best_time(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def best_times(fns, repeats: int) -> list[float]:
    """Best time of each function, run alternately so that the two sides of a
    ratio see the same machine load (the test machine is shared)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


# ------------------------------------------------------------------ data
def random_columns(lay: L.TlvLayout, n: int, rng: np.random.Generator):
    cols = J.alloc_columns(lay, n)
    for f, a in zip(lay.data_fields, cols):
        info = np.iinfo(a.dtype)
        a[...] = rng.integers(info.min, info.max, a.shape, dtype=a.dtype, endpoint=True)
    return cols


def build_stream(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n`` checksummed frames of the MIX, shuffled; returns (bytes, frame offsets)."""
    counts = [int(round(n * share)) for _, share in MIX]
    counts[0] += n - sum(counts)
    parts, lens = [], []
    for (lay, _), k in zip(MIX, counts):
        cols = random_columns(lay, k, rng)
        fsz = int(J.frame_size_of(cols))
        buf = np.zeros(fsz * k, np.uint8)
        off, wrote = J.encode_frames(buf, 0, cols, 0, k, 1, time.time_ns(), 4, 0, True)
        assert wrote == k and off == len(buf)
        parts.append(buf)
        lens.append(np.full(k, fsz, np.int64))
    data = np.concatenate(parts)
    length = np.concatenate(lens)
    start = np.concatenate(([0], np.cumsum(length)[:-1]))
    order = rng.permutation(n)
    s, ln = start[order], length[order]
    new_start = np.concatenate(([0], np.cumsum(ln)[:-1]))
    gather = np.repeat(s - new_start, ln) + np.arange(int(ln.sum()))
    return data[gather], new_start


# ------------------------------------------------------------------ kernel work
class KernelPipeline:
    """validate -> index -> decode, batch by batch, into reused columns."""

    def __init__(self) -> None:
        self.fidx = J.alloc_frame_index(BATCH)
        self.tidx = J.alloc_tlv_index(BATCH * 2)
        self.state = J.new_crc_state()
        self.cols = [J.alloc_columns(lay, BATCH) for lay, _ in MIX]
        self.row_frame = np.zeros(BATCH, np.int64)
        self.rows = 0

    def validate(self, buf: np.ndarray, crc_every: int) -> int:
        pos, total, end = 0, 0, len(buf)
        while pos < end:
            n, pos, stop, _ = J.validate_frames(buf, pos, end, crc_every, self.state, self.fidx)
            total += n
            if stop not in (J.STOP_FULL, J.STOP_END):
                raise RuntimeError(f"stream invalid: stop {stop}")
        return total

    def validate_decode_kernel(self, buf: np.ndarray, crc_every: int) -> int:
        frames, self.rows = _validate_decode_stream(buf, crc_every, self.state, self.fidx,
                                                    self.tidx, *self.cols, self.row_frame)
        return frames

    def validate_decode(self, buf: np.ndarray, crc_every: int) -> int:
        pos, total, rows, end = 0, 0, 0, len(buf)
        fidx, tidx, rf = self.fidx, self.tidx, self.row_frame
        while pos < end:
            n, pos, stop, _ = J.validate_frames(buf, pos, end, crc_every, self.state, fidx)
            k, _ = J.index_tlvs(buf, fidx, 0, n, tidx)
            for cols in self.cols:
                r, _ = J.decode_tlvs(buf, tidx, 0, k, cols, rf)
                rows += r
            total += n
        self.rows = rows
        return total


@njit(cache=True)
def _validate_decode_stream(buf, crc_every, state, fidx, tidx, c0, c1, c2, c3, c4, c5, c6,
                            row_frame):
    """What a consumer kernel does per wake-up, for every batch of the stream:
    validate a batch, index its TLVs, decode each type into its columns."""
    pos, end, frames, rows = 0, buf.shape[0], 0, 0
    while pos < end:
        n, pos, stop, _ = J.validate_frames(buf, pos, end, crc_every, state, fidx)
        if n == 0:
            break
        k, _ = J.index_tlvs(buf, fidx, 0, n, tidx)
        rows += J.decode_tlvs(buf, tidx, 0, k, c0, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c1, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c2, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c3, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c4, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c5, row_frame)[0]
        rows += J.decode_tlvs(buf, tidx, 0, k, c6, row_frame)[0]
        frames += n
    return frames, rows


# ------------------------------------------------------------------ Python baseline
_PY_KIND = {"u8": "B", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "u64": "Q",
            "i64": "q", "u128": "QQ", "i128": "QQ", "u256": "QQQQ", "address": "20s",
            "pad": "x"}


def layout_struct(lay: L.TlvLayout) -> struct.Struct:
    """struct format of a layout, wide ints as uint64 limbs like the kernels' columns."""
    return struct.Struct("<" + "".join(_PY_KIND[f.kind] * f.count for f in lay.fields))


def python_validate_decode(data: bytes, crc_every: int, columns: dict) -> int:
    hdr = struct.Struct(L.HEADER_STRUCT)
    unpack_hdr = hdr.unpack_from
    dec = {lay.type_id: layout_struct(lay).unpack_from for lay, _ in MIX}
    fixed = [int(x) for x in L.FIXED_SIZE]
    crc32 = zlib.crc32
    magic, version, max_payload = L.MAGIC, L.VERSION, L.MAX_PAYLOAD
    n = len(data)
    pos = frames = sampled = 0
    for v in columns.values():
        v.clear()
    while pos < n:
        if n - pos < 32:
            raise RuntimeError("truncated")
        m, dom, ver, _src, _fl, _seq, _ts, psize, ck = unpack_hdr(data, pos)
        if m != magic or ver != version or not 1 <= dom <= 4 or psize > max_payload:
            raise RuntimeError("corrupt header")
        end = pos + 32 + psize
        if end > n:
            raise RuntimeError("truncated payload")
        p = pos + 32
        values = []
        while p < end:
            t = data[p]
            if t == 255:
                t = data[p + 2]
                ln = data[p + 3] | (data[p + 4] << 8)
                p += 5
            else:
                ln = data[p + 1]
                p += 2
            if p + ln > end:
                raise RuntimeError("TLV overrun")
            fs = fixed[t]
            if fs and ln != fs:
                raise RuntimeError("bad TLV size")
            d = dec.get(t)
            if d is not None:
                values.append((t, d(data, p)))
            p += ln
        if ck and crc_every:
            if sampled % crc_every == 0 and crc32(data[pos + 32:end],
                                                   crc32(data[pos:pos + 28])) != ck:
                raise RuntimeError("bad checksum")
            sampled += 1
        for t, v in values:
            columns[t].append(v)
        frames += 1
        pos = end
    return frames


# ------------------------------------------------------------------ CRC per frame
@njit(cache=True)
def _crc_frames(buf, offsets, size):
    acc = 0
    for i in range(offsets.shape[0]):
        acc ^= J.crc32(buf, offsets[i], offsets[i] + size)
    return acc


@njit(cache=True)
def _per_read_ns(cal, chunks, per_chunk, tsc):
    """Fastest chunk of ``per_chunk`` reads (fast_ns when ``tsc``, else clock_gettime) in ns per
    read: on a shared machine a pre-empted chunk only adds time, so the minimum is the cost."""
    best = np.int64(1) << 62
    acc = 0
    for _ in range(chunks):
        t0 = wall_ns()
        if tsc:
            for _ in range(per_chunk):
                acc += fast_ns(cal)
        else:
            for _ in range(per_chunk):
                acc += wall_ns()
        t = wall_ns() - t0
        if t < best:
            best = t
    return best / per_chunk, acc


@njit(cache=True)
def _rdtsc_ns(chunks, per_chunk):
    """As :func:`_per_read_ns` for the bare ``rdtsc`` instruction: the floor of any TSC read."""
    best = np.int64(1) << 62
    acc = np.uint64(0)
    for _ in range(chunks):
        t0 = wall_ns()
        for _ in range(per_chunk):
            acc += rdtsc()
        t = wall_ns() - t0
        if t < best:
            best = t
    return best / per_chunk, acc


@njit(cache=True)
def _drift(cal, seconds, gap_ns):
    """(largest |fast_ns - CLOCK_REALTIME|, pairs judged) over ``seconds``, one pair per gap_ns."""
    end = wall_ns() + np.int64(seconds * 1e9)
    worst = 0
    judged = 0
    nxt = wall_ns()
    while True:
        a = wall_ns()
        if a >= end:
            break
        if a < nxt:
            continue
        nxt = a + gap_ns
        f = fast_ns(cal)
        b = wall_ns()
        if b - a > 2_000:
            continue
        judged += 1
        d = abs(f - (a + (b - a) // 2))
        if d > worst:
            worst = d
    return worst, judged


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true", help="last line: one JSON object")
    ap.add_argument("--quick", action="store_true", help="smaller counts (< 1 minute)")
    a = ap.parse_args(argv)
    q = a.quick
    n_frames = 200_000 if q else 1_000_000
    n_python = 40_000 if q else 200_000
    repeats = 3 if q else 7
    crc_bytes = (16 if q else 64) << 20
    rng = np.random.default_rng(12345)
    out: dict = {"bench": "codec", "machine": platform.machine(), "cpus": os.cpu_count(),
                 "python": platform.python_version(), "quick": q,
                 "loadavg_start": round(os.getloadavg()[0], 2), "frames": n_frames,
                 "python_frames": n_python, "batch": BATCH, "crc_sample_every": CRC_SAMPLE}

    stream, offsets = build_stream(n_frames, rng)
    pipe = KernelPipeline()
    # warm-up: compile or load every specialisation outside the timings
    warm = stream[:int(offsets[BATCH * 2])]
    assert pipe.validate(warm, 1) == BATCH * 2
    pipe.validate_decode(warm, CRC_SAMPLE)
    assert pipe.validate_decode_kernel(warm, CRC_SAMPLE) == BATCH * 2
    emit(out, "stream_mb", round(len(stream) / 1e6, 1), "MB")
    emit(out, "mean_frame_bytes", round(len(stream) / n_frames, 1), "B")

    py_end = int(offsets[n_python])
    py_bytes = stream[:py_end].tobytes()
    py_cols = {lay.type_id: [] for lay, _ in MIX}
    t = best_time(lambda: pipe.validate(stream, 0), repeats)
    emit(out, "validate_fps", n_frames / t, "frames/s")
    # kernel and pure-Python sides of each ratio alternate (see best_times)
    py_reps = max(2, repeats // 2)
    t, tp = best_times([lambda: pipe.validate(stream, 1),
                        lambda: python_validate_decode(py_bytes, 1, py_cols)], py_reps)
    emit(out, "validate_crc_fps", n_frames / t, "frames/s")
    emit(out, "validate_crc_gbps", len(stream) / t / 1e9, "GB/s")
    emit(out, "python_validate_crc_fps", n_python / tp, "frames/s")
    t, tp = best_times([lambda: pipe.validate_decode_kernel(stream, CRC_SAMPLE),
                        lambda: python_validate_decode(py_bytes, CRC_SAMPLE, py_cols)], py_reps)
    assert pipe.rows == n_frames, (pipe.rows, n_frames)
    assert sum(len(v) for v in py_cols.values()) == n_python
    emit(out, "validate_decode_fps", n_frames / t, "frames/s")
    emit(out, "validate_decode_ns_per_frame", t / n_frames * 1e9, "ns")
    # pure Python on a prefix of the same stream (whole frames)
    emit(out, "python_baseline_fps", n_python / tp, "frames/s")
    t = best_time(lambda: pipe.validate_decode(stream, CRC_SAMPLE), repeats)
    assert pipe.rows == n_frames, (pipe.rows, n_frames)
    emit(out, "validate_decode_pycalls_fps", n_frames / t, "frames/s")
    # the kernels decoded the same values the Python baseline did
    sync_rows = J.alloc_columns(L.POOL_SYNC, n_python)
    fidx = J.alloc_frame_index(n_python)
    tidx = J.alloc_tlv_index(n_python)
    sub = stream[:py_end]
    nv = J.validate_frames(sub, 0, len(sub), 1, J.new_crc_state(), fidx)[0]
    k, _ = J.index_tlvs(sub, fidx, 0, nv, tidx)
    r, _ = J.decode_tlvs(sub, tidx, 0, k, sync_rows, np.zeros(n_python, np.int64))
    first = py_cols[L.POOL_SYNC.type_id][0]
    assert r == len(py_cols[L.POOL_SYNC.type_id])
    assert int(sync_rows.reserve0[0, 0]) == first[0] and int(sync_rows.reserve0[0, 1]) == first[1]
    assert bytes(sync_rows.token1[r - 1]) == py_cols[L.POOL_SYNC.type_id][-1][-1]

    # CRC
    blob = rng.integers(0, 256, crc_bytes, dtype=np.uint8)
    raw = blob.tobytes()
    assert J.crc32(blob, 0, len(blob)) == zlib.crc32(raw)
    t, tz = best_times([lambda: J.crc32(blob, 0, len(blob)), lambda: zlib.crc32(raw)], repeats)
    emit(out, "crc_gbps", len(blob) / t / 1e9, "GB/s")
    emit(out, "zlib_gbps", len(blob) / tz / 1e9, "GB/s")
    fsz = 154
    foffs = np.arange(0, len(blob) - fsz, fsz, dtype=np.int64)
    _crc_frames(blob, foffs[:10], fsz)
    t = best_time(lambda: _crc_frames(blob, foffs, fsz), repeats)
    emit(out, "crc_frame_gbps", len(foffs) * fsz / t / 1e9, "GB/s")

    # encode
    n_enc = 100_000 if q else 500_000
    sync = random_columns(L.POOL_SYNC, n_enc, rng)
    enc_buf = np.zeros(int(J.frame_size_of(sync)) * n_enc, np.uint8)
    J.encode_frames(enc_buf, 0, sync, 0, 10, 1, 1, 4, 0, True)
    clk = TscClock()
    J.encode_frames_now(enc_buf, 0, sync, 0, 10, 1, clk.cal, 4, 0, True)

    def enc(with_crc):
        # batches of BATCH rows, one clock read per batch
        off = 0
        for r0 in range(0, n_enc, BATCH):
            off, _ = J.encode_frames(enc_buf, off, sync, r0, BATCH, r0 + 1, time.time_ns(), 4, 0,
                                     with_crc)
        return off

    def enc_now():
        # each frame stamped by the TSC clock as it is written (what the producers do)
        off = 0
        for r0 in range(0, n_enc, BATCH):
            off, _ = J.encode_frames_now(enc_buf, off, sync, r0, BATCH, r0 + 1, clk.cal, 4, 0, False)
        return off
    assert enc(True) == len(enc_buf)
    n_py_enc = 5_000 if q else 20_000
    recs = [J.row_to_record(sync, i) for i in range(n_py_enc)]
    t, tp = best_times([lambda: enc(False),
                        lambda: [C.build_frame(1, 4, i + 1, [r], timestamp_ns=1)
                                 for i, r in enumerate(recs)]], max(2, repeats // 2))
    emit(out, "encode_fps", n_enc / t, "frames/s")
    emit(out, "encode_ns_per_frame", t / n_enc * 1e9, "ns")
    t, ts = best_times([lambda: enc(False), enc_now], repeats)
    emit(out, "encode_stamp_ns_per_frame", ts / n_enc * 1e9, "ns")
    emit(out, "encode_stamp_cost_ns", (ts - t) / n_enc * 1e9, "ns")
    emit(out, "python_encode_fps", n_py_enc / tp, "frames/s")
    t = best_time(lambda: enc(True), repeats)
    emit(out, "encode_crc_fps", n_enc / t, "frames/s")
    assert C.parse_frame(enc_buf[:int(J.frame_size_of(sync))].tobytes()).tlvs[0] == recs[0]
    tn = time.time_ns
    t = best_time(lambda: [tn() for _ in range(200_000)], repeats)
    emit(out, "clock_read_ns", t / 200_000 * 1e9, "ns")
    emit(out, "clock_read_per_encode_x",
         out["clock_read_ns"] / out["encode_ns_per_frame"], "x")

    # the kernels' clocks
    chunks = 2_000 if q else 10_000
    _per_read_ns(clk.cal, 2, 10, True)
    _per_read_ns(clk.cal, 2, 10, False)
    _rdtsc_ns(2, 10)
    emit(out, "fast_timestamp_tsc", int(clk.uses_tsc))
    emit(out, "fast_timestamp_ns", _per_read_ns(clk.cal, chunks, 1_000, True)[0], "ns")
    emit(out, "rdtsc_ns", _rdtsc_ns(chunks, 1_000)[0], "ns")
    emit(out, "clock_gettime_ns", _per_read_ns(clk.cal, chunks, 1_000, False)[0], "ns")
    window = DRIFT_WINDOW_QUICK_S if q else DRIFT_WINDOW_S
    _drift(clk.cal, 0.01, 1_000_000)
    r0 = int(clk.cal[CAL_REANCHORS])
    worst, judged = _drift(clk.cal, window, 1_000_000)
    emit(out, "fast_timestamp_drift_ns", int(worst), "ns")
    emit(out, "fast_timestamp_drift_window_s", window, "s")
    emit(out, "fast_timestamp_drift_pairs", int(judged))
    emit(out, "fast_timestamp_reanchors", int(clk.cal[CAL_REANCHORS]) - r0)

    emit(out, "validate_decode_speedup", out["validate_decode_fps"] / out["python_baseline_fps"], "x")
    emit(out, "validate_crc_speedup", out["validate_crc_fps"] / out["python_validate_crc_fps"], "x")
    emit(out, "encode_speedup", out["encode_fps"] / out["python_encode_fps"], "x")
    emit(out, "crc_vs_zlib_ratio", out["crc_gbps"] / out["zlib_gbps"], "x")
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    out["targets"] = {
        "validate_decode_fps > 20M": out["validate_decode_fps"] > 20e6,
        "validate_decode >= 30x python": out["validate_decode_speedup"] >= 30,
        "crc_gbps > 1": out["crc_gbps"] > 1.0,
        "fast_timestamp_ns <= 5": out["fast_timestamp_ns"] <= 5.0,
        "fast_timestamp_drift_ns < 1000": out["fast_timestamp_drift_ns"] < 1000,
    }
    if not a.json:
        print(json.dumps({"targets": out["targets"]}))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
