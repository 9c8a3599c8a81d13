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

Numba stores caches beside the sources, else under the user's cache directory;
when neither is writable (a read-only install run without a writable HOME) it
cannot cache at all and fails. :func:`ensure_cache_dir` then points it at a
temporary directory (``NUMBA_CACHE_DIR``), with one warning.
"""
from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]          # .../alphapulse
# Every file a cached kernel can inline from: the layout and all kernel modules (a kernel in
# jit/arb/ inlines pool_state.py, amm_v3.py, wideint.py and the package's other modules; ring
# kernels inline jit and atomics).
SHARED_SOURCES = (_PKG / "protocol" / "layout.py",) + tuple(
    sorted((_PKG / "jit").rglob("*.py")) + sorted((_PKG / "ring").glob("*.py")))
STAMP = _PKG / "jit" / "__pycache__" / "shared_sources.sha256"


KERNEL_DIRS = (_PKG / "jit", _PKG / "jit" / "arb", _PKG / "ring")


def _writable(d: Path) -> bool:
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=d):
            return True
    except OSError:
        return False


def _user_cache_dir() -> Path:
    from numba.misc.appdirs import AppDirs
    return Path(AppDirs(appname="numba", appauthor=False).user_cache_dir)


def ensure_cache_dir(in_tree: tuple[Path, ...] | None = None, user: Path | None = None) -> str | None:
    """Point Numba's cache at a new temporary directory when neither the kernels' ``__pycache__``
    directories (``in_tree``) nor the user's cache directory (``user``) can be written and
    ``NUMBA_CACHE_DIR`` is not set; returns that directory, else None."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    dirs = in_tree if in_tree is not None else tuple(d / "__pycache__" for d in KERNEL_DIRS)
    if all(_writable(d) for d in dirs) or _writable(user if user is not None else _user_cache_dir()):
        return None
    tmp = tempfile.mkdtemp(prefix="alphapulse-numba-")
    os.environ["NUMBA_CACHE_DIR"] = tmp
    from numba.core import config
    config.CACHE_DIR = tmp
    logging.getLogger("alphapulse.jit").warning(
        "neither the package directory nor the user's cache directory is writable: compiled "
        "kernels are cached in %s for this run only (set NUMBA_CACHE_DIR to keep them)", tmp)
    return tmp


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
