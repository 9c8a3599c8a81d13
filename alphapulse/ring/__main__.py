"""``python -m alphapulse.ring stat|clean``: inspect live rings, remove orphans.

``stat [--json] [NAME ...]``  every ring in /dev/shm (or the named ones):
                              capacity, policy, producer position, state and
                              heartbeat age, each consumer's lag and loss.
``clean [--dry-run] [NAME ...]``  unlink rings whose creator process is gone (only
                              needed if an owner *and* its watchdog were killed).
"""
from __future__ import annotations

import argparse
import json
import sys

from alphapulse.ring import layout as RL
from alphapulse.ring.segment import list_segments, shm_unlink


def _open_all(names: list[str]):
    from alphapulse.ring.ring import NotARingError, Ring
    segs = [RL.segment_name(n) for n in names] if names else list_segments(RL.SEGMENT_PREFIX)
    for seg in segs:
        try:
            yield seg, Ring.attach(seg, timeout=0.05), None
        except (NotARingError, FileNotFoundError, ValueError) as e:
            yield seg, None, str(e)


def _fmt_age(s) -> str:
    return "-" if s is None else f"{s:.3f}s"


def stat(names: list[str], as_json: bool) -> int:
    out = []
    for seg, ring, err in _open_all(names):
        if ring is None:
            out.append({"segment": seg, "error": err})
            continue
        try:
            out.append(ring.stats())
        finally:
            ring.close()
    if as_json:
        print(json.dumps(out))
        return 0
    if not out:
        print("no rings in /dev/shm")
    for s in out:
        if "error" in s:
            print(f"{s['segment']}: {s['error']}")
            continue
        pr = s["producer"]
        print(f"ring {s['name']}  ({s['segment']})  {s['policy']}  capacity {s['capacity']} B  "
              f"creator pid {s['creator_pid']}")
        print(f"  producer pid {pr['pid']} {pr['state']}  position {pr['position']}  "
              f"frames {pr['frames']}  heartbeat age {_fmt_age(pr['heartbeat_age_s'])}  "
              f"waits {pr['waits']} ({pr['wait_s']:.3f}s)  evictions {pr['evictions']}")
        if not s["consumers"]:
            print("  no consumers")
        for c in s["consumers"]:
            print(f"  consumer {c['name']!r:20} slot {c['slot']:3} pid {c['pid']:7} {c['state']:8} "
                  f"lag {c['lag_frames']} frames / {c['lag_bytes']} B  "
                  f"lost {c['lost_frames']} frames / {c['lost_bytes']} B  "
                  f"heartbeat age {_fmt_age(c['heartbeat_age_s'])}  wait {c['wait']}")
    return 0


def clean(names: list[str], dry_run: bool) -> int:
    from alphapulse.ring.wait import pid_alive
    for seg, ring, err in _open_all(names):
        if ring is None:
            print(f"skip {seg}: {err}")
            continue
        creator = ring.stats()["creator_pid"]
        ring.close()
        if pid_alive(creator):
            print(f"keep {seg}: creator pid {creator} alive")
        else:
            print(f"{'would unlink' if dry_run else 'unlink'} {seg}: creator pid {creator} gone")
            if not dry_run:
                shm_unlink(seg)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m alphapulse.ring", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("stat", help="list rings, producer position, consumer lag and loss")
    st.add_argument("names", nargs="*")
    st.add_argument("--json", action="store_true")
    cl = sub.add_parser("clean", help="unlink rings whose creator is gone")
    cl.add_argument("names", nargs="*")
    cl.add_argument("--dry-run", action="store_true")
    a = ap.parse_args(argv)
    if a.cmd == "stat":
        return stat(a.names, a.json)
    return clean(a.names, a.dry_run)


if __name__ == "__main__":
    sys.exit(main())
