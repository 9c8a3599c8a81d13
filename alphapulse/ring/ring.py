"""Ring, Producer and Consumer: the public API of the relays.

See the package docstring (:mod:`alphapulse.ring`) for a tour; the protocol
is in :mod:`alphapulse.ring.sequencer` (producer), :mod:`alphapulse.ring.barrier`
(consumer), memory ordering in :mod:`alphapulse.ring.atomics`, the header in
:mod:`alphapulse.ring.layout` and the life cycle in :mod:`alphapulse.ring.registry`.
"""
from __future__ import annotations

import logging
import os
import struct
import time
from collections import Counter
from typing import Iterator

import numpy as np

from alphapulse.jit.entry import compiled_entry
from alphapulse.protocol import codec
from alphapulse.protocol import layout as P
from alphapulse.protocol.layout import Reject
from alphapulse.ring import barrier as B
from alphapulse.ring import layout as RL
from alphapulse.ring import futex, registry
from alphapulse.ring import sequencer as S
from alphapulse.ring.atomics import py_cas, py_fetch_add, py_load, py_store
from alphapulse.ring.layout import Eviction, Policy
from alphapulse.ring.segment import Segment, shm_exists
from alphapulse.ring.wait import (
    FUTEX_SLICE_S, SHORT_SPIN, SPIN_BURST, YIELDS, Backoff, Wait, pid_alive,
)

log = logging.getLogger(__name__)

DEFAULT_PUBLISH_TIMEOUT_S = 15.0     # > the consumer timeout: a stalled consumer is dropped first
DEFAULT_CONSUMER_TIMEOUT_S = 10.0
DEFAULT_PRODUCER_STALE_S = 2.0


class RingError(RuntimeError):
    """Base class of ring errors."""


class NotARingError(RingError, ValueError):
    """The segment exists but is not a ring of this layout."""


class RingFullTimeout(RingError, TimeoutError):
    """A lossless publish waited longer than its timeout for the slowest consumer."""


class ConsumerEvicted(RingError):
    """This consumer was dropped by the producer (dead pid or stale heartbeat)."""


class FrameTooLarge(RingError, ValueError):
    """A frame (or contiguous claim) larger than the ring or than Protocol V2 allows."""


_now = time.monotonic_ns          # CLOCK_MONOTONIC: one clock for every process of the host
_U8 = np.dtype(np.uint8)
_publish_one = S.publish_one


def _as_u8(frame) -> np.ndarray:
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8 or frame.ndim != 1:
            frame = frame.reshape(-1).view(np.uint8)
        return frame
    return np.frombuffer(frame, dtype=np.uint8)


def _name_words(name: str) -> list[int]:
    raw = name.encode("utf-8")[:RL.NAME_BYTES].ljust(RL.NAME_BYTES, b"\0")
    return list(struct.unpack("<4Q", raw))


def _words_name(words) -> str:
    return struct.pack("<4Q", *(int(w) for w in words)).rstrip(b"\0").decode("utf-8", "replace")


class Ring:
    """A single-producer, multi-consumer broadcast ring of Protocol V2 frames in shared memory."""

    def __init__(self, seg: Segment, name: str) -> None:
        self._seg = seg
        self.name = name
        self.segment = seg.name
        self.owner = seg.owner
        h = np.frombuffer(seg.buf, dtype=np.uint64, count=RL.BLOCK_WORDS * 5)
        hb = int(h[RL.W_HEADER_BYTES])
        self._h = np.frombuffer(seg.buf, dtype=np.uint64, count=hb // RL.WORD)
        self.capacity = int(self._h[RL.W_CAPACITY])
        self._data = np.frombuffer(seg.buf, dtype=np.uint8, count=self.capacity, offset=hb)
        self.policy = Policy(int(self._h[RL.W_POLICY]))
        self.max_consumers = int(self._h[RL.W_MAX_CONSUMERS])
        self.consumer_timeout_ns = int(self._h[RL.W_CONSUMER_TIMEOUT_NS])
        self.max_frame = min(self.capacity, RL.MAX_FRAME)
        self._closed = False
        self._children: list = []

    # ------------------------------------------------------------ life cycle
    @classmethod
    def create(cls, name: str, capacity: int, policy: str | Policy = "lossless",
               max_consumers: int = 16,
               consumer_timeout_s: float = DEFAULT_CONSUMER_TIMEOUT_S) -> "Ring":
        """Create ring ``name`` (segment ``alphapulse_ring_<name>``); this process owns it.

        ``capacity``: bytes of frame storage, a multiple of 8, >= 64. ``policy``:
        ``"lossless"`` or ``"overwrite"``. The owner unlinks on ``close()``, at
        exit, or through its watchdog if it dies (see ``registry``).
        """
        if isinstance(policy, str):
            try:
                policy = Policy[policy.upper()]
            except KeyError:
                raise ValueError(f"policy must be 'lossless' or 'overwrite', not {policy!r}") from None
        if not (isinstance(capacity, (int, np.integer)) and capacity >= 64 and capacity % 8 == 0):
            raise ValueError(f"capacity must be an int >= 64 and a multiple of 8, got {capacity!r}")
        if capacity > 1 << 40:
            raise ValueError(f"capacity {capacity} exceeds 1 TiB")
        if not 1 <= max_consumers <= RL.MAX_CONSUMERS_LIMIT:
            raise ValueError(f"max_consumers must be 1..{RL.MAX_CONSUMERS_LIMIT}")
        seg_name = RL.segment_name(name)
        if shm_exists(seg_name):
            cls._remove_stale(seg_name)
        hb = RL.header_bytes(max_consumers)
        if seg_name in registry.owned():
            raise FileExistsError(f"ring {name!r} was already created by this process "
                                  f"(segment /dev/shm/{seg_name})")
        registry.announce(seg_name)        # before creating: a crash in between is covered
        try:
            seg = Segment.create(seg_name, hb + int(capacity))
        except FileExistsError:
            registry.forget(seg_name)      # someone else's segment: never ours to unlink
            raise FileExistsError(
                f"ring {name!r} already exists (segment /dev/shm/{seg_name}) and its creator "
                f"is alive (or it is not a ring); attach to it with Ring.attach({name!r}) "
                f"or choose another name") from None
        except BaseException:
            registry.forget(seg_name)
            raise
        h = np.frombuffer(seg.buf, dtype=np.uint64, count=hb // RL.WORD)
        h[RL.W_LAYOUT] = RL.LAYOUT_VERSION
        h[RL.W_HEADER_BYTES] = hb
        h[RL.W_CAPACITY] = capacity
        h[RL.W_POLICY] = int(policy)
        h[RL.W_MAX_CONSUMERS] = max_consumers
        h[RL.W_CREATOR_PID] = os.getpid()
        h[RL.W_CREATED_NS] = time.time_ns()
        h[RL.W_CONSUMER_TIMEOUT_NS] = int(consumer_timeout_s * 1e9)
        h[RL.W_MAGIC] = RL.MAGIC
        py_store(h, RL.W_READY, 1)
        del h
        return cls(seg, RL.ring_name(seg_name))

    @staticmethod
    def _remove_stale(seg_name: str) -> None:
        try:
            seg = Segment.attach(seg_name)
        except (FileNotFoundError, ValueError):
            return
        try:
            h = np.frombuffer(seg.buf, dtype=np.uint64, count=RL.BLOCK_WORDS)
            creator = int(h[RL.W_CREATOR_PID]) if int(h[RL.W_MAGIC]) == RL.MAGIC else 0
            del h
        finally:
            seg.close()
        if creator and not pid_alive(creator):
            from alphapulse.ring.segment import shm_unlink
            shm_unlink(seg_name)
            log.warning("removed stale ring segment %s of dead creator pid %d", seg_name, creator)

    @classmethod
    def attach(cls, name: str, timeout: float = 1.0) -> "Ring":
        """Map an existing ring by name (from any process, any start method)."""
        seg_name = RL.segment_name(name)
        try:
            seg = Segment.attach(seg_name)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"ring {name!r} does not exist (no /dev/shm/{seg_name}); is its owner running?"
            ) from None
        try:
            if seg.size < RL.header_bytes(1):
                raise NotARingError(f"/dev/shm/{seg_name} ({seg.size} bytes) is not a ring segment")
            h = np.frombuffer(seg.buf, dtype=np.uint64, count=RL.BLOCK_WORDS)
            deadline = time.monotonic() + timeout
            while py_load(h, RL.W_READY) != 1:     # the creator is still filling the header
                if time.monotonic() > deadline:
                    raise NotARingError(f"/dev/shm/{seg_name} is not an initialised ring segment")
                time.sleep(0.001)
            if int(h[RL.W_MAGIC]) != RL.MAGIC:
                raise NotARingError(f"/dev/shm/{seg_name} is not a ring segment (bad magic)")
            ver = int(h[RL.W_LAYOUT])
            if ver != RL.LAYOUT_VERSION:
                raise NotARingError(
                    f"ring {name!r} has layout version {ver}; this code reads version "
                    f"{RL.LAYOUT_VERSION} (restart the owner with the same AlphaPulse version)")
            hb, cap = int(h[RL.W_HEADER_BYTES]), int(h[RL.W_CAPACITY])
            if hb + cap != seg.size or hb != RL.header_bytes(int(h[RL.W_MAX_CONSUMERS])):
                raise NotARingError(f"/dev/shm/{seg_name}: header sizes do not match the segment")
            del h
        except BaseException:
            seg.close()
            raise
        return cls(seg, RL.ring_name(seg_name))

    def close(self) -> None:
        """Close producer/consumers made here, unmap, and (owner) unlink."""
        if self._closed:
            return
        for ch in list(self._children):
            try:
                ch.close()
            except Exception:  # noqa: BLE001 - closing anyway
                log.exception("closing %r", ch)
        self._children.clear()
        if self.owner:
            self.unlink()
        self._closed = True
        self._h = None
        self._data = None
        self._seg.close()

    def unlink(self) -> None:
        """Remove the segment name (owner only; attached processes keep their mapping)."""
        if not self.owner:
            raise RingError(f"ring {self.name!r}: only the creator unlinks")
        registry.unlink(self.segment)

    def __enter__(self) -> "Ring":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"Ring({self.name!r}, capacity={self.capacity}, policy={self.policy.name.lower()}, "
                f"owner={self.owner})")

    def _check_open(self) -> None:
        if self._closed:
            raise RingError(f"ring {self.name!r} is closed")

    # ------------------------------------------------------------ endpoints
    def producer(self, publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT_S) -> "Producer":
        """The single producer of this ring (a dead previous producer is taken over)."""
        self._check_open()
        p = Producer(self, publish_timeout)
        self._children.append(p)
        return p

    def consumer(self, name: str, wait: str | Wait = "sleep", copy: bool | None = None) -> "Consumer":
        """Register a consumer; it starts at the current published position.

        On a lossless ring a registered consumer holds the producer back: poll
        regularly (each poll is a heartbeat; silent longer than the ring's
        consumer timeout, 10 s by default, it is dropped), and compile your
        Numba kernels *before* registering, not on the first poll.

        ``wait``: ``"sleep"`` (default, low CPU) or ``"spin"`` (lowest latency,
        one core busy). ``copy``: poll returns a private copy instead of
        zero-copy views; default True on overwrite rings (views of an
        overwrite ring can be overwritten while read), False on lossless.
        """
        self._check_open()
        c = Consumer(self, name, Wait(wait), self.policy == Policy.OVERWRITE if copy is None else copy)
        self._children.append(c)
        return c

    # ------------------------------------------------------------ inspection
    def producer_state(self, stale_after_s: float = DEFAULT_PRODUCER_STALE_S) -> str:
        """``"none"`` (never attached), ``"closed"``, ``"dead"`` (pid gone), ``"stale"``
        (no publish or heartbeat for ``stale_after_s``) or ``"alive"``."""
        h = self._h
        pid = int(py_load(h, RL.W_PRODUCER_PID))
        if pid == 0:
            return "closed" if int(h[RL.W_PRODUCER_CLOSED]) else "none"
        if not pid_alive(pid):
            return "dead"
        if _now() - int(py_load(h, RL.W_PRODUCER_HB)) > stale_after_s * 1e9:
            return "stale"
        return "alive"

    def stats(self) -> dict:
        """A lock-free snapshot: capacity, producer position and heartbeat, per-consumer lag and loss."""
        self._check_open()
        h = self._h
        now = _now()
        pos, frames, nbytes, _ = B.read_published(h)
        tail, tail_frames, _ = B.read_tail(h)
        pid = int(h[RL.W_PRODUCER_PID])
        hb = int(h[RL.W_PRODUCER_HB])
        consumers = []
        for k in range(self.max_consumers):
            b = RL.slot_base(k)
            st = int(py_load(h, b + RL.S_STATE))
            if st == 0:
                continue
            cpid = st & ~(RL.EVICTED_BIT | RL.JOINING_BIT)
            state = ("evicted" if st & RL.EVICTED_BIT else "joining" if st & RL.JOINING_BIT
                     else "active" if pid_alive(cpid) else "dead")
            cur = int(h[b + RL.S_CURSOR])
            chb = int(h[b + RL.S_HB])
            consumers.append({
                "slot": k, "name": _words_name(h[b + RL.S_NAME:b + RL.S_NAME + 4]), "pid": cpid,
                "state": state, "cursor": cur,
                "lag_bytes": max(0, int(pos) - cur),
                "lag_frames": max(0, int(frames) - int(h[b + RL.S_FRAMES])),
                "lost_frames": int(h[b + RL.S_LOST_FRAMES]),
                "lost_bytes": int(h[b + RL.S_LOST_BYTES]),
                "heartbeat_age_s": (now - chb) / 1e9 if chb else None,
                "wait": {1: "spin", 2: "sleep"}.get(int(h[b + RL.S_WAIT]), "?"),
                "evict_reason": Eviction(int(h[b + RL.S_EVICT_REASON])).name.lower()
                if st & RL.EVICTED_BIT else None,
            })
        return {
            "name": self.name, "segment": self.segment, "layout_version": int(h[RL.W_LAYOUT]),
            "policy": self.policy.name.lower(), "capacity": self.capacity,
            "max_frame": self.max_frame, "max_consumers": self.max_consumers,
            "creator_pid": int(h[RL.W_CREATOR_PID]),
            # the producer's figures most readers want, also at the top level
            "position": int(pos), "frames": int(frames),
            "heartbeat_age_s": (now - hb) / 1e9 if hb else None,
            "producer": {
                "pid": pid, "state": self.producer_state(),
                "position": int(pos), "frames": int(frames), "bytes": int(nbytes),
                "claim": int(h[RL.W_CLAIM]), "tail": int(tail), "tail_frames": int(tail_frames),
                "heartbeat_age_s": (now - hb) / 1e9 if hb else None,
                "waits": int(h[RL.W_PRODUCER_WAITS]),
                "wait_s": int(h[RL.W_PRODUCER_WAIT_NS]) / 1e9,
                "evictions": int(h[RL.W_EVICTIONS]),
                "wakes": int(h[RL.W_WAKES]),
            },
            "sleeping_consumers": int(h[RL.W_WAITERS]),
            "consumers": consumers,
        }

    def evict_dead_consumers(self, stale: bool = True) -> list[dict]:
        """Drop consumers whose process is gone or (``stale``) whose heartbeat is older
        than the consumer timeout; returns what was dropped (also logged). Any process
        may call it; a waiting lossless producer does so on its own."""
        self._check_open()
        h = self._h
        now = _now()
        dropped = []
        for k in range(self.max_consumers):
            b = RL.slot_base(k)
            st = int(py_load(h, b + RL.S_STATE))
            if st == 0 or st & RL.EVICTED_BIT:
                continue
            cpid = st & ~RL.JOINING_BIT
            reason = Eviction.NONE
            if not pid_alive(cpid):
                reason = Eviction.DEAD_PID
            elif stale and not st & RL.JOINING_BIT:
                hb = int(py_load(h, b + RL.S_HB))
                if hb and now - hb > self.consumer_timeout_ns:
                    reason = Eviction.STALE_HEARTBEAT
            if reason == Eviction.NONE:
                continue
            py_store(h, b + RL.S_EVICT_REASON, int(reason))
            if st & RL.JOINING_BIT:
                ok = py_cas(h, b + RL.S_STATE, st, 0)      # died while joining: just free
            else:
                ok = py_cas(h, b + RL.S_STATE, st, st | RL.EVICTED_BIT)
            if not ok:
                continue
            if reason == Eviction.DEAD_PID and py_cas(h, b + RL.S_SLEEPING, 1, 0):
                py_fetch_add(h, RL.W_WAITERS, -1)      # it died asleep: uncount it
            py_fetch_add(h, RL.W_GEN, 1)
            py_fetch_add(h, RL.W_EVICTIONS, 1)
            info = {"slot": k, "pid": cpid, "reason": reason.name.lower(),
                    "name": _words_name(h[b + RL.S_NAME:b + RL.S_NAME + 4]),
                    "cursor": int(h[b + RL.S_CURSOR])}
            log.warning("ring %s: dropped consumer %r (pid %d, slot %d): %s",
                        self.name, info["name"], cpid, k, info["reason"])
            dropped.append(info)
        return dropped


class Producer:
    """The single writer of a ring. Not thread-safe (one producer, one thread)."""

    def __init__(self, ring: Ring, publish_timeout: float) -> None:
        self.ring = ring
        self.publish_timeout = publish_timeout
        h = ring._h
        me = os.getpid()
        while True:
            cur = int(py_load(h, RL.W_PRODUCER_PID))
            if cur == me:
                raise RingError(f"ring {ring.name!r} already has a producer in this process")
            if cur and pid_alive(cur):
                raise RingError(f"ring {ring.name!r} already has a live producer (pid {cur})")
            py_store(h, RL.W_PRODUCER_HB, _now())     # fresh before the pid makes it count
            if py_cas(h, RL.W_PRODUCER_PID, cur, me):
                if cur:
                    log.warning("ring %s: taking over from dead producer pid %d", ring.name, cur)
                break
        self._h = h
        self._data = ring._data
        self._cap = ring.capacity
        overwrite = ring.policy == Policy.OVERWRITE
        self._ps, self._sizes = S.new_state(ring.capacity, overwrite, ring.max_consumers)
        ps = self._ps
        pos, frames, nbytes, _ = B.read_published(h)
        ps[S.PS_POS], ps[S.PS_FRAMES], ps[S.PS_BYTES] = pos, frames, nbytes
        ps[S.PS_PSEQ] = int(h[RL.W_PSEQ])
        ps[S.PS_TSEQ] = int(h[RL.W_TSEQ])
        for j in range(RL.LAP_SLOTS):
            ps[S.PS_LAP_END + j] = int(h[RL.W_LAP_END + j])
        if overwrite:
            # frames published by an earlier producer are not in this one's size
            # index: declare them overwritten (consumers behind count them lost)
            _restart_tail(h, ps, pos, frames, nbytes)
        h[RL.W_PRODUCER_CLOSED] = 0
        py_store(h, RL.W_PRODUCER_HB, _now())
        self._backoff = Backoff()
        self._last_reap = 0
        self._closed = False
        self._max_frame = ring.max_frame
        self._k_publish: dict = {}
        self._pseq_addr = h.ctypes.data + RL.W_PSEQ * RL.WORD
        self._idle_wakes = 0
        self._last_repair = 0.0

    @property
    def position(self) -> int:
        """Next write position (= published position) in bytes since creation."""
        return int(self._ps[S.PS_POS])

    @property
    def frames_published(self) -> int:
        """Frames published on this ring (by every producer it had)."""
        return int(self._ps[S.PS_FRAMES])

    def _wake(self) -> None:
        """FUTEX_WAKE the consumers sleeping on the publish sequence."""
        if not futex.AVAILABLE:
            return
        woken = futex.wake(self._pseq_addr)
        if woken:
            self._h[RL.W_WAKES] += woken          # statistics only (producer-owned word)
        else:
            # counted waiters that are not asleep: normally one about to see
            # the new sequence; if it keeps happening, a consumer died asleep
            self._idle_wakes += 1
            now = time.monotonic()
            if self._idle_wakes >= 64 and now - self._last_repair > 1.0:
                self._idle_wakes = 0
                self._last_repair = now
                self.ring.evict_dead_consumers(stale=False)

    def kernel_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(header, private state, size index, data area): what a Numba kernel needs to publish
        on this ring itself with ``sequencer.publish_span``/``publish_one``, as this producer
        (same thread, no other publication in between). A result with ``WAKE`` set is finished
        by calling :meth:`wake`; a lossless ring that is full (partial result) by publishing
        the rest with :meth:`publish_batch`, which waits."""
        return self._h, self._ps, self._sizes, self._data

    def wake(self) -> None:
        """Wake the consumers sleeping on this ring (after a kernel's publication said WAKE)."""
        self._wake()

    def heartbeat(self) -> None:
        """Mark the producer alive; call when idle (consumers tell idle from dead by it)."""
        py_store(self._h, RL.W_PRODUCER_HB, _now())

    def _error(self, code: int, what: str) -> Exception:
        if code == S.ERR_TOO_LARGE:
            return FrameTooLarge(f"ring {self.ring.name!r}: {what} exceeds the ring capacity "
                                 f"{self._cap} bytes")
        return ValueError(f"ring {self.ring.name!r}: {what}: {S.ERRORS.get(code, code)}")

    def _wait(self, attempt: int, t0: float, timeout: float) -> None:
        now = time.monotonic()
        if attempt == 0:
            py_fetch_add(self._h, RL.W_PRODUCER_WAITS, 1)
        if now - self._last_reap > 0.002 and attempt >= self._backoff.spins:
            self._last_reap = now
            self.heartbeat()
            self.ring.evict_dead_consumers()
        if now - t0 > timeout:
            py_fetch_add(self._h, RL.W_PRODUCER_WAIT_NS, int((now - t0) * 1e9))
            slow = [c for c in self.ring.stats()["consumers"] if c["state"] == "active"]
            slow.sort(key=lambda c: -c["lag_bytes"])
            raise RingFullTimeout(
                f"ring {self.ring.name!r} full for {timeout:.3f} s: slowest consumer "
                f"{slow[0]['name'] if slow else '?'!r} (pid {slow[0]['pid'] if slow else '?'}) "
                f"lags {slow[0]['lag_bytes'] if slow else '?'} bytes of {self._cap}")
        self._backoff.pause(attempt)

    def _done_waiting(self, attempt: int, t0: float) -> None:
        if attempt:
            py_fetch_add(self._h, RL.W_PRODUCER_WAIT_NS, int((time.monotonic() - t0) * 1e9))

    def publish(self, frame, timeout: float | None = None) -> None:
        """Publish one complete frame (bytes, memoryview or uint8 array)."""
        f = frame if type(frame) is np.ndarray and frame.dtype == _U8 and frame.ndim == 1 \
            else _as_u8(frame)
        n = f.shape[0]
        if n > self._max_frame:
            raise FrameTooLarge(
                f"ring {self.ring.name!r}: frame of {n} bytes exceeds the maximum "
                f"{self.ring.max_frame} (capacity {self._cap}, Protocol V2 limit {RL.MAX_FRAME})")
        fl = f.flags
        kind = (fl.writeable, fl.c_contiguous)
        k = self._k_publish.get(kind)
        if k is None:
            # bound once per frame kind (its numba type): called without the dispatcher
            # (measured: 0.84 -> 0.47 us a call), see jit.entry
            k = self._k_publish[kind] = compiled_entry(
                _publish_one, self._h, self._ps, self._sizes, self._data, f, n, _now())
        r = k(self._h, self._ps, self._sizes, self._data, f, n, _now())
        if r == 1:
            return
        if r == 1 + S.WAKE:
            self._wake()
            return
        if r == S.BLOCKED:
            timeout = self.publish_timeout if timeout is None else timeout
            attempt = 0
            t0 = time.monotonic()
            while r == S.BLOCKED:
                self._wait(attempt, t0, timeout)
                attempt += 1
                r = _publish_one(self._h, self._ps, self._sizes, self._data, f, n, _now())
            self._done_waiting(attempt, t0)
        if r < 0:
            raise self._error(r, f"frame of {n} bytes")
        if r >= S.WAKE:
            self._wake()

    def publish_batch(self, buf, nbytes: int | None = None, timeout: float | None = None) -> int:
        """Publish ``buf[:nbytes]``, consecutive whole frames; returns the frame count.

        Validated (framing) before anything is published. One reserve/commit
        per contiguous chunk: one for a batch that fits before the end of the
        data area, two across it, more only if the batch exceeds the capacity.
        """
        b = _as_u8(buf)
        nbytes = b.shape[0] if nbytes is None else int(nbytes)
        if nbytes > b.shape[0] or nbytes < 0:
            raise ValueError(f"nbytes {nbytes} outside the buffer of {b.shape[0]} bytes")
        k = S.walk_frames(b, 0, nbytes)
        if k < 0:
            raise self._error(k, f"batch of {nbytes} bytes")
        if nbytes == 0:
            return 0
        big = S.largest_frame(b, 0, nbytes)
        if big > self.ring.max_frame:
            raise FrameTooLarge(f"ring {self.ring.name!r}: batch holds a frame of {big} bytes, "
                                f"larger than the maximum {self.ring.max_frame}")
        timeout = self.publish_timeout if timeout is None else timeout
        done = 0
        attempt = 0
        t0 = 0.0
        while done < nbytes:
            r = S.publish_span(self._h, self._ps, self._sizes, self._data, b, done,
                               nbytes - done, _now())
            if r < 0:
                raise self._error(r, f"batch of {nbytes} bytes")
            if r >= S.WAKE:
                self._wake()
                r -= S.WAKE
            if r > 0:
                done += r
                self._done_waiting(attempt, t0)
                attempt = 0
                continue
            if attempt == 0:
                t0 = time.monotonic()
            self._wait(attempt, t0, timeout)
            attempt += 1
        return k

    def claim(self, nbytes: int, timeout: float | None = None) -> np.ndarray:
        """A writable ``uint8`` view of ``nbytes`` contiguous bytes in the ring.

        Write whole frames into it (e.g. ``alphapulse.jit.encode_frames``), then
        :meth:`commit` how many bytes hold frames. ``nbytes`` <= capacity; a
        claim that does not fit before the end starts the next lap.
        """
        if nbytes <= 0 or nbytes > self._cap:
            raise FrameTooLarge(f"ring {self.ring.name!r}: claim of {nbytes} bytes outside "
                                f"1..{self._cap}")
        timeout = self.publish_timeout if timeout is None else timeout
        attempt = 0
        t0 = 0.0
        while True:
            off = S.reserve(self._h, self._ps, self._sizes, nbytes)
            if off != S.BLOCKED:
                break
            if attempt == 0:
                t0 = time.monotonic()
            self._wait(attempt, t0, timeout)
            attempt += 1
        self._done_waiting(attempt, t0)
        if off < 0:
            raise self._error(off, f"claim of {nbytes} bytes")
        return self._data[off:off + nbytes]

    def commit(self, nbytes: int) -> int:
        """Publish the first ``nbytes`` of the open claim (whole frames); returns frames published."""
        r = S.commit(self._h, self._ps, self._sizes, self._data, int(nbytes), _now())
        if r < 0:
            raise self._error(r, f"commit of {nbytes} bytes")
        if r >= S.WAKE:
            self._wake()
            r -= S.WAKE
        return r

    def close(self) -> None:
        """Release the producer role (a clean stop, unlike a dead producer)."""
        if self._closed:
            return
        self._closed = True
        h = self._h
        h[RL.W_PRODUCER_CLOSED] = 1
        py_cas(h, RL.W_PRODUCER_PID, os.getpid(), 0)
        if self in self.ring._children:
            self.ring._children.remove(self)

    def __enter__(self) -> "Producer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _restart_tail(h, ps, pos: int, frames: int, nbytes: int) -> None:
    """Start a new producer's tail at the published position (under the claim lock)."""
    seq = int(ps[S.PS_TSEQ]) + 1
    py_store(h, RL.W_TSEQ, seq)
    py_store(h, RL.W_CLAIM, pos)
    py_store(h, RL.W_TAIL_POS, pos)
    py_store(h, RL.W_TAIL_FRAMES, frames)
    py_store(h, RL.W_TAIL_BYTES, nbytes)
    py_store(h, RL.W_TSEQ, seq + 1)
    ps[S.PS_TSEQ] = seq + 1
    ps[S.PS_TAIL_POS], ps[S.PS_TAIL_FRAMES], ps[S.PS_TAIL_BYTES] = pos, frames, nbytes


class Consumer:
    """One reader of a ring with its own cursor. Not thread-safe."""

    def __init__(self, ring: Ring, name: str, wait: Wait, copy: bool) -> None:
        self.ring = ring
        self.name = name
        self.wait = wait
        self.copy = copy
        self._h = h = ring._h
        self._data = ring._data
        self._closed = False
        self.rejects: Counter = Counter()
        me = os.getpid()
        token = int.from_bytes(os.urandom(8), "little") >> 2 or 1
        slot = -1
        for attempt in range(2):
            for k in range(ring.max_consumers):
                b = RL.slot_base(k)
                st = int(py_load(h, b + RL.S_STATE))
                # an evicted slot is free: its old owner is told by the token check
                free = st == 0 or bool(st & RL.EVICTED_BIT)
                if free and py_cas(h, b + RL.S_STATE, st, RL.JOINING_BIT | me):
                    slot = k
                    break
            if slot >= 0:
                break
            ring.evict_dead_consumers()       # reclaim slots of dead consumers, then retry
        if slot < 0:
            raise RingError(f"ring {ring.name!r}: all {ring.max_consumers} consumer slots are taken")
        b = RL.slot_base(slot)
        self.slot = slot
        self._cs = B.new_state(b, me, token, ring.capacity, ring.policy == Policy.OVERWRITE)
        for i, w in enumerate(_name_words(name)):
            h[b + RL.S_NAME + i] = w
        for w in (RL.S_LOST_FRAMES, RL.S_LOST_BYTES, RL.S_EVICT_REASON):
            h[b + w] = 0
        if py_cas(h, b + RL.S_SLEEPING, 1, 0):         # a previous owner died asleep
            py_fetch_add(h, RL.W_WAITERS, -1)
        h[b + RL.S_TOKEN] = token
        h[b + RL.S_WAIT] = 1 if wait == Wait.SPIN else 2
        h[b + RL.S_REG_NS] = time.time_ns()
        py_store(h, b + RL.S_HB, _now())
        p, f, nb = B.join_position(h)
        B.set_start(h, self._cs, p, f, nb)            # a conservative cursor first,
        py_cas(h, b + RL.S_STATE, RL.JOINING_BIT | me, me)   # then gate the producer,
        py_fetch_add(h, RL.W_GEN, 1)                  # tell it (seq_cst), and
        p, f, nb = B.join_position(h)                 # start where it is now
        B.set_start(h, self._cs, p, f, nb)
        self._out = np.zeros(4, dtype=np.int64)
        self._priv = np.empty(ring.capacity if copy else 0, dtype=np.uint8)
        # the per-poll kernels, called without the dispatcher (fixed argument types)
        if copy:
            self._k_poll = compiled_entry(B.poll_copy, h, self._cs, self._data, self._priv, self._out, 0)
        else:
            self._k_poll = compiled_entry(B.poll, h, self._cs, self._out, 0)
        self._k_release = compiled_entry(B.release_owned, h, self._cs)
        self._backoff = Backoff(spins=0)
        self._slot_word = b
        self._pseq_addr = h.ctypes.data + RL.W_PSEQ * RL.WORD

    # ------------------------------------------------------------ counters
    @property
    def lost_frames(self) -> int:
        """Frames this consumer missed because it was lapped (overwrite rings)."""
        return int(self._cs[B.CS_LOST_FRAMES])

    @property
    def lost_bytes(self) -> int:
        """Frame bytes (padding excluded) missed because it was lapped."""
        return int(self._cs[B.CS_LOST_BYTES])

    @property
    def position(self) -> int:
        return int(self._cs[B.CS_CURSOR])

    @property
    def frames_consumed(self) -> int:
        """Ring frame index at the cursor: frames published before it (read or lost)."""
        return int(self._cs[B.CS_FRAMES])

    def lag(self) -> tuple[int, int]:
        """(bytes, frames) published and not yet released by this consumer."""
        p, f, _, _ = B.read_published(self._h)
        return int(p) - self.position, int(f) - self.frames_consumed

    def producer_alive(self, stale_after_s: float = DEFAULT_PRODUCER_STALE_S) -> bool:
        """False once the producer is dead (pid gone) or silent for ``stale_after_s``."""
        return self.ring.producer_state(stale_after_s) in ("alive", "none")

    # ------------------------------------------------------------ reading
    def _poll_once(self) -> list[np.ndarray]:
        cs, out = self._cs, self._out
        if self.copy:
            n = self._k_poll(self._h, cs, self._data, self._priv, out, _now())
            if n == 1:
                return [self._priv[out[0]:out[1]]]
        else:
            n = self._k_poll(self._h, cs, out, _now())
            if n == 1:
                return [self._data[out[0]:out[1]]]
            if n == 2:
                return [self._data[out[0]:out[1]], self._data[out[2]:out[3]]]
        self.raise_for_status(n)
        return []

    def raise_for_status(self, n: int) -> None:
        """Raise what a poll kernel's negative result means (evicted, corrupt ring); else nothing."""
        if n == B.EVICTED:
            self._raise_evicted()
        if n == B.CORRUPT:
            raise RingError(f"ring {self.ring.name!r}: header inconsistent at cursor "
                            f"{self.position} (corrupted shared memory?)")
        if n < 0:
            raise RingError(f"ring {self.ring.name!r}: poll failed with code {n}")

    def kernel_state(self) -> tuple:
        """(header, cursor state, data area, private copy buffer, poll offsets, copy): what a Numba
        kernel needs to poll and release as this consumer (``barrier.poll_copy``/``poll``, then
        ``release_owned``), on this thread. Zero-copy views of an overwrite ring can be
        overwritten while held, which only :meth:`release` checks: refused."""
        if not self.copy and self.ring.policy == Policy.OVERWRITE:
            raise RingError(f"consumer {self.name!r}: zero-copy on an overwrite ring cannot be "
                            f"driven from a kernel (use copy=True)")
        return self._h, self._cs, self._data, self._priv, self._out, self.copy

    def _raise_evicted(self):
        reason = Eviction(int(self._h[self._cs[B.CS_SLOT] + RL.S_EVICT_REASON]))
        self.close()                  # frees the slot if it is still ours
        raise ConsumerEvicted(f"ring {self.ring.name!r}: consumer {self.name!r} was dropped by "
                              f"the producer ({reason.name.lower()}); register a new consumer")

    def poll(self, timeout: float | None = 0.0) -> list[np.ndarray]:
        """Frames published since the cursor: 0, 1 or 2 ``uint8`` views of whole frames.

        ``timeout``: 0 returns at once, None waits until data arrives, else
        seconds. Call :meth:`release` when done with the views; polling again
        without releasing returns the same frames (and any newer ones).

        Zero-copy views (lossless rings) point into shared memory and stay
        valid until :meth:`release` (the producer cannot reuse those bytes
        before). With ``copy`` (overwrite rings by default) the single view
        points into this consumer's private buffer: valid until the next poll,
        and it holds only frames that were intact after the copy.
        """
        if self._closed:
            raise RingError(f"consumer {self.name!r} is closed")
        views = self._poll_once()
        if views or timeout == 0:
            return views
        deadline = None if timeout is None else time.monotonic() + timeout
        h, cs = self._h, self._cs
        attempt = 0
        while True:
            seen = cs[B.CS_SEEN_PSEQ]
            if self.wait == Wait.SPIN:
                B.wait_published(h, seen, SPIN_BURST)
            elif attempt == 0:
                B.wait_published(h, seen, SHORT_SPIN)
            elif attempt <= YIELDS or not futex.AVAILABLE:
                self._backoff.pause(attempt)
            else:
                left = FUTEX_SLICE_S if deadline is None else deadline - time.monotonic()
                self._sleep(seen, max(0.0, min(FUTEX_SLICE_S, left)))
            attempt += 1
            views = self._poll_once()
            if views:
                return views
            if deadline is not None and time.monotonic() >= deadline:
                return views

    def _sleep(self, seen: int, timeout_s: float) -> None:
        """Block in FUTEX_WAIT until the publish sequence moves past ``seen`` (or timeout).

        Counted in W_WAITERS first, then the sequence is re-read: with the
        producer's fence between its sequence store and its W_WAITERS load,
        either it sees us and wakes us, or we see its publish and do not sleep.
        """
        h, b = self._h, self._slot_word
        py_store(h, b + RL.S_SLEEPING, 1)
        py_fetch_add(h, RL.W_WAITERS, 1)
        try:
            if int(py_load(h, RL.W_PSEQ)) == seen:
                futex.wait(self._pseq_addr, seen, timeout_s)
        finally:
            py_fetch_add(h, RL.W_WAITERS, -1)
            py_store(h, b + RL.S_SLEEPING, 0)

    def release(self) -> int:
        """Advance the cursor past what the last poll returned.

        Returns the number of frames at the start of the last poll's zero-copy
        views that the producer overwrote while they were held (overwrite
        rings with ``copy=False`` only; they are counted as lost and anything
        derived from them must be discarded); 0 otherwise.
        """
        h, cs = self._h, self._cs
        lost = 0
        if not self.copy:
            lost = int(B.overwritten_since_poll(h, cs))
        if not self._k_release(h, cs):
            self._raise_evicted()
        return lost

    def frames(self, timeout: float | None = 0.0, verify: bool = True) -> Iterator[bytes]:
        """Slow-path convenience: each frame since the cursor as ``bytes``, in order.

        With ``verify`` each frame is fully checked (``codec.parse_frame``:
        header, TLVs, checksum); a bad one is counted in ``rejects`` by
        :class:`Reject` reason and skipped (after a corrupt header the rest of
        the view is scanned for the next magic). Stops when a poll returns nothing.
        """
        while True:
            views = self.poll(timeout)
            if not views:
                return
            out = []
            for v in views:
                out.extend(self._split(v, verify))
            self.release()
            yield from out

    def _split(self, view: np.ndarray, verify: bool) -> list[bytes]:
        mv = memoryview(view)
        n = len(mv)
        off = 0
        res = []
        while off < n:
            try:
                if verify:
                    fr = codec.parse_frame(mv, off)
                    size = fr.size
                else:
                    size = P.HEADER_SIZE + codec.parse_header(mv, off).payload_size
            except codec.FrameError as e:
                self.rejects[e.reason] += 1
                if e.reason in (Reject.TLV_OVERRUN, Reject.BAD_TLV_SIZE, Reject.BAD_CHECKSUM):
                    off += P.HEADER_SIZE + codec.parse_header(mv, off).payload_size
                    continue
                nxt = bytes(mv[off + 1:]).find(P.MAGIC.to_bytes(4, "little"))
                if nxt < 0:
                    break
                off += 1 + nxt
                continue
            res.append(bytes(mv[off:off + size]))
            off += size
        return res

    def close(self) -> None:
        """Unregister: the slot is freed and no longer holds the producer back."""
        if self._closed:
            return
        self._closed = True
        h, cs = self._h, self._cs
        b = int(cs[B.CS_SLOT])
        pid = int(cs[B.CS_PID])
        if py_cas(h, b + RL.S_STATE, pid, 0):
            py_fetch_add(h, RL.W_GEN, 1)
        elif int(h[b + RL.S_TOKEN]) == int(cs[B.CS_TOKEN]):
            py_cas(h, b + RL.S_STATE, pid | RL.EVICTED_BIT, 0)   # evicted: free it now
        if self in self.ring._children:
            self.ring._children.remove(self)

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __iter__(self):
        return self.frames(None)
