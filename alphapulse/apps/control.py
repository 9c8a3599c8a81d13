"""Hot reload: the settings that can change while the pipeline runs, and how they reach it.

The supervisor owns a small shared-memory *control block* (segment name prefix
``alphapulse_``). On ``SIGHUP`` (or ``python -m alphapulse.apps.pipeline reload``, which sends it)
it re-reads the configuration, publishes the reloadable settings (:data:`RELOADABLE`) in the
block as JSON under a new generation number, and names in one log line the changed keys that
need a restart (left as they were). Each component polls the generation where it already wakes
up (its heartbeat, every 0.5 s): one aligned 8-byte load, never inside a kernel or per frame.

Layout (little-endian)::

    0   magic  b"APCTRL01"
    8   u64    generation: odd while the supervisor writes, even when complete
    16  u32    bytes of JSON that follow
    20  JSON   {"logging": {...}, "strategy": {...}, "dashboard": {...}, "execution": {...}}

One writer (the supervisor). A reader takes the generation, the JSON, and the generation again,
and keeps the JSON only when both are the same even number (a seqlock); on a torn read it tries
again at its next poll. Every slot access is an aligned single load or store (see
``alphapulse.metrics`` for the argument); the JSON copy between the two generation stores is
ordered by the stores themselves on x86-64 (TSO) and, on AArch64, by the release semantics of
the lock CPython takes around them.
"""
from __future__ import annotations

import json
import logging
import struct
from typing import Any

from alphapulse.apps.seqblock import SeqlockBlock

log = logging.getLogger("alphapulse.control")

MAGIC = b"APCTRL01"
_HEAD = struct.Struct("<8sQI")
SIZE = 1 << 16

#: Settings applied without a restart, by section, and who applies them.
RELOADABLE: dict[str, tuple[str, ...]] = {
    # every component process: the root logger's level
    "logging": ("level",),
    # the strategy: written into its engine's parameter array between batches
    "strategy": ("min_net_profit_usd", "gas_units_base", "gas_units_per_hop", "max_input_share_bps",
                 "material_change_bps", "republish_min_blocks", "min_price_depth_usd"),
    # the dashboard: renders per second per browser session
    "dashboard": ("rate_limit_hz",),
    # the execution component: check backlog and the send-mode limits
    "execution": ("max_backlog", "min_profit_usd", "max_gas_price_gwei"),
}


def reloadable_settings(cfg: Any) -> dict[str, dict[str, Any]]:
    """The reloadable part of a pipeline ``Config``, as the control block carries it."""
    return {sec: {k: getattr(getattr(cfg, sec), k) for k in keys} for sec, keys in RELOADABLE.items()}


def config_changes(old: Any, new: Any) -> tuple[list[str], list[str]]:
    """Dotted keys that differ between two ``Config``s: (reloadable, needing a restart)."""
    import dataclasses

    def flat(obj: Any, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        if dataclasses.is_dataclass(obj):
            for f in dataclasses.fields(obj):
                out.update(flat(getattr(obj, f.name), f"{prefix}{f.name}."))
            return out
        return {prefix[:-1]: obj}
    a, b = flat(old), flat(new)
    changed = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    live = {f"{s}.{k}" for s, keys in RELOADABLE.items() for k in keys}
    return [k for k in changed if k in live], [k for k in changed if k not in live]


class ControlBlock(SeqlockBlock):
    """The control block: :meth:`create` (the supervisor, the only writer) or :meth:`attach`."""

    MAGIC, SIZE, WHAT = MAGIC, SIZE, "control block"

    def __init__(self, name: str, buf: memoryview, keep: Any, owner: bool) -> None:
        super().__init__(name, buf, keep, owner)
        self.seen = 0                      # the generation this reader last applied

    @classmethod
    def create(cls, name: str, settings: dict) -> "ControlBlock":
        blk = cls._create(name)
        blk.publish(settings)
        blk._seal()
        return blk

    def publish(self, settings: dict) -> int:
        """Write ``settings`` under the next generation; returns it (supervisor only)."""
        raw = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
        if _HEAD.size + len(raw) > SIZE:
            raise ValueError(f"control settings of {len(raw)} bytes do not fit the block")
        self._begin_write()
        struct.pack_into("<I", self._buf, 16, len(raw))
        self._buf[20:20 + len(raw)] = raw
        return self._end_write()

    def poll(self) -> dict | None:
        """The settings when a new complete generation is there since the last poll, else None."""
        g = self._gen[0]
        if g == self.seen or g & 1:
            return None
        n = struct.unpack_from("<I", self._buf, 16)[0]
        raw = bytes(self._buf[20:20 + min(n, SIZE - 20)])
        if self._gen[0] != g:
            return None                              # torn: the next poll tries again
        try:
            settings = json.loads(raw)
        except ValueError:
            log.error("control block %s generation %d is not JSON: ignored", self.name, g)
            self.seen = g
            return None
        self.seen = g
        return settings


_handlers: list[Any] = []


def on_reload(fn: Any) -> None:
    """Call ``fn(settings)`` in this component process on every new generation (from the
    process's control thread: for settings a plain assignment applies, such as a rate)."""
    _handlers.append(fn)


def watch(name: str, stop: Any, interval_s: float = 0.5) -> None:
    """A component process's control thread: applies ``logging.level`` and calls the
    :func:`on_reload` handlers on every new generation, until ``stop`` is set."""
    try:
        blk = ControlBlock.attach(name)
    except (FileNotFoundError, ValueError) as e:
        log.warning("control block %s not usable (%s): settings are not reloaded here", name, e)
        return
    try:
        while not stop.wait(interval_s):
            s = blk.poll()
            if s is None:
                continue
            level = s.get("logging", {}).get("level")
            if level:
                logging.getLogger().setLevel(level)
            for fn in list(_handlers):
                try:
                    fn(s)
                except Exception:              # a bad handler must not end the watcher
                    log.exception("reload handler %r failed", fn)
    finally:
        blk.close()
