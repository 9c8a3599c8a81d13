"""Garbage in a ring: consumers reject it with counted reasons and never crash."""
from __future__ import annotations

from collections import Counter

import numpy as np

from alphapulse.jit import STOP_FULL, alloc_frame_index, find_magic, new_crc_state
from alphapulse.protocol import codec
from alphapulse.protocol.layout import Reject
from alphapulse.ring import Ring
from tests.ring import framegen as G


def good(seq: int) -> bytes:
    buf = np.empty(1 << 12, np.uint8)
    n = G.write_frame(buf, 0, seq, 0, 0)
    return buf[:n].tobytes()


def corrupt(seq: int, how: str) -> bytes:
    f = bytearray(good(seq))
    if how == "version":
        f[5] = 9
    elif how == "domain":
        f[4] = 77
    elif how == "checksum":
        f[-1] ^= 0xFF                  # payload byte flipped; checksum now wrong
    elif how == "tlv_overrun":
        f[32 + 1] = 255                # TLV length past the payload
        f[28:32] = b"\0\0\0\0"          # no checksum, so the TLV check decides
    elif how == "tlv_size":
        f = bytearray(codec.build_frame(1, 4, seq, [codec.RawTlv(18, b"\1" * 12)]))  # GasPrice is 40
    return bytes(f)


def validate_with_kernel(views, rejects: Counter) -> list[int]:
    """A consumer's integrity check: alphapulse.jit.validate_frames + find_magic resync."""
    seqs = []
    idx, crc = alloc_frame_index(4096), new_crc_state()
    for v in views:
        start, end = 0, v.shape[0]
        while start < end:
            n, consumed, stop, reason = G.validate_frames(v, start, end, 1, crc, idx)
            for i in range(n):
                if idx.status[i]:
                    rejects[Reject(int(idx.status[i]))] += 1
                else:
                    seqs.append(int(idx.sequence[i]))
            if stop == STOP_FULL:
                start = consumed
                continue
            if consumed >= end:
                break
            rejects[Reject(reason)] += 1          # corrupt or truncated header: resync
            nxt = find_magic(v, consumed + 1, end)
            if nxt < 0:
                break
            start = nxt
    return seqs


HOWS = ["version", "domain", "checksum", "tlv_overrun", "tlv_size"]
REASON = {"version": Reject.BAD_VERSION, "domain": Reject.BAD_DOMAIN,
          "checksum": Reject.BAD_CHECKSUM, "tlv_overrun": Reject.TLV_OVERRUN,
          "tlv_size": Reject.BAD_TLV_SIZE}


def test_malformed_frames_published_are_rejected_with_counted_reasons(ring_name):
    with Ring.create(ring_name("garbage"), 1 << 14, "lossless") as ring:
        p = ring.producer()
        kc = ring.consumer("kernel")
        pc = ring.consumer("python")
        expected, good_seqs = Counter(), []
        seq = 0
        for rnd in range(20):
            for how in HOWS:
                seq += 1
                p.publish(corrupt(seq, how))
                expected[REASON[how]] += 1
                seq += 1
                p.publish(good(seq))
                good_seqs.append(seq)
            rejects = Counter()
            got = validate_with_kernel(kc.poll(), rejects)
            kc.release()
            assert got == good_seqs[-len(HOWS):]
            assert rejects == Counter({REASON[h]: 1 for h in HOWS})
            frames = list(pc.frames(0.0, verify=True))
            assert [codec.parse_header(f).sequence for f in frames] == good_seqs[-len(HOWS):]
        assert pc.rejects == expected


def test_random_bytes_scribbled_over_the_data_area_never_crash_a_consumer(ring_name):
    rng = np.random.default_rng(11)
    with Ring.create(ring_name("scribble"), 1 << 14, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("kernel")
        pc = ring.consumer("python")
        total_rejects, total_good, total_good_py = Counter(), 0, 0
        for rnd in range(200):
            for s in range(1, 21):
                p.publish(good(rnd * 100 + s))
            # a rogue writer hits published, unread bytes (attaching the segment
            # like any process could): random bytes at random places
            pos = ring.stats()["producer"]["position"]
            data = Ring.attach(ring.name)
            for _ in range(int(rng.integers(1, 4))):
                at = int(rng.integers(0, ring.capacity - 16))
                data._data[at:at + int(rng.integers(1, 16))] = rng.integers(0, 256, 15, dtype=np.uint8)[:1]
            data.close()
            rejects = Counter()
            got = validate_with_kernel(c.poll(), rejects)
            c.release()
            total_rejects += rejects
            total_good += len(got)
            assert all(rnd * 100 < s <= rnd * 100 + 20 for s in got)     # nothing invented
            total_good_py += len(list(pc.frames(0.0, verify=True)))
            assert pos == ring.stats()["producer"]["position"]
        assert sum(total_rejects.values()) > 50      # the garbage was seen and counted ...
        assert total_good > 2000                     # ... and valid frames kept flowing
        assert sum(pc.rejects.values()) > 50 and total_good_py > 2000
        assert set(total_rejects) <= set(Reject)


def test_corrupted_lap_end_in_the_header_is_a_clear_error_on_a_lossless_ring(ring_name):
    from alphapulse.ring import RingError
    from alphapulse.ring.layout import W_LAP_END
    import pytest
    with Ring.create(ring_name("hdr"), 1 << 12, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("c")
        for s in range(1, 12):
            p.publish(good(s))
        c.poll()
        c.release()
        for s in range(12, 30):
            p.publish(good(s))
            if ring.stats()["producer"]["position"] > ring.capacity:
                break
        ring._h[W_LAP_END + 0] = 5            # garbage: before the consumer's cursor
        with pytest.raises(RingError, match="header inconsistent"):
            c.poll()
