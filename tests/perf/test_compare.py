"""perf.compare: ratio figures gate, absolute figures only report."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from perf.compare import compare, flatten, is_ratio_figure, load_result, main

ROOT = Path(__file__).resolve().parents[2]


def write(path: Path, obj: dict, noise: str = "") -> Path:
    path.write_text(noise + "\n".join(json.dumps({"figure": k, "value": v})
                                      for k, v in obj.items()) + "\n" + json.dumps(obj) + "\n")
    return path


BASE = {"validate_decode_fps": 30e6, "python_baseline_fps": 2e5,
        "validate_decode_speedup": 150.0, "crc_vs_zlib_ratio": 0.6, "machine": "x86_64",
        "targets": {"fps > 20M": True}}


def test_ratio_rule():
    assert is_ratio_figure("crc_vs_zlib_ratio")
    assert is_ratio_figure("validate_decode_speedup")
    assert is_ratio_figure("ring_vs_mpq_ratio")
    assert is_ratio_figure("x.encode_speedup_x")
    assert not is_ratio_figure("validate_decode_fps")
    assert not is_ratio_figure("ratio_of_something")
    assert not is_ratio_figure("crc_ratio.count")


def test_absolute_drop_does_not_gate(tmp_path):
    new = dict(BASE, validate_decode_fps=1e6, python_baseline_fps=1e4)
    assert main([str(write(tmp_path / "a", BASE)), str(write(tmp_path / "b", new))]) == 0


def test_ratio_regression_beyond_threshold_fails(tmp_path, capsys):
    new = dict(BASE, validate_decode_speedup=110.0)     # -26.7 %
    a, b = write(tmp_path / "a", BASE), write(tmp_path / "b", new)
    assert main([str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "validate_decode_speedup" in out
    assert main([str(a), str(b), "--threshold", "0.3"]) == 0


def test_ratio_within_threshold_or_better_passes(tmp_path):
    new = dict(BASE, validate_decode_speedup=121.0, crc_vs_zlib_ratio=0.9)
    assert main([str(write(tmp_path / "a", BASE)), str(write(tmp_path / "b", new))]) == 0


def test_missing_ratio_only_fails_when_strict(tmp_path):
    new = {k: v for k, v in BASE.items() if k != "crc_vs_zlib_ratio"}
    a, b = write(tmp_path / "a", BASE), write(tmp_path / "b", new)
    assert main([str(a), str(b)]) == 0
    assert main([str(a), str(b), "--strict"]) == 1


def test_last_json_object_line_is_the_result(tmp_path):
    p = write(tmp_path / "a", BASE, noise="compiling...\nnot json {\n")
    r = load_result(p)
    assert r["validate_decode_speedup"] == 150.0 and r["targets.fps > 20M"] is True


def test_flatten_and_report_of_non_numbers():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}
    lines, regs = compare({"t.ok": True, "x_ratio": None}, {"t.ok": False, "x_ratio": 2.0}, 0.2)
    assert any("True -> False" in line for line in lines) and regs == []


def test_unreadable_input_exits_2(tmp_path):
    bad = tmp_path / "bad"
    bad.write_text("no json here\n")
    assert main([str(bad), str(bad)]) == 2
    assert main([str(tmp_path / "missing"), str(bad)]) == 2


def test_runs_as_module(tmp_path):
    a = write(tmp_path / "a", BASE)
    b = write(tmp_path / "b", dict(BASE, crc_vs_zlib_ratio=0.3))
    r = subprocess.run([sys.executable, "-m", "perf.compare", str(a), str(b)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "crc_vs_zlib_ratio" in r.stdout


@pytest.mark.parametrize("thr", ["-0.1", "1.5"])
def test_threshold_must_be_a_fraction(tmp_path, thr):
    a = write(tmp_path / "a", BASE)
    with pytest.raises(SystemExit):
        main([str(a), str(a), "--threshold", thr])
