"""SQLite pool cache: known pools, token decimals and the blacklist survive restarts.

WAL mode, one transaction per write (atomic upserts), a versioned schema. A
file written by a newer or unknown schema is refused with a clear error rather
than misread.
"""
from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time

from alphapulse.adapters.evm.providers import PoolInfo

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pools (
    chain_id INTEGER NOT NULL, address BLOB NOT NULL, kind INTEGER NOT NULL,
    venue INTEGER NOT NULL, factory BLOB NOT NULL, token0 BLOB NOT NULL, token1 BLOB NOT NULL,
    decimals0 INTEGER NOT NULL, decimals1 INTEGER NOT NULL, fee_pips INTEGER NOT NULL,
    tick_spacing INTEGER NOT NULL, discovered_block INTEGER NOT NULL, updated_ns INTEGER NOT NULL,
    PRIMARY KEY (chain_id, address));
CREATE TABLE IF NOT EXISTS tokens (
    chain_id INTEGER NOT NULL, address BLOB NOT NULL, decimals INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL, PRIMARY KEY (chain_id, address));
CREATE TABLE IF NOT EXISTS ignored (
    chain_id INTEGER NOT NULL, address BLOB NOT NULL, what TEXT NOT NULL, reason TEXT NOT NULL,
    updated_ns INTEGER NOT NULL, PRIMARY KEY (chain_id, address));
"""


class CacheError(RuntimeError):
    pass


class PoolCache:
    """Persistent pools/tokens/ignored addresses of one chain.

    ``ignored`` holds addresses never to look at again: pools of factories we do
    not follow, pools outside the token filter, and blacklisted tokens (``what``
    says which, ``reason`` why).
    """

    def __init__(self, path: str, chain_id: int) -> None:
        self.path = path
        self.chain_id = chain_id
        if path != ":memory:":
            d = os.path.dirname(os.path.abspath(path))
            os.makedirs(d, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=10.0, isolation_level=None, check_same_thread=False)
        if path != ":memory:":
            mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise CacheError(f"{path}: could not enable WAL (journal_mode={mode})")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._migrate()

    def _migrate(self) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                has_meta = self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
                ver = None
                if has_meta:
                    row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
                    ver = int(row[0]) if row else None
                if ver is None:
                    others = self._db.execute(
                        "SELECT name FROM sqlite_master WHERE type='table' AND name!='meta'").fetchall()
                    if others:
                        raise CacheError(f"{self.path}: not an AlphaPulse pool cache "
                                         f"(tables {[r[0] for r in others]}, no schema_version)")
                    for stmt in _SCHEMA.strip().split(";"):
                        if stmt.strip():
                            self._db.execute(stmt)
                    self._db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)",
                                     (str(SCHEMA_VERSION),))
                elif ver != SCHEMA_VERSION:
                    raise CacheError(f"{self.path}: pool cache schema version {ver}, this code "
                                     f"reads {SCHEMA_VERSION}; delete the file to rebuild it")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    def schema_version(self) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    # -- pools --
    def upsert_pool(self, p: PoolInfo, discovered_block: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO pools VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(chain_id, address) "
                "DO UPDATE SET kind=excluded.kind, venue=excluded.venue, factory=excluded.factory, "
                "token0=excluded.token0, token1=excluded.token1, decimals0=excluded.decimals0, "
                "decimals1=excluded.decimals1, fee_pips=excluded.fee_pips, "
                "tick_spacing=excluded.tick_spacing, discovered_block=excluded.discovered_block, "
                "updated_ns=excluded.updated_ns",
                (self.chain_id, p.address, p.kind, p.venue, p.factory, p.token0, p.token1,
                 p.decimals0, p.decimals1, p.fee_pips, p.tick_spacing, discovered_block, time.time_ns()))

    def load_pools(self) -> dict[bytes, PoolInfo]:
        rows = self._db.execute(
            "SELECT address, kind, venue, factory, token0, token1, decimals0, decimals1, fee_pips, "
            "tick_spacing FROM pools WHERE chain_id=?", (self.chain_id,)).fetchall()
        return {bytes(r[0]): PoolInfo(bytes(r[0]), r[1], r[2], bytes(r[3]), bytes(r[4]), bytes(r[5]),
                                      r[6], r[7], r[8], r[9]) for r in rows}

    # -- tokens --
    def upsert_token(self, address: bytes, decimals: int) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO tokens VALUES (?,?,?,?) ON CONFLICT(chain_id, address) DO UPDATE SET "
                "decimals=excluded.decimals, updated_ns=excluded.updated_ns",
                (self.chain_id, address, decimals, time.time_ns()))

    def load_tokens(self) -> dict[bytes, int]:
        rows = self._db.execute("SELECT address, decimals FROM tokens WHERE chain_id=?",
                                (self.chain_id,)).fetchall()
        return {bytes(a): d for a, d in rows}

    # -- ignored / blacklisted --
    def upsert_ignored(self, address: bytes, what: str, reason: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO ignored VALUES (?,?,?,?,?) ON CONFLICT(chain_id, address) DO UPDATE SET "
                "what=excluded.what, reason=excluded.reason, updated_ns=excluded.updated_ns",
                (self.chain_id, address, what, reason, time.time_ns()))

    def load_ignored(self) -> dict[bytes, tuple[str, str]]:
        rows = self._db.execute("SELECT address, what, reason FROM ignored WHERE chain_id=?",
                                (self.chain_id,)).fetchall()
        return {bytes(a): (w, r) for a, w, r in rows}

    def clear_ignored(self, what: str) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM ignored WHERE chain_id=? AND what=?",
                                    (self.chain_id, what)).rowcount

    def clear_chain(self) -> None:
        """Forget every pool, token and ignored address of this chain (one transaction)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for table in ("pools", "tokens", "ignored"):
                    self._db.execute(f"DELETE FROM {table} WHERE chain_id=?", (self.chain_id,))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- meta --
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO meta VALUES (?,?) ON CONFLICT(key) DO UPDATE SET "
                             "value=excluded.value", (key, value))

    def close(self) -> None:
        with self._lock:
            self._db.close()
