"""Compare two benchmark results and fail on a regression of a ratio figure.

Usage::

    python -m perf.compare BASELINE.json NEW.json [--threshold 0.2]

Each file is a benchmark's ``--json`` output: the last line that parses as a
JSON object is the result (so a whole captured stdout works as well as a file
holding only that line). Nested objects are flattened with dots.

Every numeric figure present in either file is printed with its relative
change. The exit status only depends on **ratio figures**: a figure whose name
(its last dotted component) ends in ``_ratio`` or contains ``_speedup``. Those
compare two implementations measured in the same run on the same machine, so
machine noise mostly cancels out; higher is better. The run fails (exit 1) when
any ratio figure of the baseline fell by more than ``threshold`` (default 0.2,
i.e. new < baseline x 0.8), or became null/missing while the baseline had a
value only if ``--strict``. Absolute figures (frames/s, GB/s, ns, latencies)
are reported, never gate: the machines are shared and noisy. Booleans and
strings (targets, machine) are shown when they change. Exit 2: unreadable input.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any


def is_ratio_figure(key: str) -> bool:
    """The gating rule: last dotted component ends in ``_ratio`` or contains ``_speedup``."""
    name = key.rsplit(".", 1)[-1]
    return name.endswith("_ratio") or "_speedup" in name


def load_result(path: str | Path) -> dict[str, Any]:
    """The last JSON object line of ``path``, flattened."""
    text = Path(path).read_text()
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            return flatten(obj)
    raise ValueError(f"{path}: no JSON object line found")


def flatten(obj: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in obj.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def compare(base: dict[str, Any], new: dict[str, Any], threshold: float,
            strict: bool = False) -> tuple[list[str], list[str]]:
    """(report lines, regressions). A regression is a ratio figure beyond ``threshold``."""
    lines, regressions = [], []
    for key in sorted(set(base) | set(new)):
        b, n = base.get(key), new.get(key)
        bn, nn = _number(b), _number(n)
        gate = is_ratio_figure(key)
        tag = "RATIO" if gate else "     "
        if bn is None and nn is None:
            if b != n:
                lines.append(f"  {tag} {key:44} {b!r} -> {n!r}")
            continue
        if bn is not None and nn is not None:
            change = (nn - bn) / bn if bn else (0.0 if nn == bn else math.inf)
            verdict = ""
            if gate and nn < bn * (1.0 - threshold):
                verdict = f"  REGRESSION (> {threshold:.0%} down)"
                regressions.append(f"{key}: {bn:.4g} -> {nn:.4g} ({change:+.1%})")
            lines.append(f"  {tag} {key:44} {bn:14.4g} -> {nn:14.4g}  {change:+8.1%}{verdict}")
            continue
        lines.append(f"  {tag} {key:44} {b!r} -> {n!r}  (missing)")
        if gate and strict and bn is not None:
            regressions.append(f"{key}: {bn:.4g} -> missing")
    return lines, regressions


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m perf.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("baseline")
    ap.add_argument("new")
    ap.add_argument("--threshold", type=float, default=0.2,
                    help="allowed fall of a ratio figure, as a fraction (default 0.2)")
    ap.add_argument("--strict", action="store_true",
                    help="a ratio figure missing or null in NEW also fails")
    a = ap.parse_args(argv)
    if not 0 <= a.threshold < 1:
        ap.error("--threshold must be in [0, 1)")
    try:
        base, new = load_result(a.baseline), load_result(a.new)
    except (OSError, ValueError) as e:
        print(f"perf.compare: {e}", file=sys.stderr)
        return 2
    lines, regressions = compare(base, new, a.threshold, a.strict)
    print(f"{a.baseline} -> {a.new} (ratio figures gate at -{a.threshold:.0%})")
    print("\n".join(lines))
    if regressions:
        print(f"FAIL: {len(regressions)} ratio figure(s) regressed:")
        for r in regressions:
            print(f"  {r}")
        return 1
    n_ratio = sum(1 for k in set(base) | set(new) if is_ratio_figure(k))
    print(f"OK: no ratio figure regressed ({n_ratio} checked)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
