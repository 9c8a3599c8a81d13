"""The deployment files, each checked by its real tool: systemd-analyze verify (units),
hadolint (Dockerfile), the Compose specification's JSON schema (compose.yaml, vendored in
check-jsonschema), kubernetes-validate (deploy/k8s, schemas bundled: works offline), and the
GitHub workflow schema (ci.yml). None of these starts a container: Docker cannot run here."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.apps.pipeline_helpers import REPO

BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        pytest.skip(f"{name} missing (scripts/install.sh --test installs it)")
    return path


def run(*cmd, cwd=REPO) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("unit, instance", [("alphapulse.service", None), ("alphapulse@.service", "blue")])
def test_systemd_units_verify(tmp_path, unit, instance):
    """``systemd-analyze verify`` checks every key and that ExecStart is executable: the units'
    install prefix /opt/alphapulse is mapped to a tmp tree whose python is this interpreter."""
    analyze = tool("systemd-analyze")
    text = (REPO / "deploy" / "systemd" / unit).read_text()
    for sub in ("", "blue/"):
        (tmp_path / sub / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / ".venv" / "bin" / "python").symlink_to(sys.executable)
    name = unit.replace("@.", f"@{instance}.") if instance else unit
    (tmp_path / name).write_text(text.replace("/opt/alphapulse", str(tmp_path)))
    r = run(analyze, "verify", tmp_path / name)
    assert r.returncode == 0 and not r.stderr.strip() and not r.stdout.strip(), r.stdout + r.stderr
    for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=", "EnvironmentFile=",
                "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure"):
        assert key in text


def test_systemd_verify_catches_a_bad_key(tmp_path):
    """The check above can fail: a misspelt key is reported."""
    analyze = tool("systemd-analyze")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").symlink_to(sys.executable)
    text = (REPO / "deploy" / "systemd" / "alphapulse.service").read_text()
    (tmp_path / "alphapulse.service").write_text(
        text.replace("/opt/alphapulse", str(tmp_path)).replace("NoNewPrivileges=", "NoNewPrivilege="))
    r = run(analyze, "verify", tmp_path / "alphapulse.service")
    assert "NoNewPrivilege" in r.stdout + r.stderr


def test_dockerfile_passes_hadolint():
    r = run(tool("hadolint"), "Dockerfile")
    assert r.returncode == 0, r.stdout + r.stderr
    text = (REPO / "Dockerfile").read_text()
    assert text.count("\nFROM ") >= 2 and "alphapulse.warmup" in text      # multi-stage, cache warmed


def test_compose_file_matches_the_compose_spec():
    r = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "compose.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    import yaml
    services = yaml.safe_load((REPO / "compose.yaml").read_text())["services"]
    assert set(services) == {"pipeline", "prometheus", "grafana", "nats"}
    for vol in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        src = vol.split(":")[0]
        if src.startswith("./"):
            assert (REPO / src).exists(), src


def test_compose_schema_check_can_fail(tmp_path):
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  pipeline:\n    image: alphapulse\n    shm_size: [1]\n")
    r = run(tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", bad)
    assert r.returncode != 0


def test_kubernetes_manifests_validate():
    files = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
    r = run(tool("kubernetes-validate"), "--strict", *files)
    assert r.returncode == 0, r.stdout + r.stderr
    import yaml
    dep = next(d for f in files for d in yaml.safe_load_all(f.read_text()) if d and d["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"]["medium"] == "Memory" and shm["emptyDir"]["sizeLimit"]
    c = pod["containers"][0]
    assert c["livenessProbe"]["httpGet"]["path"] == "/health" == c["readinessProbe"]["httpGet"]["path"]
    assert {"mountPath": "/dev/shm", "name": "dshm"} in c["volumeMounts"]


def test_ci_workflow_matches_the_github_schema_and_runs_the_readme_command():
    wf = REPO / ".github" / "workflows" / "ci.yml"
    r = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", wf)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "bash scripts/test.sh" in wf.read_text() and "bash scripts/test.sh" in (REPO / "README.md").read_text()
