"""The shared-memory metrics block: layout, cross-process reads, life cycle, Prometheus text."""
from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import subprocess
import uuid
from multiprocessing import shared_memory

import pytest

from alphapulse.metrics import (
    DEFAULT_BOUNDS_NS, DEFAULT_COUNTERS, DEFAULT_GAUGES, MetricsBlock, histogram_quantile,
    observe_ns, render_prometheus,
)


@pytest.fixture
def name():
    n = f"alphapulse_test_metrics_{uuid.uuid4().hex[:10]}"
    yield n
    assert not os.path.exists(f"/dev/shm/{n}"), "metrics segment left behind"


def test_counters_gauges_histogram_roundtrip(name):
    with MetricsBlock.create(name, ["source", "strategy"]) as m:
        r = MetricsBlock.attach(name)
        m.counter("strategy", "frames_in").add(7)
        m.counter("strategy", "frames_in").add()
        m.counter("source", "frames_out").set(2 ** 64 - 1)       # full u64 range
        m.gauge("strategy", "last_block").set(-5)                 # gauges are signed
        m.gauge("source", "last_block").set(2 ** 63 - 1)
        for ns in (0, 1000, 1001, 2000, 7_000_000, 10 ** 12, -4):
            m.observe_latency_ns("strategy", ns)
        s = r.snapshot()
        st, so = s["components"]["strategy"], s["components"]["source"]
        assert st["counters"]["frames_in"] == 8
        assert so["counters"]["frames_out"] == 2 ** 64 - 1
        assert st["gauges"]["last_block"] == -5
        assert so["gauges"]["last_block"] == 2 ** 63 - 1
        assert so["counters"]["frames_in"] == 0                   # components are separate
        b = st["latency"]["buckets"]
        assert len(b) == len(DEFAULT_BOUNDS_NS) + 1
        # bucket i holds bounds[i-1] < ns <= bounds[i]; -4 clamps to 0
        assert b[0] == 3 and b[1] == 2                            # {0, 1000, -4} and {1001, 2000}
        assert b[DEFAULT_BOUNDS_NS.index(10_000_000)] == 1        # 7 ms
        assert b[-1] == 1                                         # +Inf
        assert st["latency"]["count"] == 7
        assert st["latency"]["sum_ns"] == 1000 + 1001 + 2000 + 7_000_000 + 10 ** 12
        assert set(st["counters"]) == set(DEFAULT_COUNTERS)
        assert set(st["gauges"]) == set(DEFAULT_GAUGES)
        r.close()


def test_components_do_not_share_cache_lines(name):
    with MetricsBlock.create(name, ["a", "b", "c"]) as m:
        spc = m.schema.slots_per_component
        assert spc * 8 % 64 == 0
        assert m.index("b", DEFAULT_COUNTERS[0]) * 8 % 64 == 0
        assert m.index("b", DEFAULT_COUNTERS[0]) - m.index("a", DEFAULT_COUNTERS[0]) == spc
        # Numba/numpy writers index the same slots as the handles
        m.array[m.index("c", "signals")] += 3
        assert m.counter("c", "signals").value == 3


def test_clear_errors(name):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MetricsBlock.attach(name)
    with pytest.raises(ValueError, match="must start with"):
        MetricsBlock.create("metrics", ["a"])
    with pytest.raises(ValueError, match="duplicate"):
        MetricsBlock.create(name, ["a", "a"])
    with MetricsBlock.create(name, ["a"]) as m:
        with pytest.raises(FileExistsError):
            MetricsBlock.create(name, ["a"])
        with pytest.raises(KeyError, match="no component 'zz'"):
            m.counter("zz", "frames_in")
        with pytest.raises(KeyError, match="no counter 'last_block'"):
            m.counter("a", "last_block")
        with pytest.raises(KeyError, match="no gauge 'frames_in'"):
            m.gauge("a", "frames_in")
    other = shared_memory.SharedMemory(name=name, create=True, size=4096)
    try:
        with pytest.raises(ValueError, match="not a metrics block"):
            MetricsBlock.attach(name)
    finally:
        other.close()
        other.unlink()


def _child_attach_and_exit(name: str) -> None:
    m = MetricsBlock.attach(name)
    m.counter("a", "frames_in").add(41)
    m.close()


def test_attacher_exit_never_unlinks(name):
    """An attaching process that exits must not take the owner's segment with it."""
    ctx = mp.get_context("spawn")
    with MetricsBlock.create(name, ["a"]):
        p = ctx.Process(target=_child_attach_and_exit, args=(name,))
        p.start()
        p.join(60)
        assert p.exitcode == 0
        assert os.path.exists(f"/dev/shm/{name}")
        assert MetricsBlock.attach(name).snapshot()["components"]["a"]["counters"]["frames_in"] == 41
    assert not os.path.exists(f"/dev/shm/{name}")


def _writer(name: str, n: int, go) -> None:
    m = MetricsBlock.attach(name)
    c, g = m.counter("w", "frames_in"), m.gauge("w", "last_block")
    go.set()
    for i in range(n):
        c.add(1)
        g.set(-1 if i & 1 else 0x0123456789ABCDEF)   # bytes differ in every position
    m.close()


def test_lock_free_reads_across_processes(name):
    """A reader in another process sees whole values only and monotonic counters."""
    n = int(os.environ.get("ALPHAPULSE_METRICS_STRESS", "300000"))
    ctx = mp.get_context("spawn")
    with MetricsBlock.create(name, ["w"]) as m:
        go = ctx.Event()
        p = ctx.Process(target=_writer, args=(name, n, go))
        p.start()
        assert go.wait(60)
        last, seen = 0, set()
        while p.is_alive() or last < n:
            d = m.snapshot()["components"]["w"]
            v = d["counters"]["frames_in"]
            assert last <= v <= n
            last = v
            seen.add(d["gauges"]["last_block"])
            if not p.is_alive() and v < n:
                break
        p.join(60)
        assert p.exitcode == 0
        assert m.counter("w", "frames_in").value == n
        assert seen <= {0, -1, 0x0123456789ABCDEF}, f"torn gauge values {seen}"


def test_quantiles():
    bounds = (10, 20, 50)
    assert histogram_quantile(0.5, bounds, [0, 0, 0, 0]) is None
    assert histogram_quantile(0.5, bounds, [0, 4, 0, 0]) == 15.0      # midpoint of (10, 20]
    assert histogram_quantile(1.0, bounds, [1, 0, 0, 0]) == 10.0
    assert histogram_quantile(0.99, bounds, [0, 0, 0, 5]) == 50.0     # +Inf reports last bound
    assert histogram_quantile(0.25, bounds, [1, 1, 1, 1]) == 10.0
    with pytest.raises(ValueError):
        histogram_quantile(1.5, bounds, [1, 0, 0, 0])


_LINE = re.compile(r'^([a-z_]+)\{([^}]*)\} (\S+)$')


def test_prometheus_text(name):
    with MetricsBlock.create(name, ["source", "strategy_2"]) as m:
        m.counter("source", "frames_out").add(12)
        m.gauge("source", "rpc_connected").set(1)
        for ns in (1500, 1500, 30_000, 2 * 10 ** 10):
            m.observe_latency_ns("source", ns)
        text = render_prometheus(m.snapshot())
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            _, _, metric, kind = line.split()
            types[metric] = kind
            continue
        if line.startswith("#"):
            continue
        mt = _LINE.match(line)
        assert mt, f"bad exposition line {line!r}"
        samples[(mt.group(1), mt.group(2))] = float(mt.group(3))
    assert types["alphapulse_frames_out_total"] == "counter"
    assert types["alphapulse_rpc_connected"] == "gauge"
    assert types["alphapulse_latency_seconds"] == "histogram"
    assert samples[("alphapulse_frames_out_total", 'component="source"')] == 12
    assert samples[("alphapulse_rpc_connected", 'component="source"')] == 1
    # a component that declared nothing and wrote nothing shows no zeros
    assert not [k for k in samples if 'component="strategy_2"' in k[1]]
    cum = [v for (metric, lab), v in samples.items()
           if metric == "alphapulse_latency_seconds_bucket" and 'component="source"' in lab]
    assert cum == sorted(cum) and cum[-1] == 4                         # cumulative, +Inf = count
    assert samples[("alphapulse_latency_seconds_bucket", 'component="source",le="2e-06"')] == 2
    assert samples[("alphapulse_latency_seconds_count", 'component="source"')] == 4
    assert samples[("alphapulse_latency_seconds_sum", 'component="source"')] == pytest.approx(20.000033)


def test_prometheus_declared_and_help(name):
    """Declared figures are exported from zero, undeclared zeros are not; every family has
    HELP and TYPE; ``*_ns`` gauges come out in seconds under a base-unit name."""
    from prometheus_client.parser import text_string_to_metric_families
    with MetricsBlock.create(name, ["a", "b"]) as m:
        m.declare("a", "frames_lost", "heartbeat_ns", latency=True)
        m.gauge("a", "heartbeat_ns").set(1_700_000_000_500_000_000)
        m.counter("b", "signals").add(3)                  # undeclared but non-zero: shown
        with pytest.raises(KeyError):
            m.declare("a", "no_such_figure")
        text = render_prometheus(m.snapshot())
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(fams) == {"alphapulse_frames_lost", "alphapulse_signals",
                         "alphapulse_heartbeat_timestamp_seconds", "alphapulse_latency_seconds"}
    assert [(s.labels, s.value) for s in fams["alphapulse_frames_lost"].samples] == [({"component": "a"}, 0)]
    assert [s.labels["component"] for s in fams["alphapulse_signals"].samples] == ["b"]
    assert fams["alphapulse_heartbeat_timestamp_seconds"].samples[0].value == pytest.approx(1_700_000_000.5)
    lat = fams["alphapulse_latency_seconds"]
    assert lat.type == "histogram" and {s.labels["component"] for s in lat.samples} == {"a"}
    for f in fams.values():
        assert f.documentation, f.name
    helps = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# HELP")]
    types = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE")]
    assert helps == types and len(helps) == 4


@pytest.mark.skipif(shutil.which("promtool") is None,
                    reason="promtool missing (Debian package prometheus; scripts/install.sh --test installs it)")
def test_promtool_accepts_rendered_block(name):
    """Every figure the pipeline can have (defaults, bridge, execution), declared: promtool's
    lint accepts names, units, HELP and TYPE."""
    from alphapulse.bridge import METRIC_COUNTERS, METRIC_GAUGES, METRIC_HELP
    from alphapulse.execution.component import COUNTERS, METRIC_HELP as EX_HELP
    from alphapulse.metrics import DEFAULT_COUNTERS, DEFAULT_GAUGES
    with MetricsBlock.create(name, ["source", "strategy"], counters=DEFAULT_COUNTERS + METRIC_COUNTERS + COUNTERS,
                             gauges=DEFAULT_GAUGES + METRIC_GAUGES) as m:
        m.declare("strategy", *m.schema.counters, *m.schema.gauges, latency=True)
        m.observe_latency_ns("strategy", 12_345)
        m.gauge("strategy", "bridge_lag_ns").set(1_500_000_000)
        text = render_prometheus(m.snapshot(), help={**METRIC_HELP, **EX_HELP})
    assert "AlphaPulse figure" not in text                  # every figure has its own HELP
    assert 'alphapulse_bridge_lag_seconds{component="strategy"} 1.5' in text
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_numba_observe_matches_python(name):
    values = [-7, 0, 1, 999, 1000, 1001, 2000, 7_000_000, 10 ** 10, 10 ** 10 + 1, 10 ** 13]
    with MetricsBlock.create(name, ["py", "jit"]) as m:
        for v in values:
            m.observe_latency_ns("py", v)
            observe_ns(m.array, m.histogram_base("jit"), m.bounds_array, v)
        s = m.snapshot()["components"]
        assert s["jit"]["latency"] == s["py"]["latency"]
        assert s["jit"]["latency"]["buckets"][-1] == 2          # above the last bound
        assert s["jit"]["latency"]["sum_ns"] == sum(max(0, v) for v in values)
