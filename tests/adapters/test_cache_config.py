"""The SQLite pool cache (persistence, upserts, schema version) and the adapter config."""
import multiprocessing as mp
import sqlite3

import pytest

from alphapulse.adapters.evm.cache import SCHEMA_VERSION, CacheError, PoolCache
from alphapulse.adapters.evm.config import ConfigError, EvmDataClientConfig, FactoryConfig
from alphapulse.adapters.evm.providers import PoolInfo

P = PoolInfo(b"\x01" * 20, 1, 400, b"\x02" * 20, b"\x03" * 20, b"\x04" * 20, 18, 6, 3000, 0)
Q = PoolInfo(b"\x05" * 20, 2, 405, b"\x06" * 20, b"\x03" * 20, b"\x04" * 20, 18, 6, 500, 10)


def test_pools_tokens_ignored_survive_reopen(tmp_path):
    path = str(tmp_path / "c" / "pools.sqlite")
    c = PoolCache(path, 137)
    c.upsert_pool(P, 10)
    c.upsert_pool(Q, 11)
    c.upsert_token(b"\x03" * 20, 18)
    c.upsert_ignored(b"\x09" * 20, "token", "decimals() reverted")
    c.close()
    c = PoolCache(path, 137)
    assert c.load_pools() == {P.address: P, Q.address: Q}
    assert c.load_tokens() == {b"\x03" * 20: 18}
    assert c.load_ignored() == {b"\x09" * 20: ("token", "decimals() reverted")}
    assert c.schema_version == SCHEMA_VERSION
    assert c._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # another chain id sees nothing
    assert PoolCache(path, 1).load_pools() == {}


def test_upsert_replaces_not_duplicates(tmp_path):
    c = PoolCache(str(tmp_path / "p.sqlite"), 137)
    c.upsert_pool(P, 10)
    import dataclasses
    P2 = dataclasses.replace(P, decimals1=8, fee_pips=100)
    c.upsert_pool(P2, 12)
    assert c.load_pools() == {P.address: P2}
    assert c._db.execute("SELECT count(*) FROM pools").fetchone()[0] == 1


def _writer(path, n):
    c = PoolCache(path, 137)
    for i in range(n):
        c.upsert_pool(PoolInfo(i.to_bytes(20, "big"), 1, 400, b"\x02" * 20, b"\x03" * 20,
                               b"\x04" * 20, 18, 6, 3000, 0), i)
    c.close()


def test_concurrent_writers_from_processes(tmp_path):
    path = str(tmp_path / "p.sqlite")
    PoolCache(path, 137).close()
    ps = [mp.get_context("spawn").Process(target=_writer, args=(path, 200)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(60)
        assert p.exitcode == 0
    assert len(PoolCache(path, 137).load_pools()) == 200


def test_foreign_or_newer_schema_refused(tmp_path):
    path = str(tmp_path / "x.sqlite")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE stuff (a)")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="not an AlphaPulse pool cache"):
        PoolCache(path, 137)
    path = str(tmp_path / "y.sqlite")
    PoolCache(path, 137).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    db.commit()
    db.close()
    with pytest.raises(CacheError, match="schema version 99"):
        PoolCache(path, 137)


FAC = FactoryConfig(address="0x" + "aa" * 20, venue=400, kind="v2")


def test_config_valid_and_derived_views():
    c = EvmDataClientConfig(endpoints=("ws://127.0.0.1:1",), factories=(FAC,),
                            tokens=("0x" + "Bb" * 20,), known_decimals={"0x" + "cc" * 20: 6})
    assert c.factory_map() == {b"\xaa" * 20: FAC}
    assert c.token_set() == {b"\xbb" * 20}
    assert c.known_decimals_bytes() == {b"\xcc" * 20: 6}
    # factories may come as plain tables (TOML)
    c2 = EvmDataClientConfig(endpoints=("ws://x",), factories=({"address": "0x" + "aa" * 20,
                                                                 "venue": 400, "kind": "v2"},))
    assert c2.factories == (FAC,)


@pytest.mark.parametrize("kw,key", [
    (dict(endpoints=()), "adapter.endpoints"),
    (dict(endpoints=("http://x",)), "adapter.endpoints[0]"),
    (dict(factories=()), "adapter.factories"),
    (dict(factories=(FactoryConfig("0x12", 400, "v2"),)), "adapter.factories[0].address"),
    (dict(factories=(FactoryConfig("0x" + "aa" * 20, 400, "v4"),)), "adapter.factories[0].kind"),
    (dict(factories=(FAC, FAC)), "adapter.factories[1].address"),
    (dict(tokens=("nope",)), "adapter.tokens[0]"),
    (dict(backoff_initial_s=0), "adapter.backoff_initial_s"),
    (dict(backoff_initial_s=20.0, backoff_max_s=10.0), "adapter.backoff_initial_s"),
    (dict(backoff_jitter=1.5), "adapter.backoff_jitter"),
    (dict(watchdog_s=-1), "adapter.watchdog_s"),
    (dict(reorg_depth=0), "adapter.reorg_depth"),
    (dict(rpc_batch_size=True), "adapter.rpc_batch_size"),
    (dict(start_block=-3), "adapter.start_block"),
    (dict(chain_id=0), "adapter.chain_id"),
    (dict(known_decimals={"0x" + "cc" * 20: 300}), "adapter.known_decimals"),
    (dict(token_match="some"), "adapter.token_match"),
])
def test_config_errors_name_the_key(kw, key):
    base = dict(endpoints=("ws://127.0.0.1:1",), factories=(FAC,))
    base.update(kw)
    with pytest.raises(ConfigError) as ei:
        EvmDataClientConfig(**base)
    assert ei.value.key.startswith(key), ei.value.key


def test_from_pipeline_config(tmp_path):
    from alphapulse.apps.config import load_config, packaged_config
    cfg = load_config(packaged_config("polygon"), environ={},
                      overrides={"source": {"rpc_urls": ["wss://node.example/ws"]},
                                 "chain": {"pool_cache": str(tmp_path / "p.sqlite")}})
    a = EvmDataClientConfig.from_pipeline(cfg)
    assert a.endpoints == ("wss://node.example/ws",) and a.chain_id == 137
    assert {f.venue for f in a.factories} == {400, 401, 405, 406, 407}
    assert len(a.tokens) == 7 and a.known_decimals_bytes()[bytes.fromhex("2791bca1f2de4661ed88a30c99a7a9449aa84174")] == 6
