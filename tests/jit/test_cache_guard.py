"""cache_guard clears stale Numba caches when a shared definition changes."""
from __future__ import annotations

from alphapulse.jit import cache_guard as G


def test_clears_package_caches_only_when_shared_sources_change(tmp_path, monkeypatch):
    pkg = tmp_path / "alphapulse"
    src = pkg / "protocol" / "layout.py"
    src.parent.mkdir(parents=True)
    src.write_text("A = 1\n")
    caches = [pkg / "jit" / "__pycache__" / "decode.decode_tlvs-1.py311.nbi",
              pkg / "ring" / "__pycache__" / "x.k-2.py311.1.nbc"]
    for c in caches:
        c.parent.mkdir(parents=True, exist_ok=True)
        c.write_bytes(b"x")
    keep = pkg / "jit" / "__pycache__" / "decode.cpython-311.pyc"
    keep.write_bytes(b"x")
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(G, "_PKG", pkg)
    monkeypatch.setattr(G, "SHARED_SOURCES", (src,))
    monkeypatch.setattr(G, "STAMP", pkg / "jit" / "__pycache__" / "shared_sources.sha256")

    assert G.check() is False                    # first sight: record the fingerprint
    assert all(c.exists() for c in caches)
    assert G.check() is False                    # unchanged: keep caches
    src.write_text("A = 2\n")                    # a layout change
    assert G.check() is True
    assert not any(c.exists() for c in caches) and keep.exists()
    assert G.check() is False


def test_leaves_an_explicit_cache_dir_alone(monkeypatch):
    monkeypatch.setenv("NUMBA_CACHE_DIR", "/nonexistent")
    assert G.check() is False


def test_no_writable_cache_directory_falls_back_to_a_temporary_one_with_one_warning(tmp_path, monkeypatch,
                                                                                   caplog):
    import os

    from numba.core import config
    blocker = tmp_path / "a-file"
    blocker.write_text("")                       # nothing can be created under a file, even by root
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    monkeypatch.setattr(config, "CACHE_DIR", config.CACHE_DIR)
    assert G.ensure_cache_dir((tmp_path / "ok",), blocker / "home") is None        # in-tree writable
    assert G.ensure_cache_dir((blocker / "pkg",), tmp_path / "home") is None       # user dir writable
    with caplog.at_level("WARNING"):
        d = G.ensure_cache_dir((blocker / "jit", blocker / "ring"), blocker / "home" / ".cache")
    assert d and os.path.isdir(d) and os.environ["NUMBA_CACHE_DIR"] == d == config.CACHE_DIR
    assert len([r for r in caplog.records if "for this run only" in r.message]) == 1
    assert G.ensure_cache_dir((blocker / "jit",), blocker / "h") is None          # set now: once
    os.rmdir(d)
