"""The shared header of a ring: one declaration of every word's place.

A ring segment is ``[header | data]``. The header is an array of little-endian
``uint64`` words grouped in 128-byte blocks (two cache lines, so the adjacent
line prefetcher cannot couple two writers either); each block is written by
one party only:

=====  =========================  ===========================================
block  writer                     words
=====  =========================  ===========================================
0      creator, once              magic, layout version, sizes, policy, ...
1      producer, before writing   claim sequence lock: claim, tail (oldest
                                  valid frame: position, frames and bytes
                                  before it), lap ends
2      producer, after writing    publish sequence lock: position, frames,
                                  bytes published
3      producer                   pid, heartbeat, wait and eviction counters
4      consumers (atomic add)     registration generation, futex waiters
5..    one consumer per slot      pid, cursor, heartbeat, loss counters, name
=====  =========================  ===========================================

Positions are absolute byte counts that only grow (``offset = pos % capacity``,
``lap = pos // capacity``); a frame never straddles the end of the data area:
when it does not fit, the rest of the lap is padding and the frame starts the
next lap. ``LAP_END[lap % LAP_SLOTS]`` records where the frames of a lap end.
The numbers here are module-level ints, compile-time constants in Numba.
"""
from __future__ import annotations

from enum import IntEnum

from alphapulse.protocol import layout as P

MAGIC = int.from_bytes(b"APRING\x00\x01", "little")
LAYOUT_VERSION = 1
WORD = 8
BLOCK_BYTES = 128
BLOCK_WORDS = BLOCK_BYTES // WORD
PAGE = 4096
SEGMENT_PREFIX = "alphapulse_ring_"
LAP_SLOTS = 4               # lap-end records kept (consumers are < 1 lap behind, or lapped)

MIN_FRAME = P.HEADER_SIZE   # a frame is at least its header
MAX_FRAME = P.MAX_FRAME
MAX_CONSUMERS_LIMIT = 256
NAME_BYTES = 32


class Policy(IntEnum):
    LOSSLESS = 1            # the producer waits for the slowest live consumer
    OVERWRITE = 2           # the producer never waits; lapped consumers resync and count the loss


# ---------------------------------------------------------------- block 0: static
W_MAGIC = 0
W_LAYOUT = 1
W_HEADER_BYTES = 2          # offset of the data area (page aligned)
W_CAPACITY = 3              # bytes of the data area
W_POLICY = 4
W_MAX_CONSUMERS = 5
W_CREATOR_PID = 6
W_CREATED_NS = 7            # time.time_ns() at creation
W_CONSUMER_TIMEOUT_NS = 8   # a consumer silent for longer is evicted by a waiting producer
W_READY = 9                 # stored last (release) by the creator: the header is complete

# ---------------------------------------------------------------- block 1: claim
_B1 = 1 * BLOCK_WORDS
W_TSEQ = _B1 + 0            # sequence lock over the words below (odd = being written)
W_CLAIM = _B1 + 1           # end of the region the producer may be writing
W_TAIL_POS = _B1 + 2        # oldest frame not (being) overwritten
W_TAIL_FRAMES = _B1 + 3     # frames published before W_TAIL_POS
W_TAIL_BYTES = _B1 + 4      # frame bytes (no padding) published before W_TAIL_POS
W_LAP_END = _B1 + 5         # LAP_SLOTS words: absolute position where a lap's frames end

# ---------------------------------------------------------------- block 2: publish
_B2 = 2 * BLOCK_WORDS
W_PSEQ = _B2 + 0            # sequence lock over the words below
W_PUB_POS = _B2 + 1         # every byte before it is a complete, published frame (or padding)
W_PUB_FRAMES = _B2 + 2      # frames published so far
W_PUB_BYTES = _B2 + 3       # frame bytes published so far (no padding)

# ---------------------------------------------------------------- block 3: producer
_B3 = 3 * BLOCK_WORDS
W_PRODUCER_PID = _B3 + 0    # 0 = no producer attached
W_PRODUCER_HB = _B3 + 1     # CLOCK_MONOTONIC ns of the producer's last publish or heartbeat
W_PRODUCER_WAITS = _B3 + 2  # times a lossless publish had to wait for a consumer
W_PRODUCER_WAIT_NS = _B3 + 3
W_EVICTIONS = _B3 + 4       # consumers dropped as dead
W_PRODUCER_CLOSED = _B3 + 5  # 1 after a clean Producer.close()
W_WAKES = _B3 + 6           # consumers woken from futex sleep by the producer

# ---------------------------------------------------------------- block 4: registry
_B4 = 4 * BLOCK_WORDS
W_GEN = _B4 + 0             # bumped (seq_cst) whenever a consumer joins or leaves
W_WAITERS = _B4 + 1         # consumers blocked in futex_wait on W_PSEQ (the producer wakes them)

# ---------------------------------------------------------------- consumer slots
W_SLOTS = 5 * BLOCK_WORDS
SLOT_WORDS = BLOCK_WORDS
S_STATE = 0                 # 0 free, pid active, EVICTED_BIT | pid evicted by the producer
S_TOKEN = 1                 # random id of this registration (pid reuse, one pid many consumers)
S_CURSOR = 2                # position up to which this consumer is done reading
S_FRAMES = 3                # frames before S_CURSOR
S_BYTES = 4                 # frame bytes before S_CURSOR
S_HB = 5                    # CLOCK_MONOTONIC ns of the consumer's last poll
S_LOST_FRAMES = 6
S_LOST_BYTES = 7
S_REG_NS = 8                # time.time_ns() at registration
S_EVICT_REASON = 9          # Eviction code, written by the producer
S_NAME = 10                 # NAME_BYTES of ASCII, 4 words
S_WAIT = 14                 # 1 spin, 2 sleep
S_SLEEPING = 15             # 1 while this consumer counts in W_WAITERS (repaired if it dies)

EVICTED_BIT = 1 << 62        # S_STATE of a slot the producer dropped (pid kept below)
JOINING_BIT = 1 << 61        # S_STATE while a consumer fills its slot; not gating yet


class Eviction(IntEnum):
    NONE = 0
    DEAD_PID = 1            # the consumer's process no longer exists (or is a zombie)
    STALE_HEARTBEAT = 2     # alive but silent for longer than the consumer timeout


def header_bytes(max_consumers: int) -> int:
    """Bytes before the data area, rounded up to a page."""
    raw = (W_SLOTS + max_consumers * SLOT_WORDS) * WORD
    return (raw + PAGE - 1) // PAGE * PAGE


def slot_base(k: int) -> int:
    """Word index of consumer slot ``k``."""
    return W_SLOTS + k * SLOT_WORDS


def segment_name(name: str) -> str:
    """The shared-memory name of ring ``name`` (``alphapulse_ring_<name>``)."""
    if not name or "/" in name:
        raise ValueError(f"ring name {name!r} must be non-empty and contain no '/'")
    full = name if name.startswith(SEGMENT_PREFIX) else SEGMENT_PREFIX + name
    if len(full) > 200:
        raise ValueError(f"ring name {name!r} is too long")
    return full


def ring_name(segment: str) -> str:
    """Inverse of :func:`segment_name`."""
    return segment[len(SEGMENT_PREFIX):] if segment.startswith(SEGMENT_PREFIX) else segment
