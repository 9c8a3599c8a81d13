"""Two pipelines on one machine joined by the NATS bridge, configured through the app:
host A runs the source and bridges market data out; host B bridges it in and runs the strategy,
bridging its signals back to A."""
import tomllib

from alphapulse.apps.config import ConfigError, load_config
from alphapulse.bridge import NatsServer
from tests.apps.pipeline_helpers import PipelineProcess

import pytest


def _toml(path, components, bridges):
    lines = ["[supervisor]", "components = [" + ", ".join(f'"{c}"' for c in components) + "]", ""]
    for b in bridges:
        lines.append("[[bridges]]")
        for k, v in b.items():
            lines.append(f"{k} = " + (f'"{v}"' if isinstance(v, str) else
                                      "[" + ", ".join(f'"{x}"' for x in v) + "]"))
        lines.append("")
    path.write_text("\n".join(lines))
    tomllib.loads(path.read_text())
    return str(path)


def test_bridge_tables_are_validated_naming_the_key():
    with pytest.raises(ConfigError) as e:
        load_config(environ={}, overrides={"bridges": [{"domain": "market_data", "direction": "sideways"}]})
    assert e.value.key.startswith("bridges[0].direction")
    with pytest.raises(ConfigError) as e:
        load_config(environ={}, overrides={"supervisor": {"components": ["source", "oracle"]}})
    assert e.value.key == "supervisor.components[1]"


def test_two_pipelines_joined_by_the_bridge(tmp_path):
    with NatsServer(store_dir=tmp_path / "js") as nats:
        a_cfg = _toml(tmp_path / "a.toml", ["source"], [
            {"domain": "market_data", "direction": "out", "servers": [nats.url], "host": "hosta",
             "state_dir": str(tmp_path / "a_state")},
            {"domain": "signal", "direction": "in", "servers": [nats.url], "host": "hosta",
             "source_host": "hostb", "state_dir": str(tmp_path / "a_state")}])
        b_cfg = _toml(tmp_path / "b.toml", ["strategy"], [
            {"domain": "market_data", "direction": "in", "servers": [nats.url], "host": "hostb",
             "source_host": "hosta", "state_dir": str(tmp_path / "b_state")},
            {"domain": "signal", "direction": "out", "servers": [nats.url], "host": "hostb",
             "state_dir": str(tmp_path / "b_state")}])
        b = PipelineProcess("--config", b_cfg, dashboard=False)
        a = PipelineProcess("--config", a_cfg, "--speed", "20", dashboard=False)
        try:
            b.wait_for(lambda: b.metric("alphapulse_signals_total", "strategy") > 0, 60,
                       "signals on host B from host A's market data")
            a.wait_for(lambda: a.metric("alphapulse_frames_out_total", "bridge_in_signal") > 0, 30,
                       "host B's signals back on host A")
            assert a.metric("alphapulse_signals_total", "strategy") <= 0   # A runs no strategy
        finally:
            codes = (a.stop(), b.stop())
        assert codes == (0, 0), a.output()[-2000:] + b.output()[-2000:]
        assert a.segments() == [] and b.segments() == []
