"""The pipeline observed by the real tools: ``promtool``, ``prometheus_client``'s parser, a real
Prometheus server scraping a running pipeline, and the Grafana dashboard's queries against it.

One pipeline (the bundled replay, no dashboard) and one Prometheus serve the whole module.
"""
import json
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.apps.pipeline_helpers import REPO, PipelineProcess, free_port

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing (Debian package prometheus; scripts/install.sh --test installs it)")


@pytest.fixture(scope="module")
def pipeline():
    p = PipelineProcess("--speed", "20", dashboard=False)
    try:
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > 0, 300, "first signals")
        yield p
    finally:
        code = p.stop()
        assert code == 0, p.output()[-3000:]


def scrape(p: PipelineProcess) -> str:
    status, text = p.get("/metrics")
    assert status == 200
    return text


@needs_promtool
def test_live_scrape_passes_promtool(pipeline):
    text = scrape(pipeline)
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr + text[:3000]


def test_live_scrape_parses_with_prometheus_client(pipeline):
    from prometheus_client.parser import text_string_to_metric_families
    text = scrape(pipeline)
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    for f in fams.values():
        assert f.documentation and f.type in ("counter", "gauge", "histogram"), f.name
    signals = [s for s in fams["alphapulse_signals"].samples if s.name == "alphapulse_signals_total"]
    assert {s.labels["component"] for s in signals} == {"strategy"}
    assert signals[0].value > 0
    lat = fams["alphapulse_latency_seconds"]
    assert lat.type == "histogram"
    count = [s.value for s in lat.samples
             if s.name == "alphapulse_latency_seconds_count" and s.labels["component"] == "strategy"]
    assert count and count[0] > 0
    # no families of zeros: a replay source has no RPC connection, the supervisor emits nothing
    assert "alphapulse_rpc_connected" not in fams
    comps = {s.labels.get("component") for f in fams.values() for s in f.samples if f.name.startswith(
        ("alphapulse_frames", "alphapulse_signals", "alphapulse_pools"))}
    assert "supervisor" not in comps and "recorder" not in comps
    up = {s.labels["component"]: s.value for s in fams["alphapulse_component_up"].samples}
    assert up == {"source": 1, "strategy": 1}


# ------------------------------------------------------------------ deploy/prometheus
PROM_DIR = REPO / "deploy" / "prometheus"


@needs_promtool
@pytest.mark.parametrize("args", [("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml"),
                                  ("test", "rules", "alerts_test.yml")], ids=lambda a: " ".join(a[:2]))
def test_promtool_accepts_deploy_files(args):
    r = subprocess.run([PROMTOOL, *args], cwd=PROM_DIR, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_alert_has_a_unit_test_and_a_runbook():
    import yaml
    rules = yaml.safe_load((PROM_DIR / "alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((PROM_DIR / "alerts_test.yml").read_text())
    tested = {t["alertname"] for case in tests["tests"] for t in case["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == tested
    ops_doc = (REPO / "docs" / "operations.md").read_text()
    for a in alerts:
        assert f"### {a}" in ops_doc, f"docs/operations.md has no runbook for {a}"


class Prometheus:
    """A real Prometheus server on loopback, its configuration made from deploy/prometheus
    with the scrape target and interval of this test."""

    def __init__(self, target: str, tmp: Path) -> None:
        import yaml
        cfg = yaml.safe_load((PROM_DIR / "prometheus.yml").read_text())
        cfg["global"]["scrape_interval"] = cfg["global"]["evaluation_interval"] = "1s"
        job = next(j for j in cfg["scrape_configs"] if j["job_name"] == "alphapulse")
        job["static_configs"][0]["targets"] = [target]
        shutil.copy(PROM_DIR / "alerts.yml", tmp / "alerts.yml")
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(cfg))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(tmp / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            [shutil.which("prometheus"), f"--config.file={tmp / 'prometheus.yml'}",
             f"--storage.tsdb.path={tmp / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}"],
            cwd=tmp, stdout=self.log, stderr=subprocess.STDOUT)
        self.log_path = tmp / "prometheus.log"

    def api(self, path: str, **params) -> dict:
        url = f"{self.url}/api/v1/{path}?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list:
        return self.api("query", query=expr)["result"]

    def wait_for(self, pred, timeout: float, what: str):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            assert self.proc.poll() is None, self.log_path.read_text()[-3000:]
            try:
                v = pred()
            except OSError:
                v = None
            if v:
                return v
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n" + self.log_path.read_text()[-3000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def prometheus(pipeline):
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus missing (Debian package prometheus; scripts/install.sh --test installs it)")
    with tempfile.TemporaryDirectory(prefix="alphapulse-prom-") as tmp:
        prom = Prometheus(f"127.0.0.1:{pipeline.ops_port}", Path(tmp))
        try:
            prom.wait_for(lambda: [t for t in prom.api("targets")["activeTargets"] if t["health"] == "up"],
                          120, "the pipeline target up")
            # enough samples for the rate() windows of the dashboard
            time.sleep(6)
            yield prom
        finally:
            prom.stop()


def test_prometheus_scrapes_signals_of_the_running_pipeline(prometheus):
    res = prometheus.wait_for(lambda: prometheus.query('alphapulse_signals_total{component="strategy"} > 0'),
                              60, "a signal count above zero")
    assert float(res[0]["value"][1]) > 0
    assert res[0]["metric"]["job"] == "alphapulse"
    # the rules loaded, healthy pipeline: no alert is firing
    groups = prometheus.api("rules")["groups"]
    assert {r["name"] for g in groups for r in g["rules"]} >= {"AlphaPulseDown", "AlphaPulseFramesLost"}
    firing = [a for a in prometheus.api("alerts")["alerts"] if a["state"] == "firing"]
    assert not [a for a in firing if a["labels"]["alertname"] in ("AlphaPulseDown", "AlphaPulseNoMarketData")]


# ------------------------------------------------------------------ deploy/grafana
GRAFANA_DIR = REPO / "deploy" / "grafana"


def dashboard_exprs() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every query of the dashboard, found wherever an ``expr`` is."""
    found: list[tuple[str, str]] = []

    def walk(node, title=""):
        if isinstance(node, dict):
            title = node.get("title", title)
            if isinstance(node.get("expr"), str):
                found.append((title, node["expr"]))
            for v in node.values():
                walk(v, title)
        elif isinstance(node, list):
            for v in node:
                walk(v, title)
    walk(json.loads((GRAFANA_DIR / "dashboards" / "alphapulse.json").read_text()))
    return found


def test_grafana_provisioning_points_at_the_dashboard():
    import yaml
    prov = yaml.safe_load((GRAFANA_DIR / "provisioning.yaml").read_text())
    assert prov["apiVersion"] == 1 and prov["providers"][0]["type"] == "file"
    ds = yaml.safe_load((GRAFANA_DIR / "datasource.yaml").read_text())
    assert ds["datasources"][0]["type"] == "prometheus"
    dash = json.loads((GRAFANA_DIR / "dashboards" / "alphapulse.json").read_text())
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("throughput", "latency", "signals", "pools", "component up", "restarts"):
        assert topic in titles
    assert len(dashboard_exprs()) >= 12


def test_every_dashboard_query_parses_and_returns_data(prometheus):
    exprs = dashboard_exprs()
    empty = []
    for title, expr in exprs:
        try:
            res = prometheus.query(expr)          # a parse error is an HTTP 400 here
        except urllib.error.HTTPError as e:
            raise AssertionError(f"{title}: {expr}: {e.read().decode()}") from None
        if not res:
            empty.append((title, expr))
    assert not empty, f"queries with no data: {empty}"
