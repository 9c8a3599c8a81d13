"""Lower layers never import the layer that assembles them (alphapulse.apps)."""
import subprocess
import sys

LOWER = ("alphapulse.settings", "alphapulse.protocol.codec", "alphapulse.ring", "alphapulse.journal",
         "alphapulse.adapters.evm.config", "alphapulse.adapters.evm.data", "alphapulse.adapters.replayer",
         "alphapulse.bridge.config", "alphapulse.bridge.inbound", "alphapulse.bridge.outbound",
         "alphapulse.strategy.engine", "alphapulse.dashboard.aggregate", "alphapulse.execution.checker")


def test_lower_layers_import_nothing_from_apps():
    code = ("import importlib, sys\n"
            f"for m in {LOWER!r}: importlib.import_module(m)\n"
            "print(sorted(m for m in sys.modules if m.startswith('alphapulse.apps')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


def test_bridge_configuration_imports_before_the_pipeline_configuration():
    code = "import alphapulse.bridge.config, alphapulse.apps.config; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
