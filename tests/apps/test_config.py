"""Configuration: precedence, validation errors that name the key, round trip."""
import tomllib

import pytest

from alphapulse.apps.config import (Config, ConfigError, env_overrides, load_config,
                                    packaged_config, to_toml)


def test_defaults_validate():
    cfg = load_config(environ={})
    assert cfg == Config().validate()
    assert cfg.dashboard.host == "127.0.0.1"


def test_env_overrides_file_and_flags_override_env(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('[strategy]\nmin_net_profit_usd = 1.0\ngas_units_per_hop = 5\n')
    env = {"ALPHAPULSE__STRATEGY__MIN_NET_PROFIT_USD": "2.5"}
    cfg = load_config(f, environ=env)
    assert cfg.strategy.min_net_profit_usd == 2.5
    assert cfg.strategy.gas_units_per_hop == 5
    cfg = load_config(f, environ=env, overrides={"strategy": {"min_net_profit_usd": 9}})
    assert cfg.strategy.min_net_profit_usd == 9.0


def test_partial_nested_table_keeps_other_defaults():
    cfg = load_config(environ={"ALPHAPULSE__RINGS__SIGNAL__CAPACITY": "131072"})
    assert cfg.rings.signal.capacity == 131072
    assert cfg.rings.signal.policy == "lossless"


@pytest.mark.parametrize("env,key", [
    ({"ALPHAPULSE__RINGS__SIGNAL__CAPACITY": "1000"}, "rings.signal.capacity"),
    ({"ALPHAPULSE__RINGS__MARKET_DATA__POLICY": "sometimes"}, "rings.market_data.policy"),
    ({"ALPHAPULSE__STRATEGY__BOGUS": "1"}, "strategy.bogus"),
    ({"ALPHAPULSE__STRATEGY__GAS_UNITS_PER_HOP": '"many"'}, "strategy.gas_units_per_hop"),
    ({"ALPHAPULSE__STRATEGY__WAIT": '"yield"'}, "strategy.wait"),
    ({"ALPHAPULSE__STRATEGY__REALTIME_PRIORITY": "100"}, "strategy.realtime_priority"),
    ({"ALPHAPULSE__DASHBOARD__PORT": "70000"}, "dashboard.port"),
    ({"ALPHAPULSE__SOURCE__KIND": '"rpc"'}, "source.rpc_urls"),
    ({"ALPHAPULSE__SOURCE__SPEED": '"warp"'}, "source.speed"),
    ({"ALPHAPULSE__CHAIN__STABLE_TOKEN": '"0x1234"'}, "chain.stable_token"),
    ({"ALPHAPULSE__LOGGING__LEVEL": '"LOUD"'}, "logging.level"),
])
def test_bad_values_name_the_key(env, key):
    with pytest.raises(ConfigError) as e:
        load_config(environ=env)
    assert e.value.key == key
    assert str(e.value).startswith(f"config error: {key}: ")


def test_bad_toml_file_is_a_config_error(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text("[strategy\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(f, environ={})
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml", environ={})


def test_print_config_round_trips():
    cfg = load_config(packaged_config("polygon"), environ={},
                      overrides={"source": {"rpc_urls": ["wss://example.invalid/ws"]}})
    again = load_config(overrides=tomllib.loads(to_toml(cfg)), environ={})
    assert again == cfg


def test_polygon_config_ships_real_factories_and_tokens():
    cfg = load_config(packaged_config("polygon"), environ={},
                      overrides={"source": {"rpc_urls": ["wss://example.invalid/ws"]}})
    venues = {f.name: (f.venue, f.kind) for f in cfg.chain.factories}
    assert venues == {"QuickSwap": (400, "v2"), "SushiSwap": (401, "v2"), "Uniswap V3": (405, "v3"),
                      "QuickSwap V3": (406, "algebra"), "SushiSwap V3": (407, "v3")}
    addr = {f.venue: f.address.lower() for f in cfg.chain.factories}
    assert addr[406] == "0x411b0facc3489691f28ad58c47006af5e3ab3a28"       # Algebra v1.0 (QuickSwap V3)
    assert addr[407] == "0x917933899c6a5f8e37f31e19f92cdbff7e8ff0e2"       # SushiSwap V3
    symbols = {t.symbol: t.decimals for t in cfg.chain.tokens}
    assert symbols["USDC"] == 6 and symbols["WBTC"] == 8 and symbols["WMATIC"] == 18


def test_env_values_parse_as_toml_literals_or_strings():
    d = env_overrides({"ALPHAPULSE__A__B": "3", "ALPHAPULSE__A__C": "wss://x", "OTHER": "1"})
    assert d == {"a": {"b": 3, "c": "wss://x"}}
