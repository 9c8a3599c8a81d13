"""Invalidate Numba's on-disk caches when a shared definition changes.

Numba's ``cache=True`` keys a cached kernel on its own source file only. The
kernels of this project inline code and constants from other files: layout
offsets (``protocol/layout.py``), the byte loads (``memory.py``), the generated
row loaders (``columns.py``), the CRC and frame checks. After such a file
changes, a cached kernel elsewhere would keep the old offsets and silently
decode the wrong bytes. :func:`check` (run when ``alphapulse.jit`` is imported,
before any kernel loads) hashes those files and, when the hash differs from the
one stored beside the caches, deletes the cache files of the whole package so
every kernel recompiles once. Caches placed elsewhere with ``NUMBA_CACHE_DIR``
are not touched: clear that directory yourself after changing these files.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]          # .../alphapulse
# Every file a cached kernel can inline from: the layout and all kernel modules (a kernel in
# arb.py inlines pool_state.py, amm_v3.py, wideint.py ...; ring kernels inline jit and atomics).
SHARED_SOURCES = (_PKG / "protocol" / "layout.py",) + tuple(
    sorted((_PKG / "jit").glob("*.py")) + sorted((_PKG / "ring").glob("*.py")))
STAMP = _PKG / "jit" / "__pycache__" / "shared_sources.sha256"


def fingerprint() -> str:
    h = hashlib.sha256()
    for p in SHARED_SOURCES:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def check() -> bool:
    """Clear stale package caches if the shared sources changed; True if it cleared."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return False
    try:
        fp = fingerprint()
        old = STAMP.read_text().strip() if STAMP.exists() else None
        if old == fp:
            return False
        cleared = False
        if old is not None:
            for cache in _PKG.rglob("__pycache__/*.nb[ic]"):
                try:
                    cache.unlink()
                    cleared = True
                except FileNotFoundError:
                    pass
        STAMP.parent.mkdir(exist_ok=True)
        tmp = STAMP.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(fp + "\n")
        os.replace(tmp, STAMP)
        return cleared
    except OSError:                     # read-only install: nothing we can clear
        return False
