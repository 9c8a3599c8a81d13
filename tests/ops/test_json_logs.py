"""``[logging] format = "json"``: every line of a run is one JSON object with the fields a log
shipper needs; ``text`` stays the default."""
import json
import logging
import os

from alphapulse.apps.config import load_config
from alphapulse.apps.supervisor import JsonFormatter, log_formatter
from tests.apps.pipeline_helpers import PipelineProcess


def test_json_formatter_fields_extras_and_traceback():
    rec = logging.LogRecord("alphapulse.x", logging.WARNING, __file__, 1, "lost %d frames", (3,), None)
    rec.component = "strategy"
    rec.ring = "p_market_data"
    rec.obj = object()                                   # not JSON: written as its str
    d = json.loads(JsonFormatter().format(rec))
    assert d["message"] == "lost 3 frames" and d["level"] == "WARNING" and d["component"] == "strategy"
    assert d["logger"] == "alphapulse.x" and d["pid"] == os.getpid() and d["time"].endswith("Z")
    assert d["ring"] == "p_market_data" and d["obj"].startswith("<object")
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys
        rec = logging.LogRecord("alphapulse.y", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(rec)
    assert "\n" not in line
    d = json.loads(line)
    assert d["component"] == "supervisor" and "ValueError: boom" in d["exc"]


def test_text_is_the_default_format():
    assert load_config(None, environ={}).logging.format == "text"
    assert not isinstance(log_formatter("text"), JsonFormatter)


def test_every_line_of_a_json_run_parses():
    p = PipelineProcess("--speed", "20", dashboard=False, env={"ALPHAPULSE__LOGGING__FORMAT": "json"})
    try:
        p.wait_for(lambda: p.metric("alphapulse_signals_total", "strategy") > 0, 300, "first signals")
    finally:
        code = p.stop()
    out = p.output()
    assert code == 0, out[-3000:]
    lines = [ln for ln in out.splitlines() if ln.strip()]
    records = []
    for ln in lines:
        try:
            records.append(json.loads(ln))
        except ValueError:
            raise AssertionError(f"not a JSON line: {ln!r}") from None
    for r in records:
        assert {"time", "level", "component", "pid", "logger", "message"} <= set(r), r
    comps = {r["component"] for r in records}
    assert {"supervisor", "source"} <= comps, comps
    pids = {r["component"]: r["pid"] for r in records}
    assert pids["source"] != pids["supervisor"]              # each process's own pid
    assert any(r["message"].startswith("status: ") for r in records)
