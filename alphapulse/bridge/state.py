"""Inbound bridge state that survives SIGKILL: how far each source stream was written.

The inbound bridge writes frames to the local ring and only then acknowledges
them to JetStream, so after a crash JetStream redelivers everything after the
last acknowledgement, some of which may already be in the ring. To drop
exactly those, the bridge remembers, per source stream ``(host, domain)``, the
outbound ``session`` and the bridge index just past the last frame it wrote
(``next_index``, see ``batch.py``), and the JetStream stream sequence of the
last batch written (where delivery resumes: see ``inbound.py``).

Making "frames are in the ring" and "state says so" agree without a
transaction (the argument):

* The state lives in a small file mapped with ``mmap``: a store into the
  mapping is in the kernel's page cache the moment it is made, so it survives
  the death of the process (not of the machine; nothing else in a bridge
  does either, JetStream holds the durable copy).
* Two slots, A and B, and one "active" byte. Before committing frames to the
  ring, the bridge writes the state *after* that commit into the inactive
  slot, together with ``ring_pos_before``, the ring's published position
  before the commit, then flips the active byte (a one-byte store cannot be
  torn). Then it commits the frames to the ring (one store of the ring's
  published position, made by the ring).
* A slot is written only after the commit that the other slot describes has
  completed. So on restart: if the ring's published position is beyond the
  active slot's ``ring_pos_before``, that commit happened and the active slot
  is exact; otherwise the process died between the flip and the commit and the
  other slot is exact. The ring is owned by another process (the pipeline
  supervisor) and outlives the bridge, which is what makes its position a
  witness. ``ring_token`` identifies the ring incarnation: if the ring was
  recreated, the old position means nothing and the latest slot is taken (no
  frame is ever written twice into one ring).

Each slot carries a CRC-32, so a slot torn by a crash in the middle of its
write (which is always the inactive one) is recognised and never used.
"""
from __future__ import annotations

import mmap
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

FILE_MAGIC = b"APBRSTAT"
FILE_VERSION = 1
_FILE_HDR = struct.Struct("<8sIB3x")          # magic, version, active slot
_SLOT_HDR = struct.Struct("<QQQQII")          # generation, ring_pos_before, ring_token, stream_seq, n, crc
_ENTRY = struct.Struct("<32sB7xQQ")           # host, domain, session, next_index
MAX_ENTRIES = 64
SLOT_SIZE = 4096
assert _SLOT_HDR.size + MAX_ENTRIES * _ENTRY.size <= SLOT_SIZE
FILE_SIZE = 64 + 2 * SLOT_SIZE
_SLOT_OFF = (64, 64 + SLOT_SIZE)
UNCONDITIONAL = (1 << 64) - 1                 # ring_pos_before of a slot that needs no witness

Key = tuple[str, int]                         # (source host, domain)


@dataclass
class Admission:
    """What to do with a received batch: skip its first ``skip`` frames (already
    written), and ``gap`` frames before it were never received."""
    skip: int
    gap: int


def admit(positions: dict[Key, tuple[int, int]], host: str, domain: int, session: int,
          first_index: int, count: int) -> Admission:
    """Duplicate/gap decision for a batch against the written positions."""
    cur = positions.get((host, domain))
    if cur is None:
        return Admission(0, first_index)
    cur_session, nxt = cur
    if session < cur_session:                 # an older outbound run, already superseded
        return Admission(count, 0)
    if session > cur_session:                 # a new outbound run: its index starts at 0
        return Admission(0, first_index)
    return Admission(min(max(nxt - first_index, 0), count), max(first_index - nxt, 0))


class InboundState:
    """The two-slot state file of one inbound bridge (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fresh = os.fstat(fd).st_size == 0
            if os.fstat(fd).st_size not in (0, FILE_SIZE):
                raise ValueError(f"{self.path} is not a bridge state file (size {os.fstat(fd).st_size})")
            if fresh:
                os.ftruncate(fd, FILE_SIZE)
            self._mm = mmap.mmap(fd, FILE_SIZE)
        finally:
            os.close(fd)
        if fresh:
            _FILE_HDR.pack_into(self._mm, 0, FILE_MAGIC, FILE_VERSION, 0)
        magic, version, active = _FILE_HDR.unpack_from(self._mm, 0)
        if magic != FILE_MAGIC:
            self._mm.close()
            raise ValueError(f"{self.path} is not a bridge state file (magic {magic!r})")
        if version != FILE_VERSION:
            self._mm.close()
            raise ValueError(f"{self.path} has state version {version}, this code reads {FILE_VERSION}")
        self.active = active & 1
        self.generation = 0
        self.positions: dict[Key, tuple[int, int]] = {}
        self.stream_seq = 0                   # JetStream stream sequence of the last batch written
        self.recovered_from = "empty"

    # ------------------------------------------------------------ slots
    def _read_slot(self, i: int):
        off = _SLOT_OFF[i]
        gen, pos_before, token, stream_seq, n, crc = _SLOT_HDR.unpack_from(self._mm, off)
        if gen == 0 or n > MAX_ENTRIES:
            return None
        body_end = off + _SLOT_HDR.size + n * _ENTRY.size
        head = _SLOT_HDR.pack(gen, pos_before, token, stream_seq, n, 0)
        if zlib.crc32(self._mm[off + _SLOT_HDR.size:body_end], zlib.crc32(head)) != crc:
            return None
        pos: dict[Key, tuple[int, int]] = {}
        for k in range(n):
            host, domain, session, nxt = _ENTRY.unpack_from(self._mm, off + _SLOT_HDR.size + k * _ENTRY.size)
            pos[(host.rstrip(b"\0").decode("ascii"), domain)] = (session, nxt)
        return gen, pos_before, token, pos, stream_seq

    def recover(self, ring_position: int, ring_token: int) -> dict[Key, tuple[int, int]]:
        """Choose the exact slot given the ring's current published position; returns positions."""
        a, b = self._read_slot(self.active), self._read_slot(self.active ^ 1)
        chosen, which = None, self.active
        if a is not None:
            _gen, pos_before, token, _pos, _sseq = a
            if token != ring_token or pos_before == UNCONDITIONAL or ring_position > pos_before:
                chosen, self.recovered_from = a, "active slot"
            else:
                chosen, which, self.recovered_from = b, self.active ^ 1, "previous slot (last write not in ring)"
        elif b is not None:
            chosen, which, self.recovered_from = b, self.active ^ 1, "previous slot (active slot torn)"
        if chosen is None:
            self.generation, self.positions, self.stream_seq = 0, {}, 0
            self.recovered_from = "empty"
        else:
            self.generation, self.positions, self.stream_seq = chosen[0], dict(chosen[3]), chosen[4]
        if which != self.active:
            self._mm[12] = which              # the exact slot becomes the active one
            self.active = which
        return self.positions

    def stage(self, positions: dict[Key, tuple[int, int]], stream_seq: int, ring_pos_before: int,
              ring_token: int) -> None:
        """Record ``positions`` and the stream sequence of their batch as the state after
        the ring commit that follows this call."""
        if len(positions) > MAX_ENTRIES:
            raise ValueError(f"more than {MAX_ENTRIES} source streams in one inbound bridge")
        target = self.active ^ 1
        off = _SLOT_OFF[target]
        gen = self.generation + 1
        body = b"".join(_ENTRY.pack(h.encode("ascii"), d, s, n) for (h, d), (s, n) in positions.items())
        head = _SLOT_HDR.pack(gen, ring_pos_before, ring_token, stream_seq, len(positions), 0)
        crc = zlib.crc32(body, zlib.crc32(head))
        self._mm[off + _SLOT_HDR.size:off + _SLOT_HDR.size + len(body)] = body
        _SLOT_HDR.pack_into(self._mm, off, gen, ring_pos_before, ring_token, stream_seq, len(positions), crc)
        self._mm[12] = target                 # the flip: one byte
        self.active = target
        self.generation = gen
        self.positions = dict(positions)
        self.stream_seq = stream_seq

    def close(self) -> None:
        if not self._mm.closed:
            self._mm.flush()
            self._mm.close()
