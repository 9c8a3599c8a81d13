"""Many Bokeh client sessions in one helper process (used by test_sessions.py).

``python -m tests.dashboard.session_probe URL N``: opens N sessions, prints
``ready`` once every document is pulled, then reads one line from stdin (the
signal id every session must end up showing), waits until all do (or 20 s),
and prints one JSON line: per session the pushes it received
``[[arrival monotonic s, push number, server ns], ...]`` and the last
``signal_id`` of its table. Each session acknowledges every push as the
page does (``push_ack.tags``). A separate process, so that the clients' own
decoding does not share a GIL with the producer of the test.
"""
from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

from bokeh.client import pull_session


class Probe(threading.Thread):
    """One Bokeh client session; records every push (``push_clock.tags``) it receives."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.ready = threading.Event()
        self.pushes: list[tuple[float, int, int]] = []
        self.session = None
        self.table = None
        self.error: str | None = None

    def run(self) -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        try:
            self.session = pull_session(url=self.url)
            clock = self.session.document.select_one({"name": "push_clock"})
            self.ack = self.session.document.select_one({"name": "push_ack"})
            clock.on_change("tags", self._on_tags)
            self.table = self.session.document.select_one({"name": "opportunities"})
        except Exception as e:  # reported to the test
            self.error = repr(e)
            self.ready.set()
            return
        self.ready.set()
        self.session._connection.loop_until_closed()   # bokeh 3.9: no public wrapper

    def _on_tags(self, attr, old, new) -> None:
        if new:
            self.pushes.append((time.monotonic(), int(new[0]), int(new[1])))
            self.ack.tags = [int(new[0])]       # applied: what the page's JavaScript does

    def last_signal_id(self) -> str | None:
        ids = list(self.table.data.get("signal_id", [])) if self.table is not None else []
        return ids[-1] if ids else None

    def close(self) -> None:
        if self.session is not None:
            self.session._connection._loop.add_callback(self.session.close)
        self.join(10)


def main() -> int:
    url, n = sys.argv[1], int(sys.argv[2])
    probes = [Probe(url) for _ in range(n)]
    for p in probes:
        p.start()
    for p in probes:
        p.ready.wait(120)
    errors = [p.error for p in probes if p.error or not p.ready.is_set()]
    print("ready" if not errors else f"error {errors}", flush=True)
    target = sys.stdin.readline().strip()
    deadline = time.monotonic() + 20
    while any(p.last_signal_id() != target for p in probes) and time.monotonic() < deadline:
        time.sleep(0.05)
    print(json.dumps([{"pushes": list(p.pushes), "last": p.last_signal_id(), "error": p.error}
                      for p in probes]), flush=True)
    for p in probes:
        p.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
