"""A shared-memory metrics block: counters, gauges and a latency histogram per component.

Every AlphaPulse process publishes its figures into one block in
``multiprocessing.shared_memory`` (segment name prefix ``alphapulse_``); the
dashboard and the pipeline's ``/metrics`` endpoint read it from other processes
without locks and without disturbing the writers.

Usage::

    owner = MetricsBlock.create("alphapulse_metrics", components=["source", "strategy"])
    ...                                                   # in each process:
    m = MetricsBlock.attach("alphapulse_metrics")
    frames = m.counter("strategy", "frames_in")           # resolve once, outside hot loops
    frames.add(len(batch))
    m.gauge("strategy", "last_block").set(block_number)
    m.observe_latency_ns("strategy", now_ns - frame_ts_ns)
    ...                                                   # anywhere:
    text = render_prometheus(m.snapshot())
    owner.close()                                         # the owner unlinks

Inside Numba kernels: pass ``m.array`` (uint64 slots) with indices resolved
outside the kernel (``m.index(component, key)`` for counters and gauges,
``m.histogram_base(component)`` and ``m.bounds_array`` for :func:`observe_ns`).

Layout (all little-endian, the segment is page aligned)::

    0   magic  b"APMETRC1"
    8   u32    layout version
    12  u32    bytes of the JSON schema that follows
    16  JSON   {"components": [...], "counters": [...], "gauges": [...], "bounds_ns": [...]}
    ..  zero padding to a multiple of 64
    D   per component, a region padded to a multiple of 64 bytes (a cache line,
        so two components' writers never share a line):
        counters (u64) | gauges (i64) | latency buckets (u64, len(bounds)+1) | latency sum ns (u64)
        | declared (u64 bitmap words: bit i = counter/gauge i, bit n_counters+n_gauges = latency)

Declared slots: a component marks the figures it emits (:meth:`MetricsBlock.declare`, once at
start, never on the hot path); ``/metrics`` renders a component's figure when it is declared or
non-zero, so a component never shows families of zeros for figures it does not produce, and a
counter it does produce is exported from 0 (a rate or an alert sees its first increase).

Concurrency contract: **one writer per slot** (each component's slots are
written by the one process that runs it). ``add`` is a read-modify-write that
is correct only under that rule; two writers to one slot lose increments.

Why lock-free reads are safe (the torn-read argument): every slot is 8 bytes
at an 8-aligned offset of a page-aligned mapping. Writers store a slot with one
8-byte store (CPython's ``memoryview`` packs a ``'Q'``/``'q'`` item with a
fixed-size 8-byte ``memcpy``, which compilers emit as a single ``mov``/``str``;
Numba emits an ``i64`` store for ``arr[i] = v``), and readers load each slot
the same way (``memoryview.tolist()`` unpacks item by item). Aligned 8-byte
loads and stores are single-copy atomic on x86-64 and on ARMv8 (AArch64), so a
reader sees either the old or the new value of a slot, never a mix of bytes.
What a reader does *not* get is a consistent cut across slots: a snapshot may
hold a histogram bucket incremented but not yet the sum, or one counter of a
component updated and not the next. Every consumer here tolerates that (rates
are differences of monotonic counters; the histogram's count is derived from
its buckets, and its sum is only used for a mean). Counters are monotonic
u64, so a reader that samples twice always sees them non-decreasing.
"""
from __future__ import annotations

import bisect
import json
import mmap
import os
import struct
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from typing import Iterable, Sequence

import numpy as np
from numba import njit

NAME_PREFIX = "alphapulse_"
MAGIC = b"APMETRC1"
LAYOUT_VERSION = 2
_PREFIX = struct.Struct("<8sII")
_LINE = 64

#: Counters every component gets (u64, monotonic; rendered as Prometheus counters).
DEFAULT_COUNTERS: tuple[str, ...] = (
    "frames_in",          # frames read from rings (or received from the chain)
    "frames_out",         # frames published
    "frames_rejected",    # invalid frames, all reasons
    "checksum_rejects",   # of which: checksum mismatch
    "frames_lost",        # frames a consumer was lapped by (overwrite rings)
    "signals",            # ArbitrageSignals published
    "rpc_reconnects",
    "rpc_errors",
    "refresh_requests",   # PoolRefresh requests sent for pools waiting on a fresh snapshot
)
#: Gauges every component gets (i64; rendered as Prometheus gauges).
DEFAULT_GAUGES: tuple[str, ...] = (
    "last_block",
    "pools",              # pools known / discovered
    "rpc_connected",      # 1 connected, 0 not
    "pools_waiting",      # pools out of trading until a fresh snapshot (PoolRefresh asked)
    "consumer_lag_bytes",
    "heartbeat_ns",       # wall clock of the component's last sign of life
    "pid",
)
#: One line of meaning per figure (the ``# HELP`` of its Prometheus family). Other packages
#: add theirs next to their names (``bridge.METRIC_HELP``, ``execution.component.METRIC_HELP``).
HELP: dict[str, str] = {
    "frames_in": "Frames read from rings or received from the chain.",
    "frames_out": "Frames published.",
    "frames_rejected": "Invalid frames rejected, all reasons.",
    "checksum_rejects": "Frames rejected for a checksum mismatch (also counted in frames_rejected).",
    "frames_lost": "Frames an overwrite-ring consumer was lapped by and never read.",
    "signals": "ArbitrageSignal frames published.",
    "rpc_reconnects": "Connections to the RPC endpoint (or NATS server) lost and re-opened.",
    "rpc_errors": "Failed attempts to connect to an RPC endpoint.",
    "refresh_requests": "PoolRefresh requests sent for pools waiting on a fresh snapshot.",
    "last_block": "Newest block number the component has completed.",
    "pools": "Pools known to the component.",
    "rpc_connected": "1 when the component is connected to its RPC endpoint (or NATS server), else 0.",
    "pools_waiting": "Pools out of trading until a fresh snapshot arrives.",
    "consumer_lag_bytes": "Bytes of the ring the component has not read yet.",
    "heartbeat_ns": "Unix time of the component's last sign of life.",
    "pid": "Process id of the component.",
}
#: Prometheus names of figures whose block name does not follow the base-unit convention
#: (a ``*_ns`` figure is exported in seconds; the heartbeat is a timestamp).
PROM_NAMES: dict[str, str] = {"heartbeat_ns": "heartbeat_timestamp_seconds", "pid": "process_id"}

#: Histogram bucket upper bounds in ns: 1-2-5 steps from 1 us to 10 s, plus +Inf.
DEFAULT_BOUNDS_NS: tuple[int, ...] = tuple(
    m * 10 ** e for e in range(3, 10) for m in (1, 2, 5)) + (10 ** 10,)


def _check_name(name: str) -> None:
    if not name.startswith(NAME_PREFIX):
        raise ValueError(f"metrics block name {name!r} must start with {NAME_PREFIX!r}")
    if "/" in name or len(name) > 200:
        raise ValueError(f"metrics block name {name!r} is not a valid shared-memory name")


@dataclass(frozen=True)
class Schema:
    """Names and order of every slot; stored as JSON inside the block."""
    components: tuple[str, ...]
    counters: tuple[str, ...]
    gauges: tuple[str, ...]
    bounds_ns: tuple[int, ...]

    def __post_init__(self) -> None:
        for kind, names in (("component", self.components), ("counter", self.counters),
                            ("gauge", self.gauges)):
            if len(set(names)) != len(names):
                raise ValueError(f"duplicate {kind} names in {names}")
            for n in names:
                if not n or not n.replace("_", "").isalnum():
                    raise ValueError(f"{kind} name {n!r} must be non-empty [A-Za-z0-9_]")
        if not self.components:
            raise ValueError("a metrics block needs at least one component")
        b = list(self.bounds_ns)
        if not b or b != sorted(set(b)) or b[0] <= 0:
            raise ValueError("bounds_ns must be strictly increasing positive integers")

    @property
    def n_buckets(self) -> int:
        return len(self.bounds_ns) + 1          # the last one is +Inf

    @property
    def n_declared_words(self) -> int:
        """u64 words of the declared bitmap (one bit per counter and gauge, one for latency)."""
        return -(-(len(self.counters) + len(self.gauges) + 1) // 64)

    @property
    def slots_per_component(self) -> int:
        used = len(self.counters) + len(self.gauges) + self.n_buckets + 1 + self.n_declared_words
        per_line = _LINE // 8
        return -(-used // per_line) * per_line

    def to_json(self) -> bytes:
        return json.dumps({"components": list(self.components), "counters": list(self.counters),
                           "gauges": list(self.gauges), "bounds_ns": list(self.bounds_ns)},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> "Schema":
        d = json.loads(raw)
        return cls(tuple(d["components"]), tuple(d["counters"]), tuple(d["gauges"]),
                   tuple(int(x) for x in d["bounds_ns"]))


class Counter:
    """One u64 slot (counters) or i64 slot (gauges). Single writer per slot."""
    __slots__ = ("_mv", "_i", "name")

    def __init__(self, mv: memoryview, index: int, name: str) -> None:
        self._mv, self._i, self.name = mv, index, name

    def add(self, n: int = 1) -> None:
        """Add ``n`` (a read-modify-write: correct only for the slot's single writer)."""
        self._mv[self._i] += n

    def set(self, v: int) -> None:
        self._mv[self._i] = v

    @property
    def value(self) -> int:
        return self._mv[self._i]


class Histogram:
    """A component's latency histogram; ``observe`` takes nanoseconds."""
    __slots__ = ("_mv", "_base", "_bounds", "_sum")

    def __init__(self, mv: memoryview, base: int, bounds: Sequence[int]) -> None:
        self._mv, self._base, self._bounds = mv, base, list(bounds)
        self._sum = base + len(bounds) + 1

    def observe(self, ns: int) -> None:
        """Count one latency of ``ns`` nanoseconds (negative clamps to 0)."""
        if ns < 0:
            ns = 0
        mv = self._mv
        i = self._base + bisect.bisect_left(self._bounds, ns)   # bucket i: ns <= bounds[i]
        mv[i] += 1
        mv[self._sum] += ns


def _open_existing(name: str) -> tuple[mmap.mmap, int]:
    """Map an existing segment without registering it with the resource tracker.

    ``SharedMemory(name)`` in Python 3.11 registers every attach with the
    resource tracker, which then unlinks the segment when the *attaching*
    process exits (bpo-39959). Only the owner may unlink, so readers map
    ``/dev/shm/<name>`` themselves.
    """
    try:
        import _posixshmem  # the module SharedMemory itself uses
        fd = _posixshmem.shm_open("/" + name, os.O_RDWR, mode=0o600)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"metrics block {name!r} does not exist (is the pipeline running?)") from None
    try:
        size = os.fstat(fd).st_size
        if size < _PREFIX.size:
            raise ValueError(f"shared memory {name!r} is not a metrics block ({size} bytes)")
        return mmap.mmap(fd, size), size
    finally:
        os.close(fd)


class MetricsBlock:
    """Named counters, gauges and a latency histogram per component in shared memory.

    Create once in the owning process (:meth:`create`), attach by name anywhere
    else (:meth:`attach`). ``close()`` unmaps; the owner's ``close()`` also
    unlinks the segment. Usable as a context manager.
    """

    def __init__(self, name: str, schema: Schema, buf: memoryview, data_off: int,
                 owner: bool, keep: object) -> None:
        self.name = name
        self.schema = schema
        self.owner = owner
        self._keep = keep               # SharedMemory or mmap backing ``buf``
        self._buf = buf
        n = len(schema.components) * schema.slots_per_component
        raw = self._raw = buf[data_off:data_off + 8 * n]
        self._u64 = raw.cast("Q")
        self._i64 = raw.cast("q")
        #: The slots as a numpy uint64 array (for Numba writers: index with :meth:`index`).
        self.array = np.frombuffer(raw, dtype=np.uint64)
        spc = schema.slots_per_component
        self._comp = {c: i * spc for i, c in enumerate(schema.components)}
        self._counter = {k: i for i, k in enumerate(schema.counters)}
        self._gauge = {k: len(schema.counters) + i for i, k in enumerate(schema.gauges)}
        self._hist = len(schema.counters) + len(schema.gauges)
        self._declared = self._hist + schema.n_buckets + 1

    # ------------------------------------------------------------ life cycle
    @classmethod
    def create(cls, name: str, components: Iterable[str], *,
               counters: Sequence[str] = DEFAULT_COUNTERS,
               gauges: Sequence[str] = DEFAULT_GAUGES,
               bounds_ns: Sequence[int] = DEFAULT_BOUNDS_NS) -> "MetricsBlock":
        """Create and zero a new block (fails with FileExistsError if ``name`` exists)."""
        _check_name(name)
        schema = Schema(tuple(components), tuple(counters), tuple(gauges), tuple(bounds_ns))
        js = schema.to_json()
        data_off = -(-(_PREFIX.size + len(js)) // _LINE) * _LINE
        size = data_off + 8 * len(schema.components) * schema.slots_per_component
        shm = shared_memory.SharedMemory(name=name, create=True, size=size)
        buf = shm.buf
        buf[:size] = bytes(size)
        buf[_PREFIX.size:_PREFIX.size + len(js)] = js
        # magic last: a concurrent attach sees either no magic or a complete header
        _PREFIX.pack_into(buf, 0, b"\0" * 8, LAYOUT_VERSION, len(js))
        buf[0:8] = MAGIC
        return cls(name, schema, buf, data_off, True, shm)

    @classmethod
    def attach(cls, name: str) -> "MetricsBlock":
        """Attach to an existing block by name (never unlinks it)."""
        _check_name(name)
        mm, size = _open_existing(name)
        buf = memoryview(mm)
        try:
            magic, version, js_len = _PREFIX.unpack_from(buf, 0)
            if magic != MAGIC:
                raise ValueError(f"shared memory {name!r} is not a metrics block (magic {magic!r})")
            if version != LAYOUT_VERSION:
                raise ValueError(f"metrics block {name!r} has layout version {version}, "
                                 f"this code reads {LAYOUT_VERSION}")
            schema = Schema.from_json(bytes(buf[_PREFIX.size:_PREFIX.size + js_len]))
            data_off = -(-(_PREFIX.size + js_len) // _LINE) * _LINE
            need = data_off + 8 * len(schema.components) * schema.slots_per_component
            if size < need:
                raise ValueError(f"metrics block {name!r} is {size} bytes, its schema needs {need}")
        except BaseException:
            buf.release()
            mm.close()
            raise
        return cls(name, schema, buf, data_off, False, mm)

    def close(self) -> None:
        """Unmap; the owner also unlinks the segment. Idempotent.

        Handles (:class:`Counter`, :attr:`array`) must not be used afterwards. If
        a caller still holds a view of :attr:`array` the mapping stays until
        that view is dropped, but the owner's unlink happens regardless.
        """
        if self._keep is None:
            return
        keep, self._keep = self._keep, None
        del self.array
        for mv in (self._u64, self._i64, self._raw):
            mv.release()
        try:
            if isinstance(keep, shared_memory.SharedMemory):
                keep.close()
            else:
                self._buf.release()
                keep.close()
        except BufferError:
            pass                        # a view is still held elsewhere; unmapped when freed
        finally:
            self._buf = None
            if self.owner and isinstance(keep, shared_memory.SharedMemory):
                try:
                    keep.unlink()
                except FileNotFoundError:
                    pass

    def __enter__(self) -> "MetricsBlock":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ writers
    def _base(self, component: str) -> int:
        try:
            return self._comp[component]
        except KeyError:
            raise KeyError(f"metrics block {self.name!r} has no component {component!r} "
                           f"(has {list(self.schema.components)})") from None

    def index(self, component: str, key: str) -> int:
        """Slot index of a counter or gauge in :attr:`array` (for Numba writers)."""
        base = self._base(component)
        if key in self._counter:
            return base + self._counter[key]
        if key in self._gauge:
            return base + self._gauge[key]
        raise KeyError(f"metrics block {self.name!r} has no counter or gauge {key!r}")

    def counter(self, component: str, key: str) -> Counter:
        """Handle on a u64 counter (resolve once, then ``.add(n)`` / ``.set(v)``)."""
        if key not in self._counter:
            raise KeyError(f"metrics block {self.name!r} has no counter {key!r} "
                           f"(has {list(self.schema.counters)})")
        return Counter(self._u64, self._base(component) + self._counter[key], key)

    def gauge(self, component: str, key: str) -> Counter:
        """Handle on an i64 gauge (``.set(v)``)."""
        if key not in self._gauge:
            raise KeyError(f"metrics block {self.name!r} has no gauge {key!r} "
                           f"(has {list(self.schema.gauges)})")
        return Counter(self._i64, self._base(component) + self._gauge[key], key)

    def histogram(self, component: str) -> Histogram:
        """Handle on the component's latency histogram (``.observe(ns)``)."""
        return Histogram(self._u64, self._base(component) + self._hist, self.schema.bounds_ns)

    def histogram_base(self, component: str) -> int:
        """Slot index of the component's first latency bucket in :attr:`array` (for
        :func:`observe_ns` in Numba kernels, with :attr:`bounds_array`)."""
        return self._base(component) + self._hist

    @property
    def bounds_array(self) -> np.ndarray:
        """The bucket upper bounds (ns) as int64, for :func:`observe_ns`."""
        return np.asarray(self.schema.bounds_ns, dtype=np.int64)

    def declare(self, component: str, *keys: str, latency: bool = False) -> None:
        """Mark the counters and gauges ``component`` emits (and with ``latency`` its
        histogram), so ``/metrics`` exports them even while they are zero. Called once by the
        process that writes ``component``'s slots (it is the single writer of the bitmap too)."""
        base = self._base(component)
        bits = []
        for k in keys:
            if k in self._counter:
                bits.append(self._counter[k])
            elif k in self._gauge:
                bits.append(self._gauge[k])
            else:
                raise KeyError(f"metrics block {self.name!r} has no counter or gauge {k!r}")
        if latency:
            bits.append(self._hist)
        for b in bits:
            i = base + self._declared + b // 64
            self._u64[i] = self._u64[i] | (1 << (b % 64))

    def observe_latency_ns(self, component: str, ns: int) -> None:
        """Count one latency (ns) in ``component``'s histogram."""
        self.histogram(component).observe(ns)

    # ------------------------------------------------------------ readers
    def snapshot(self) -> dict:
        """Every slot as plain Python ints (lock-free; see the module docstring)::

            {"name": str, "ts_ns": int, "bounds_ns": [..],
             "components": {comp: {"counters": {k: int}, "gauges": {k: int}, "declared": [k, ..],
                                   "latency": {"buckets": [..], "count": int, "sum_ns": int,
                                               "declared": bool}}}}
        """
        u = self._u64.tolist()          # one aligned 8-byte load per slot
        s = self.schema
        nc, ng, nb = len(s.counters), len(s.gauges), s.n_buckets
        comps = {}
        for c, base in self._comp.items():
            counters = dict(zip(s.counters, u[base:base + nc]))
            gauges = {k: (v - (1 << 64) if v >= 1 << 63 else v)
                      for k, v in zip(s.gauges, u[base + nc:base + nc + ng])}
            hb = base + nc + ng
            buckets = u[hb:hb + nb]
            dw = hb + nb + 1
            mask = sum(w << (64 * j) for j, w in enumerate(u[dw:dw + s.n_declared_words]))
            declared = [k for i, k in enumerate(s.counters + s.gauges) if mask >> i & 1]
            comps[c] = {"counters": counters, "gauges": gauges, "declared": declared,
                        "latency": {"buckets": buckets, "count": sum(buckets),
                                    "sum_ns": u[hb + nb], "declared": bool(mask >> (nc + ng) & 1)}}
        return {"name": self.name, "ts_ns": time.time_ns(), "bounds_ns": list(s.bounds_ns),
                "components": comps}


@njit(cache=True)
def observe_ns(slots, base, bounds, ns):
    """Numba twin of :meth:`Histogram.observe`: count one latency of ``ns`` nanoseconds.

    ``slots``: ``MetricsBlock.array`` (uint64); ``base``: ``histogram_base(component)``;
    ``bounds``: ``bounds_array`` (int64, ns, increasing). Bucket ``i`` counts
    ``bounds[i-1] < ns <= bounds[i]``, the last one everything above; negative ``ns``
    counts as 0. Single writer per component, as everywhere in the block.
    """
    if ns < 0:
        ns = 0
    i = np.searchsorted(bounds, ns)          # side="left": first bound >= ns
    slots[base + i] += np.uint64(1)
    slots[base + bounds.shape[0] + 1] += np.uint64(ns)


# ---------------------------------------------------------------- readers of snapshots
def histogram_quantile(q: float, bounds_ns: Sequence[int], buckets: Sequence[int]) -> float | None:
    """The ``q`` quantile (0..1) in ns from bucket counts, interpolating linearly
    inside the bucket as Prometheus does; None when empty. Values in the +Inf
    bucket are reported as the last finite bound."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile {q} not in [0, 1]")
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    cum = 0
    for i, n in enumerate(buckets):
        if n and cum + n >= rank:
            if i >= len(bounds_ns):
                return float(bounds_ns[-1])
            lo = 0 if i == 0 else bounds_ns[i - 1]
            return lo + (bounds_ns[i] - lo) * ((rank - cum) / n)
        cum += n
    return float(bounds_ns[-1])


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(v: float | int) -> str:
    return repr(v) if isinstance(v, float) else str(v)


def render_prometheus(snapshot: dict, prefix: str = "alphapulse",
                      help: dict[str, str] | None = None, skip: Iterable[str] = ()) -> str:
    """Prometheus text exposition (format 0.0.4) of a :meth:`MetricsBlock.snapshot`.

    Counters become ``<prefix>_<key>_total{component=..}``, gauges ``<prefix>_<key>{..}``
    (``*_ns`` gauges in seconds as ``*_seconds``, names of :data:`PROM_NAMES` renamed), the
    latency histogram ``<prefix>_latency_seconds_bucket{component=..,le=..}`` (cumulative)
    with ``_sum`` and ``_count``. Every family has ``# HELP`` (from ``help`` over
    :data:`HELP`) and ``# TYPE``. A component's figure appears when the component declared
    it or it is non-zero; a family with no such figure is left out. Keys in ``skip`` are not
    rendered (exported elsewhere).
    """
    comps = snapshot["components"]
    if not comps:
        return ""
    helps = {**HELP, **(help or {})}
    first = next(iter(comps.values()))
    out: list[str] = []

    def family(name: str, kind: str, text: str, samples: list[str]) -> None:
        if samples:
            out.append(f"# HELP {name} {text}")
            out.append(f"# TYPE {name} {kind}")
            out.extend(samples)
    skip = set(skip)
    for kind in ("counters", "gauges"):
        for key in first[kind]:
            if key in skip:
                continue
            samples = []
            ns = key.endswith("_ns")
            pname = PROM_NAMES.get(key, key[:-3] + "_seconds" if ns else key)
            m = f"{prefix}_{pname}_total" if kind == "counters" else f"{prefix}_{pname}"
            for c, d in comps.items():
                v = d[kind][key]
                if v or key in d.get("declared", ()):
                    samples.append(f'{m}{{component="{_esc(c)}"}} {_fmt(v / 1e9 if ns else v)}')
            family(m, "counter" if kind == "counters" else "gauge",
                   helps.get(key, f"AlphaPulse figure {key}."), samples)
    m = f"{prefix}_latency_seconds"
    bounds = snapshot["bounds_ns"]
    samples = []
    for c, d in comps.items():
        lat = d["latency"]
        if not (lat["count"] or lat.get("declared")):
            continue
        samples += prometheus_histogram(m, f'component="{_esc(c)}"', bounds, lat)
    family(m, "histogram", "Latency per component: strategy, a signal's trigger to its publication; "
           "execution, a signal's check; inbound bridge, frame age on arrival.", samples)
    return "\n".join(out) + "\n"


def prometheus_histogram(metric: str, labels: str, bounds_ns: Sequence[int], latency: dict) -> list[str]:
    """The sample lines of one latency histogram (a snapshot's ``latency`` entry) as the
    Prometheus histogram ``metric`` in seconds: cumulative ``_bucket`` lines, ``_sum``, ``_count``.
    ``labels`` is the rendered label set without braces (e.g. ``component="strategy"``)."""
    sep = "," if labels else ""
    out, cum = [], 0
    buckets = latency["buckets"]
    for b, n in zip(bounds_ns, buckets):
        cum += n
        out.append(f'{metric}_bucket{{{labels}{sep}le="{b / 1e9:.9g}"}} {cum}')
    cum += buckets[-1]
    out.append(f'{metric}_bucket{{{labels}{sep}le="+Inf"}} {cum}')
    out.append(f"{metric}_sum{{{labels}}} {latency['sum_ns'] / 1e9:.9f}")
    out.append(f"{metric}_count{{{labels}}} {cum}")
    return out
