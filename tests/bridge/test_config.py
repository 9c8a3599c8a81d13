"""BridgeConfig: derived names and validation errors that name the key."""
import pytest

from alphapulse.apps.config import ConfigError
from alphapulse.bridge import BridgeConfig, run_bridge, run_inbound, run_outbound

BASE = dict(domain="signal", ring="sig", host="hostb")


def test_derived_names():
    c = BridgeConfig.from_mapping(dict(BASE, source_host="hosta"))
    assert c.subject() == "alphapulse.signal.hostb"
    assert c.subject("hosta") == "alphapulse.signal.hosta"
    assert c.inbound_filter() == "alphapulse.signal.hosta"
    assert c.stream_name() == "ALPHAPULSE_SIGNAL" and c.stream_subjects() == ["alphapulse.signal.*"]
    assert c.durable_name() == "in_hostb_signal_from_hosta"
    assert c.ring_consumer_name() == "bridge_out_signal"
    assert c.component("in") == "bridge_in_signal" and int(c.domain_id) == 2
    assert c.state_path().name == "ALPHAPULSE_SIGNAL.in_hostb_signal_from_hosta.state"
    assert BridgeConfig.from_mapping(dict(BASE)).durable_name() == "in_hostb_signal_from_any"


@pytest.mark.parametrize("key,value,problem", [
    ("domain", "prices", "must be one of market_data, signal, execution, system"),
    ("ring", "a/b", "ring name"),
    ("direction", "both", "one of 'out', 'in', ''"),
    ("servers", [], "at least one"),
    ("servers", ["http://x:1"], "nats://"),
    ("host", "a.b", "subject token"),
    ("source_host", "x y", "'*' or"),
    ("stream", "A.B", "1-64"),
    ("max_age_s", 0, "> 0 seconds"),
    ("max_bytes", 1000, ">= 1 MiB"),
    ("duplicate_window_s", 7200.0, "<= max_age_s"),
    ("storage", "disk", "one of 'file', 'memory'"),
    ("batch_max_bytes", 100, "one largest frame"),
    ("batch_max_bytes", 2 << 20, "one NATS message"),
    ("fetch_batch", 0, ">= 1"),
    ("max_ack_pending", 1, ">= fetch_batch"),
    ("ack_wait_s", -1.0, "> 0 seconds"),
    ("verify_checksum_every", -1, ">= 0"),
    ("metrics_block", "metrics", "alphapulse_"),
    ("max_bytes", "big", "must be an integer"),
    ("servers", 5, "must be a list"),
    ("bogus", 1, "unknown key"),
])
def test_each_bad_value_is_named(key, value, problem):
    key_path = f"bridge.{key}" + ("[0]" if key == "servers" and isinstance(value, list) and value else "")
    with pytest.raises(ConfigError) as ei:
        BridgeConfig.from_mapping(dict(BASE, **{key: value}))
    assert ei.value.key == key_path
    assert problem in str(ei.value)


def test_missing_required_key_is_named():
    with pytest.raises(ConfigError) as ei:
        BridgeConfig.from_mapping({"ring": "x"})
    assert ei.value.key == "bridge.domain"
    # the ring may be left to the pipeline, but a bridge cannot run without one
    with pytest.raises(ConfigError) as ei:
        BridgeConfig.from_mapping({"domain": "signal"}).for_run("out")
    assert ei.value.key == "bridge.ring"
    with pytest.raises(ConfigError) as ei:
        BridgeConfig.from_mapping(dict(BASE, direction="in")).for_run("out")
    assert ei.value.key == "bridge.direction"


def test_entry_points_validate_before_doing_anything():
    class Never:
        def is_set(self):
            raise AssertionError("a bridge with a bad config must not start")
    with pytest.raises(ConfigError, match="bridge.max_age_s"):
        run_outbound(Never(), **dict(BASE, max_age_s=-5))
    with pytest.raises(ConfigError, match="bridge.domain"):
        run_inbound(Never(), **dict(BASE, domain="x"))
    with pytest.raises(ConfigError, match="bridge.direction"):
        run_bridge(Never(), **BASE)
    with pytest.raises(ConfigError, match="bridge.ring"):
        run_bridge(Never(), **dict(BASE, ring="", direction="in"))
