"""Wrap-around with every frame size, batches across the end, oversized frames."""
from __future__ import annotations

import numpy as np
import pytest

from alphapulse.protocol import codec
from alphapulse.protocol.layout import MAX_FRAME, MAX_PAYLOAD
from alphapulse.ring import FrameTooLarge, Ring

CAP = 4096


def raw_frame(size: int, seq: int) -> bytes:
    """A frame of exactly ``size`` bytes (header + payload of size-32 arbitrary bytes)."""
    rng = np.random.default_rng(seq)
    payload = rng.integers(0, 256, size - 32, dtype=np.uint8).tobytes()
    hdr = codec._HEADER.pack(0xDEADBEEF, 1, 1, 4, 0, seq, seq, size - 32, 0)
    return hdr + payload


def drain(c) -> list[bytes]:
    out = []
    views = c.poll(0.0)
    for v in views:
        out.append(v.tobytes())
    c.release()
    return out


def split(blob: bytes) -> list[bytes]:
    out, off = [], 0
    while off < len(blob):
        n = 32 + int.from_bytes(blob[off + 24:off + 28], "little")
        out.append(blob[off:off + n])
        off += n
    assert off == len(blob)
    return out


@pytest.mark.parametrize("policy", ["lossless", "overwrite"])
def test_every_frame_size_up_to_the_capacity_wraps_byte_identical(ring_name, policy):
    with Ring.create(ring_name("wrap"), CAP, policy) as ring:
        p = ring.producer(publish_timeout=1.0)
        c = ring.consumer("w", copy=False)
        sent, got = [], []
        seq = 0
        # ascending then descending sizes, consuming after every frame (so a
        # lossless ring never blocks): every size lands at many offsets
        for size in list(range(32, CAP + 1)) + list(range(CAP, 31, -7)):
            seq += 1
            f = raw_frame(size, seq)
            p.publish(f)
            sent.append(f)
            for blob in drain(c):
                got.extend(split(blob))
        assert got == sent
        assert c.lost_frames == 0
        st = ring.stats()["producer"]
        assert st["position"] // CAP > 1000      # it really wrapped, a lot
        assert st["frames"] == len(sent)


def test_two_views_across_the_end_hold_the_frames_in_order(ring_name):
    with Ring.create(ring_name("views"), CAP, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("v")
        frames = [raw_frame(1000, i) for i in range(1, 4)]
        for f in frames:
            p.publish(f)
        assert b"".join(v.tobytes() for v in c.poll()) == b"".join(frames)
        c.release()
        more = [raw_frame(700, i) for i in range(4, 7)]
        for f in more:
            p.publish(f)        # 3000 + 700 fits; the next 700 pads 396 bytes and wraps
        views = c.poll()
        assert len(views) == 2
        assert views[0].tobytes() == more[0]
        assert views[1].tobytes() == more[1] + more[2]
        assert views[1].ctypes.data == ring._data.ctypes.data   # the second view starts the area
        c.release()
        assert c.poll() == []


def test_batch_publish_and_claim_commit_across_the_end(ring_name):
    with Ring.create(ring_name("batch"), CAP, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("b")
        rng = np.random.default_rng(7)
        sent = []
        for i in range(400):
            sizes = rng.integers(32, 600, rng.integers(1, 12))
            frames = [raw_frame(int(s), 1000 * i + j) for j, s in enumerate(sizes)]
            blob = b"".join(frames)
            if len(blob) > CAP // 2:    # a lossless batch split at the end needs the
                continue                # consumer (same thread here) to be done with it
            if i % 2:
                p.publish_batch(np.frombuffer(blob, np.uint8), len(blob))
            else:
                view = p.claim(len(blob) + 64)
                view[:len(blob)] = np.frombuffer(blob, np.uint8)
                assert p.commit(len(blob)) == len(frames)
            sent.extend(frames)
            got = [g for b in drain(c) for g in split(b)]
            assert got == frames
        assert ring.stats()["producer"]["frames"] == len(sent)


def test_batch_larger_than_the_ring_is_split_and_delivered_in_order(ring_name):
    with Ring.create(ring_name("big"), CAP, "overwrite") as ring:
        p = ring.producer()
        c = ring.consumer("late", copy=True)
        frames = [raw_frame(300, i) for i in range(1, 60)]      # 17.7 KB through 4 KB
        blob = b"".join(frames)
        assert p.publish_batch(np.frombuffer(blob, np.uint8)) == len(frames)
        got = [g for b in drain(c) for g in split(b)]
        # the consumer was lapped: it reports exactly what it missed and gets the rest
        assert c.lost_frames + len(got) == len(frames)
        assert got == frames[c.lost_frames:]
        assert c.lost_bytes == 300 * c.lost_frames


def test_oversized_frame_is_rejected_clearly_and_nothing_is_published(ring_name):
    with Ring.create(ring_name("over"), CAP, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("o")
        with pytest.raises(FrameTooLarge, match=r"4097 bytes exceeds the maximum 4096 \(capacity 4096"):
            p.publish(raw_frame(CAP + 1, 1))
        with pytest.raises(FrameTooLarge, match="frame of 4104 bytes, larger than the maximum 4096"):
            p.publish_batch(np.frombuffer(raw_frame(32, 1) + raw_frame(CAP + 8, 2), np.uint8))
        with pytest.raises(FrameTooLarge, match="claim of 4104 bytes"):
            p.claim(CAP + 8)
        assert c.poll() == []
        p.publish(raw_frame(CAP, 3))          # exactly the capacity fits
        assert drain(c) == [raw_frame(CAP, 3)]


def test_protocol_limit_applies_on_big_rings(ring_name):
    with Ring.create(ring_name("huge"), 1 << 20, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("h")
        p.publish(raw_frame(MAX_FRAME, 1))
        assert drain(c) == [raw_frame(MAX_FRAME, 1)]
        bad = bytearray(raw_frame(MAX_FRAME, 2)) + b"\0"
        with pytest.raises(FrameTooLarge, match=f"exceeds the maximum {MAX_FRAME}"):
            p.publish(bytes(bad))
        bad[24:28] = (MAX_PAYLOAD + 1).to_bytes(4, "little")
        with pytest.raises(ValueError, match="payload_size exceeds"):
            p.publish_batch(np.frombuffer(bytes(bad[:MAX_FRAME]), np.uint8))


def test_malformed_batches_are_rejected_before_anything_is_published(ring_name):
    with Ring.create(ring_name("malformed"), CAP, "lossless") as ring:
        p = ring.producer()
        c = ring.consumer("m")
        good = raw_frame(100, 1)
        with pytest.raises(ValueError, match="magic"):
            p.publish(b"\0" * 64)
        with pytest.raises(ValueError, match="do not add up"):
            p.publish_batch(np.frombuffer(good + good[:50], np.uint8))
        with pytest.raises(ValueError, match="do not add up"):
            p.publish(good + b"\0")
        with pytest.raises(ValueError, match="without an open claim"):
            p.commit(10)
        p.claim(200)
        with pytest.raises(ValueError, match="more bytes than claimed"):
            p.commit(300)
        assert c.poll() == []
        assert ring.stats()["producer"]["frames"] == 0


def test_publish_takes_every_kind_of_frame_buffer(ring_name):
    """bytes, a read-only and a writable array, a strided view: each kind gets its own bound
    kernel and every frame arrives byte-identical, in order."""
    with Ring.create(ring_name("kinds"), CAP, "lossless") as ring:
        p, c = ring.producer(), ring.consumer("c")
        frames = [raw_frame(40 + 8 * i, i + 1) for i in range(8)]
        for i, f in enumerate(frames):
            k = i % 4
            if k == 0:
                p.publish(f)
            elif k == 1:
                p.publish(np.frombuffer(f, np.uint8))                 # read-only
            elif k == 2:
                p.publish(np.frombuffer(f, np.uint8).copy())          # writable
            else:
                wide = np.zeros(2 * len(f), np.uint8)
                wide[::2] = np.frombuffer(f, np.uint8)
                p.publish(wide[::2])                                  # strided
        assert b"".join(drain(c)) == b"".join(frames)      # (a view holds consecutive frames)
        assert len(p._k_publish) == 3  # noqa: SLF001 - read-only, writable contiguous, strided
